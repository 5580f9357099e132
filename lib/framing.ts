/**
 * Newline framing over byte streams, free of I/O: the caller pushes chunks as they arrive
 * and gets back the complete lines. A line is bounded by MAX_LINE_BYTES without ever
 * buffering more than that, whatever the peer sends.
 */
import { MAX_LINE_BYTES } from "./constants.ts";
import { concatBytes } from "./bytes.ts";

/** One result of `LineDecoder.push()`: a complete line, or the error that ended the stream. */
export type Frame =
  | { kind: "line"; text: string }
  | { kind: "error"; code: "line_too_long"; limit: number };

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const BYTE_ORDER_MARK = 0xfeff;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Formats one message as compact JSON on a single line ending in `\n`, still as text. */
export function formatLine(message: unknown): string {
  return JSON.stringify(message) + "\n";
}

/** Encodes one message as compact JSON on a single line ending in `\n`. */
export function encodeLine(message: unknown): Uint8Array {
  return encoder.encode(formatLine(message));
}

/** Encodes formatted lines into one buffer, so a batch costs one encoder call. */
export function encodeLines(lines: readonly string[]): Uint8Array {
  return encoder.encode(lines.length === 1 ? lines[0] : lines.join(""));
}

// Scratch space for measuring: `encodeInto` counts bytes several times faster than a scan in
// JavaScript or a regular expression (measured). Any line within the limit fits.
const MEASURE_SCRATCH = new Uint8Array(3 * MAX_LINE_BYTES);

/** The UTF-8 size of `text` as `TextEncoder` writes it (lone surrogates become 3 bytes). */
export function utf8Length(text: string): number {
  // A UTF-16 unit never takes more than 3 bytes, so a short text fits the scratch whole.
  if (text.length * 3 <= MEASURE_SCRATCH.length) {
    return encoder.encodeInto(text, MEASURE_SCRATCH).written;
  }
  return encoder.encode(text).length;
}

/** Splits a byte stream into lines; after a `line_too_long` error it emits nothing more. */
export class LineDecoder {
  #pending: Uint8Array = EMPTY;
  #failed = false;

  constructor(readonly limit: number = MAX_LINE_BYTES) {}

  /** True once a line went over the limit: the stream must be closed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes held for a line not yet complete (never more than `limit`). */
  get bufferedBytes(): number {
    return this.#pending.length;
  }

  /** Feeds a chunk; returns every line it completes, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#failed) return [];
    const frames: Frame[] = [];
    let start = 0;
    let newline = chunk.indexOf(NEWLINE);
    if (newline !== -1 && this.#pending.length > 0) {
      // The end of a line begun in earlier chunks.
      if (this.#tooLong(chunk, 0, newline)) return this.#fail(frames);
      const bytes = concatBytes([this.#pending, chunk.subarray(0, newline)]);
      this.#pending = EMPTY;
      frames.push({ kind: "line", text: _trimCarriageReturn(decoder.decode(bytes)) });
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    // Lines wholly inside the chunk are checked one by one, then decoded in one call: a
    // newline byte never occurs inside a multi-byte UTF-8 sequence, so splitting the text on
    // "\n" gives the same lines as decoding each.
    const first = start;
    while (newline !== -1) {
      if (this.#tooLong(chunk, start, newline)) {
        _decodeLines(chunk, first, start, frames);
        return this.#fail(frames);
      }
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    _decodeLines(chunk, first, start, frames);
    if (start < chunk.length) {
      // A trailing "\r" may still belong to a "\r\n" ending, so allow it one extra byte.
      if (this.#pending.length + chunk.length - start > this.limit + 1) return this.#fail(frames);
      this.#pending = concatBytes([this.#pending, chunk.subarray(start)]);
    }
    return frames;
  }

  /**
   * Ends the stream: returns the last line when it had no newline, so a client that writes a
   * request and half-closes still gets an answer.
   */
  end(): Frame[] {
    if (this.#failed || this.#pending.length === 0) return [];
    const pending = this.#pending;
    this.#pending = EMPTY;
    const carriageReturn = pending[pending.length - 1] === CARRIAGE_RETURN ? 1 : 0;
    if (pending.length - carriageReturn > this.limit) return this.#fail([]);
    return [{ kind: "line", text: _trimCarriageReturn(decoder.decode(pending)) }];
  }

  // The line ending at `newline` (with what is pending) is over the limit, its "\r" aside.
  #tooLong(chunk: Uint8Array, start: number, newline: number): boolean {
    const length = this.#pending.length + newline - start;
    return length > this.limit + (this.#endsWithCarriageReturn(chunk, start, newline) ? 1 : 0);
  }

  #endsWithCarriageReturn(chunk: Uint8Array, start: number, newline: number): boolean {
    if (newline > start) return chunk[newline - 1] === CARRIAGE_RETURN;
    return this.#pending.length > 0 && this.#pending[this.#pending.length - 1] === CARRIAGE_RETURN;
  }

  #fail(frames: Frame[]): Frame[] {
    this.#failed = true;
    this.#pending = EMPTY;
    frames.push({ kind: "error", code: "line_too_long", limit: this.limit });
    return frames;
  }
}

// Decodes the complete lines in chunk[from, to) (`to` is just past a newline) as frames.
function _decodeLines(chunk: Uint8Array, from: number, to: number, frames: Frame[]): void {
  if (to <= from) return;
  const text = decoder.decode(chunk.subarray(from, to - 1));
  let start = 0;
  for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
    frames.push({ kind: "line", text: _trimCarriageReturn(text.slice(start, end)) });
    start = end + 1;
    // The decoder drops a byte order mark only at the start of its input; lines decoded
    // one by one each lost theirs, so drop it from every line alike.
    if (text.charCodeAt(start) === BYTE_ORDER_MARK) start++;
  }
  frames.push({ kind: "line", text: _trimCarriageReturn(text.slice(start)) });
}

function _trimCarriageReturn(text: string): string {
  return text.charCodeAt(text.length - 1) === CARRIAGE_RETURN ? text.slice(0, -1) : text;
}
