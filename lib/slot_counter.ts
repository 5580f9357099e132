/**
 * Counts slots taken in all and per key (an address), under a cap for each: the fair-share
 * bookkeeping of the tracker's and the peer's connection limits. Free of I/O.
 */

/** Why `take` refused: the total cap or the key's own cap. */
export type SlotRefusal = "total" | "per_key";

/** Slots in use, in all and per key, each under its cap. */
export class SlotCounter {
  readonly #perKey = new Map<string, number>();
  #total = 0;

  constructor(readonly maxTotal: number, readonly maxPerKey: number) {}

  get total(): number {
    return this.#total;
  }

  /** Slots held by one key. */
  held(key: string): number {
    return this.#perKey.get(key) ?? 0;
  }

  /** Takes a slot for `key`, or says which cap is reached. */
  take(key: string): SlotRefusal | undefined {
    if (this.#total >= this.maxTotal) return "total";
    const held = this.held(key);
    if (held >= this.maxPerKey) return "per_key";
    this.#perKey.set(key, held + 1);
    this.#total++;
    return undefined;
  }

  /** Gives back a slot `key` took. */
  give(key: string): void {
    const held = this.held(key);
    if (held === 0) return;
    this.#total--;
    if (held === 1) this.#perKey.delete(key);
    else this.#perKey.set(key, held - 1);
  }
}
