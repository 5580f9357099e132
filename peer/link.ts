/** The I/O edge of a session: reads a `Conn`, frames lines, and feeds them to the session. */
import { LineDecoder } from "../lib/framing.ts";
import type { Conn } from "../lib/transport.ts";
import type { PeerSession } from "./session.ts";

/** Reads `conn` until it ends or the session closes; always closes both at the end. */
export async function runLink(conn: Conn, session: PeerSession): Promise<void> {
  const decoder = new LineDecoder();
  try {
    for await (const chunk of conn.chunks()) {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind === "line") session.receiveLine(frame.text);
        else session.receiveTooLong();
      }
      session.flush();
      if (session.state === "closed") break;
    }
  } catch {
    // A read error ends the connection like an EOF does.
  } finally {
    conn.close();
    session.ended();
  }
}
