/**
 * A bounded memory of message ids already shown, so a SEND re-sent after a lost ACK is ACKed
 * again but shown once. The oldest ids are forgotten first; the bound keeps a peer that
 * sends endless fresh ids from growing our memory.
 */

/** Default number of ids remembered (about 1 MB at most with 100-byte ids and keys). */
export const DEFAULT_RECENT_IDS = 10_000;

/** Ids longer than this are remembered by a hash, so 32 KB ids cannot inflate the memory. */
const MAX_KEPT_ID_CHARS = 128;

/**
 * The key under which a message from `from` is remembered: the id itself when short (uuids
 * are 36 characters), else its length and 53 bits of two FNV-1a style hashes, which no
 * honest peer collides with.
 */
export function dedupeKey(from: string, msgId: string): string {
  if (msgId.length <= MAX_KEPT_ID_CHARS) return `${from} ${msgId}`;
  let high = 0x811c9dc5;
  let low = 0x050c5d1f;
  for (let i = 0; i < msgId.length; i++) {
    const code = msgId.charCodeAt(i);
    high = Math.imul(high ^ code, 0x01000193) >>> 0;
    low = Math.imul(low ^ (code + i), 0x01000193) >>> 0;
  }
  return `${from} #${msgId.length}:${(high & 0x1fffff).toString(36)}.${low.toString(36)}`;
}

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
