/** The I/O edge of a connection: reads a `Conn`, frames lines, and feeds them to the connection. */
import { LineDecoder } from "../../lib/framing.ts";
import type { TokenBucket } from "../../lib/token_bucket.ts";
import type { Conn } from "../../lib/transport.ts";
import type { PeerConnection } from "../protocol/mod.ts";

// Past this much unread output toward a throttled peer, its input is not read until it reads.
const READ_PAUSE_BYTES = 64 * 1024;
const READ_PAUSE_CHECK_MS = 20;

/**
 * Reads `conn` until it ends or the connection closes; always closes both at the end. While
 * `throttled()` (a peer nobody listed) lets output pile up, its input waits: TCP then slows it
 * down instead of this side answering (and queueing) without end; and its lines take tokens from
 * `lines`, the bucket all throttled peers share, so a flood costs a bounded share of the CPU. Only such inbound strangers are
 * throttled, so two of our peers never both wait on each other.
 */
export async function runLink(
  conn: Conn,
  connection: PeerConnection,
  throttled: () => boolean = () => false,
  lines?: TokenBucket,
): Promise<void> {
  const decoder = new LineDecoder();
  try {
    for await (const chunk of conn.chunks()) {
      const limited = lines !== undefined && throttled();
      for (const frame of decoder.push(chunk)) {
        if (limited) await _lineTurn(lines!, connection);
        if (frame.kind === "line") connection.receiveLine(frame.text);
        else connection.receiveTooLong();
      }
      connection.flush();
      while (
        connection.state !== "closed" && connection.queuedBytes > READ_PAUSE_BYTES && throttled()
      ) {
        await new Promise((resolve) => setTimeout(resolve, READ_PAUSE_CHECK_MS));
      }
      if (connection.state === "closed") break;
    }
  } catch {
    // A read error ends the connection like an EOF does.
  } finally {
    conn.close();
    connection.ended();
  }
}

// Waits until a throttled peer may have one more line handled; what is queued goes out first.
async function _lineTurn(lines: TokenBucket, connection: PeerConnection): Promise<void> {
  for (;;) {
    const waitMs = lines.take(Date.now());
    if (waitMs === 0 || connection.state === "closed") return;
    connection.flush();
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
