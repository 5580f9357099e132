/** Work goes on at once within a slice; past it, every caller waits for the loop's turn. */
import assert from "node:assert/strict";
import { WorkSlices } from "../../lib/work_slices.ts";

function slices() {
  let now = 0;
  const turns: (() => void)[] = [];
  const work = new WorkSlices({
    sliceMs: 1,
    now: () => now,
    yieldToLoop: () => new Promise<void>((resolve) => turns.push(resolve)),
  });
  return { work, turns, at: (ms: number) => (now = ms) };
}

Deno.test("work within a slice goes on at once; past it, every caller waits one turn", async () => {
  const { work, turns, at } = slices();
  at(0);
  assert.equal(work.turn(), undefined);
  at(0.5);
  assert.equal(work.turn(), undefined);
  at(1.2);
  const first = work.turn();
  assert.ok(first, "the slice is spent");
  // Another client's work in the same run waits for the same turn, not a fresh slice.
  const second = work.turn();
  assert.equal(second, first);
  assert.equal(turns.length, 1);
  turns[0]();
  await first;
  at(1.3);
  assert.equal(work.turn(), undefined, "a new slice after the turn");
});

Deno.test("a request after the loop was idle never waits", () => {
  const { work, at } = slices();
  at(0);
  assert.equal(work.turn(), undefined);
  at(0.9);
  assert.equal(work.turn(), undefined);
  // 5 ms without a call: the loop was idle, so this starts a new slice.
  at(5.9);
  assert.equal(work.turn(), undefined);
});
