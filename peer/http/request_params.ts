/**
 * Checks of what the local HTTP API reads from paths and query strings: peer ids,
 * conversations, message ids and page sizes. Each bad value is a `bad_field` error that
 * quotes it; nothing is guessed or clamped.
 */
import { charLength, isWireName } from "../../lib/codec.ts";
import { P2pError } from "../../lib/errors.ts";
import { checkName } from "../../lib/names.ts";
import { isPeerId as isPeerIdOnWire } from "../protocol/mod.ts";

/** Longest search text (characters): a search is a phrase, not a message. */
export const MAX_SEARCH_CHARS = 200;

/** Largest page a client may ask for, and the page it gets when it does not say. */
export const MAX_PAGE_LIMIT = 500;
export const DEFAULT_PAGE_LIMIT = 50;

/** True for `name@namespace`: two wire names around a single `@`. */
export function isPeerId(value: string): boolean {
  const parts = value.split("@");
  return parts.length === 2 && isWireName(parts[0]) && isWireName(parts[1]);
}

/**
 * A peer id from a path (`bob@lobby`, or `bob%40lobby` already decoded), or a bare `bob` for a
 * peer of our namespace.
 */
export function peerIdParam(value: string, ourNamespace: string): string {
  const peerId = _qualified(value, ourNamespace);
  if (peerId !== undefined) return peerId;
  throw new P2pError("bad_field", `Peer id "${value}" must be name@namespace or name`);
}

/**
 * A peer id a person typed: `name@namespace`, or a bare `name` for a peer of our namespace
 * (as the terminal's `/msg` reads it).
 */
export function peerIdField(value: string, field: string, ourNamespace: string): string {
  const peerId = _qualified(value, ourNamespace);
  if (peerId !== undefined) return peerId;
  throw new P2pError(
    "bad_field",
    `Field "${field}" must be name@namespace or name, got "${value}"`,
  );
}

/**
 * A conversation: a peer id (direct; a bare name for a peer of our namespace), `#name` (a room
 * or namespace) or `*` (broadcast). With `exact` (`?exact=1`), the name as the API lists it,
 * never read as a bare name: a pyp2p peer may call itself `bob`, without namespace, or `a@b@c`,
 * and a page must reach that conversation, not `bob@ours`.
 */
export function conversationParam(value: string, ourNamespace: string, exact = false): string {
  if (exact) {
    if (value === "*" || value.startsWith("#") || isPeerIdOnWire(value)) return value;
    throw new P2pError("bad_field", `Conversation "${value}" is no conversation name`);
  }
  if (value === "*" || (value.startsWith("#") && isWireName(value.slice(1)))) return value;
  const peerId = _qualified(value, ourNamespace);
  if (peerId !== undefined) return peerId;
  throw new P2pError(
    "bad_field",
    `Conversation "${value}" must be name@namespace, name, #name or *`,
  );
}

/** A stored message's id (a positive integer), from a path or a query string. */
export function messageIdParam(field: string, value: string): number {
  const id = /^[1-9][0-9]{0,15}$/.test(value) ? Number(value) : NaN;
  if (Number.isSafeInteger(id)) return id;
  throw new P2pError("bad_field", `Field "${field}" must be a positive integer, got "${value}"`);
}

/** An optional message id from the query string. */
export function optionalMessageId(field: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : messageIdParam(field, value);
}

/** A message id from a JSON body: a number, not a numeric string. */
export function messageIdField(field: string, value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
  throw new P2pError(
    "bad_field",
    `Field "${field}" must be a positive integer, got ${JSON.stringify(value) ?? "nothing"}`,
  );
}

/** `limit` from the query string: 1..MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT when absent. */
export function limitParam(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PAGE_LIMIT;
  const limit = /^[1-9][0-9]{0,3}$/.test(value) ? Number(value) : NaN;
  if (limit <= MAX_PAGE_LIMIT) return limit;
  throw new P2pError(
    "bad_field",
    `Field "limit" must be an integer from 1 to ${MAX_PAGE_LIMIT}, got "${value}"`,
  );
}

/** The search text `q`: 1..MAX_SEARCH_CHARS characters. */
export function searchParam(value: string | undefined): string {
  if (value === undefined) throw new P2pError("missing_field", 'Field "q" is missing');
  const length = charLength(value);
  if (length >= 1 && length <= MAX_SEARCH_CHARS) return value;
  throw new P2pError(
    "bad_field",
    `Field "q" must be 1 to ${MAX_SEARCH_CHARS} characters, got ${length}`,
  );
}

// A full peer id as the wire allows it (pyp2p peers may have any name), or a bare name, which a
// person wrote: it must follow the names rule (lib/names.ts) and means a peer of our namespace.
function _qualified(value: string, ourNamespace: string): string | undefined {
  if (value.includes("@")) return isPeerId(value) ? value : undefined;
  return checkName("Peer name", value) === undefined ? `${value}@${ourNamespace}` : undefined;
}
