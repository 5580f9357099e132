/**
 * Turns on the event loop for clients that bring much work at once. A read of thousands of
 * pipelined requests is handled line by line, but every await between the lines resolves at once,
 * so the whole read ran before any other client's I/O: 50 flooding sessions held the loop for
 * tens of milliseconds at a time, and a normal client's DISCOVER p99 went from 1 ms to 4-5 ms.
 * Work is cut into slices instead, and between two slices the loop runs timers and I/O.
 */

/** Work in one slice before the loop gets a turn (ms). */
export const WORK_SLICE_MS = 0.5;

/** One per server: every client's work counts against the same slice. */
export class WorkSlices {
  readonly #sliceMs: number;
  readonly #now: () => number;
  readonly #yield: () => Promise<void>;
  #started: number | undefined;
  #last = -Infinity;
  // The turn under way: every caller waits for it, so none goes on with the spent slice.
  #pending: Promise<void> | undefined;

  constructor(options: {
    sliceMs?: number;
    /** A monotonic clock in ms. */
    now?: () => number;
    /** Resolves once the event loop had a turn (a timer of 0 ms). */
    yieldToLoop?: () => Promise<void>;
  } = {}) {
    this.#sliceMs = options.sliceMs ?? WORK_SLICE_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#yield = options.yieldToLoop ??
      (() => new Promise<void>((resolve) => setTimeout(resolve, 0)));
  }

  /**
   * Called before each unit of work: undefined while the slice lasts (go on at once), else a
   * promise to await first. A pause longer than a slice since the last call means the loop was
   * idle, and starts a new slice: a lone request never waits.
   */
  turn(): Promise<void> | undefined {
    if (this.#pending) return this.#pending;
    const now = this.#now();
    if (this.#started === undefined || now - this.#last > this.#sliceMs) this.#started = now;
    this.#last = now;
    if (now - this.#started < this.#sliceMs) return undefined;
    this.#pending = this.#yield().then(() => {
      this.#pending = undefined;
      this.#started = undefined;
    });
    return this.#pending;
  }
}
