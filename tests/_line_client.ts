/**
 * Test helper: a long-lived JSON-lines TCP client (tracker sessions, raw peer connections),
 * reading line by line with a deadline on every wait.
 */
import { encodeLine, LineDecoder } from "../lib/framing.ts";

/** One TCP connection that writes JSON lines and reads them back one at a time. */
export class LineClient {
  readonly #conn: Deno.TcpConn;
  readonly #decoder = new LineDecoder();
  readonly #lines: string[] = [];
  readonly #buffer = new Uint8Array(64 * 1024);
  #ended = false;
  /** A read still outstanding after a wait timed out: the next wait takes it over. */
  #reading?: Promise<number | null>;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** True once the other side closed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Writes one message as a JSON line (or raw text as is). */
  async send(message: Record<string, unknown> | string): Promise<void> {
    const bytes = typeof message === "string"
      ? new TextEncoder().encode(message)
      : encodeLine(message);
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  /** The next line parsed as JSON; undefined when the connection ends first. */
  async next(timeoutMs = 5_000): Promise<Record<string, unknown> | undefined> {
    const line = await this.nextLine(timeoutMs);
    return line === undefined ? undefined : JSON.parse(line);
  }

  /** The next raw line; undefined when the connection ends first; throws after `timeoutMs`. */
  async nextLine(timeoutMs = 5_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0 && !this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#reading ??= this.#conn.read(this.#buffer).catch(() => null);
      const count = await Promise.race([
        this.#reading,
        new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (count === "timeout") continue;
      this.#reading = undefined;
      if (count === null) {
        this.#ended = true;
        break;
      }
      for (const frame of this.#decoder.push(this.#buffer.slice(0, count))) {
        if (frame.kind === "line") this.#lines.push(frame.text);
      }
    }
    return this.#lines.shift();
  }

  /** Sends a request and waits for the reply line. */
  async ask(message: Record<string, unknown>, timeoutMs?: number) {
    await this.send(message);
    return await this.next(timeoutMs);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}
