/**
 * The pyp2p Rendezvous commands (REGISTER, DISCOVER, UNREGISTER), free of I/O: one decoded
 * request, the requester's ip and the time in; the reply object out. Check order and error
 * strings follow the reference tracker exactly, because pyp2p clients match on them.
 */
import { type DecodeResult, isWireName, toInteger } from "../lib/codec.ts";
import {
  DEFAULT_TTL_SECONDS,
  MAX_LINE_BYTES,
  MAX_TTL_SECONDS,
  MIN_TTL_SECONDS,
} from "../lib/constants.ts";
import type { PeerEntry, Registry } from "./registry.ts";

/** The commands this service answers. */
export const RENDEZVOUS_COMMANDS = ["REGISTER", "DISCOVER", "UNREGISTER"] as const;
export type RendezvousCommand = typeof RENDEZVOUS_COMMANDS[number];

/** Error messages sent verbatim by the reference tracker. */
export const UNKNOWN_COMMAND = "Unknown command";
export const EMPTY_REQUEST = "Empty request line";
export const IDLE_TIMEOUT = "Timeout: no data received, closing connection";
/** Our addition: the first line must be complete within a total deadline (slow-drip clients). */
export const FIRST_LINE_TIMEOUT = "Timeout: request line not complete in time, closing connection";

/** A reply line: `{"status":"OK",...}` or `{"status":"ERROR","message":...}`. */
export type Reply =
  | { status: "OK"; [field: string]: unknown }
  | { status: "ERROR"; message: string; [field: string]: unknown };

/** What `handleRendezvous` did: the reply, the request's label for metrics, and whether the store changed. */
export interface RendezvousOutcome {
  reply: Reply;
  /** The command, `UNKNOWN` for an unknown type, `INVALID` for a line that did not decode. */
  command: RendezvousCommand | "UNKNOWN" | "INVALID";
  changed: boolean;
}

/** Who asks, when, and against which store. */
export interface RendezvousContext {
  registry: Registry;
  /** The requester's address as the tracker saw it (plain dotted IPv4 for IPv4 clients). */
  ip: string;
  now: number;
  /** Accounts' REGISTER check on the name, run after the pyp2p checks. */
  checkRegister?: NameCheck;
  /** Accounts' check on the name of each record an UNREGISTER would remove. */
  checkUnregister?: NameCheck;
}

/** A check on a name: undefined lets the request go on, a string is the ERROR message. */
export type NameCheck = (name: string) => string | undefined;

/** Builds an ERROR reply. */
export function errorReply(message: string): Reply {
  return { status: "ERROR", message };
}

/** The reply to a line over the framing limit (sent before closing). */
export const LINE_TOO_LONG_REPLY: Reply = {
  status: "ERROR",
  message: "line_too_long",
  limit: MAX_LINE_BYTES,
};

/** Answers one decoded request line. */
export function handleRendezvous(
  result: DecodeResult,
  context: RendezvousContext,
): RendezvousOutcome {
  if (!result.ok) {
    const message = result.code === "empty_line" ? EMPTY_REQUEST : UNKNOWN_COMMAND;
    return { reply: errorReply(message), command: "INVALID", changed: false };
  }
  const { type, fields } = result.message;
  switch (type) {
    case "REGISTER":
      return _register(fields, context);
    case "DISCOVER":
      return _discover(fields, context);
    case "UNREGISTER":
      return _unregister(fields, context);
    default:
      return { reply: errorReply(UNKNOWN_COMMAND), command: "UNKNOWN", changed: false };
  }
}

function _register(fields: Record<string, unknown>, context: RendezvousContext): RendezvousOutcome {
  const refuse = (message: string): RendezvousOutcome => ({
    reply: errorReply(message),
    command: "REGISTER",
    changed: false,
  });
  // The reference checks name, then ttl, then namespace, then port: clients see the first failure.
  const name = fields.name;
  if (!isWireName(name)) return refuse("bad_name");
  let ttl = DEFAULT_TTL_SECONDS;
  if (fields.ttl !== undefined) {
    const converted = toInteger(fields.ttl);
    if (converted === undefined) return refuse("bad_ttl");
    ttl = Math.min(MAX_TTL_SECONDS, Math.max(MIN_TTL_SECONDS, converted));
  }
  const namespace = fields.namespace;
  if (!isWireName(namespace)) return refuse("bad_namespace");
  const port = toInteger(fields.port);
  if (port === undefined || port < 1 || port > 65535) return refuse("bad_port");
  const refusal = context.checkRegister?.(name);
  if (refusal !== undefined) return refuse(refusal);
  context.registry.upsert({ ip: context.ip, namespace, name, port, ttl }, context.now);
  return {
    reply: { status: "OK", ttl, ip: context.ip, port },
    command: "REGISTER",
    changed: true,
  };
}

function _discover(fields: Record<string, unknown>, context: RendezvousContext): RendezvousOutcome {
  // Absent (or null) means every namespace; any other non-string can match no namespace.
  const namespace = fields.namespace;
  let peers: PeerEntry[];
  if (namespace === undefined || namespace === null) {
    peers = context.registry.discover(undefined, context.now);
  } else if (typeof namespace === "string") {
    peers = context.registry.discover(namespace, context.now);
  } else {
    peers = [];
  }
  return { reply: { status: "OK", peers }, command: "DISCOVER", changed: false };
}

function _unregister(
  fields: Record<string, unknown>,
  context: RendezvousContext,
): RendezvousOutcome {
  let port: number | undefined;
  if (fields.port !== undefined && fields.port !== null) {
    port = toInteger(fields.port);
    if (port === undefined) {
      return {
        reply: errorReply(`bad_port (${_pythonText(fields.port)})`),
        command: "UNREGISTER",
        changed: false,
      };
    }
  }
  const { namespace, name } = fields;
  let removed = 0;
  let refusal: string | undefined;
  // A missing or non-string namespace or name matches no record: still OK, as in the reference.
  if (
    typeof namespace === "string" &&
    (name === undefined || name === null || typeof name === "string")
  ) {
    const filter = {
      ip: context.ip,
      namespace,
      name: typeof name === "string" ? name : undefined,
      port,
    };
    for (const record of context.registry.matching(filter)) {
      const refused = context.checkUnregister?.(record.name);
      refusal ??= refused;
      if (refused === undefined) {
        removed += context.registry.unregister({ ...filter, name: record.name });
      }
    }
  }
  // Listings of owned names stay; asked for by name, the refusal is said (an address-wide
  // UNREGISTER still removes the anonymous ones and answers OK, as pyp2p clients expect).
  const reply: Reply = refusal !== undefined && typeof name === "string"
    ? errorReply(refusal)
    : { status: "OK" };
  return { reply, command: "UNREGISTER", changed: removed > 0 };
}

// The reference formats the value with Python's str(): strings appear bare.
function _pythonText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
