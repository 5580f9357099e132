/**
 * The I/O edge of a Noise secure channel (lib/noise): runs the handshake over a connection that
 * has finished its plaintext negotiation, then offers a `Conn` whose bytes travel in encrypted
 * frames. Peer links and tracker sessions share it; the handshake logic itself stays pure.
 */
import { concatBytes } from "./bytes.ts";
import {
  createSecureChannel,
  NoiseError,
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
  const early: Uint8Array[] = [];
  const feed = async (chunk: Uint8Array): Promise<RemoteIdentity | undefined> => {
    const result = channel.push(chunk);
    if (result.write.length > 0) await raw.write(concatBytes(result.write));
    // The peer may send its first data right behind the last handshake message.
    early.push(...result.plaintext);
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

/** A `Conn` whose writes are encrypted into frames and whose reads are decrypted frames. */
export class SecureConn implements Conn {
  readonly #raw: Conn;
  readonly #reader: AsyncIterator<Uint8Array>;
  readonly #channel: SecureChannel;
  #early: Uint8Array[];

  constructor(
    raw: Conn,
    reader: AsyncIterator<Uint8Array>,
    channel: SecureChannel,
    early: Uint8Array[],
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
    let early: Uint8Array[] | undefined = this.#early;
    this.#early = [];
    return breakableIterable<Uint8Array>(async (finished) => {
      let plaintext = early ?? [];
      early = undefined;
      while (plaintext.length === 0) {
        const read = finished() ? undefined : await this.#reader.next();
        if (!read || read.done) return { done: true, value: undefined };
        plaintext = this.#channel.push(read.value).plaintext;
      }
      return { done: false, value: plaintext.length === 1 ? plaintext[0] : concatBytes(plaintext) };
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    const frames = this.#channel.encrypt(bytes);
    return this.#raw.write(frames.length === 1 ? frames[0] : concatBytes(frames));
  }

  close(): void {
    this.#raw.close();
  }
}
