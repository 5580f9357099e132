/**
 * Keeps peer notices readable under a flood: at most a few per window are shown, the rest
 * are counted and summarised in one line when the window ends (a flood of made-up peers once
 * printed thousands of "connected"/"gone" lines). Pure: time comes from the caller.
 */

/** Notices shown per window before the rest are summarised. */
export const NOTICES_PER_WINDOW = 10;
export const NOTICE_WINDOW_MS = 5_000;

/** Counts peer notices per fixed window. */
export class NoticeLimiter {
  #windowStart = -Infinity;
  #shown = 0;
  readonly #held = new Map<string, number>();

  constructor(
    readonly perWindow = NOTICES_PER_WINDOW,
    readonly windowMs = NOTICE_WINDOW_MS,
  ) {}

  /**
   * True when a notice of this `kind` (connected, gone, ...) may be shown now; false when it
   * is held for the summary, which is due at `summaryDueAt()`.
   */
  admit(kind: string, now: number): boolean {
    if (now >= this.#windowStart + this.windowMs && this.#held.size === 0) {
      this.#windowStart = now;
      this.#shown = 0;
    }
    if (this.#held.size === 0 && this.#shown < this.perWindow) {
      this.#shown++;
      return true;
    }
    this.#held.set(kind, (this.#held.get(kind) ?? 0) + 1);
    return false;
  }

  /** When the held notices should be summarised (the end of the current window). */
  summaryDueAt(): number {
    return this.#windowStart + this.windowMs;
  }

  /**
   * The summary of the held notices, `N more peer notices (A connected, B gone)`, or undefined
   * when none is held; a new window starts.
   */
  takeSummary(now: number): string | undefined {
    if (this.#held.size === 0) return undefined;
    let total = 0;
    const parts: string[] = [];
    for (const [kind, count] of [...this.#held].sort(([a], [b]) => a < b ? -1 : 1)) {
      total += count;
      parts.push(`${count} ${kind}`);
    }
    this.#held.clear();
    this.#windowStart = now;
    this.#shown = 0;
    return `${total} more peer notices (${parts.join(", ")})`;
  }
}
