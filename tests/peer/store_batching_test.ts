/**
 * Writes are batched: what one run of code writes shares a commit, which happens before the
 * event loop turns (no timer) when someone waits for it, and within the commit delay otherwise; checkpoints and search indexing wait for a pause in the writes,
 * and a few writes are only made durable (a WAL fsync) until the store has been quiet a while.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  CHECKPOINT_IDLE_MS,
  CHECKPOINT_PAUSE_WRITES,
  COMMIT_DELAY_MS,
  INDEX_INTERVAL_MS,
} from "../../peer/store/limits.ts";
import { incoming, outgoing, TestStore } from "../_message_store.ts";

Deno.test("the writes of one run of code share one commit, made before any timer fires", async () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  let timerFired = false;
  setTimeout(() => timerFired = true, 0);
  for (let i = 0; i < 500; i++) t.store.addIncoming(incoming());
  t.store.markRead("bob@lobby");
  await t.store.committed();
  assert.equal(commits, 1);
  assert.equal(timerFired, false, "an acknowledgement need not wait for a timer");
  // A later run is a later commit; committed() with nothing pending resolves at once.
  t.store.addIncoming(incoming());
  await t.store.committed();
  await t.store.committed();
  assert.equal(commits, 2);
  await new Promise((resolve) => setTimeout(resolve, 0));
});

Deno.test("messages we send commit once the code that sent them yields, all in one commit", async () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  for (let i = 0; i < 3; i++) t.store.addOutgoing(outgoing());
  assert.equal(commits, 0);
  await Promise.resolve();
  assert.equal(commits, 1, "before an ACK can come");
});

Deno.test("a batch nobody waits for commits on a timer, within the commit delay", async () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  const [a, b] = [t.store.addOutgoing(outgoing()), t.store.addOutgoing(outgoing())];
  await Promise.resolve();
  commits = 0;
  // Their ACKs: states nobody waits for.
  t.store.delivered(a);
  t.store.setState(b.id, "delivered");
  await Promise.resolve();
  assert.equal(commits, 0, "a sender's ACKs do not pay a commit each time the code yields");
  await new Promise((resolve) => setTimeout(resolve, COMMIT_DELAY_MS + 20));
  assert.equal(commits, 1);
});

Deno.test("a batch commits within its delay even when the wall clock steps back", async () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  const sent = t.store.addOutgoing(outgoing());
  await Promise.resolve();
  commits = 0;
  // A batch nobody waits for is open when the system clock is set back a minute (NTP).
  t.store.delivered(sent);
  const now = Date.now;
  Date.now = () => now() - 60_000;
  try {
    await new Promise((resolve) => setTimeout(resolve, COMMIT_DELAY_MS + 40));
  } finally {
    Date.now = now;
  }
  assert.equal(commits, 1);
});

Deno.test("a batch past its delay commits at a later write, while timers cannot fire", async () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  const sent = Array.from({ length: 17 }, () => t.store.addOutgoing(outgoing()));
  await Promise.resolve();
  commits = 0;
  t.store.setState(sent[0].id, "delivered");
  // The event loop is kept busy (as by reads completing one after another): no timer runs.
  const until = Date.now() + COMMIT_DELAY_MS + 2;
  while (Date.now() < until) { /* busy */ }
  for (const message of sent.slice(1)) t.store.setState(message.id, "delivered");
  await Promise.resolve();
  assert.equal(commits, 1);
  t.store.flush();
});

Deno.test("flush() commits at once, and a closed store refuses to be used", () => {
  let commits = 0;
  using t = new TestStore("file", {}, { onCommit: () => commits++ });
  t.store.addIncoming(incoming());
  t.store.flush();
  assert.equal(commits, 1);
  t.store.close();
  assert.throws(() => t.store.addIncoming(incoming()), /closed/);
  t.open();
});

// Indexing, then what a pause in the writes does.
async function pause(t: TestStore): Promise<void> {
  for (let i = 0; i < 3; i++) {
    t.clock.advance(INDEX_INTERVAL_MS);
    await t.store.committed();
  }
}

Deno.test("a pause after a few writes syncs the WAL in the background; a quiet store checkpoints", async () => {
  const synced = Promise.withResolvers<void>();
  using t = new TestStore("file", {}, { onWalSynced: () => synced.resolve() });
  await t.store.committed();
  t.clock.advance(INDEX_INTERVAL_MS);
  const empty = Deno.statSync(t.path).size;
  for (let i = 0; i < 30; i++) t.store.addIncoming(incoming({ text: "x".repeat(200) }));
  await t.store.committed();
  await pause(t);
  await synced.promise;
  assert.equal(Deno.statSync(t.path).size, empty, "no checkpoint yet: the WAL holds the commits");
  // A write within the quiet spell puts the checkpoint off by another spell.
  t.clock.advance(CHECKPOINT_IDLE_MS / 2);
  t.store.addIncoming(incoming());
  await t.store.committed();
  t.clock.advance(CHECKPOINT_IDLE_MS / 2);
  assert.equal(Deno.statSync(t.path).size, empty);
  await pause(t);
  // A whole spell after the last commit (the pause's), not more.
  t.clock.advance(CHECKPOINT_IDLE_MS);
  assert.ok(Deno.statSync(t.path).size > empty + 30 * 200, "checkpointed");
});

Deno.test("a pause after many writes copies the WAL into the database file at once", async () => {
  using t = new TestStore("file");
  await t.store.committed();
  t.clock.advance(INDEX_INTERVAL_MS);
  const empty = Deno.statSync(t.path).size;
  for (let i = 0; i < CHECKPOINT_PAUSE_WRITES; i++) t.store.addIncoming(incoming());
  await t.store.committed();
  assert.equal(Deno.statSync(t.path).size, empty, "commits go to the WAL");
  await pause(t);
  assert.ok(Deno.statSync(t.path).size > empty + CHECKPOINT_PAUSE_WRITES * 50, "checkpointed");
});

Deno.test("indexing waits while writes keep coming, but not for ever", async () => {
  using t = new TestStore("file");
  for (let i = 0; i < 100; i++) t.store.addIncoming(incoming({ text: `first ${i}` }));
  await t.store.committed();
  // A message every interval: the index step is put off, at most 8 times.
  for (let i = 0; i < 9; i++) {
    t.store.addIncoming(incoming({ text: `trickle ${i}` }));
    await t.store.committed();
    t.clock.advance(INDEX_INTERVAL_MS);
    await t.store.committed();
  }
  t.store.close();
  const db = new DatabaseSync(t.path, { readOnly: true });
  const { value } = db.prepare("SELECT value FROM meta WHERE key = 'indexed_upto'").get() as {
    value: number;
  };
  db.close();
  assert.ok(value >= 100, `indexed up to ${value}`);
  t.open();
});
