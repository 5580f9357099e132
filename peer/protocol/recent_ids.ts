/**
 * A bounded memory of message ids already shown, so a SEND re-sent after a lost ACK is ACKed
 * again but shown once. Ids are remembered per sender, so one peer cannot suppress another's
 * messages by reusing its ids. The oldest are forgotten first; the bound keeps a peer that
 * sends endless fresh ids from growing our memory.
 *
 * The table is keyed by a hash computed here, not by the id strings: every id arrives as a new
 * string, and Deno hashes a new string at about 0.35 us, several times this loop (measured).
 * The hash is seeded at random, so which ids share a bucket changes from run to run; it is no
 * cryptographic hash, and crafted ids can still make small buckets collide, which only costs a
 * few comparisons: ids are compared whole, never by hash alone.
 */
import { idKey } from "../../lib/id_key.ts";

/** Default number of ids remembered (about 1 MB at most with 128-character ids). */
export const DEFAULT_RECENT_IDS = 10_000;

interface Entry {
  readonly hash: number;
  readonly from: string;
  /** The id itself, or the digest of a long one. */
  readonly key: string;
  /** The next entry of the same bucket. */
  next?: Entry;
}

/** Message ids per sender, with FIFO eviction. */
export class RecentIds {
  readonly #buckets = new Map<number, Entry>();
  // Insertion order as a ring, oldest at `#oldest` once full.
  readonly #order: Entry[] = [];
  #oldest = 0;
  readonly #seed: number;

  constructor(
    readonly capacity: number = DEFAULT_RECENT_IDS,
    seed: number = crypto.getRandomValues(new Uint32Array(1))[0],
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RecentIds capacity must be a positive integer, got ${capacity}`);
    }
    this.#seed = seed;
  }

  /** Remembers `msgId` from `from`; true when it was not known yet. */
  add(from: string, msgId: string): boolean {
    const hash = this.hashOf(msgId);
    const key = idKey(msgId);
    const head = this.#buckets.get(hash);
    for (let entry = head; entry !== undefined; entry = entry.next) {
      if (entry.key === key && entry.from === from) return false;
    }
    const entry: Entry = { hash, from, key, next: head };
    this.#buckets.set(hash, entry);
    if (this.#order.length < this.capacity) {
      this.#order.push(entry);
    } else {
      this.#forget(this.#order[this.#oldest]);
      this.#order[this.#oldest] = entry;
      this.#oldest = (this.#oldest + 1) % this.capacity;
    }
    return true;
  }

  get size(): number {
    return this.#order.length;
  }

  /** The bucket of `msgId`: seeded FNV-1a, cut to 30 bits so that V8 keeps it a small integer. */
  hashOf(msgId: string): number {
    let hash = 0x811c9dc5 ^ this.#seed;
    for (let i = 0; i < msgId.length; i++) hash = Math.imul(hash ^ msgId.charCodeAt(i), 0x01000193);
    return hash & 0x3fffffff;
  }

  #forget(entry: Entry): void {
    const head = this.#buckets.get(entry.hash)!;
    if (head === entry) {
      if (entry.next === undefined) this.#buckets.delete(entry.hash);
      else this.#buckets.set(entry.hash, entry.next);
      return;
    }
    for (let before = head; before.next !== undefined; before = before.next) {
      if (before.next === entry) {
        before.next = entry.next;
        return;
      }
    }
  }
}
