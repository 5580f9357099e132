import assert from "node:assert/strict";
import { RecentIds } from "../../peer/protocol/recent_ids.ts";

const UUID = "0b7c1a52-3f43-4c5e-9a55-5f1f3c2d9e10";

Deno.test("RecentIds knows an id once per sender", () => {
  const seen = new RecentIds();
  assert.equal(seen.add("a@n", UUID), true);
  assert.equal(seen.add("a@n", UUID), false);
  // Another sender reusing the id is not a duplicate.
  assert.equal(seen.add("b@n", UUID), true);
  assert.equal(seen.add("b@n", UUID), false);
  assert.equal(seen.size, 2);
});

Deno.test("RecentIds forgets the oldest ids first and stays within its capacity", () => {
  const seen = new RecentIds(3);
  for (const id of ["1", "2", "3", "4"]) assert.equal(seen.add("a@n", id), true);
  assert.equal(seen.size, 3);
  assert.equal(seen.add("a@n", "1"), true, "the oldest was forgotten");
  assert.equal(seen.add("a@n", "3"), false);
  assert.equal(seen.add("a@n", "4"), false);
  assert.throws(() => new RecentIds(0), RangeError);
});

Deno.test("RecentIds keeps ids that share a bucket apart, and forgets each alone", () => {
  const seen = new RecentIds(2, 12345);
  // Find two ids with the same 30-bit hash under this seed (about 2^15 tries).
  const byHash = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const id = `id-${i}`;
    const other = byHash.get(seen.hashOf(id));
    if (other !== undefined) pair = [other, id];
    byHash.set(seen.hashOf(id), id);
  }
  const [first, second] = pair;
  assert.equal(seen.add("a@n", first), true);
  assert.equal(seen.add("a@n", second), true);
  assert.equal(seen.add("a@n", first), false);
  assert.equal(seen.add("a@n", second), false);
  // A third id evicts `first` only.
  assert.equal(seen.add("a@n", "third"), true);
  assert.equal(seen.add("a@n", second), false);
  assert.equal(seen.add("a@n", first), true);
});

Deno.test("RecentIds remembers long ids by a digest that still tells them apart", () => {
  const seen = new RecentIds();
  const long = "x".repeat(32_000);
  assert.equal(seen.add("a@n", long), true);
  assert.equal(seen.add("a@n", long), false);
  assert.equal(seen.add("a@n", long.slice(1) + "y"), true);
  assert.equal(seen.add("b@n", long), true);
});
