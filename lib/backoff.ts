/**
 * Reconnection delays, after gRPC's connection-backoff policy: 1 s, then x1.6 per failed
 * attempt, capped at 120 s, each delay spread by +-20% so peers that lost the same tracker or
 * network at the same moment do not redial in lock step.
 */

/** Backoff parameters; the defaults are gRPC's. */
export interface BackoffPolicy {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  /** Relative spread: 0.2 means +-20%. */
  jitter: number;
}

/** gRPC's connection-backoff defaults. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 1000,
  multiplier: 1.6,
  maxMs: 120_000,
  jitter: 0.2,
};

/**
 * Delay before retry number `attempt` (1 for the first retry). `random` returns a number in
 * [0, 1) as `Math.random` does; the jitter is applied after the cap, as gRPC does.
 */
export function backoffDelay(
  attempt: number,
  random: () => number = Math.random,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`Backoff attempt must be a positive integer, got ${attempt}`);
  }
  const base = Math.min(policy.initialMs * policy.multiplier ** (attempt - 1), policy.maxMs);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.round(base + spread);
}
