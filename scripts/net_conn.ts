/**
 * A node:net socket behind the `Conn` interface (lib/transport.ts), for benchmarks whose flood
 * connections must come from other loopback addresses: `Deno.connect` cannot choose the local
 * address, node:net can (`localAddress`).
 */
import net from "node:net";
import { type Address, breakableIterable, type Conn, plainIp } from "../lib/transport.ts";

// Chunks queued while nobody reads; past this many the socket is paused until the reader
// catches up, so a slow reader holds the data in the kernel, as TcpConn does.
const MAX_QUEUED_CHUNKS = 64;

/** A connected node:net socket as a `Conn`. */
export class NetConn implements Conn {
  readonly remote: Address;
  readonly local: Address;
  #queue: Uint8Array[] = [];
  #wake?: () => void;
  #ended = false;
  #closed = false;
  // `stopReading()` was called: the socket stays paused whatever the reader does.
  #stopped = false;
  #discarding = false;

  constructor(readonly socket: net.Socket) {
    this.remote = { hostname: plainIp(socket.remoteAddress ?? ""), port: socket.remotePort ?? 0 };
    this.local = { hostname: plainIp(socket.localAddress ?? ""), port: socket.localPort ?? 0 };
    socket.setNoDelay(true);
    // Nothing flows until the first `chunks()`: a listener on 'data' would start reading.
    socket.pause();
    socket.on("data", (data: Uint8Array) => {
      if (this.#discarding) return;
      // A plain Uint8Array: Buffer.slice() shares memory, Uint8Array.slice() copies.
      this.#queue.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (this.#queue.length >= MAX_QUEUED_CHUNKS) socket.pause();
      this.#notify();
    });
    socket.on("end", () => this.#end());
    socket.on("close", () => {
      this.#closed = true;
      this.#end();
    });
    socket.on("error", () => {
      this.#closed = true;
      this.#end();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  chunks(): AsyncIterable<Uint8Array> {
    return breakableIterable<Uint8Array>(async (finished) => {
      for (;;) {
        if (finished()) return { done: true, value: undefined };
        const chunk = this.#queue.shift();
        if (chunk) return { done: false, value: chunk };
        if (this.#ended) return { done: true, value: undefined };
        if (!this.#stopped) this.socket.resume();
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (error) => error ? reject(error) : resolve());
    });
  }

  /** Stops reading for good: what the other side sends stays in the kernel's buffers. */
  stopReading(): void {
    this.#stopped = true;
    this.socket.pause();
  }

  /** Reads and drops everything from now on, without a reader (the queue is dropped too). */
  discardReads(): void {
    this.#discarding = true;
    this.#queue = [];
    this.socket.resume();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    this.#wake?.();
    this.#wake = undefined;
  }
}

/**
 * Connects to `host:port` from `localAddress`; the signal aborts a connect that takes too long
 * (the socket is destroyed and the promise rejects).
 */
export function connectFrom(
  host: string,
  port: number,
  localAddress: string,
  options: { signal?: AbortSignal } = {},
): Promise<NetConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    const fail = (error: unknown) => {
      options.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(options.signal!.reason);
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      options.signal?.removeEventListener("abort", onAbort);
      socket.off("error", fail);
      resolve(new NetConn(socket));
    });
  });
}
