/**
 * The `Conn` interface hides sockets from protocol code: a TCP implementation for real
 * use and an in-memory pair for tests. Reads use a plain read loop, because stream pipelines
 * cost several times more memory per idle connection, into one buffer per connection that
 * stays small while the connection is idle and grows only while reads fill it.
 */
import { P2pError } from "./errors.ts";

/** An address as seen on the wire; IPv4 is always a plain dotted string. */
export interface Address {
  hostname: string;
  port: number;
}

/** A full-duplex byte connection. */
export interface Conn {
  readonly remote: Address;
  readonly local: Address;
  /**
   * Received chunks until the peer closes (or half-closes) or the connection fails. A chunk is
   * only valid until the next one is requested (the buffer is reused), so consume it at once.
   * After the end of the stream the owner still calls `close()`; until then a last reply may
   * be written to a peer that only half-closed. Call it once, and read it with one loop.
   */
  chunks(): AsyncIterable<Uint8Array>;
  /** Writes all bytes; resolves when the kernel has taken them (this is the back-pressure). */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions; safe to call more than once. */
  close(): void;
  /** True once `close()` was called or the connection failed. */
  readonly closed: boolean;
}

/** Read buffer size of an idle connection: the pending read holds it for as long as it idles. */
export const INITIAL_READ_BUFFER_BYTES = 512;
/** Consecutive small reads after which a grown read buffer goes back to the small size. */
const SMALL_READS_TO_SHRINK = 4;
/** The read buffer grows (by 4x) while reads fill it, up to this size. */
export const MAX_READ_BUFFER_BYTES = 64 * 1024;

/** Strips the IPv4-mapped IPv6 prefix: pyp2p peers expect `127.0.0.1`, never `::ffff:127.0.0.1`. */
export function plainIp(hostname: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(hostname);
  return mapped ? mapped[1] : hostname;
}

function _address(addr: Deno.Addr): Address {
  const net = addr as Deno.NetAddr;
  return { hostname: plainIp(net.hostname), port: net.port };
}

/** Wraps an accepted or dialled Deno TCP connection. */
export class TcpConn implements Conn {
  readonly remote: Address;
  readonly local: Address;
  #closed = false;
  // Writes not yet settled, and the settling of the last one, which the next write waits for.
  #writes = 0;
  #lastWrite?: Promise<void>;

  constructor(readonly socket: Deno.TcpConn) {
    this.remote = _address(socket.remoteAddr);
    this.local = _address(socket.localAddr);
    try {
      socket.setNoDelay(true);
    } catch {
      // Not fatal: only latency suffers.
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  // A plain iterator rather than an async generator: each chunk then takes fewer promise steps
  // on its way to the reader, which shortens every round trip (measured: about 1 us a read).
  chunks(): AsyncIterable<Uint8Array> {
    let buffer = new Uint8Array(INITIAL_READ_BUFFER_BYTES);
    let smallReads = 0;
    let count = 0; // the size of the last read, whose chunk the reader is done with
    const next = async (): Promise<IteratorResult<Uint8Array>> => {
      // A full read means more is waiting: read bigger. Several small reads in a row mean the
      // traffic is over: go back to the small buffer, which the next (maybe long) pending read
      // holds. One small read is not enough: a busy exchange ends each burst with one, and
      // starting every burst at the small size would split it into many reads and writes.
      if (count === buffer.length && buffer.length < MAX_READ_BUFFER_BYTES) {
        buffer = new Uint8Array(Math.min(buffer.length * 4, MAX_READ_BUFFER_BYTES));
        smallReads = 0;
      } else if (count > INITIAL_READ_BUFFER_BYTES) {
        smallReads = 0;
      } else if (
        buffer.length > INITIAL_READ_BUFFER_BYTES && ++smallReads >= SMALL_READS_TO_SHRINK
      ) {
        buffer = new Uint8Array(INITIAL_READ_BUFFER_BYTES);
        smallReads = 0;
      }
      if (this.#closed) return { done: true, value: undefined };
      let read: number | null;
      try {
        read = await this.socket.read(buffer);
      } catch {
        this.close();
        return { done: true, value: undefined };
      }
      // End of stream: the peer may only have half-closed, so writing back still works
      // until the owner calls close().
      if (read === null) return { done: true, value: undefined };
      count = read;
      return { done: false, value: buffer.subarray(0, read) };
    };
    return breakableIterable(next);
  }

  write(bytes: Uint8Array): Promise<void> {
    // Writes are chained so two callers (or several batches a session has in flight) never
    // interleave their bytes; with no write under way the chain is skipped.
    const next = this.#writes === 0
      ? this.#writeAll(bytes)
      : this.#lastWrite!.then(() => this.#writeAll(bytes));
    this.#writes++;
    const settled = () => void this.#writes--;
    this.#lastWrite = next.then(settled, settled);
    return next;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new Deno.errors.BrokenPipe("connection closed");
    let written = 0;
    while (written < bytes.length) written += await this.socket.write(bytes.subarray(written));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.socket.close();
    } catch {
      // Already closed by the other side.
    }
  }
}

/** What a listener is for, and the flag that chooses its port (named in errors). */
export interface ListenPurpose {
  what: string;
  flag: string;
}

/**
 * Binds a TCP listener; a port in use or a forbidden address becomes a `listen_failed` error
 * that says which address and what for, instead of a bare OS error.
 */
export function listenTcp(
  hostname: string,
  port: number,
  purpose: ListenPurpose,
): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    throw listenFailure(hostname, port, purpose, error);
  }
}

