/**
 * A TCP proxy on loopback for wire tests: records every byte in both directions, can rewrite the
 * first line a client sends (a downgrade attack strips a feature from HELLO), and can cut every
 * connection so that the peers reconnect through it.
 */
export interface ProxyOptions {
  /** Where to listen: 127.0.0.1 on `port` (0: any free port). */
  port?: number;
  /** Where to forward. */
  target: { hostname: string; port: number };
}

/** A running proxy. */
export class TcpProxy {
  readonly port: number;
  /** Everything that crossed the proxy, both directions, in arrival order. */
  readonly captured: Uint8Array[] = [];
  /** Rewrites the first line of each client-to-target stream (e.g. strip a feature). */
  rewriteFirstLine?: (line: string) => string;
  readonly #listener: Deno.TcpListener;
  readonly #target: ProxyOptions["target"];
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();

  constructor(options: ProxyOptions) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#target = options.target;
    this.#track(this.#accept());
  }

  /** All captured bytes as one Latin-1 string, so any byte sequence can be searched. */
  text(): string {
    return this.captured.map((chunk) => String.fromCharCode(...chunk)).join("");
  }

  /** True when `secret` appears in what crossed, as UTF-8 or as a JSON-escaped string. */
  saw(secret: string): boolean {
    const wire = this.text();
    const forms = [secret, JSON.stringify(secret).slice(1, -1)];
    return forms.some((form) =>
      wire.includes(String.fromCharCode(...new TextEncoder().encode(form)))
    );
  }

  /** Closes every open connection (the listener stays). */
  cutAll(): void {
    for (const conn of this.#conns) _close(conn);
    this.#conns.clear();
  }

  async close(): Promise<void> {
    this.#listener.close();
    this.cutAll();
    await Promise.all(this.#tasks);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      this.#conns.add(client);
      this.#track(this.#serve(client));
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect(this.#target);
    } catch {
      _close(client);
      return;
    }
    this.#conns.add(upstream);
    await Promise.all([
      this.#pipe(client, upstream, this.rewriteFirstLine),
      this.#pipe(upstream, client),
    ]);
    this.#conns.delete(client);
    this.#conns.delete(upstream);
  }

  async #pipe(from: Deno.TcpConn, to: Deno.TcpConn, rewrite?: (line: string) => string) {
    const buffer = new Uint8Array(65536);
    let pending = rewrite ? "" : undefined;
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        let chunk = buffer.slice(0, n);
        if (pending !== undefined) {
          // Hold bytes until the first line is whole, then pass it on rewritten.
          pending += new TextDecoder().decode(chunk);
          const newline = pending.indexOf("\n");
          if (newline === -1) continue;
          chunk = new TextEncoder().encode(
            rewrite!(pending.slice(0, newline)) + pending.slice(newline),
          );
          pending = undefined;
        }
        this.captured.push(chunk);
        await _writeAll(to, chunk);
      }
    } catch {
      // Either side went away: end both.
    } finally {
      _close(from);
      _close(to);
    }
  }
}

async function _writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function _close(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
