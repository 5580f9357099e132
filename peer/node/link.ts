/**
 * The I/O edge of a connection: reads a `Conn`, frames lines, and feeds them to the connection.
 * When HELLO/HELLO_OK chose the Noise feature it runs the handshake (lib/secure_conn.ts) and
 * from then on reads and writes through the encrypted channel.
 */
import { type Frame, LineDecoder } from "../../lib/framing.ts";
import type { Logger } from "../../lib/log.ts";
import type { Identity, KeyPair } from "../../lib/noise/mod.ts";
import { NoiseError } from "../../lib/noise/mod.ts";
import { upgradeConn } from "../../lib/secure_conn.ts";
import type { Conn } from "../../lib/transport.ts";
import type { ConnectionIo, PeerConnection } from "../protocol/mod.ts";

/** Our keys for encrypted connections: the Ed25519 identity and this run's X25519 static key. */
export interface LinkSecurity {
  identity: Identity;
  staticKeyPair: KeyPair;
}

/** Where a connection writes: the TCP connection, then its secure channel once established. */
export class LinkIo implements ConnectionIo {
  #target: Conn;

  constructor(conn: Conn) {
    this.#target = conn;
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#target.write(bytes);
  }

  close(): void {
    this.#target.close();
  }

  /** From now on every write goes through `conn`. */
  switchTo(conn: Conn): void {
    this.#target = conn;
  }
}

const NEWLINE = 0x0a;

/** Reads `conn` until it ends or the connection closes; always closes both at the end. */
export async function runLink(
  conn: Conn,
  connection: PeerConnection,
  io: LinkIo,
  log: Logger,
  security?: LinkSecurity,
): Promise<void> {
  const reader = conn.chunks()[Symbol.asyncIterator]();
  try {
    const leftover = await _readInClear(reader, connection);
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
    for await (const chunk of secure.chunks()) {
      _deliver(decoder.push(chunk), connection);
      connection.flush();
      if (connection.state === "closed") break;
    }
  } catch (error) {
    // A read error ends the connection like an EOF does; a Noise error is the peer's fault.
    if (error instanceof NoiseError) {
      const reason = connection.remoteIdentity ? "decrypt_failed" : "handshake_failed";
      log.warn("Closing an encrypted connection", {
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
): Promise<Uint8Array | undefined> {
  const decoder = new LineDecoder();
  for (;;) {
    const next = await reader.next();
    if (next.done) return undefined;
    let chunk = next.value;
    while (chunk.length > 0 && connection.state === "handshake" && !connection.secureRequest) {
      const newline = chunk.indexOf(NEWLINE);
      const end = newline === -1 ? chunk.length : newline + 1;
      _deliver(decoder.push(chunk.subarray(0, end)), connection);
      chunk = chunk.subarray(end);
    }
    // A copy: the reader reuses its buffer for the next chunk.
    if (connection.secureRequest) return chunk.slice();
    if (chunk.length > 0) _deliver(decoder.push(chunk), connection);
    connection.flush();
    if (connection.state === "closed") return undefined;
  }
}

function _deliver(frames: Frame[], connection: PeerConnection): void {
  for (const frame of frames) {
    if (frame.kind === "line") connection.receiveLine(frame.text);
    else connection.receiveTooLong();
  }
}
