/**
 * Runs password hashing a few at a time. One PBKDF2 hash at 600,000 iterations costs about
 * half a second of CPU: unbounded, a burst of logins or sign-ups (from many addresses, or
 * with the rate limit off) would starve the tracker. Past the queue, callers are told to retry.
 */
import { P2pError } from "../../lib/errors.ts";

/** Hashes running at once: one per core of a small server. */
export const DEFAULT_HASH_SLOTS = 2;
/** Hash requests that may wait for a slot before new ones are refused with `busy`. */
export const DEFAULT_HASH_QUEUE = 64;

/** A counting semaphore for password work. */
export class HashSlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(slots = DEFAULT_HASH_SLOTS, readonly maxWaiting = DEFAULT_HASH_QUEUE) {
    this.#free = slots;
  }

  /** Number of requests waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `work` once a slot is free; refuses with `busy` when the queue is full. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else if (this.#waiting.length >= this.maxWaiting) {
      throw new P2pError("busy", "Too many logins and sign-ups at once; try again shortly");
    } else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, or give it back.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
