import assert from "node:assert/strict";
import { PendingSends } from "../../peer/protocol/pending_sends.ts";

// Tells the same as a Map of the sends (insertion order, replacing in place) would.
function assertSame(pending: PendingSends<string>, model: Map<number, string>): void {
  assert.equal(pending.size, model.size);
  assert.deepEqual([...pending.entries()], [...model.entries()]);
  assert.equal(pending.oldest(), model.values().next().value);
}

Deno.test("PendingSends keeps sends in call order as a Map would, through thousands of answers", () => {
  const pending = new PendingSends<string>();
  const model = new Map<number, string>();
  // A fixed pseudo-random walk: mostly new numbers, some sent again (outbox retries under an
  // older number, or a foreign id's negative one), answers mostly oldest first.
  let state = 12345;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let next = 0;
  let foreign = -1;
  for (let step = 0; step < 20_000; step++) {
    const roll = random();
    if (roll < 0.45) {
      const seq = next++;
      pending.set(seq, `send ${seq}`);
      model.set(seq, `send ${seq}`);
    } else if (roll < 0.5) {
      const seq = random() < 0.5 ? foreign-- : Math.floor(random() * next);
      pending.set(seq, `again ${seq} at ${step}`);
      model.set(seq, `again ${seq} at ${step}`);
    } else if (roll < 0.9) {
      const seq = model.keys().next().value;
      if (seq !== undefined) {
        pending.delete(seq);
        model.delete(seq);
      }
    } else {
      const seq = Math.floor(random() * next);
      assert.equal(pending.get(seq), model.get(seq));
      pending.delete(seq);
      model.delete(seq);
    }
    if (step % 997 === 0) assertSame(pending, model);
  }
  assertSame(pending, model);
  assert.equal(pending.get(next), undefined);
});

Deno.test("PendingSends can be emptied while it is walked, as the ACK deadline does", () => {
  const pending = new PendingSends<string>();
  for (let seq = 0; seq < 1000; seq++) pending.set(seq, `send ${seq}`);
  const walked: number[] = [];
  for (const [seq] of pending.entries()) {
    walked.push(seq);
    pending.delete(seq);
  }
  assert.deepEqual(walked, Array.from({ length: 1000 }, (_, seq) => seq));
  assert.equal(pending.size, 0);
  assert.equal(pending.oldest(), undefined);
  pending.set(5, "later");
  assert.deepEqual([...pending.entries()], [[5, "later"]]);
});

Deno.test("PendingSends does not keep the answered sends behind one left unanswered", () => {
  const pending = new PendingSends<string>();
  const model = new Map<number, string>();
  const add = (seq: number) => {
    pending.set(seq, `send ${seq}`);
    model.set(seq, `send ${seq}`);
  };
  // The peer never answers the first, nor every 97th; it answers the rest as they go.
  add(0);
  for (let seq = 1; seq < 50_000; seq++) {
    add(seq);
    if (seq % 97 !== 0) {
      pending.delete(seq);
      model.delete(seq);
    }
    assert.ok(pending.held <= 4 * pending.size + 1024, `${pending.held} slots for ${pending.size}`);
  }
  assertSame(pending, model);
  // Their places are right after the moves: each is still found, replaced and answered.
  pending.set(97 * 3, "again");
  model.set(97 * 3, "again");
  for (const seq of [0, 97, 97 * 400]) {
    assert.equal(pending.get(seq), model.get(seq));
    pending.delete(seq);
    model.delete(seq);
  }
  assertSame(pending, model);
});
