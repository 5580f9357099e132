/**
 * Items waiting to go out together as one line (the SENDS and ACKS of the `p2pchat-batch`
 * feature). A batch holds at most 128 items and 4800 characters of text: even if every
 * character needed a six-character JSON escape (28,800 bytes), with the quotes and commas of
 * 128 items and two escaped 129-character peer ids, its line stays below the 32768-byte limit.
 */

/** Most items in one batch. */
export const MAX_BATCH_ITEMS = 128;
/** Most characters of text (ids and payloads) in a batch of more than one item. */
export const MAX_BATCH_CHARS = 4800;

/** A batch under way. */
export class Batch<T> {
  #items: T[] = [];
  #chars = 0;

  get size(): number {
    return this.#items.length;
  }

  /** Whether an item of `chars` characters may join; an empty batch takes any item. */
  fits(chars: number): boolean {
    return this.#items.length === 0 || this.#chars + chars <= MAX_BATCH_CHARS;
  }

  add(item: T, chars: number): void {
    this.#items.push(item);
    this.#chars += chars;
  }

  /** True when no more items should wait: the batch should go out now. */
  get full(): boolean {
    return this.#items.length >= MAX_BATCH_ITEMS || this.#chars >= MAX_BATCH_CHARS;
  }

  /** Empties the batch, returning its items in order. */
  take(): T[] {
    const items = this.#items;
    this.#items = [];
    this.#chars = 0;
    return items;
  }
}
