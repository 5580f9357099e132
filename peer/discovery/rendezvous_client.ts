/**
 * The peer's side of the Rendezvous protocol. One request per TCP connection, as the pyp2p
 * reference server expects: write one line, read one reply line (or until EOF, whichever
 * comes first), close. Replies are read liberally (numbers as strings, extra fields, peers
 * with bad fields skipped).
 */
import { isRecord, isWireName, toInteger, toPort } from "../../lib/codec.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { describeError, P2pError } from "../../lib/errors.ts";
import { encodeLine } from "../../lib/framing.ts";
import { type Address, type Conn, dialTcp } from "../../lib/transport.ts";

/** One registration listed by DISCOVER. */
export interface RendezvousRecord {
  ip: string;
  port: number;
  name: string;
  namespace: string;
  ttl?: number;
  expiresIn?: number;
}

/** What REGISTER answered: the TTL in force and the address the tracker saw us from. */
export interface RegisterReply {
  ttl?: number;
  ip?: string;
  port?: number;
}

/** The three Rendezvous requests a peer makes. */
export interface RendezvousClient {
  /** `token` proves a name owned by an account (ignored by pyp2p trackers). */
  register(
    request: { namespace: string; name: string; port: number; ttl: number; token?: string },
  ): Promise<RegisterReply>;
  /** Every live registration, of one namespace or (without one) of all namespaces. */
  discover(namespace?: string): Promise<RendezvousRecord[]>;
  /** `token` proves a name owned by an account: our tracker keeps its listing without it. */
  unregister(
    request: { namespace: string; name: string; port: number; token?: string },
  ): Promise<void>;
}

/** Options for the TCP client. */
export interface TcpRendezvousOptions {
  /** Deadline for one whole request (connect, write, read). */
  timeoutMs?: number;
  /** Bound on a reply: a DISCOVER listing many peers is far longer than a peer-protocol line. */
  maxReplyBytes?: number;
  /** Replaces `dialTcp` (tests). */
  dial?: (address: Address, signal: AbortSignal) => Promise<Conn>;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024;
const NEWLINE = 0x0a;

/** A Rendezvous client speaking to `address` over TCP. */
export function tcpRendezvousClient(
  address: Address,
  options: TcpRendezvousOptions = {},
): RendezvousClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  const dial = options.dial ??
    ((to: Address, signal: AbortSignal) => dialTcp(to.hostname, to.port, { signal }));
  const request = (message: Record<string, unknown>) =>
    rendezvousRequest(address, message, { timeoutMs, maxReplyBytes, dial });
  return {
    async register({ namespace, name, port, ttl, token }) {
      const reply = await request(
        token === undefined
          ? { type: "REGISTER", namespace, name, port, ttl }
          : { type: "REGISTER", namespace, name, port, ttl, token },
      );
      return {
        ttl: toInteger(reply.ttl),
        ip: typeof reply.ip === "string" ? reply.ip : undefined,
        port: toPort(reply.port),
      };
    },
    async discover(namespace) {
      const reply = await request(
        namespace === undefined ? { type: "DISCOVER" } : { type: "DISCOVER", namespace },
      );
      if (!Array.isArray(reply.peers)) {
        throw new P2pError("bad_reply", 'DISCOVER reply has no "peers" list');
      }
      return reply.peers.flatMap((item) => {
        const record = _readRecord(item);
        return record ? [record] : [];
      });
    },
    async unregister({ namespace, name, port, token }) {
      await request(
        token === undefined
          ? { type: "UNREGISTER", namespace, name, port }
          : { type: "UNREGISTER", namespace, name, port, token },
      );
    },
  };
}

/** An ERROR reply; `reason` is the tracker's `message` (a stable code such as `name_owned`). */
export class TrackerRefusal extends P2pError {
  constructor(message: string, readonly reason: string) {
    super("tracker_error", message);
  }
}

/** Sends one request on a fresh connection and returns the OK reply's fields. */
export async function rendezvousRequest(
  address: Address,
  message: Record<string, unknown>,
  options: Required<TcpRendezvousOptions>,
): Promise<Record<string, unknown>> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let conn: Conn;
  try {
    conn = await options.dial(address, signal);
  } catch (error) {
    throw new P2pError(
      "tracker_unreachable",
      `Tracker ${address.hostname}:${address.port} is unreachable (${describeError(error)})`,
    );
  }
  const onAbort = () => conn.close();
  signal.addEventListener("abort", onAbort);
  let line: string;
  try {
    await conn.write(encodeLine(message));
    line = await _readReply(conn, options.maxReplyBytes);
  } catch (error) {
    if (error instanceof P2pError) throw error;
    throw new P2pError(
      "tracker_unreachable",
      `Tracker ${address.hostname}:${address.port} failed during ${message.type} (${
        describeError(error)
      })`,
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
    conn.close();
  }
  if (signal.aborted) {
    throw new P2pError("tracker_unreachable", `Tracker did not answer ${message.type} in time`);
  }
  // Replies carry `status`, not `type`, so they are parsed as plain objects.
  let fields: unknown;
  try {
    fields = JSON.parse(line);
  } catch {
    fields = undefined;
  }
  if (!isRecord(fields)) {
    throw new P2pError(
      "bad_reply",
      `Tracker reply to ${message.type} is not a JSON object: "${line}"`,
    );
  }
  if (fields.status !== "OK") {
    const reason = typeof fields.message === "string" ? fields.message : JSON.stringify(fields);
    throw new TrackerRefusal(`Tracker refused ${message.type}: ${reason}`, reason);
  }
  return fields;
}

// Reads up to the first newline, or to EOF for servers that close without one.
async function _readReply(conn: Conn, maxBytes: number): Promise<string> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of conn.chunks()) {
    const newline = chunk.indexOf(NEWLINE);
    const part = newline === -1 ? chunk : chunk.subarray(0, newline);
    total += part.length;
    if (total > maxBytes) {
      throw new P2pError("bad_reply", `Tracker reply is longer than ${maxBytes} bytes`);
    }
    parts.push(part.slice()); // the chunk's buffer is reused by the next read
    if (newline !== -1) break;
  }
  return new TextDecoder().decode(concatBytes(parts)).replace(/\r$/, "");
}

function _readRecord(item: unknown): RendezvousRecord | undefined {
  if (!isRecord(item)) return undefined;
  const port = toPort(item.port);
  if (typeof item.ip !== "string" || port === undefined) return undefined;
  if (!isWireName(item.name) || !isWireName(item.namespace)) return undefined;
  return {
    ip: item.ip,
    port,
    name: item.name,
    namespace: item.namespace,
    ttl: toInteger(item.ttl),
    expiresIn: toInteger(item.expires_in),
  };
}
