/**
 * Wire vocabulary of the tracker session protocol (docs/protocol.md, "Tracker sessions"): commands,
 * events, reply shapes and limits. Every type starts with `SESSION_` so it can never be
 * mistaken for a Rendezvous command, and a pyp2p tracker answers it "Unknown command".
 */
import type { ErrorCode } from "../../lib/errors.ts";

/** The prefix of every session message type. */
export const SESSION_PREFIX = "SESSION_";

/** Commands a client sends (upper-cased, as the codec delivers them). */
export const COMMANDS = [
  "SESSION_SIGNUP",
  "SESSION_LOGIN",
  "SESSION_RESUME",
  "SESSION_LOGOUT",
  "SESSION_HEARTBEAT",
  "SESSION_USERS",
  "SESSION_ROOMS",
  "SESSION_ROOM_MEMBERS",
  "SESSION_ROOM_CREATE",
  "SESSION_ROOM_JOIN",
  "SESSION_ROOM_LEAVE",
  "SESSION_ROOM_DELETE",
  "SESSION_KEYS",
  "SESSION_REGISTER",
  "SESSION_UNREGISTER",
] as const;
export type Command = typeof COMMANDS[number];

/** Commands allowed before a login. */
export const ANONYMOUS_COMMANDS: ReadonlySet<Command> = new Set([
  "SESSION_SIGNUP",
  "SESSION_LOGIN",
  "SESSION_RESUME",
  "SESSION_KEYS",
]);

/** Most usernames one SESSION_KEYS may ask about. */
export const MAX_KEYS_PER_REQUEST = 100;

/** The type of every reply and of every pushed event. */
export const REPLY_TYPE = "SESSION_REPLY";
export const EVENT_TYPE = "SESSION_EVENT";

/** Names of pushed events. */
export type EventName =
  | "room_joined"
  | "room_left"
  | "room_deleted"
  | "member_online"
  | "member_offline"
  | "session_expired"
  | "session_closed"
  | "key_changed";

/** Where a member can be reached directly (declared at login; ip as the tracker saw it). */
export interface WireAddress {
  ip: string;
  port?: number;
  peer_id?: string;
}

/** A member as shown in room replies and events. */
export interface WireMember {
  username: string;
  online: boolean;
  addresses: WireAddress[];
  last_seen: string | null;
  /** The account's identity key, base64; null when it has none yet. */
  identity_key: string | null;
}

/** Replies with lists stop adding items past this size, well under the 32768-byte line limit. */
export const REPLY_BUDGET_BYTES = 24_000;

/** Default and largest `limit` of a paged listing. */
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 500;

/** Rooms one account may be a member of: keeps a user's listing entry well under a line. */
export const MAX_ROOMS_PER_USER = 200;

/**
 * Live sessions one account may hold at once (a person's devices, with room to spare): one
 * token must not be able to fill the tracker's connection slots.
 */
export const MAX_SESSIONS_PER_USER = 16;

/**
 * Sessions not logged in yet, from one address and in all: they hold a slot up to the login
 * deadline, so strangers may not keep the room that logged-in users need.
 */
export const MAX_ANONYMOUS_SESSIONS_PER_IP = 16;
export const MAX_ANONYMOUS_SESSIONS = 256;

/** Requests queued on one connection beyond this are refused with `busy`. */
export const MAX_QUEUED_REQUESTS = 32;

/** Longest accepted request `id` (a string or a number). */
export const MAX_ID_CHARS = 128;

/** A reply's request id: whatever the client sent, or null when it could not be read. */
export type RequestId = string | number | null;

/** A success reply. */
export function okReply(id: RequestId, fields: Record<string, unknown> = {}) {
  return { type: REPLY_TYPE, id, status: "OK", ...fields };
}

/** An error reply carrying a stable code. */
export function errorReply(id: RequestId, code: ErrorCode, message: string) {
  return { type: REPLY_TYPE, id, status: "ERROR", code, message };
}

/** A pushed event. */
export function eventMessage(event: EventName, fields: Record<string, unknown>) {
  return { type: EVENT_TYPE, event, ...fields };
}

/** ISO 8601 for the wire, null for never. */
export function isoTime(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
