/**
 * A token bucket for the rate of lines one connection may have handled: a burst, then a steady
 * rate. Pure: the caller passes the time and waits as told.
 */

/** Rate and burst of a bucket. */
export interface TokenRate {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens held (the burst a quiet connection may spend at once). */
  burst: number;
}

/** One connection's bucket. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(readonly rate: TokenRate, now: number) {
    this.#tokens = rate.burst;
    this.#at = now;
  }

  /** Takes one token: 0 when it was there, else the milliseconds to wait before asking again. */
  take(now: number): number {
    const { perSecond, burst } = this.rate;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#at) * perSecond) / 1000);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / perSecond);
  }
}
