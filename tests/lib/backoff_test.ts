import assert from "node:assert/strict";
import { backoffDelay } from "../../lib/backoff.ts";

Deno.test("backoffDelay follows gRPC: 1 s, x1.6, capped at 120 s", () => {
  const middle = () => 0.5; // no jitter
  const delays = Array.from({ length: 14 }, (_, i) => backoffDelay(i + 1, middle));
  assert.deepEqual(delays.slice(0, 5), [1000, 1600, 2560, 4096, 6554]);
  assert.equal(delays[11], 120_000);
  assert.equal(delays[13], 120_000);
});

Deno.test("backoffDelay spreads each delay by at most 20% either way", () => {
  assert.equal(backoffDelay(1, () => 0), 800);
  assert.equal(backoffDelay(1, () => 0.999999), 1200);
  assert.equal(backoffDelay(30, () => 0), 96_000);
  assert.equal(backoffDelay(30, () => 0.999999), 144_000);
});

Deno.test("backoffDelay rejects an attempt number below 1", () => {
  assert.throws(() => backoffDelay(0), RangeError);
  assert.throws(() => backoffDelay(1.5), RangeError);
});
