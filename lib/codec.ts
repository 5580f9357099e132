/**
 * JSON message codec shared by both protocols: turns a line into an object with an
 * upper-cased `type`, and converts loosely typed fields the way pyp2p peers send them.
 */
import { MAX_NAME_CHARS } from "./constants.ts";
import type { ErrorCode } from "./errors.ts";

/** A decoded message: the JSON object and its `type`, upper-cased as the reference does. */
export interface WireMessage {
  type: string;
  fields: Record<string, unknown>;
}

/** The result of decoding one line: a message, or a stable error code. */
export type DecodeResult =
  | { ok: true; message: WireMessage }
  | {
    ok: false;
    code: Extract<ErrorCode, "empty_line" | "invalid_json" | "not_an_object" | "missing_type">;
  };

/** Decodes one line (without its newline) into a message with a string `type`. */
export function decodeMessage(line: string): DecodeResult {
  if (line.trim() === "") return { ok: false, code: "empty_line" };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, code: "invalid_json" };
  }
  if (!isRecord(value)) return { ok: false, code: "not_an_object" };
  if (typeof value.type !== "string") return { ok: false, code: "missing_type" };
  return { ok: true, message: { type: value.type.toUpperCase(), fields: value } };
}

/** True for a plain JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const INTEGER_TEXT = /^\s*[+-]?\d+(_\d+)*\s*$/;

/**
 * Converts a field to an integer the way Python's `int()` does for JSON values:
 * integers and numeric strings (" 42 ", "+7", "1_000") convert, floats truncate,
 * booleans are 1/0; anything else (null, "4.5", "", objects) gives undefined.
 */
export function toInteger(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" && INTEGER_TEXT.test(value)) {
    // Python's int() has no size limit: a huge number still converts (and is then clamped or
    // rejected by range checks), so keep it as a large float rather than refusing it here.
    return Number(value.replaceAll("_", "").trim());
  }
  return undefined;
}

/** Length in characters (code points), as Python's `len()` counts a string. */
export function charLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/**
 * pyp2p rule for `name` and `namespace`: a non-empty string of at most 64 characters; and no
 * character that `isSafeText` refuses.
 */
export function isWireName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && charLength(value) <= MAX_NAME_CHARS &&
    isSafeText(value);
}

// Control characters, lone surrogates, line and paragraph separators, and the characters that
// show nothing (zero-width space, bidirectional controls, the soft hyphen ...) except the
// joiners and variation selectors that emoji and some scripts need.
const _UNSAFE =
  /[\p{Cc}\p{Cs}\u2028\u2029]|(?![\u200C\u200D\uFE00-\uFE0F\u{E0100}-\u{E01EF}])\p{Default_Ignorable_Code_Point}/u;

/**
 * False for text no name or id may hold: a control character (SQLite keeps text up to a NUL,
 * so two ids would be one once stored), a lone surrogate (stored as U+FFFD: the same), or a
 * character that shows nothing or reorders what follows (it makes one name read as another).
 */
export function isSafeText(text: string): boolean {
  return !_UNSAFE.test(text);
}

/** Ports convert to an integer in 1..65535, or undefined. */
export function toPort(value: unknown): number | undefined {
  const port = toInteger(value);
  return port !== undefined && port >= 1 && port <= 65535 ? port : undefined;
}
