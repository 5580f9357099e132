/**
 * Newline framing over byte streams, free of I/O: the caller pushes chunks as they arrive
 * and gets back the complete lines. A line is bounded by MAX_LINE_BYTES without ever
 * buffering more than that, whatever the peer sends.
 */
import { MAX_LINE_BYTES } from "./constants.ts";

/** One result of `LineDecoder.push()`: a complete line, or the error that ended the stream. */
export type Frame =
  | { kind: "line"; text: string }
  | { kind: "error"; code: "line_too_long"; limit: number };

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one message as compact JSON on a single line ending in `\n`. */
export function encodeLine(message: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/** Splits a byte stream into lines; after a `line_too_long` error it emits nothing more. */
export class LineDecoder {
  #pending: Uint8Array = new Uint8Array(0);
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
    let newline = chunk.indexOf(NEWLINE, start);
    while (newline !== -1) {
      const length = this.#pending.length + newline - start;
      if (length > this.limit + (this.#endsWithCarriageReturn(chunk, start, newline) ? 1 : 0)) {
        return this.#fail(frames);
      }
      let bytes = chunk.subarray(start, newline);
      if (this.#pending.length > 0) {
        bytes = _concat(this.#pending, bytes);
        this.#pending = new Uint8Array(0);
      }
      frames.push({ kind: "line", text: decoder.decode(_trimCarriageReturn(bytes)) });
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      // A trailing "\r" may still belong to a "\r\n" ending, so allow it one extra byte.
      if (this.#pending.length + chunk.length - start > this.limit + 1) return this.#fail(frames);
      this.#pending = _concat(this.#pending, chunk.subarray(start));
    }
    return frames;
  }

  #endsWithCarriageReturn(chunk: Uint8Array, start: number, newline: number): boolean {
    if (newline > start) return chunk[newline - 1] === CARRIAGE_RETURN;
    return this.#pending.length > 0 && this.#pending[this.#pending.length - 1] === CARRIAGE_RETURN;
  }

  #fail(frames: Frame[]): Frame[] {
    this.#failed = true;
    this.#pending = new Uint8Array(0);
    frames.push({ kind: "error", code: "line_too_long", limit: this.limit });
    return frames;
  }
}

function _trimCarriageReturn(bytes: Uint8Array): Uint8Array {
  return bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN
    ? bytes.subarray(0, bytes.length - 1)
    : bytes;
}

function _concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
