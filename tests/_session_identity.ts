/**
 * Test helper: a client identity for encrypted tracker sessions (what a peer profile holds), and
 * a line client over such a session.
 */
import {
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
} from "../lib/noise/mod.ts";
import { openSecureSession, type SessionIdentity } from "../lib/secure_session.ts";
import { encodeLine, LineDecoder } from "../lib/framing.ts";
import { type Conn, dialTcp } from "../lib/transport.ts";

/** A fresh Ed25519 identity and X25519 static key proving `localId`. */
export function newSessionIdentity(localId = "tester@default"): SessionIdentity {
  return {
    identity: identityFromPrivateKey(generateIdentityKeyPair().privateKey),
    staticKeyPair: generateStaticKeyPair(),
    localId,
  };
}

/** Opens an encrypted session over `conn`; closes `conn` when the opening fails. */
export async function secureSession(conn: Conn, who: SessionIdentity) {
  try {
    return await openSecureSession(conn, who);
  } catch (error) {
    conn.close();
    throw error;
  }
}

/** An encrypted session to a tracker on 127.0.0.1, read line by line with a deadline. */
export class SecureLineClient {
  readonly #conn: Conn;
  readonly #lines: AsyncIterator<string>;

  private constructor(conn: Conn) {
    this.#conn = conn;
    this.#lines = _lines(conn);
  }

  /** Connects to 127.0.0.1:`port` and opens an encrypted session proving `who`. */
  static async connect(port: number, who = newSessionIdentity()): Promise<SecureLineClient> {
    const { conn } = await secureSession(await dialTcp("127.0.0.1", port), who);
    return new SecureLineClient(conn);
  }

  /** The next line parsed as JSON; undefined when the session ends first. */
  async next(timeoutMs = 5_000): Promise<Record<string, unknown> | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms`)), timeoutMs)
    );
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      return next.done ? undefined : JSON.parse(next.value);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a request and waits for the next line. */
  async ask(message: Record<string, unknown>, timeoutMs?: number) {
    await this.#conn.write(encodeLine(message));
    return await this.next(timeoutMs);
  }

  close(): void {
    this.#conn.close();
  }
}

async function* _lines(conn: Conn): AsyncGenerator<string> {
  const decoder = new LineDecoder();
  try {
    for await (const chunk of conn.chunks()) {
      for (const frame of decoder.push(chunk)) if (frame.kind === "line") yield frame.text;
    }
  } catch {
    // A closed or failed session ends the lines.
  }
}
