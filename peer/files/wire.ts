/**
 * The FILE_* lines (docs/peer-protocol.md, "Files"), free of I/O: builders for what we send
 * and a strict reader for what a peer sends. Everything read is untrusted: a line that does
 * not fit is `undefined` and the caller ignores or refuses it.
 */
import { bytesFromBase64 } from "../../lib/bytes.ts";
import { MAX_RECORD_BYTES } from "../../lib/noise/mod.ts";
import { charLength } from "../../lib/codec.ts";

/** Raw bytes in one FILE_CHUNK: in base64 with its fields, the line stays under 32768 bytes. */
export const CHUNK_BYTES = 22 * 1024;
/** Bytes of a file data record before its data: the transfer id, then the offset. */
export const RECORD_HEADER_BYTES = 16 + 8;
/** File bytes we put in one record (a Noise message holds up to 65,518 bytes of record). */
export const RECORD_DATA_BYTES = 60 * 1024;
/** The most file bytes a record can hold, and so a chunk of either form. */
export const MAX_CHUNK_BYTES = MAX_RECORD_BYTES - RECORD_HEADER_BYTES;
/** Longest offered name we read, in characters (it is made safe and shortened on disk). */
export const MAX_OFFERED_NAME_CHARS = 1024;
/** Largest file a peer may offer (the receiver's own cap may be lower). */
export const MAX_FILE_BYTES = 2 ** 50;

/** What a peer can send us about a transfer. */
export type FileMessage =
  | { kind: "FILE_OFFER"; id: string; name: string; size: number; sha256: string }
  | { kind: "FILE_ACCEPT"; id: string; offset: number }
  | { kind: "FILE_DECLINE"; id: string; reason: string }
  | { kind: "FILE_CHUNK"; id: string; offset: number; data: Uint8Array }
  | { kind: "FILE_ACK"; id: string; offset: number }
  | { kind: "FILE_DONE"; id: string; ok: boolean; reason: string }
  | { kind: "FILE_CANCEL"; id: string; reason: string };

const _ID = /^[0-9a-f]{32}$/;
const _SHA256 = /^[0-9a-f]{64}$/;
const _REASON = /^[a-z_]{1,32}$/;

/** Reads one FILE_* line; undefined when a field is missing or out of bounds. */
export function readFileMessage(
  kind: string,
  f: Record<string, unknown>,
): FileMessage | undefined {
  const id = f.transfer_id;
  if (typeof id !== "string" || !_ID.test(id)) return undefined;
  switch (kind) {
    case "FILE_OFFER": {
      const { name, size, sha256 } = f;
      if (typeof name !== "string" || name === "") return undefined;
      if (charLength(name) > MAX_OFFERED_NAME_CHARS) return undefined;
      if (!_size(size) || typeof sha256 !== "string" || !_SHA256.test(sha256)) return undefined;
      return { kind, id, name, size, sha256 };
    }
    case "FILE_ACCEPT":
    case "FILE_ACK":
      return _size(f.offset) ? { kind, id, offset: f.offset } : undefined;
    case "FILE_CHUNK": {
      const data = typeof f.data === "string" && f.data.length <= _base64Length(CHUNK_BYTES)
        ? bytesFromBase64(f.data)
        : undefined;
      if (!_size(f.offset) || !data || data.length === 0) return undefined;
      return { kind, id, offset: f.offset, data };
    }
    case "FILE_DONE":
      return typeof f.ok === "boolean"
        ? { kind, id, ok: f.ok, reason: _reason(f.reason) }
        : undefined;
    case "FILE_DECLINE":
    case "FILE_CANCEL":
      return { kind, id, reason: _reason(f.reason) };
    default:
      return undefined;
  }
}

/** A FILE_* line's fields, as `FileChannel.send` takes them. */
export function fileLine(message: FileMessage): Record<string, unknown> {
  const base = { type: message.kind, transfer_id: message.id };
  switch (message.kind) {
    case "FILE_OFFER":
      return { ...base, name: message.name, size: message.size, sha256: message.sha256 };
    case "FILE_ACCEPT":
    case "FILE_ACK":
      return { ...base, offset: message.offset };
    case "FILE_CHUNK":
      return { ...base, offset: message.offset, data: message.data.toBase64() };
    case "FILE_DONE":
      return { ...base, ok: message.ok, reason: message.reason };
    case "FILE_DECLINE":
    case "FILE_CANCEL":
      return { ...base, reason: message.reason };
  }
}

/** A new transfer id: 16 random bytes in hex. */
export function newTransferId(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toHex();
}

function _size(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 &&
    (value as number) <= MAX_FILE_BYTES;
}

// A reason is a short code; anything else reads as "unspecified" (never shown raw).
function _reason(value: unknown): string {
  return typeof value === "string" && _REASON.test(value) ? value : "unspecified";
}

function _base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/**
 * A file data record (the `p2pchat-file-frames` feature): the transfer id as 16 bytes, the
 * offset as 8 bytes big-endian, then the data (copied: `data` may be a view of a buffer reused).
 */
export function fileRecord(id: string, offset: number, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(RECORD_HEADER_BYTES + data.length);
  body.set(Uint8Array.fromHex(id));
  const view = new DataView(body.buffer);
  view.setUint32(16, Math.floor(offset / 2 ** 32));
  view.setUint32(20, offset >>> 0);
  body.set(data, RECORD_HEADER_BYTES);
  return body;
}

/** Reads a record as the FILE_CHUNK it stands for; undefined when it does not fit. */
export function readFileRecord(
  body: Uint8Array,
): Extract<FileMessage, { kind: "FILE_CHUNK" }> | undefined {
  if (body.length <= RECORD_HEADER_BYTES) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const offset = view.getUint32(16) * 2 ** 32 + view.getUint32(20);
  if (!_size(offset)) return undefined;
  return {
    kind: "FILE_CHUNK",
    id: body.subarray(0, 16).toHex(),
    offset,
    data: body.subarray(RECORD_HEADER_BYTES),
  };
}
