/**
 * The I/O edge of a connection: reads a `Conn`, frames lines, and feeds them to the connection.
 * When HELLO/HELLO_OK chose the Noise feature it runs the handshake (lib/secure_conn.ts) and
 * from then on reads and writes through the encrypted channel.
 */
import { type Frame, LineDecoder } from "../../lib/framing.ts";
import type { Logger } from "../../lib/log.ts";
import type { Identity, KeyPair } from "../../lib/noise/mod.ts";
import { NoiseError } from "../../lib/noise/mod.ts";
import { type SecureConn, upgradeConn } from "../../lib/secure_conn.ts";
import type { TokenBucket } from "../../lib/token_bucket.ts";
import type { Conn } from "../../lib/transport.ts";
import type { ConnectionIo, PeerConnection, TextWrite } from "../protocol/mod.ts";

/** Our keys for encrypted connections: the Ed25519 identity and this run's X25519 static key. */
export interface LinkSecurity {
  identity: Identity;
  staticKeyPair: KeyPair;
}

const encoder = new TextEncoder();

/** Where a connection writes: the TCP connection, then its secure channel once established. */
export class LinkIo implements ConnectionIo {
  readonly #target: Conn;
  #secure?: SecureConn;

  constructor(conn: Conn) {
    this.#target = conn;
  }

