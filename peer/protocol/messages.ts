/**
 * The peer protocol's wire vocabulary: one typed union for what we understand, strict
 * builders for what we send (compact JSON, `"ttl":1`, `require_ack:true` on SEND), and a
 * liberal reader for what pyp2p peers send (extra fields ignored, numbers as strings, `ttl`
 * optional, unknown types reported as such rather than as errors).
 */
import { charLength, isRecord, isSafeText, type WireMessage } from "../../lib/codec.ts";
import {
  MAX_LINE_BYTES,
  MAX_NAME_CHARS,
  MESSAGE_TTL,
  PROTOCOL_VERSION,
} from "../../lib/constants.ts";

/** Our own extension: both sides are p2pchat peers, so pipelined writes are safe. */
export const FEATURE_P2PCHAT = "p2pchat";

/** Our second extension, on top of the first: SENDs and ACKs go in SENDS and ACKS batches. */
export const FEATURE_BATCH = "p2pchat-batch";

/** Our third: a Noise handshake right after HELLO/HELLO_OK, then every line in encrypted frames. */
export const FEATURE_NOISE = "p2pchat-noise";

/** Our fourth: RECEIPT lines saying a PUB was stored (and, with the fifth, a message was read). */
export const FEATURE_RECEIPTS = "p2pchat-receipts";

/** Read receipts: listed only while the user has them on, so both sides must agree. */
export const FEATURE_READ = "p2pchat-read";

/** File transfers (FILE_* lines, docs/peer-protocol.md "Files"); used only when encrypted. */
export const FEATURE_FILES = "p2pchat-files";

/**
 * File data in binary records beside the lines (a kind byte on every Noise transport message)
 * instead of base64 FILE_CHUNK lines: listed with `p2pchat-files`, used when both list it.
 */
export const FEATURE_FILE_FRAMES = "p2pchat-file-frames";

/** Features we list in HELLO / HELLO_OK ("ack" and "metrics" are what pyp2p peers list). */
export const OUR_FEATURES: readonly string[] = [
  "ack",
  "metrics",
  FEATURE_P2PCHAT,
  FEATURE_BATCH,
  FEATURE_NOISE,
  FEATURE_RECEIPTS,
  FEATURE_READ,
  FEATURE_FILES,
  FEATURE_FILE_FRAMES,
];

/** What a RECEIPT says of the messages it lists. */
export type ReceiptStatus = "delivered" | "read";

/** At most this many ids in one RECEIPT line (so it stays far under the line limit). */
export const MAX_RECEIPT_IDS = 128;

/** A peer protocol message as we understand it, tagged by `type`. */
export type PeerMessage =
  | { type: "HELLO"; peerId: string; version?: string; features: string[] }
  | { type: "HELLO_OK"; peerId?: string; version?: string; features: string[] }
  | { type: "HELLO_REJECT"; reason?: string }
  | { type: "PING"; msgId?: string }
  | { type: "PONG"; msgId?: string }
  | { type: "SEND"; msgId?: string; src?: string; dst?: string; payload: string }
  | { type: "ACK"; msgId?: string }
  /** `skipped`: ids neither text nor a number (a `msg_ids` that is no list counts as one). */
  | { type: "ACKS"; msgIds: string[]; skipped: number }
  | { type: "SENDS"; src?: string; dst?: string; msgs: SendsEntry[]; skipped: number }
  | { type: "PUB"; msgId?: string; src?: string; dst?: string; payload: string }
  /** `status` undefined: a status we do not know (ignored). */
  | { type: "RECEIPT"; status?: ReceiptStatus; msgIds: string[]; skipped: number }
  | { type: "BYE"; msgId?: string; reason?: string }
  | { type: "BYE_OK"; msgId?: string }
  /** A FILE_* line: `kind` is its type; the files layer reads `fields` (untrusted). */
  | { type: "FILE"; kind: string; fields: Record<string, unknown> };

/** The result of reading a decoded line: a message, a type we do not know, or a HELLO without `peer_id`. */
export type ReadResult =
  | { ok: true; message: PeerMessage }
  | { ok: false; reason: "unknown_type" | "bad_hello" };

/** Longest `peer_id` we accept: a 64-character name, "@", a 64-character namespace. */
export const MAX_PEER_ID_CHARS = 2 * MAX_NAME_CHARS + 1;

/**
 * A usable `peer_id`: a non-empty string no longer than two wire names and an "@", not a scope
 * (`*`, `#...`: those name broadcast and room conversations, which a peer must not enter), and
 * with no character `isSafeText` refuses (a NUL would make it another peer's id once stored).
 */
