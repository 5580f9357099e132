/** Time as a dependency: real time in production, a clock tests move by hand. */

/** Handle returned by `Clock.setTimeout`, passed back to `Clock.clearTimeout`. */
export type TimerId = ReturnType<typeof setTimeout> | number;

/** What state machines need from time: the current instant and one-shot timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/**
 * The real clock. Timers are unref'd so they never keep a finished process alive. A deadline
 * already passed (a negative delay, computed from a time that moved on) fires at once: the
 * runtime would otherwise print a TimeoutNegativeWarning over the terminal UI.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    const id = setTimeout(callback, Math.max(0, delayMs));
    id.unref();
    return id;
  },
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

/** A clock that only moves when told to: `advance(ms)` fires due timers in order. */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers = new Map<TimerId, { due: number; callback: () => void }>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(id, { due: this.#now + Math.max(0, delayMs), callback });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id);
  }

  /** Number of timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing each timer that falls due (including ones set meanwhile). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let nextId: TimerId | undefined;
      let nextDue = Infinity;
      for (const [id, timer] of this.#timers) {
        if (timer.due <= target && timer.due < nextDue) [nextId, nextDue] = [id, timer.due];
      }
      if (nextId === undefined) break;
      const timer = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = timer.due;
      timer.callback();
    }
    this.#now = target;
  }
}
