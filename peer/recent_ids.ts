/**
 * A bounded memory of message ids already shown, so a SEND re-sent after a lost ACK is ACKed
 * again but shown once. The oldest ids are forgotten first; the bound keeps a peer that
 * sends endless fresh ids from growing our memory.
 */

/** Default number of ids remembered (about 1 MB at most with 100-byte ids and keys). */
export const DEFAULT_RECENT_IDS = 10_000;

/** A set of recent ids with FIFO eviction. */
export class RecentIds {
  #ids = new Set<string>();
  // Insertion order as a ring: evicting through `Set.values().next()` would walk every
  // deleted slot left at the front of the Set's table, making each add O(capacity).
  #order: string[] = [];
  #oldest = 0;

  constructor(readonly capacity: number = DEFAULT_RECENT_IDS) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RecentIds capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Remembers `id`; true when it was not known yet. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#order.length < this.capacity) {
      this.#order.push(id);
    } else {
      this.#ids.delete(this.#order[this.#oldest]);
      this.#order[this.#oldest] = id;
      this.#oldest = (this.#oldest + 1) % this.capacity;
    }
    return true;
  }

  get size(): number {
    return this.#ids.size;
  }
}