export function isPeerId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value !== "*" && value[0] !== "#" &&
    charLength(value) <= MAX_PEER_ID_CHARS && isSafeText(value);
}

/** Splits `name@namespace` at its last `@` (a pyp2p id without `@` has an empty namespace). */
export function splitPeerId(peerId: string): { name: string; namespace: string } {
  const at = peerId.lastIndexOf("@");
  if (at === -1) return { name: peerId, namespace: "" };
  return { name: peerId.slice(0, at), namespace: peerId.slice(at + 1) };
}

/** Reads a decoded line liberally (the `type` is already upper-cased by `decodeMessage`). */
export function readPeerMessage(wire: WireMessage): ReadResult {
  const f = wire.fields;
  const msgId = _msgId(f.msg_id);
  switch (wire.type) {
    case "HELLO": {
      if (!isPeerId(f.peer_id)) return { ok: false, reason: "bad_hello" };
      return {
        ok: true,
        message: {
          type: "HELLO",
          peerId: f.peer_id,
          version: _text(f.version),
          features: _features(f.features),
        },
      };
    }
    case "HELLO_OK":
      return {
        ok: true,
        message: {
          type: "HELLO_OK",
          peerId: typeof f.peer_id === "string" ? f.peer_id : undefined,
          version: _text(f.version),
          features: _features(f.features),
        },
      };
    case "HELLO_REJECT":
      return { ok: true, message: { type: "HELLO_REJECT", reason: _text(f.reason ?? f.message) } };
    case "PING":
    case "PONG":
    case "ACK":
    case "BYE_OK":
      return { ok: true, message: { type: wire.type, msgId } };
    case "SEND":
    case "PUB":
      return {
        ok: true,
        message: {
          type: wire.type,
          msgId,
          src: _text(f.src),
          dst: _text(f.dst),
          payload: _payload(f.payload),
        },
      };
    case "ACKS":
      return { ok: true, message: { type: "ACKS", ..._ids(f.msg_ids) } };
    case "SENDS":
      return {
        ok: true,
        message: {
          type: "SENDS",
          src: _text(f.src),
          dst: _text(f.dst),
          ..._entries(f.msg_ids, f.payloads),
        },
      };
    case "RECEIPT": {
      const status = f.status === "delivered" || f.status === "read" ? f.status : undefined;
      return { ok: true, message: { type: "RECEIPT", status, ..._ids(f.msg_ids) } };
    }
    case "BYE":
      return { ok: true, message: { type: "BYE", msgId, reason: _text(f.reason) } };
    default:
      if (wire.type.startsWith("FILE_")) {
        return { ok: true, message: { type: "FILE", kind: wire.type, fields: f } };
      }
      return { ok: false, reason: "unknown_type" };
  }
}

// A msg_id the store can keep as it is: SQLite reads text up to a NUL, and stores a lone
// surrogate as U+FFFD, so two such ids would read back as one (an id that is not is no id).
function _msgId(value: unknown): string | undefined {
  const text = _text(value);
  return text !== undefined && !text.includes("\0") && text.isWellFormed() ? text : undefined;
}

// Numbers are accepted where text is expected (some clients send numeric msg_ids).
function _text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

// The ids of an ACKS: those neither text nor a number are skipped, and a `msg_ids` that is no
// list counts as one skipped.
function _ids(value: unknown): { msgIds: string[]; skipped: number } {
  if (!Array.isArray(value)) return { msgIds: [], skipped: 1 };
  const msgIds: string[] = [];
  let skipped = 0;
  for (const item of value) {
    const msgId = _text(item);
    if (msgId === undefined) skipped++;
    else msgIds.push(msgId);
  }
  return { msgIds, skipped };
}

// The messages of a SENDS, skipped as in `_ids`; a missing payload is empty.
function _entries(ids: unknown, payloads: unknown): { msgs: SendsEntry[]; skipped: number } {
  if (!Array.isArray(ids)) return { msgs: [], skipped: 1 };
  const texts = Array.isArray(payloads) ? payloads : [];
  const msgs: SendsEntry[] = [];
  let skipped = 0;
  for (let i = 0; i < ids.length; i++) {
    const msgId = _msgId(ids[i]);
    if (msgId === undefined) skipped++;
    else msgs.push({ msgId, payload: _payload(texts[i]) });
  }
  return { msgs, skipped };
}

function _features(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item) => typeof item === "string");
  // A single feature sent as a string, or "a,b": split rather than ignore.
  if (typeof value === "string") return value.split(",").map((s) => s.trim()).filter(Boolean);
  return [];
}

