/**
 * The receiving side of the SEND and handshake benchmarks, in a child process of its own (on
 * its own core where cpu_placement.ts can pin it): a p2pchat node, in clear or encrypted, or
 * the baseline line echo. The parent talks to it over stdin and stdout, one request and one
 * answer a line: how much CPU the child has used, and when a peer became connected on its side.
 * Run by the benchmarks: deno run --allow-net scripts/bench_receiver.ts <peer|noise|echo>
 */
import process from "node:process";
import { startNode } from "./bench_node.ts";
import type { Placement } from "./cpu_placement.ts";

/**
 * "peer": a node in clear; "noise": a node with an identity; "stored": a node in clear with a
 * message store (in a temporary folder); "least": the same with the least a message store can do
 * (bench_least_store.ts); "echo": the baseline.
 */
export type ReceiverKind = typeof RECEIVER_KINDS[number];
const RECEIVER_KINDS = ["peer", "noise", "stored", "least", "echo"] as const;

/** A receiving side running in a child process. */
export interface Receiver {
  port: number;
  /** CPU time (user and system) the child process has used so far, in microseconds. */
  cpuMicros(): Promise<number>;
  /** Moves the child's staged messages into its store's table (see BenchNode.settle). */
  settle(): Promise<void>;
  /** When `peerId` became connected in the child, on the `wallClock()` scale. */
  connectedAt(peerId: string): Promise<number>;
  stop(): Promise<void>;
}

const ANSWER_TIMEOUT_MS = 10_000;

/** Milliseconds on a clock that processes of this machine share (unlike performance.now()). */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** CPU time (user and system) this process has used so far, in microseconds. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Starts a receiver of `kind` where `placement` puts receivers, and reads its port. */
export async function startReceiver(kind: ReceiverKind, placement: Placement): Promise<Receiver> {
  const { command, args } = placement.receiver(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    import.meta.filename!,
    kind,
  ]);
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const requests = child.stdin.getWriter();
  const answers = new LineReader(child.stdout.pipeThrough(new TextDecoderStream()));
  const answer = async (request?: string) => {
    if (request !== undefined) await requests.write(new TextEncoder().encode(`${request}\n`));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Receiver "${kind}" did not answer ${request ?? "with its port"}`)),
        ANSWER_TIMEOUT_MS,
      );
    });
    try {
      const line = await Promise.race([answers.next(), timeout]);
      if (line === undefined) throw new Error(`Receiver "${kind}" exited`);
      return JSON.parse(line);
    } finally {
      clearTimeout(timer);
    }
  };
  const stop = async () => {
    // Closing its stdin tells the child to stop; it exits once its sockets are closed.
    await requests.close();
    await answers.cancel();
    const status = await child.status;
    if (!status.success) throw new Error(`Receiver "${kind}" failed`);
  };
  try {
    const { port } = await answer();
    return {
      port,
      cpuMicros: async () => (await answer("cpu")).cpu,
      settle: async () => void await answer("settle"),
      async connectedAt(peerId) {
        const { at } = await answer(`connected ${peerId}`);
        if (at === null) throw new Error(`${peerId} never connected to receiver "${kind}"`);
        return at;
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Lines of a text stream, one at a time. */
class LineReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #text = "";

  constructor(stream: ReadableStream<string>) {
    this.#reader = stream.getReader();
  }

  /** The next line without its newline; undefined once the stream ends. */
  async next(): Promise<string | undefined> {
    while (!this.#text.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#text += value;
    }
    const end = this.#text.indexOf("\n");
    const line = this.#text.slice(0, end);
    this.#text = this.#text.slice(end + 1);
    return line;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

/** The baseline server: echoes every complete line of each read in one write. */
async function lineEcho(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(65536);
  let held = 0; // bytes of an unfinished line, kept at the start of the buffer
  for (;;) {
    const count = await conn.read(buffer.subarray(held)).catch(() => null);
    if (count === null) break;
    const end = held + count;
    const last = buffer.lastIndexOf(0x0a, end - 1);
    if (last === -1) {
      held = end;
      if (held === buffer.length) break; // a line longer than the buffer: not in this bench
      continue;
    }
    await writeAll(conn, buffer.subarray(0, last + 1)).catch(() => {});
    buffer.copyWithin(0, last + 1, end);
    held = end - last - 1;
  }
  conn.close();
}

/** The echo server's side: listens on loopback; returns its port and how to stop it. */
function serveEcho(): { port: number; stop(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) serving.push(lineEcho(conn));
  })();
  return {
    port: listener.addr.port,
    async stop() {
      listener.close();
      await accepting;
      await Promise.all(serving);
    },
  };
}

/** The child side: listens, prints its port, answers requests until stdin closes. */
async function runReceiver(kind: ReceiverKind): Promise<void> {
  const connected = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  let server: { port: number; stop(): Promise<unknown> };
  let settle = () => {};
  if (kind === "echo") {
    server = serveEcho();
  } else {
    const storeDir = kind === "stored" || kind === "least" ? await Deno.makeTempDir() : undefined;
    const node = await startNode("b", {
      encrypted: kind === "noise",
      storePath: kind === "stored" ? `${storeDir}/messages.db` : undefined,
      leastStorePath: kind === "least" ? `${storeDir}/least.db` : undefined,
    });
    settle = node.settle;
    node.subscribe((event) => {
      if (event.type !== "peer" || event.state !== "connected") return;
      const at = wallClock();
      connected.set(event.peerId, at);
      waiting.get(event.peerId)?.(at);
      waiting.delete(event.peerId);
    });
    server = {
      port: node.port,
      stop: async () => {
        await node.stop();
        if (storeDir) await Deno.remove(storeDir, { recursive: true });
      },
    };
  }
  // Null when the peer is not connected in time: the parent gives up, and so do we.
  const connectedAt = (peerId: string) =>
    connected.get(peerId) ?? new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(peerId);
        resolve(null);
      }, ANSWER_TIMEOUT_MS / 2);
      waiting.set(peerId, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  console.log(JSON.stringify({ port: server.port }));
  const requests = new LineReader(Deno.stdin.readable.pipeThrough(new TextDecoderStream()));
  for (
    let request = await requests.next();
    request !== undefined;
    request = await requests.next()
  ) {
    const [command, argument] = request.split(" ");
    if (command === "cpu") console.log(JSON.stringify({ cpu: cpuMicros() }));
    else if (command === "settle") {
      settle();
      console.log(JSON.stringify({ settled: true }));
    } else if (command === "connected") {
      console.log(
        JSON.stringify({ at: await connectedAt(argument) }),
      );
    } else throw new Error(`Unknown request "${request}"`);
  }
  await server.stop();
}

if (import.meta.main) {
  const kind = Deno.args[0];
  if (!RECEIVER_KINDS.includes(kind as ReceiverKind)) throw new Error(`Unknown receiver "${kind}"`);
  await runReceiver(kind as ReceiverKind);
}
