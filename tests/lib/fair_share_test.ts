import assert from "node:assert/strict";
import { shedLargest } from "../../lib/output_budget.ts";
import { SlotCounter } from "../../lib/slot_counter.ts";
import { NoticeLimiter } from "../../peer/tui/notice_limiter.ts";
import { Admission } from "../../tracker/admission.ts";

Deno.test("SlotCounter caps each key and the total, and gives slots back", () => {
  const slots = new SlotCounter(3, 2);
  assert.equal(slots.take("a"), undefined);
  assert.equal(slots.take("a"), undefined);
  assert.equal(slots.take("a"), "per_key");
  assert.equal(slots.take("b"), undefined);
  assert.equal(slots.take("c"), "total");
  slots.give("a");
  assert.equal(slots.take("c"), undefined);
  assert.equal(slots.total, 3);
  slots.give("zzz"); // never took one: nothing changes
  assert.equal(slots.total, 3);
});

Deno.test("Admission keeps the reserved slots from sessions and says why it refuses", () => {
  const admission = new Admission({ maxConnections: 4, maxPerIp: 3, reservedForRequests: 1 });
  for (let index = 0; index < 3; index++) {
    assert.equal(admission.admit("10.0.0.1"), undefined);
  }
  assert.equal(admission.admit("10.0.0.1")?.reason, "per_ip");
  assert.equal(admission.admit("10.0.0.2"), undefined, "another address gets the last slot");
  assert.equal(admission.admit("10.0.0.3")?.reason, "max_connections");
  for (let index = 0; index < 3; index++) assert.equal(admission.openSession(), undefined);
  assert.match(admission.openSession()!.message, /Too many sessions \(limit 3\)/);
  admission.closeSession();
  assert.equal(admission.openSession(), undefined);
  admission.release("10.0.0.2");
  assert.equal(admission.admit("10.0.0.3"), undefined);
});

Deno.test("shedLargest() sheds the largest backlogs first until the total fits", () => {
  const sizes = new Map([["a", 10], ["b", 50], ["c", 30], ["d", 0]]);
  const sizeOf = (key: string) => sizes.get(key)!;
  assert.deepEqual(shedLargest(sizes.keys(), sizeOf, 90, 100), []);
  assert.deepEqual(shedLargest(sizes.keys(), sizeOf, 90, 40), ["b"]);
  assert.deepEqual(shedLargest(sizes.keys(), sizeOf, 90, 5), ["b", "c", "a"]);
});

Deno.test("NoticeLimiter shows 10 notices per window, then one summary", () => {
  const limiter = new NoticeLimiter(10, 5_000);
  let shown = 0;
  for (let index = 0; index < 1000; index++) {
    if (limiter.admit(index % 2 === 0 ? "connected" : "gone", 1_000 + index)) shown++;
  }
  assert.equal(shown, 10);
  assert.equal(limiter.summaryDueAt(), 6_000);
  assert.equal(limiter.takeSummary(6_000), "990 more peer notices (495 connected, 495 gone)");
  assert.equal(limiter.takeSummary(6_001), undefined);
  assert.equal(limiter.admit("connected", 6_002), true, "a new window starts");
});