  writeText(text: string): TextWrite {
    if (this.#secure) return this.#secure.writeText(text);
    const bytes = encoder.encode(text);
    return { bytes: bytes.length, written: this.#target.write(bytes) };
  }

  writeRecord(record: Uint8Array): Promise<void> {
    try {
      if (!this.#secure) throw new Error("records need an encrypted channel");
      return this.#secure.writeRecord(record);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  close(): void {
    this.#target.close();
  }

  /** From now on every write goes through the secure channel `conn`. */
  switchTo(conn: SecureConn): void {
    this.#secure = conn;
  }
}

const NEWLINE = 0x0a;
// Past this much unread output toward a throttled peer, its input is not read until it reads.
const READ_PAUSE_BYTES = 64 * 1024;
const READ_PAUSE_CHECK_MS = 20;

/** How a link reads: its security, and the fair share of a peer nobody listed. */
export interface LinkOptions {
  log: Logger;
  security?: LinkSecurity;
  /**
   * True while the peer is one nobody listed (made up, or not discovered yet). While it lets
   * output pile up its input waits (TCP then slows it down instead of this side queueing
   * without end), and its lines take tokens from `lines`, the bucket all such peers share, so
   * a flood costs a bounded share of the CPU. Only inbound strangers are throttled, so two of
   * our peers never both wait on each other.
   */
  throttled?: () => boolean;
  lines?: TokenBucket;
}

/** Reads `conn` until it ends or the connection closes; always closes both at the end. */
export async function runLink(
  conn: Conn,
  connection: PeerConnection,
  io: LinkIo,
  options: LinkOptions,
): Promise<void> {
  const { log, security } = options;
  const reader = conn.chunks()[Symbol.asyncIterator]();
  const pace = new _Pace(connection, options);
  try {
    const leftover = await _readInClear(reader, connection, pace);
    const request = connection.secureRequest;
    if (leftover === undefined || !request) return;
    if (!security) return connection.close("handshake_failed", "no identity key");
    const { conn: secure, remote } = await upgradeConn(conn, reader, {
      ...request,
      ...security,
      localId: connection.localPeerId,
      leftover,
    });
    io.switchTo(secure);
    connection.secured(remote);
    connection.flush();
    const decoder = new LineDecoder();
    // Each read is decrypted here, where it lands: a second iterator over the first would
    // add an asynchronous step to every read (measured: about 1 µs a read).
    let items = secure.takeEarly();
    for (;;) {
      for (const item of items) {
        if (item instanceof Uint8Array) {
          const paced = pace.deliver(decoder.push(item));
          if (paced) await paced;
        } else {
          connection.receivedRecord(item.record);
        }
      }
      connection.flush();
      const paused = pace.pause();
      if (paused) await paused;
      if (connection.state === "closed") break;
      const next = await reader.next();
      if (next.done) break;
      items = secure.open(next.value);
    }
  } catch (error) {
    // A read error ends the connection like an EOF does; a Noise error is the peer's fault.
    if (error instanceof NoiseError) {
      const reason = connection.remoteIdentity ? "decrypt_failed" : "handshake_failed";
      // A peer that hangs up mid-handshake is no attack: the second of two connections dialled
      // at once ends so every time, and a warning would say otherwise.
      const level = error.code === "closed" ? "debug" : "warn";
      log[level]("Closing an encrypted connection", {
        peer: connection.peerId,
        reason,
        code: error.code,
      });
      connection.close(reason, error.code);
    }
  } finally {
    conn.close();
    connection.ended();
  }
}

/**
 * Lines in clear until the stream ends (undefined) or a line asks for the Noise handshake:
 * then the bytes read past that line, which belong to the handshake. During the handshake a
 * chunk is fed one line at a time, so nothing after the switch is read as text.
 */
async function _readInClear(
  reader: AsyncIterator<Uint8Array>,
  connection: PeerConnection,
  pace: _Pace,
): Promise<Uint8Array | undefined> {
  const decoder = new LineDecoder();
  for (;;) {
    const next = await reader.next();
    if (next.done) return undefined;
    let chunk = next.value;
    while (chunk.length > 0 && connection.state === "handshake" && !connection.secureRequest) {
      const newline = chunk.indexOf(NEWLINE);
      const end = newline === -1 ? chunk.length : newline + 1;
      const paced = pace.deliver(decoder.push(chunk.subarray(0, end)));
      if (paced) await paced;
      chunk = chunk.subarray(end);
    }
    // A copy: the reader reuses its buffer for the next chunk.
    if (connection.secureRequest) return chunk.slice();
    const paced = chunk.length > 0 ? pace.deliver(decoder.push(chunk)) : undefined;
    if (paced) await paced;
    connection.flush();
    const paused = pace.pause();
    if (paused) await paused;
    if (connection.state === "closed") return undefined;
  }
}

/**
 * Feeds lines to the connection, at the pace a throttled peer is allowed. Its methods answer a
 * promise only when there is something to wait for: an await per read costs the hot path.
 */
class _Pace {
  constructor(readonly connection: PeerConnection, readonly options: LinkOptions) {}

  /** Feeds `frames`; a promise only when the peer is throttled (the common case stays sync). */
  deliver(frames: Frame[]): Promise<void> | undefined {
    const lines = this.options.lines;
    if (lines !== undefined && this.#throttled()) return this.#deliverPaced(frames, lines);
    for (const frame of frames) this.#receive(frame);
  }

  /** A throttled peer that does not read its output is not read either: a promise then. */
  pause(): Promise<void> | undefined {
    if (this.#mustPause()) return this.#pauseWhile();
  }

  async #deliverPaced(frames: Frame[], lines: TokenBucket): Promise<void> {
    for (const frame of frames) {
      await this.#lineTurn(lines);
      this.#receive(frame);
    }
  }

  async #pauseWhile(): Promise<void> {
    while (this.#mustPause()) {
      await new Promise((resolve) => setTimeout(resolve, READ_PAUSE_CHECK_MS));
    }
  }

  #mustPause(): boolean {
    const connection = this.connection;
    return connection.state !== "closed" && connection.queuedBytes > READ_PAUSE_BYTES &&
      this.#throttled();
  }

  #receive(frame: Frame): void {
    if (frame.kind === "line") this.connection.receiveLine(frame.text);
    else this.connection.receiveTooLong();
  }

  #throttled(): boolean {
    return this.options.throttled?.() ?? false;
  }

  // Waits until a throttled peer may have one more line handled; what is queued goes out first.
  async #lineTurn(lines: TokenBucket): Promise<void> {
    for (;;) {
      const waitMs = lines.take(Date.now());
      if (waitMs === 0 || this.connection.state === "closed") return;
      this.connection.flush();
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
