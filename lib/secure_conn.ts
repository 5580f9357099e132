/**
 * The I/O edge of a Noise secure channel (lib/noise): runs the handshake over a connection that
 * has finished its plaintext negotiation, then offers a `Conn` whose bytes travel in encrypted
 * frames, and (when agreed) records beside them. Peer links and tracker sessions share it; the
 * handshake logic itself stays pure.
 */
import { concatBytes } from "./bytes.ts";
import {
  createSecureChannel,
  NoiseError,
  type PushResult,
  type RemoteIdentity,
  type SecureChannel,
  type SecureChannelOptions,
} from "./noise/mod.ts";
import { type Address, breakableIterable, type Conn } from "./transport.ts";

/** What `upgradeConn` needs beyond the channel options. */
export interface UpgradeOptions extends SecureChannelOptions {
  /** Bytes read past the last plaintext line: the start of the first handshake message. */
  leftover?: Uint8Array;
}

/** An established channel: the plaintext connection and who is at the other end. */
export interface SecureUpgrade {
  conn: SecureConn;
  remote: RemoteIdentity;
}

/**
 * Runs the handshake over `raw`, reading through `reader` (the one iterator of `raw.chunks()`,
 * which the secure connection goes on reading). Throws a NoiseError when the handshake fails or
 * the stream ends first; the caller closes `raw` then (and bounds the wait with its own timer).
 */
export async function upgradeConn(
  raw: Conn,
  reader: AsyncIterator<Uint8Array>,
  options: UpgradeOptions,
): Promise<SecureUpgrade> {
  const channel = createSecureChannel(options);
  const early: SecureItem[] = [];
  const feed = async (chunk: Uint8Array): Promise<RemoteIdentity | undefined> => {
    const result = channel.push(chunk);
    if (result.write.length > 0) await raw.write(concatBytes(result.write));
    // The peer may send its first data right behind the last handshake message.
    early.push(..._items(result));
    return result.established;
  };
  const first = channel.start();
  if (first.length > 0) await raw.write(concatBytes(first));
  let remote = options.leftover?.length ? await feed(options.leftover) : undefined;
  while (!remote) {
    const next = await reader.next();
    if (next.done) throw new NoiseError("closed", "The connection ended during the handshake");
    remote = await feed(next.value);
  }
  return { conn: new SecureConn(raw, reader, channel, early), remote };
}

const encoder = new TextEncoder();
// Text is encoded here just before it is encrypted (synchronously, so one scratch serves every
// connection): a new array per write costs about a microsecond. A UTF-16 unit takes at most 3
// bytes, so a text of up to a third of the scratch always fits.
const TEXT_SCRATCH = new Uint8Array(64 * 1024);
const SCRATCH_TEXT_UNITS = TEXT_SCRATCH.length / 3;

/** What a read decrypted, in order: stream bytes, or a record. */
export type SecureItem = Uint8Array | { record: Uint8Array };

/**
 * A `Conn` whose writes are encrypted into frames and whose reads are decrypted frames. With
 * records agreed, records go out with `writeRecord`, and come in beside the stream bytes to a
 * reader that decrypts each read with `open()`.
 */
export class SecureConn implements Conn {
  readonly #raw: Conn;
  readonly #reader: AsyncIterator<Uint8Array>;
  readonly #channel: SecureChannel;
  #early: SecureItem[];

  constructor(
    raw: Conn,
    reader: AsyncIterator<Uint8Array>,
    channel: SecureChannel,
    early: SecureItem[],
  ) {
    this.#raw = raw;
    this.#reader = reader;
    this.#channel = channel;
    this.#early = early;
  }

  get remote(): Address {
    return this.#raw.remote;
  }
  get local(): Address {
    return this.#raw.local;
  }
  get closed(): boolean {
    return this.#raw.closed;
  }

  /**
   * What the handshake's last read held past it (the peer may send right behind it), once:
   * a reader that uses `open()` handles these first.
   */
  takeEarly(): SecureItem[] {
    const early = this.#early;
    this.#early = [];
    return early;
  }

  /**
   * Decrypts one chunk read from the reader `upgradeConn` was given: its stream bytes and
   * records, in order. Stream bytes may be views of `chunk`: take them before the next read.
   * Throws the NoiseError of a frame that fails authentication (nothing of its read is given
   * out). For the hot path of a peer link: decrypting where the read lands saves the
   * asynchronous step per read that `chunks()` adds.
   */
  open(chunk: Uint8Array): SecureItem[] {
    return _items(this.#channel.push(chunk));
  }

  /**
   * Decrypted data, one chunk for each read (however many frames it held), so the reader handles
   * a read's lines at once, as in clear: one flush and one write of replies for all of them. A
   * frame that fails authentication throws its NoiseError and ends it. For channels without
   * records: a record ends it with `bad_record` (records are read with `open()`).
   */
  chunks(): AsyncIterable<Uint8Array> {
    let items = this.takeEarly();
    return breakableIterable<Uint8Array>(async (finished) => {
      while (items.length === 0) {
        const read = finished() ? undefined : await this.#reader.next();
        if (!read || read.done) return { done: true, value: undefined };
        items = this.open(read.value);
      }
      const text = items;
      items = [];
      if (!text.every((item) => item instanceof Uint8Array)) {
        throw new NoiseError("bad_record", "A record on a stream read without records");
      }
      return { done: false, value: concatBytes(text) };
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    try {
      const frames = this.#channel.encrypt(bytes);
      return this.#raw.write(frames.length === 1 ? frames[0] : concatBytes(frames));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes `text` as UTF-8; answers its size in bytes and the write. A text that surely fits is
   * encoded into scratch memory, which the encryption copies out at once: no array for it.
   */
  writeText(text: string): { bytes: number; written: Promise<void> } {
    const encoded = text.length <= SCRATCH_TEXT_UNITS
      ? TEXT_SCRATCH.subarray(0, encoder.encodeInto(text, TEXT_SCRATCH).written)
      : encoder.encode(text);
    const written = this.write(encoded);
    // The plaintext is sealed by now: it does not stay in memory kept for the process's life.
    if (encoded.buffer === TEXT_SCRATCH.buffer) encoded.fill(0);
    return { bytes: encoded.length, written };
  }

  /** Writes one record as one frame. */
  writeRecord(body: Uint8Array): Promise<void> {
    return this.#raw.write(this.#channel.encryptRecord(body));
  }

  close(): void {
    this.#raw.close();
  }
}

// A push's stream bytes and records in the order they arrived.
function _items(result: PushResult): SecureItem[] {
  if (result.records.length === 0) return result.plaintext;
  const items: SecureItem[] = [];
  let next = 0;
  for (const { after, body } of result.records) {
    while (next < after) items.push(result.plaintext[next++]);
    items.push({ record: body });
  }
  while (next < result.plaintext.length) items.push(result.plaintext[next++]);
  return items;
}
