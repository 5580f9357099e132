/**
 * The search index is filled after the writes, in steps driven by the clock: answers are the
 * same before and after it catches up, and pruned messages leave it.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { INDEX_INTERVAL_MS } from "../../peer/store/limits.ts";
import { incoming, TestStore, type TestStore as TestStoreType } from "../_message_store.ts";

const WORDS = ["lunch", "dinner", "meeting", "Zebra", "tomorrow", "50%_off"];

function fill(t: TestStoreType, count: number): void {
  for (let i = 0; i < count; i++) {
    t.store.addIncoming(incoming({ text: `${WORDS[i % WORDS.length]} number ${i}`, at: i }));
  }
}

/** Lets the clock run until the index has caught up (each step commits on its own). */
async function catchUp(t: TestStoreType, steps: number): Promise<void> {
  await t.store.committed();
  for (let i = 0; i < steps; i++) {
    t.clock.advance(INDEX_INTERVAL_MS);
    await t.store.committed();
  }
}

function indexedUpto(path: string): number {
  const db = new DatabaseSync(path);
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'indexed_upto'").get() as {
      value: number;
    };
    const { last } = db.prepare("SELECT max(id) AS last FROM messages").get() as { last: number };
    // Once caught up, the index must hold exactly the rows (rank 1: a missed delete fails).
    if (row.value === last) {
      db.exec("INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)");
    }
    return row.value;
  } finally {
    db.close();
  }
}

Deno.test("search answers the same before and after the index catches up", async () => {
  using t = new TestStore("file");
  fill(t, 1200);
  const queries = ["zebra", "50%_", "number 11", "%", "er n", "nothing like it"];
  const before = queries.map((q) => t.store.search(q, 500).map((m) => m.id));
  await catchUp(t, 4);
  const after = queries.map((q) => t.store.search(q, 500).map((m) => m.id));
  assert.deepEqual(after, before);
  assert.equal(before[0].length, 200);
  assert.ok(before[0].every((id, i) => i === 0 || id < before[0][i - 1]), "newest first");
  // Newer messages than the index are found too, first.
  const newest = t.store.addIncoming(incoming({ text: "a zebra at last" }))!;
  assert.equal(t.store.search("ZEBRA", 2)[0].id, newest.id);
  await catchUp(t, 10);
  t.store.close();
  assert.equal(indexedUpto(t.path), newest.id);
  t.open();
});

Deno.test("the index is filled a bounded step at a time, only as the clock moves", async () => {
  using t = new TestStore("file");
  fill(t, 1200);
  await t.store.committed();
  t.store.close();
  assert.equal(indexedUpto(t.path), 0);
  t.open();
  await catchUp(t, 1);
  t.store.close();
  assert.equal(indexedUpto(t.path), 500);
  t.open();
  await catchUp(t, 3);
  t.store.close();
  assert.equal(indexedUpto(t.path), 1200);
  t.open();
});

Deno.test("pruned messages leave the search index", async () => {
  using t = new TestStore("file", { maxMessages: 600 });
  fill(t, 1200);
  await catchUp(t, 4);
  let pruned = 0;
  for (let step = t.store.prune(0); step > 0; step = t.store.prune(0)) pruned += step;
  assert.equal(pruned, 600);
  await t.store.committed();
  const found = t.store.search("zebra", 500);
  assert.equal(found.length, 100);
  assert.ok(found.every((m) => Number(m.text.split(" ").pop()) >= 600));
  t.store.close();
  assert.equal(indexedUpto(t.path), 1200);
  t.open();
});
