/**
 * Frames for Noise messages on a byte stream, free of I/O: a 2-byte big-endian length, then
 * that many bytes (as libp2p noise frames them). A zero length is refused (`empty_frame`):
 * no Noise message is empty (a handshake message starts with a key, a transport message
 * carries at least its 16-byte tag), so an empty frame is a broken or hostile sender.
 */
import { FRAME_HEADER_BYTES, MAX_MESSAGE_BYTES } from "./constants.ts";
import { NoiseError } from "./errors.ts";

/** One frame: its length in 2 bytes big-endian, then the message. */
export function encodeFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + message.length);
  frame.set(message, FRAME_HEADER_BYTES);
  return frameInPlace(frame);
}

/**
 * Makes `frame` a frame by writing its header into the first 2 bytes (a message encrypted with
 * that headroom), so a large message is not copied to gain its header. Returns `frame`.
 */
export function frameInPlace(frame: Uint8Array): Uint8Array {
  const length = frame.length - FRAME_HEADER_BYTES;
  if (length > MAX_MESSAGE_BYTES) {
    throw new NoiseError("frame_too_long", `Frame body of ${length} bytes`);
  }
  if (length <= 0) throw new NoiseError("empty_frame", "Frame body of 0 bytes");
  frame[0] = length >>> 8;
  frame[1] = length & 0xff;
  return frame;
}

/** From this length, a frame that spans reads is gathered in one of two buffers kept for reuse. */
const REUSED_BODY_BYTES = 16 * 1024;

/**
 * Splits a byte stream into frames. It holds at most one incomplete frame (`maxLength` bytes
 * and a header byte), and after an error it emits nothing more.
 */
export class FrameDecoder {
  readonly maxLength: number;
  #body: Uint8Array | undefined;
  // Large frames that span reads (a file's records) are gathered in these in turn, rather than
  // in a new buffer each: the garbage of one per frame made a receiver's memory grow. Two, as a
  // push can return one frame gathered in one while it starts the next frame in the other.
  // Dropped after a push with no large frame in it: only a stream of them keeps them.
  #reused: Uint8Array[] = [];
  #nextReused = 0;
  #filled = 0;
  // The first header byte when a chunk ended between the two.
  #headerByte = -1;
  #failed = false;

  constructor(maxLength: number = MAX_MESSAGE_BYTES) {
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > MAX_MESSAGE_BYTES) {
      throw new RangeError(`Frame limit ${maxLength} is not in 1..${MAX_MESSAGE_BYTES}`);
    }
    this.maxLength = maxLength;
  }

  /** True once a frame was refused: the stream must be closed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#filled + (this.#headerByte === -1 ? 0 : 1);
  }

  /**
   * Feeds a chunk; returns every frame it completes, in order, or throws `empty_frame` or
   * `frame_too_long` (and then the frames earlier in the chunk are dropped with the stream).
   * A frame wholly inside `chunk` is a view of it, and a frame that spanned chunks may be a view
   * of memory the decoder reuses: use the frames before reusing the chunk or pushing again.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) return [];
    const frames: Uint8Array[] = [];
    let large = this.#body !== undefined && this.#body.length >= REUSED_BODY_BYTES;
    let at = 0;
    while (at < chunk.length) {
      if (this.#body !== undefined) {
        const count = Math.min(this.#body.length - this.#filled, chunk.length - at);
        this.#body.set(chunk.subarray(at, at + count), this.#filled);
        this.#filled += count;
        at += count;
        if (this.#filled === this.#body.length) {
          frames.push(this.#body);
          this.#body = undefined;
          this.#filled = 0;
        }
        continue;
      }
      let length: number;
      if (this.#headerByte !== -1) {
        length = (this.#headerByte << 8) | chunk[at];
        this.#headerByte = -1;
        at += 1;
      } else if (chunk.length - at >= FRAME_HEADER_BYTES) {
        length = (chunk[at] << 8) | chunk[at + 1];
        at += FRAME_HEADER_BYTES;
      } else {
        this.#headerByte = chunk[at];
        break;
      }
      this.#check(length);
      if (length >= REUSED_BODY_BYTES) large = true;
      if (chunk.length - at >= length) {
        frames.push(chunk.subarray(at, at + length));
        at += length;
      } else {
        // At its final size from the header, so it is never copied again.
        this.#body = this.#bodyOf(length);
        this.#body.set(chunk.subarray(at));
        this.#filled = chunk.length - at;
        at = chunk.length;
      }
    }
    if (!large) this.#reused = [];
    return frames;
  }

  #bodyOf(length: number): Uint8Array {
    // Small frames (chat) get their own: an idle connection keeps no large buffers.
    if (length < REUSED_BODY_BYTES) return new Uint8Array(length);
    const index = this.#nextReused;
    this.#nextReused = 1 - index;
    this.#reused[index] ??= new Uint8Array(this.maxLength);
    return this.#reused[index].subarray(0, length);
  }

  #check(length: number): void {
    if (length !== 0 && length <= this.maxLength) return;
    this.#failed = true;
    this.#body = undefined;
    this.#filled = 0;
    if (length === 0) throw new NoiseError("empty_frame", "Frame of length 0");
    throw new NoiseError("frame_too_long", `Frame of ${length} bytes, over ${this.maxLength}`);
  }
}
