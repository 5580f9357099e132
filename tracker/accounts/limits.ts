/**
 * Login throttling per account and address, per account, and per address; sign-up throttling
 * per address (every sign-up costs a full password hash, so a flood would burn CPU). Failures
 * inside a sliding window lock the key for a while; the lock lifts by itself as the clock
 * moves. Names are counted whether or not an account exists, so a lock-out reveals nothing.
 */

/** Failures allowed per window before a lock, and how long a lock lasts. */
export interface LoginLimits {
  /** Failures for one account from one address: locks that address out of that account. */
  accountFailures: number;
  /**
   * Failures for one account from all addresses: locks the account for everyone. Much higher
   * than `accountFailures`, so a stranger's few wrong guesses cannot lock the owner out, while
   * guessing spread over many addresses is still stopped.
   */
  accountTotalFailures: number;
  /** Failures from one address, whatever the account. */
  sourceFailures: number;
  /** Sign-ups per source address per window; generous, since a classroom shares one NAT. */
  sourceSignups: number;
  windowMs: number;
  lockMs: number;
}

/**
 * Within 15 minutes, 5 failures for an account from one address, 50 for an account from
 * anywhere, or 20 from one address lock for 15 minutes; so do 50 sign-ups from one address.
 */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  accountFailures: 5,
  accountTotalFailures: 50,
  sourceFailures: 20,
  sourceSignups: 50,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
};

interface _Counter {
  failures: number[];
  lockedUntil: number;
}

/** Counts failed logins and says how long a name or address must wait. */
export class LoginLimiter {
  readonly #pairs = new Map<string, _Counter>();
  readonly #accounts = new Map<string, _Counter>();
  readonly #sources = new Map<string, _Counter>();
  readonly #signups = new Map<string, _Counter>();
  /** Totals for metrics. */
  failures = 0;
  lockouts = 0;

  constructor(readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS) {}

  /** Milliseconds until this account key and source may try again; 0 when allowed now. */
  retryAfter(account: string, source: string, now: number): number {
    const waits = [
      this.#pairs.get(_pair(account, source)),
      this.#accounts.get(account),
      this.#sources.get(source),
    ]
      .map((counter) => (counter ? counter.lockedUntil - now : 0));
    return Math.max(0, ...waits);
  }

  /** Records a failed attempt; may start a lock. */
  recordFailure(account: string, source: string, now: number): void {
    this.failures++;
    this.#count(this.#pairs, _pair(account, source), this.limits.accountFailures, now);
    this.#count(this.#accounts, account, this.limits.accountTotalFailures, now);
    this.#count(this.#sources, source, this.limits.sourceFailures, now);
  }

  /** Milliseconds until this source may sign up again; 0 when allowed now. */
  signupRetryAfter(source: string, now: number): number {
    return Math.max(0, (this.#signups.get(source)?.lockedUntil ?? 0) - now);
  }

  /** Records a sign-up attempt from a source (counted before hashing); may start a lock. */
  recordSignup(source: string, now: number): void {
    this.#count(this.#signups, source, this.limits.sourceSignups, now);
  }

  /** A successful login forgives the account's failures from that address (not the address's). */
  recordSuccess(account: string, source: string): void {
    this.#pairs.delete(_pair(account, source));
  }

  /** Forgets counters with no recent failure and no lock, so guessed names do not pile up. */
  prune(now: number): void {
    for (const counters of [this.#pairs, this.#accounts, this.#sources, this.#signups]) {
      for (const [key, counter] of counters) {
        _dropOld(counter, now - this.limits.windowMs);
        if (counter.failures.length === 0 && counter.lockedUntil <= now) counters.delete(key);
      }
    }
  }

  #count(counters: Map<string, _Counter>, key: string, max: number, now: number): void {
    let counter = counters.get(key);
    if (!counter) counters.set(key, counter = { failures: [], lockedUntil: 0 });
    _dropOld(counter, now - this.limits.windowMs);
    counter.failures.push(now);
    if (counter.failures.length >= max) {
      counter.lockedUntil = now + this.limits.lockMs;
      counter.failures = [];
      this.lockouts++;
    }
  }
}

function _dropOld(counter: _Counter, since: number): void {
  while (counter.failures.length > 0 && counter.failures[0] <= since) counter.failures.shift();
}

function _pair(account: string, source: string): string {
  return `${account}\n${source}`;
}
