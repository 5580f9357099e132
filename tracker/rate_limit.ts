/**
 * Per-IP connection rate limit, driven by the caller's clock. Like the pyp2p reference, an IP
 * may open `max` connections per window; the next one starts a block during which every
 * attempt is refused with a message saying when it lifts.
 */
import { DEFAULT_RATE_LIMIT } from "../lib/constants.ts";

/** How many connections per window, and how long a block lasts. */
export interface RateLimitSettings {
  max: number;
  windowSeconds: number;
  blockSeconds: number;
}

/** The verdict for one connection attempt. */
export type RateDecision =
  | { allowed: true }
  | {
    allowed: false;
    /** Whole seconds until the block lifts (at least 1). */
    retryAfterSeconds: number;
    /** True for the attempt that started the block. */
    newlyBlocked: boolean;
    message: string;
  };

interface _IpState {
  windowStart: number;
  count: number;
  blockedUntil: number;
}

/** Counts connections per IP in fixed windows and blocks IPs that go over. */
export class RateLimiter {
  readonly #ips = new Map<string, _IpState>();

  constructor(readonly settings: RateLimitSettings = DEFAULT_RATE_LIMIT) {}

  /** IPs currently tracked (for tests and metrics). */
  get trackedIps(): number {
    return this.#ips.size;
  }

  /** Records a connection attempt from `ip` at `now` (ms) and says whether to serve it. */
  check(ip: string, now: number): RateDecision {
    let state = this.#ips.get(ip);
    if (state && state.blockedUntil > now) return this.#refuse(state, now, false);
    if (!state || now - state.windowStart >= this.settings.windowSeconds * 1000) {
      state = { windowStart: now, count: 0, blockedUntil: 0 };
      this.#ips.set(ip, state);
    }
    state.count++;
    if (state.count <= this.settings.max) return { allowed: true };
    state.blockedUntil = now + this.settings.blockSeconds * 1000;
    return this.#refuse(state, now, true);
  }

  /** Forgets IPs whose window ended and which are not blocked, so memory stays bounded. */
  prune(now: number): void {
    const windowMs = this.settings.windowSeconds * 1000;
    for (const [ip, state] of this.#ips) {
      if (state.blockedUntil <= now && now - state.windowStart >= windowMs) this.#ips.delete(ip);
    }
  }

  #refuse(state: _IpState, now: number, newlyBlocked: boolean): RateDecision {
    const retryAfterSeconds = Math.max(1, Math.ceil((state.blockedUntil - now) / 1000));
    const { max, windowSeconds, blockSeconds } = this.settings;
    return {
      allowed: false,
      retryAfterSeconds,
      newlyBlocked,
      message: `Rate limit exceeded: more than ${max} connections in ${windowSeconds} s; ` +
        `this IP is blocked for ${blockSeconds} s, lifting in ${retryAfterSeconds} s`,
    };
  }
}

/**
 * Parses `N/SECONDS` (as given to `--rate-limit`): N connections per SECONDS, and a block of
 * SECONDS. Returns undefined when the text is not of that form with both numbers >= 1.
 */
export function parseRateLimit(text: string): RateLimitSettings | undefined {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) return undefined;
  const max = Number(match[1]);
  const seconds = Number(match[2]);
  if (!Number.isSafeInteger(max) || !Number.isSafeInteger(seconds) || max < 1 || seconds < 1) {
    return undefined;
  }
  return { max, windowSeconds: seconds, blockSeconds: seconds };
}