function _payload(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (isRecord(value) || Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

// Every ACK carries a timestamp, and under load many fall in the same millisecond: format
// each millisecond once.
let _formattedAt = NaN;
let _formatted = "";
function _isoTime(now: number): string {
  if (now !== _formattedAt) {
    _formatted = new Date(now).toISOString();
    _formattedAt = now;
  }
  return _formatted;
}

// The hot lines (SEND, ACK, PONG) are written as text: only the variable parts go through
// JSON.stringify, which gives them the same bytes as stringifying the whole object. A
// timestamp needs no escaping, so the ACK/PONG tail is formatted once per millisecond.
let _tailAt = NaN;
let _tail = "";
function _stampedTail(now: number): string {
  if (now !== _tailAt) {
    _tail = `,"timestamp":"${_isoTime(now)}","ttl":${MESSAGE_TTL}}\n`;
    _tailAt = now;
  }
  return _tail;
}

// The constant parts of the lines `sendLine` and `ackLine` write, around their plain fields.
const OWN_SEND = [
  '{"type":"SEND","msg_id":"',
  '","src":"',
  '","dst":"',
  '","payload":"',
  `","require_ack":true,"ttl":${MESSAGE_TTL}}`,
] as const;
const OWN_ACK = ['{"type":"ACK","msg_id":"', '","timestamp":"', `","ttl":${MESSAGE_TTL}}`] as const;

/**
 * A SEND or ACK in exactly the compact form our own peers write, read without JSON.parse, which
 * shortens every round trip between p2pchat peers; undefined for any other line (escaped
 * fields, other field orders or spacing, duplicate keys), which then takes the full decoder.
 */
export function readOwnLine(line: string): PeerMessage | undefined {
  const send = _readTemplate(line, OWN_SEND);
  if (send) {
    // Kept (stored, remembered as seen): copies, not slices of the read they came in.
    const [msgId, src, dst, payload] = send.map(_own);
    return { type: "SEND", msgId, src, dst, payload };
  }
  const ack = _readTemplate(line, OWN_ACK);
  return ack && { type: "ACK", msgId: ack[0] };
}

// The fields of `line` when it is parts[0] field parts[1] ... field parts[n], every field
// plain: then the first match of each part after a field is where that field ends, since a
// plain field holds no quote and every part begins with one.
function _readTemplate(line: string, parts: readonly string[]): string[] | undefined {
  const last = parts[parts.length - 1];
  if (!line.startsWith(parts[0]) || !line.endsWith(last)) return undefined;
  const end = line.length - last.length;
  const fields: string[] = [];
  let at = parts[0].length;
  for (let i = 1; i < parts.length; i++) {
    const next = i === parts.length - 1 ? end : line.indexOf(parts[i], at);
    if (next === -1 || next < at || next > end || !_plainText(line, at, next)) return undefined;
    fields.push(line.slice(at, next));
    at = next + parts[i].length;
  }
  return fields;
}

// A string of its own. V8 keeps a slice of 13 or more characters as a view of the string it
// was cut from: a 15-character payload would hold the whole decoded read (up to 64 KiB) in
// memory for as long as the message is kept. Flattening a joined string copies it.
function _own(slice: string): string {
  return ("\0" + slice).slice(1);
}

// True when text[from, to) needs no JSON unescaping: no quote, backslash or control character.
function _plainText(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22 || code === 0x5c || code < 0x20) return false;
  }
  return true;
}

/** Features usable on a connection: those both sides listed. */
export function negotiateFeatures(ours: readonly string[], theirs: readonly string[]): string[] {
  return ours.filter((feature) => theirs.includes(feature));
}

/** HELLO, sent by the dialling side. */
export function hello(peerId: string, features: readonly string[]) {
  return {
    type: "HELLO",
    peer_id: peerId,
    version: PROTOCOL_VERSION,
    features: [...features],
    ttl: MESSAGE_TTL,
  };
}

/** HELLO_OK, the accepting side's answer: the fields of HELLO. */
export function helloOk(peerId: string, features: readonly string[]) {
  return { ...hello(peerId, features), type: "HELLO_OK" };
}

/** HELLO_REJECT: refuses a handshake (duplicate connection, our own id, changed id). */
export function helloReject(peerId: string, reason: string) {
  return { type: "HELLO_REJECT", peer_id: peerId, reason, ttl: MESSAGE_TTL };
}

/** PING (keep-alive and RTT probe). */
export function ping(msgId: string, now: number) {
  return { type: "PING", msg_id: msgId, timestamp: _isoTime(now), ttl: MESSAGE_TTL };
}

