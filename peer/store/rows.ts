/** How a stored message is laid out in its row, and read back into a `StoredMessage`. */
import type { MessageState, StoredMessage } from "../api.ts";

/** `messages.flags` bits. */
export const OUTGOING = 1;
export const PUB = 2;
export const ENCRYPTED = 4;

/** `messages.state` codes; the order of the first four is the order of progress. */
export const STATE_CODES: Record<MessageState, number> = {
  queued: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  failed: 4,
};
export const QUEUED = STATE_CODES.queued;
export const SENT = STATE_CODES.sent;
export const DELIVERED = STATE_CODES.delivered;
export const READ = STATE_CODES.read;
export const FAILED = STATE_CODES.failed;

/** The state of each `messages.state` code. */
export const STATE_NAMES: readonly MessageState[] = [
  "queued",
  "sent",
  "delivered",
  "read",
  "failed",
];

/** The columns every message read selects, with the interned strings joined back... */
export const MESSAGE_COLUMNS = `m.id, m.flags, m.state, m.at, m.msg_id, m.text, m.reason,
  m.pending, c.name AS conversation, p.peer_id AS sender, f.fingerprint AS fingerprint`;
/** ...by these joins onto `messages m`. */
export const MESSAGE_JOINS = `JOIN conversations c ON c.id = m.conversation
JOIN peers p ON p.id = m.sender
LEFT JOIN fingerprints f ON f.id = m.fingerprint`;
/** A message read, to be followed by a WHERE clause on `m`. */
export const MESSAGE_SELECT = `SELECT ${MESSAGE_COLUMNS} FROM messages m ${MESSAGE_JOINS}`;

/** One row of `MESSAGE_SELECT`. */
export interface MessageRow {
  id: number;
  flags: number;
  state: number;
  at: number;
  msg_id: string;
  text: string;
  reason: string | null;
  pending: string | null;
  conversation: string;
  sender: string;
  fingerprint: string | null;
}

/**
 * True when an outgoing message may move from `from` to `to`: forward along queued, sent,
 * delivered, read; back to queued only from sent (a write that was not acknowledged); to
 * failed only before delivery; never out of failed or read.
 */
export function mayMove(from: number, to: number): boolean {
  if (from === to || from === FAILED || from === READ) return false;
  if (to === FAILED) return from === QUEUED || from === SENT;
  if (to === QUEUED) return from === SENT;
  return to > from;
}

/**
 * The text as the table gives it back, so that a staged message reads the same: SQLite stores
 * lone surrogates as U+FFFD, and hands text back only up to a NUL.
 */
export function storableText(text: string): string {
  // Most texts are both already: no copy for them (this runs for every message).
  if (text.isWellFormed() && !text.includes("\0")) return text;
  return text.toWellFormed().replaceAll("\0", "\uFFFD");
}

/** The message of a row; `stranger` says whether a sender is outside our contacts. */
export function toMessage(row: MessageRow, stranger: (peerId: string) => boolean): StoredMessage {
  const outgoing = (row.flags & OUTGOING) !== 0;
  const message: StoredMessage = {
    id: row.id,
    msgId: row.msg_id,
    conversation: row.conversation,
    kind: row.flags & PUB ? "pub" : "direct",
    from: row.sender,
    outgoing,
    text: row.text,
    at: row.at,
    state: STATE_NAMES[row.state] ?? "failed",
    encrypted: (row.flags & ENCRYPTED) !== 0,
  };
  if (row.reason !== null) message.reason = row.reason;
  if (row.fingerprint !== null) message.fingerprint = row.fingerprint;
  if (!outgoing && stranger(row.sender)) message.stranger = true;
  const pendingFor = parsePending(row.pending);
  if (pendingFor !== undefined) message.pendingFor = pendingFor;
  return message;
}

/** The room members a message waits for, from its `pending` column (only we write it). */
export function parsePending(pending: string | null): string[] | undefined {
  if (pending === null) return undefined;
  try {
    const list: unknown = JSON.parse(pending);
    if (Array.isArray(list)) return list.filter((item): item is string => typeof item === "string");
  } catch {
    // Fall through: a damaged cell reads as an empty list rather than breaking every read.
  }
  return [];
}

/** The `pending` column for a list of members: NULL once nobody is waited for. */
export function pendingColumn(pendingFor: readonly string[] | undefined): string | null {
  return pendingFor && pendingFor.length > 0 ? JSON.stringify(pendingFor) : null;
}