/** The `listen_failed` error for a failed listen on `hostname:port`, saying what to do. */
export function listenFailure(
  hostname: string,
  port: number,
  { what, flag }: ListenPurpose,
  error: unknown,
) {
  const reason = error instanceof Deno.errors.AddrInUse
    ? `the port is already in use (is another p2pchat running? choose another with ${flag})`
    : error instanceof Error
    ? error.message
    : String(error);
  return new P2pError(
    "listen_failed",
    `Cannot listen on ${hostname}:${port} for ${what}: ${reason}`,
  );
}

/** Dials a TCP address; the signal aborts a connect that takes too long. */
export async function dialTcp(
  hostname: string,
  port: number,
  options: { signal?: AbortSignal } = {},
): Promise<TcpConn> {
  const socket = await Deno.connect({ hostname, port, transport: "tcp", signal: options.signal });
  return new TcpConn(socket);
}

/** Two connected in-memory `Conn`s, for tests that drive protocols without sockets. */
export function memoryConnPair(
  a: Address = { hostname: "127.0.0.1", port: 40001 },
  b: Address = { hostname: "127.0.0.1", port: 40002 },
): [MemoryConn, MemoryConn] {
  const left = new MemoryConn(a, b);
  const right = new MemoryConn(b, a);
  left.other = right;
  right.other = left;
  return [left, right];
}

/** One end of `memoryConnPair()`. Writes are delivered in order to the other end. */
export class MemoryConn implements Conn {
  other?: MemoryConn;
  #queue: Uint8Array[] = [];
  #wake?: () => void;
  #ended = false;
  #closed = false;
  /** Every chunk written from this end, in order (tests inspect writes per call). */
  readonly written: Uint8Array[] = [];

  constructor(readonly local: Address, readonly remote: Address) {}

  get closed(): boolean {
    return this.#closed;
  }

  async *chunks(): AsyncIterable<Uint8Array> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.#ended) break;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed || !this.other || this.other.#ended) {
      return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    }
    this.written.push(bytes.slice());
    this.other.#deliver(bytes.slice());
    return Promise.resolve();
  }

  #deliver(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#wake?.();
    this.#wake = undefined;
  }

  #end(): void {
    this.#ended = true;
    this.#wake?.();
    this.#wake = undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end();
    if (this.other) this.other.#end();
  }
}

/**
 * An async iterable over `next` that, like a generator, is finished for good once the reader
 * breaks out of its loop; `next` is told so (`finished()`) while it waits. A plain iterator, not
 * an async generator: fewer promise steps for each chunk on the way to the reader.
 */
export function breakableIterable<T>(
  next: (finished: () => boolean) => Promise<IteratorResult<T>>,
): AsyncIterable<T> {
  let finished = false;
  const isFinished = () => finished;
  const iterator: AsyncIterator<T> = {
    next: () => finished ? Promise.resolve({ done: true, value: undefined }) : next(isFinished),
    return: () => {
      finished = true;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}
