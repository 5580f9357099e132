/**
 * A disk that fills up while the peer runs: the store goes on in memory with everything it
 * had, including the batch the disk refused, and says so once.
 */
import assert from "node:assert/strict";
import { incoming, outgoing, TestStore } from "../_message_store.ts";

// Room for the schema and a few small messages; rows of 3000 characters soon pass it.
const FULL_AT_PAGES = 40;

Deno.test("a disk full mid-run: the store goes on in memory and loses nothing", async () => {
  using t = new TestStore("file");
  t.store.close();
  const store = t.open({
    onConnection: (db) => db.exec(`PRAGMA max_page_count = ${FULL_AT_PAGES}`),
  });
  store.addContact("bob@lobby", 1);
  const early = store.addIncoming(incoming({ msgId: "early", text: "committed before" }))!;
  const waiting = store.addOutgoing(outgoing({ state: "queued", text: "in the outbox" }));
  await store.committed();
  assert.equal(store.storage().persistent, true);

  // One batch that the disk cannot take.
  const batch = [];
  for (let i = 0; i < 60; i++) {
    batch.push(
      store.addIncoming(incoming({ msgId: `big-${i}`, text: `${i} ${"y".repeat(3000)}` })),
    );
  }
  store.markRead("bob@lobby");
  await store.committed();

  const status = store.storage();
  assert.equal(status.persistent, false);
  assert.equal(status.path, t.path);
  assert.match(status.problem!, /database or disk is full/);
  assert.match(status.problem!, /history is not being saved/);
  assert.deepEqual(t.problems, [status], "onProblem told once");
  assert.ok(t.logged.some((line) => line.includes("ERROR") && line.includes("disk is full")));

  // Every message of the refused batch kept its id and is there, after the earlier ones.
  assert.ok(batch.every((m) => m !== undefined));
  const ids = batch.map((m) => m!.id);
  assert.deepEqual(ids, ids.map((_, i) => waiting.id + 1 + i));
  const page = store.page("bob@lobby", { limit: 500 });
  assert.deepEqual(page.messages.map((m) => m.id), [early.id, waiting.id, ...ids]);
  assert.ok(page.messages.filter((m) => !m.outgoing).every((m) => m.state === "read"));
  assert.equal(store.byId(ids[59])!.text, `59 ${"y".repeat(3000)}`);
  // What was committed before came along: outbox, contacts, de-duplication.
  assert.deepEqual(store.queued().map((m) => m.id), [waiting.id]);
  assert.equal(store.isContact("bob@lobby"), true);
  assert.equal(store.addIncoming(incoming({ msgId: "early" })), undefined);
  assert.equal(store.addIncoming(incoming({ msgId: "big-3" })), undefined);
  // And it keeps working, with ids that go on.
  const later = store.addIncoming(incoming({ text: "later" }))!;
  assert.equal(later.id, ids[59] + 1);
  await store.committed();
  assert.deepEqual(store.search("later").map((m) => m.id), [later.id]);
  assert.equal(t.problems.length, 1);
});

Deno.test("after a disk full, the file still holds what was committed before", async () => {
  using t = new TestStore("file");
  t.store.close();
  const store = t.open({
    onConnection: (db) => db.exec(`PRAGMA max_page_count = ${FULL_AT_PAGES}`),
  });
  store.addIncoming(incoming({ text: "saved" }));
  await store.committed();
  for (let i = 0; i < 60; i++) store.addIncoming(incoming({ text: "z".repeat(3000) }));
  await store.committed();
  assert.equal(store.storage().persistent, false);
  t.reopen();
  assert.deepEqual(t.store.storage(), { persistent: true, path: t.path });
  assert.deepEqual(t.store.page("bob@lobby").messages.map((m) => m.text), ["saved"]);
});

Deno.test("history in memory keeps its newest 64 MiB: a flood cannot take the machine's memory", async () => {
  using t = new TestStore("memory");
  const text = "z".repeat(4000);
  const count = 24_000; // ~96 MB of text
  const ids: number[] = [];
  for (let batch = 0; batch < count / 200; batch++) {
    for (let i = 0; i < 200; i++) {
      ids.push(t.store.addIncoming(incoming({ msgId: `f-${ids.length}`, text }))!.id);
    }
    await t.store.committed();
  }
  t.store.settle();
  await t.store.committed();
  const kept = ids.filter((id) => t.store.byId(id) !== undefined).length;
  assert.ok(kept < count * 0.75, `kept ${kept} of ${count}`);
  assert.ok(kept > count * 0.5, `kept ${kept} of ${count}`);
  assert.equal(t.store.byId(ids[0]), undefined, "the oldest went");
  assert.equal(t.store.byId(ids.at(-1)!)?.text, text, "the newest stayed");
});