/** PONG as a formatted line, echoing the PING's `msg_id` (the fields of `ping()`). */
export function pongLine(msgId: string, now: number): string {
  return `{"type":"PONG","msg_id":${JSON.stringify(msgId)}${_stampedTail(now)}`;
}

/** SEND: always `require_ack: true`, since some clients do not ACK without it. */
export function send(msgId: string, src: string, dst: string, payload: string) {
  return { type: "SEND", msg_id: msgId, src, dst, payload, require_ack: true, ttl: MESSAGE_TTL };
}

/** `send(...)` as a formatted line. */
export function sendLine(msgId: string, src: string, dst: string, payload: string): string {
  return `{"type":"SEND","msg_id":${JSON.stringify(msgId)},"src":${JSON.stringify(src)},"dst":${
    JSON.stringify(dst)
  },"payload":${JSON.stringify(payload)},"require_ack":true,"ttl":${MESSAGE_TTL}}\n`;
}

/** One direct message of a SENDS batch. */
export interface SendsEntry {
  msgId: string;
  payload: string;
}

/**
 * SENDS, the `p2pchat-batch` feature's batch of SENDs: `msg_ids[i]` and `payloads[i]` make one
 * message, answered as the SEND it stands for would be. Two flat lists, because JSON.stringify
 * writes a list of strings several times faster than a list of pairs (measured).
 */
export function sendsLine(src: string, dst: string, entries: readonly SendsEntry[]): string {
  const msgIds = JSON.stringify(entries.map((entry) => entry.msgId));
  const payloads = JSON.stringify(entries.map((entry) => entry.payload));
  return `{"type":"SENDS","src":${JSON.stringify(src)},"dst":${
    JSON.stringify(dst)
  },"msg_ids":${msgIds},"payloads":${payloads},"require_ack":true,"ttl":${MESSAGE_TTL}}\n`;
}

/** ACK, matched by `msg_id` only. */
export function ack(msgId: string, now: number) {
  return { type: "ACK", msg_id: msgId, timestamp: _isoTime(now), ttl: MESSAGE_TTL };
}

/** `ack(msgId, now)` as a formatted line. */
export function ackLine(msgId: string, now: number): string {
  return `{"type":"ACK","msg_id":${JSON.stringify(msgId)}${_stampedTail(now)}`;
}

/** ACKS, the `p2pchat-batch` feature's batch of ACKs: the `msg_id`s of several SENDs. */
export function acks(msgIds: readonly string[], now: number) {
  return { type: "ACKS", msg_ids: [...msgIds], timestamp: _isoTime(now), ttl: MESSAGE_TTL };
}

/** `acks(msgIds, now)` as a formatted line. */
export function acksLine(msgIds: readonly string[], now: number): string {
  return `{"type":"ACKS","msg_ids":${JSON.stringify(msgIds)}${_stampedTail(now)}`;
}

/** RECEIPT (the `p2pchat-receipts` feature) as a line: the listed messages were stored, or read. */
export function receiptLine(msgIds: readonly string[], status: ReceiptStatus): string {
  return `{"type":"RECEIPT","msg_ids":${
    JSON.stringify(msgIds)
  },"status":"${status}","ttl":${MESSAGE_TTL}}\n`;
}

/** PUB to `*` or `#namespace`; never ACKed. */
export function pub(msgId: string, src: string, dst: string, payload: string) {
  return { type: "PUB", msg_id: msgId, src, dst, payload, require_ack: false, ttl: MESSAGE_TTL };
}

/** BYE, sent before closing a connection. */
export function bye(msgId: string, src: string, dst: string, reason: string) {
  return { type: "BYE", msg_id: msgId, src, dst, reason, ttl: MESSAGE_TTL };
}

/** BYE_OK, echoing the BYE's `msg_id`. */
export function byeOk(msgId: string, src: string, dst: string) {
  return { type: "BYE_OK", msg_id: msgId, src, dst, ttl: MESSAGE_TTL };
}

/**
 * Why `text` cannot go out as one SEND or PUB line from `src` to `dst` (with a 36-character
 * msg_id, the line would pass 32768 bytes), or undefined when it fits.
 */
export function tooLongForLine(
  type: "SEND" | "PUB",
  src: string,
  dst: string,
  text: string,
): string | undefined {
  const fields = { type, msg_id: crypto.randomUUID(), src, dst, payload: text };
  const line = JSON.stringify({ ...fields, require_ack: type === "SEND", ttl: MESSAGE_TTL });
  const bytes = new TextEncoder().encode(line).length;
  if (bytes <= MAX_LINE_BYTES) return undefined;
  return `Text of ${
    charLength(text)
  } characters makes a ${bytes}-byte line; the limit is ${MAX_LINE_BYTES}`;
}
