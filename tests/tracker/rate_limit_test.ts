/** Tests of the per-IP rate limiter with a manual clock. */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { DEFAULT_RATE_LIMIT } from "../../lib/constants.ts";
import { parseRateLimit, RateLimiter } from "../../tracker/rate_limit.ts";

Deno.test("RateLimiter allows 50 connections per 60 s by default, then blocks for 60 s", () => {
  const clock = new ManualClock();
  const limiter = new RateLimiter();
  assert.deepEqual(limiter.settings, DEFAULT_RATE_LIMIT);
  for (let i = 0; i < 50; i++) assert.equal(limiter.check("1.2.3.4", clock.now()).allowed, true);
  const first = limiter.check("1.2.3.4", clock.now());
  assert.equal(first.allowed, false);
  if (first.allowed) return;
  assert.equal(first.newlyBlocked, true);
  assert.equal(first.retryAfterSeconds, 60);
  assert.match(
    first.message,
    /more than 50 connections in 60 s.*blocked for 60 s, lifting in 60 s/,
  );
  assert.equal(limiter.check("5.6.7.8", clock.now()).allowed, true, "other IPs are not affected");
  clock.advance(45_500);
  const later = limiter.check("1.2.3.4", clock.now());
  assert.equal(later.allowed, false);
  if (later.allowed) return;
  assert.equal(later.newlyBlocked, false);
  assert.equal(later.retryAfterSeconds, 15);
  assert.match(later.message, /lifting in 15 s/);
  clock.advance(14_500);
  assert.equal(limiter.check("1.2.3.4", clock.now()).allowed, true, "the block lifts after 60 s");
});

Deno.test("RateLimiter starts a fresh window once the old one has passed", () => {
  const clock = new ManualClock();
  const limiter = new RateLimiter({ max: 3, windowSeconds: 10, blockSeconds: 10 });
  for (let i = 0; i < 3; i++) assert.equal(limiter.check("ip", clock.now()).allowed, true);
  clock.advance(10_000);
  for (let i = 0; i < 3; i++) assert.equal(limiter.check("ip", clock.now()).allowed, true);
  assert.equal(limiter.check("ip", clock.now()).allowed, false);
});

Deno.test("RateLimiter.prune() forgets quiet IPs but keeps blocked ones", () => {
  const clock = new ManualClock();
  const limiter = new RateLimiter({ max: 1, windowSeconds: 5, blockSeconds: 5 });
  limiter.check("quiet", clock.now());
  limiter.check("noisy", clock.now());
  clock.advance(3_000);
  assert.equal(limiter.check("noisy", clock.now()).allowed, false);
  clock.advance(2_000);
  limiter.prune(clock.now());
  assert.equal(limiter.trackedIps, 1);
  clock.advance(3_000);
  limiter.prune(clock.now());
  assert.equal(limiter.trackedIps, 0);
});

Deno.test("parseRateLimit() reads N/SECONDS and refuses anything else", () => {
  assert.deepEqual(parseRateLimit("3/60"), { max: 3, windowSeconds: 60, blockSeconds: 60 });
  assert.deepEqual(parseRateLimit(" 100 / 1 "), { max: 100, windowSeconds: 1, blockSeconds: 1 });
  for (const bad of ["", "3", "3/", "/60", "0/60", "3/0", "a/b", "3/60/1", "-1/60", "1.5/60"]) {
    assert.equal(parseRateLimit(bad), undefined, `for "${bad}"`);
  }
});
