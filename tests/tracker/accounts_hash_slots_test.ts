import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { HashSlots } from "../../tracker/accounts/hash_slots.ts";

Deno.test("HashSlots runs at most its number of slots at once, in arrival order", async () => {
  const slots = new HashSlots(2, 10);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  const jobs = gates.map((gate, index) =>
    slots.run(async () => {
      running++;
      most = Math.max(most, running);
      order.push(index);
      await gate.promise;
      running--;
    })
  );
  await Promise.resolve();
  assert.equal(slots.waiting, 3);
  for (const gate of gates) gate.resolve();
  await Promise.all(jobs);
  assert.equal(most, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
});

Deno.test("HashSlots refuses with busy once its queue is full, and frees slots after errors", async () => {
  const slots = new HashSlots(1, 1);
  const gate = Promise.withResolvers<void>();
  const first = slots.run(() => gate.promise);
  const queued = slots.run(() => Promise.reject(new Error("hash failed")));
  await assert.rejects(
    () => slots.run(() => Promise.resolve()),
    (error: unknown) => error instanceof P2pError && error.code === "busy",
  );
  gate.resolve();
  await first;
  await assert.rejects(queued, /hash failed/);
  assert.equal(await slots.run(() => Promise.resolve("after")), "after");
});
