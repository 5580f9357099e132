/** The I/O edge of a connection: reads a `Conn`, frames lines, and feeds them to the connection. */
import { LineDecoder } from "../../lib/framing.ts";
import type { Conn } from "../../lib/transport.ts";
import type { PeerConnection } from "../protocol/mod.ts";

/** Reads `conn` until it ends or the connection closes; always closes both at the end. */
export async function runLink(conn: Conn, connection: PeerConnection): Promise<void> {
  const decoder = new LineDecoder();
  try {
    for await (const chunk of conn.chunks()) {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind === "line") connection.receiveLine(frame.text);
        else connection.receiveTooLong();
      }
      connection.flush();
      if (connection.state === "closed") break;
    }
  } catch {
    // A read error ends the connection like an EOF does.
  } finally {
    conn.close();
    connection.ended();
  }
}
