/**
 * A connection's unanswered SENDs by number, in call order (which is deadline order).
 *
 * Not a `Map` of the sends: V8 links a Map's outgrown hash table to the one that replaces it, so
 * once a table of a busy connection is promoted to the old generation, the chain of tables after
 * it, with every send they held (its promise, its result), survives the young-generation GCs
 * until the next full one. Measured on a sender at 250,000 messages a second: 5 MB copied per
 * scavenge (12-15 ms pauses, a third of its time), against 0.3 MB with this. Here the sends sit
 * in an array whose slots are cleared when they are answered, and the Map holds only numbers.
 */
export class PendingSends<T> {
  // Slot `i` holds the send at position `#first + i`; answered ones are undefined.
  #slots: (T | undefined)[] = [];
  #seqs: number[] = [];
  #first = 0;
  // The slot of the oldest unanswered send (or `#slots.length` when none is).
  #head = 0;
  // seq -> position.
  readonly #positions = new Map<number, number>();

  get size(): number {
    return this.#positions.size;
  }

  get(seq: number): T | undefined {
    const position = this.#positions.get(seq);
    return position === undefined ? undefined : this.#slots[position - this.#first];
  }

  /** Adds a send; one already pending under `seq` is replaced in its place. */
  set(seq: number, send: T): void {
    const position = this.#positions.get(seq);
    if (position !== undefined) {
      this.#slots[position - this.#first] = send;
      return;
    }
    this.#positions.set(seq, this.#first + this.#slots.length);
    this.#slots.push(send);
    this.#seqs.push(seq);
  }

  delete(seq: number): void {
    const position = this.#positions.get(seq);
    if (position === undefined) return;
    this.#positions.delete(seq);
    this.#slots[position - this.#first] = undefined;
    while (this.#head < this.#slots.length && this.#slots[this.#head] === undefined) this.#head++;
    // Answered slots at the front go once they are half the array (in place: a new array
    // would be garbage that still points at the sends, the very thing avoided here).
    if (this.#head >= 64 && this.#head * 2 >= this.#slots.length) {
      this.#slots.copyWithin(0, this.#head);
      this.#seqs.copyWithin(0, this.#head);
      this.#slots.length -= this.#head;
      this.#seqs.length -= this.#head;
      this.#first += this.#head;
      this.#head = 0;
    } else if (this.#slots.length >= _PACK_FROM && this.#slots.length > 4 * this.size) {
      this.#pack();
    }
  }

  /** Slots held, answered ones not dropped yet included: at most about 4 x `size` + 1,024. */
  get held(): number {
    return this.#slots.length;
  }

  /** The oldest unanswered send. */
  oldest(): T | undefined {
    return this.#slots[this.#head];
  }

  /** The unanswered sends with their numbers, oldest first (a copy: deleting meanwhile is safe). */
  entries(): [number, T][] {
    const entries: [number, T][] = [];
    for (let at = this.#head; at < this.#slots.length; at++) {
      const send = this.#slots[at];
      if (send !== undefined) entries.push([this.#seqs[at], send]);
    }
    return entries;
  }

  // A send left unanswered holds the front, and those answered after it would stay until it is
  // (up to the ACK deadline: a peer could make us keep seconds of sends): the unanswered ones
  // move up, in order, and get their new places.
  #pack(): void {
    let to = 0;
    for (let from = this.#head; from < this.#slots.length; from++) {
      const send = this.#slots[from];
      if (send === undefined) continue;
      const seq = this.#seqs[from];
      this.#slots[to] = send;
      this.#seqs[to] = seq;
      this.#positions.set(seq, this.#first + to);
      to++;
    }
    this.#slots.length = this.#seqs.length = to;
    this.#head = 0;
  }
}

// Slots held before answered ones behind an unanswered one are packed away.
const _PACK_FROM = 1024;
