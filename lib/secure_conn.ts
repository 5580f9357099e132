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
  const early: _Item[] = [];
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

// What a read decrypted, in order: stream bytes, or a record.
type _Item = Uint8Array | { record: Uint8Array };

/**
 * A `Conn` whose writes are encrypted into frames and whose reads are decrypted frames. With
 * records agreed, records go out with `writeRecord` and come in through `onRecord`.
 */
export class SecureConn implements Conn {
  /**
   * Called with each record, in order with the stream: a record is handed over only once the
   * bytes before it were taken from `chunks()` and the reader asked for more.
   */
  onRecord?: (body: Uint8Array) => void;
  readonly #raw: Conn;
  readonly #reader: AsyncIterator<Uint8Array>;
  readonly #channel: SecureChannel;
  #early: _Item[];

  constructor(
    raw: Conn,
    reader: AsyncIterator<Uint8Array>,
    channel: SecureChannel,
    early: _Item[],
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
   * Decrypted data, one chunk for each read (however many frames it held), so the reader handles
   * a read's lines at once, as in clear: one flush and one write of replies for all of them. A
   * frame that fails authentication throws its NoiseError and ends it.
   */
  chunks(): AsyncIterable<Uint8Array> {
    let items = this.#early;
    this.#early = [];
    return breakableIterable<Uint8Array>(async (finished) => {
      for (;;) {
        // Records first, up to the next stream bytes; those go out together.
        let at = 0;
        while (at < items.length && !(items[at] instanceof Uint8Array)) {
          this.onRecord?.((items[at++] as { record: Uint8Array }).record);
        }
        let end = at;
        while (end < items.length && items[end] instanceof Uint8Array) end++;
        // Without records (the common case) a read is all stream bytes: no copy of the list.
        const whole = at === 0 && end === items.length;
        const text = (whole ? items : items.slice(at, end)) as Uint8Array[];
        items = whole ? [] : items.slice(end);
        if (text.length > 0) {
          return { done: false, value: text.length === 1 ? text[0] : concatBytes(text) };
        }
        const read = finished() ? undefined : await this.#reader.next();
        if (!read || read.done) return { done: true, value: undefined };
        items = _items(this.#channel.push(read.value));
      }
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    const frames = this.#channel.encrypt(bytes);
    return this.#raw.write(frames.length === 1 ? frames[0] : concatBytes(frames));
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
function _items(result: PushResult): _Item[] {
  if (result.records.length === 0) return result.plaintext;
  const items: _Item[] = [];
  let next = 0;
  for (const { after, body } of result.records) {
    while (next < after) items.push(result.plaintext[next++]);
    items.push({ record: body });
  }
  while (next < result.plaintext.length) items.push(result.plaintext[next++]);
  return items;
}
