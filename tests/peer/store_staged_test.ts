/**
 * New messages are staged (one row of JSON per commit) before they reach the messages table:
 * what a commit staged survives a crash, duplicates are found wherever the first copy is, and
 * damaged staged rows are kept aside, not dropped.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MIGRATIONS } from "../../peer/store/schema.ts";
import { MAX_STAGED_TEXT } from "../../peer/store/limits.ts";
import { LOG_SUFFIX } from "../../peer/store/open.ts";
import { incoming, outgoing, TestStore } from "../_message_store.ts";

const PREFIX = "5f0c3a1e-7b2d-8c4e-9a6f-";

// A p2pchat msg_id: the connection's prefix, then a 12-digit counter.
function counted(n: number, prefix = PREFIX): string {
  return prefix + n.toString(16).padStart(12, "0");
}

// The database, its WAL and the message log as a crash leaves them: copied while the store
// still has them open.
function crashCopy(t: TestStore): string {
  const copy = `${t.dir}/crashed.db`;
  for (const suffix of ["", "-wal", LOG_SUFFIX]) {
    Deno.copyFileSync(`${t.path}${suffix}`, `${copy}${suffix}`);
  }
  return copy;
}

function tableCount(path: string, table: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

Deno.test("what a commit staged survives a crash, with the latest state of each message", async () => {
  using t = new TestStore("file");
  const first = t.store.addIncoming(incoming({ msgId: counted(1), text: "hello" }))!;
  const mine = t.store.addOutgoing(outgoing({ text: "hi back", state: "sent" }));
  await t.store.committed();
  t.store.setState(mine.id, "delivered");
  t.store.addIncoming(incoming({ msgId: counted(2), text: "how are you" }));
  await t.store.committed();
  const copy = crashCopy(t);
  t.store.close();

  const store = t.open({}, copy);
  const texts = store.page("bob@lobby").messages.map((m) => `${m.text}:${m.state}`);
  assert.deepEqual(texts, ["hello:delivered", "hi back:delivered", "how are you:delivered"]);
  assert.equal(store.conversations()[0].unread, 2);
  // Known again after the crash: the same message is not stored twice.
  assert.equal(store.addIncoming(incoming({ msgId: counted(1), text: "hello" })), undefined);
  assert.equal(store.byId(first.id)?.text, "hello");
  // New ids go on after the old ones.
  assert.ok(store.addIncoming(incoming({ msgId: counted(3) }))!.id > mine.id);
});

Deno.test("state changes of staged rows survive a crash, alone or with other columns", async () => {
  using t = new TestStore("file");
  const a = t.store.addOutgoing(outgoing({ text: "a", state: "sent" }));
  const b = t.store.addOutgoing(outgoing({ text: "b", state: "sent" }));
  const heard = t.store.addIncoming(incoming({ msgId: counted(1), text: "c" }))!;
  await t.store.committed();
  t.store.setState(a.id, "queued");
  t.store.setState(b.id, "queued");
  await t.store.committed();
  // Only the state, then the reason too, within one batch; and a read mark.
  t.store.setState(a.id, "sent");
  t.store.setState(a.id, "failed", "refused");
  t.store.markRead("bob@lobby");
  await t.store.committed();
  const store = t.open({}, crashCopy(t));
  const shown = store.page("bob@lobby").messages.map((m) => `${m.text}:${m.state}:${m.reason}`);
  assert.deepEqual(shown, ["a:failed:refused", "b:queued:undefined", "c:read:undefined"]);
  assert.equal(store.byId(heard.id)?.state, "read");
  assert.deepEqual(store.queued().map((m) => m.text), ["b"]);
});

Deno.test("a state change after the message was moved into the table is saved there", async () => {
  using t = new TestStore("file");
  const first = t.store.addOutgoing(outgoing({ text: "one", state: "sent" }));
  t.store.addOutgoing(outgoing({ text: "two", state: "sent" }));
  await t.store.committed();
  t.store.settle();
  const third = t.store.addOutgoing(outgoing({ text: "three", state: "sent" }));
  assert.equal(t.store.setState(first.id, "delivered")?.state, "delivered");
  assert.equal(t.store.setState(third.id, "delivered")?.state, "delivered");
  await t.store.committed();
  const store = t.open({}, crashCopy(t));
  const states = store.page("bob@lobby").messages.map((m) => `${m.text}:${m.state}`);
  assert.deepEqual(states, ["one:delivered", "two:sent", "three:delivered"]);
});

Deno.test("a duplicate is found whether staged, in the table, or from an earlier run", () => {
  using t = new TestStore("file");
  const add = (n: number, prefix?: string) =>
    t.store.addIncoming(incoming({ msgId: counted(n, prefix) }));
  assert.ok(add(5));
  assert.ok(add(7));
  assert.equal(add(5), undefined, "staged");
  t.store.page("bob@lobby"); // moves the staged rows into the table
  assert.equal(add(7), undefined, "in the table");
  assert.ok(add(6), "below the newest, but new");
  assert.equal(add(6), undefined);
  t.reopen();
  assert.equal(add(6), undefined, "from an earlier run");
  assert.equal(add(7), undefined);
  assert.ok(add(8));
  // Another connection (another prefix), and ids of another form, are checked too.
  assert.ok(add(5, "0123abcd-0000-8000-8000-"));
  assert.equal(add(5, "0123abcd-0000-8000-8000-"), undefined);
  assert.ok(t.store.addIncoming(incoming({ msgId: "6F0C3A1E-7B2D-8C4E-9A6F-00000000000A" })));
  assert.equal(
    t.store.addIncoming(incoming({ msgId: "6F0C3A1E-7B2D-8C4E-9A6F-00000000000A" })),
    undefined,
  );
  // The same id from someone else is their message, not a duplicate.
  assert.ok(t.store.addIncoming(incoming({ msgId: counted(5), from: "carol@lobby" })));
});

Deno.test("past maxStaged, each commit moves rows into the table; close moves the rest", async () => {
  using t = new TestStore("file", { maxStaged: 10 });
  // Ids that need a lookup: no message goes to the message log (store_log_test.ts).
  for (let i = 0; i < 25; i++) t.store.addIncoming(incoming({ msgId: `m-${i}` }));
  await t.store.committed();
  t.store.flush();
  const copy = crashCopy(t);
  assert.equal(tableCount(copy, "messages"), 15);
  t.store.close();
  assert.equal(tableCount(t.path, "messages"), 25);
  assert.equal(tableCount(t.path, "staged"), 0);
  t.open();
});

Deno.test("a pause in the writes moves staged rows into the table", async () => {
  using t = new TestStore("file");
  for (let i = 0; i < 3000; i++) t.store.addIncoming(incoming({ msgId: counted(i) }));
  await t.store.committed();
  for (let tick = 0; tick < 10; tick++) {
    t.clock.advance(25);
    await t.store.committed();
  }
  t.store.flush();
  assert.equal(tableCount(crashCopy(t), "messages"), 3000);
});

Deno.test("every read takes the staged rows where they are: nothing moves into the table", async () => {
  using t = new TestStore("file");
  for (let i = 0; i < 50; i++) {
    t.store.addIncoming(incoming({ msgId: counted(i), text: `Word ${i}` }));
  }
  const queued = t.store.addOutgoing(outgoing({ text: "later", state: "queued" }));
  const room = t.store.addOutgoing(
    outgoing({ conversation: "#games", kind: "pub", state: "sent", pendingFor: ["carol"] }),
  );
  const sent = t.store.addOutgoing(outgoing({ text: "unanswered", state: "sent" }));
  t.store.setState(sent.id, "queued");
  await t.store.committed();

  const page = t.store.page("bob@lobby", { limit: 10 });
  assert.deepEqual(page.messages.map((m) => m.text), [
    ...[42, 43, 44, 45, 46, 47, 48, 49].map((i) => `Word ${i}`),
    "later",
    "unanswered",
  ]);
  const older = t.store.page("bob@lobby", { limit: 5, before: page.messages[0].id });
  assert.deepEqual(older.messages.map((m) => m.text), [37, 38, 39, 40, 41].map((i) => `Word ${i}`));
  const newer = t.store.page("bob@lobby", { limit: 3, after: page.messages[6].id });
  assert.deepEqual(newer.messages.map((m) => m.text), ["Word 49", "later", "unanswered"]);
  assert.equal(newer.more, false);
  assert.equal(page.more, true);
  assert.deepEqual(t.store.search("word 4", 3).map((m) => m.text), [
    "Word 49",
    "Word 48",
    "Word 47",
  ]);
  assert.deepEqual(t.store.queuedFor("bob@lobby").map((m) => m.id), [queued.id, sent.id]);
  assert.deepEqual(t.store.queued().map((m) => m.id), [queued.id, sent.id]);
  assert.deepEqual(t.store.pendingFor("carol").map((m) => m.id), [room.id]);
  assert.equal(t.store.markRead("bob@lobby").length, 50);
  await t.store.committed();
  const copy = crashCopy(t);
  assert.equal(tableCount(copy, "messages"), 0);

  // A crash keeps all of it, the outbox included.
  t.store.close();
  const store = t.open({}, copy);
  assert.deepEqual(store.queued().map((m) => m.id), [queued.id, sent.id]);
  assert.deepEqual(store.pendingFor("carol").map((m) => m.id), [room.id]);
  assert.equal(store.conversations().find((c) => c.conversation === "bob@lobby")?.unread, 0);
  const expired = store.expire(Date.UTC(2030, 0, 1), 1000);
  assert.deepEqual(expired.map((m) => [m.id, m.state]).sort(), [
    [queued.id, "failed"],
    [room.id, "failed"],
    [sent.id, "failed"],
  ]);
});

Deno.test("a receipt reads new messages where they are: a burst stays staged", async () => {
  using t = new TestStore("file");
  const mine = t.store.addOutgoing(outgoing({ text: "hi", state: "sent" }));
  for (let i = 0; i < 500; i++) t.store.addIncoming(incoming({ msgId: counted(i) }));
  await t.store.committed();
  const moved = t.store.receipt("bob@lobby", [mine.msgId, "no-such-id"], "read");
  assert.deepEqual(moved.map((m) => [m.id, m.state]), [[mine.id, "read"]]);
  // Another conversation's receipt moves nothing.
  assert.deepEqual(t.store.receipt("carol@lobby", [mine.msgId], "read"), []);
  await t.store.committed();
  const copy = crashCopy(t);
  assert.equal(tableCount(copy, "messages"), 0);
  t.store.close();
  assert.equal(t.open({}, copy).byId(mine.id)?.state, "read");
});

Deno.test("staged text is capped: long messages move into the table as they come", async () => {
  using t = new TestStore("file");
  const text = "x".repeat(60_000);
  // Half as much again as the cap holds.
  const count = Math.ceil(1.5 * MAX_STAGED_TEXT / text.length);
  for (let i = 0; i < count; i++) {
    t.store.addIncoming(incoming({ msgId: `m-${i}`, text }));
    await t.store.committed();
  }
  t.store.flush();
  const staged = Math.ceil(MAX_STAGED_TEXT / text.length);
  assert.ok(tableCount(crashCopy(t), "messages") >= count - staged);
});

Deno.test("an id shaped like a counted one but with a NUL in its prefix is still found after a restart", () => {
  using t = new TestStore("file");
  const odd = `\u0000${PREFIX.slice(1)}`;
  assert.ok(t.store.addIncoming(incoming({ msgId: counted(5, odd) })));
  assert.ok(t.store.addIncoming(incoming({ msgId: counted(3, odd) })));
  t.store.settle();
  t.reopen();
  // A new one between them, then the higher one again.
  assert.ok(t.store.addIncoming(incoming({ msgId: counted(4, odd) })));
  for (const n of [5, 3]) {
    assert.equal(t.store.addIncoming(incoming({ msgId: counted(n, odd) })), undefined, `id ${n}`);
  }
});

Deno.test("long msg_ids count against the staged cap, and are still found as duplicates", async () => {
  using t = new TestStore("file");
  const longId = (i: number) => `${i}-${"y".repeat(32_000)}`;
  // Ids half as long again as the cap: some moved into the table already.
  const count = Math.ceil(1.5 * MAX_STAGED_TEXT / 32_000);
  for (let i = 0; i < count; i++) {
    assert.ok(t.store.addIncoming(incoming({ msgId: longId(i), text: "short" })));
    await t.store.committed();
  }
  const staged = Math.ceil(MAX_STAGED_TEXT / 32_000);
  assert.ok(tableCount(crashCopy(t), "messages") >= count - staged);
  for (const i of [0, count - 1]) {
    assert.equal(t.store.addIncoming(incoming({ msgId: longId(i) })), undefined, `id ${i}`);
  }
  assert.ok(t.store.addIncoming(incoming({ msgId: longId(count) })));
});

Deno.test("damaged staged rows: the file is moved aside with them, not emptied", async () => {
  const damage = [
    "UPDATE staged SET rows = 'not json'",
    "UPDATE staged SET rows = '[[1, 2, 3]]'",
    // A new state for a row no batch holds.
    "UPDATE staged SET rows = json_replace(rows, '$[0]', json('[2, 3]'))",
    "UPDATE staged SET rows = json_replace(rows, '$[0][1]', 999)",
    // An id not handed out yet, or one the table holds (merged_upto set back).
    "UPDATE staged SET rows = json_replace(rows, '$[0][0]', 1000000)",
    "UPDATE meta SET value = 0 WHERE key = 'merged_upto'; " +
    "UPDATE staged SET rows = json_replace(rows, '$[0][0]', 1)",
    // Numbers out of range, and states p2pchat never gives (a received message queued).
    "UPDATE staged SET batch = 9007199254740993",
    "UPDATE staged SET last_id = 'x'",
    "UPDATE staged SET rows = json_replace(rows, '$[0][0]', -5)",
    "UPDATE staged SET rows = json_replace(rows, '$[0][4]', 99)",
    "UPDATE staged SET rows = json_replace(rows, '$[0][4]', 0)",
  ];
  for (const change of damage) {
    using t = new TestStore("file");
    t.store.addIncoming(incoming({ msgId: counted(0), text: "in the table" }));
    t.store.settle();
    t.store.addIncoming(incoming({ msgId: "m-1", text: "kept aside" }));
    await t.store.committed();
    const copy = crashCopy(t);
    t.store.close();
    const db = new DatabaseSync(copy);
    db.exec(change);
    db.close();
    const store = t.open({}, copy);
    const status = store.storage();
    assert.ok(status.movedAside, change);
    assert.deepEqual(store.conversations(), [], change);
    assert.equal(tableCount(status.movedAside!, "staged"), 1, change);
    assert.ok(t.logged.some((line) => /staged/.test(line)), t.logged.join("\n"));
  }
});

Deno.test("a version 1 database is brought to version 2 with its messages", () => {
  using t = new TestStore("file");
  t.store.close();
  Deno.removeSync(t.path);
  const db = new DatabaseSync(t.path);
  db.exec(MIGRATIONS[0]);
  db.exec("PRAGMA user_version = 1");
  db.exec(`INSERT INTO conversations (id, name, last_id, unread) VALUES (1, 'bob@lobby', 2, 2);
    INSERT INTO peers (id, peer_id) VALUES (1, 'bob@lobby');
    INSERT INTO messages (id, conversation, sender, flags, state, at, msg_id, text)
      VALUES (1, 1, 1, 0, 2, 1000, 'a', 'one'), (2, 1, 1, 0, 2, 2000, 'b', 'two');
    UPDATE meta SET value = 3 WHERE key = 'next_id'`);
  db.close();
  const store = t.open();
  assert.deepEqual(store.page("bob@lobby").messages.map((m) => m.text), ["one", "two"]);
  assert.equal(store.addIncoming(incoming({ msgId: "b" })), undefined);
  assert.equal(store.addIncoming(incoming({ msgId: "c", text: "three" }))!.id, 3);
  t.reopen();
  assert.deepEqual(t.store.page("bob@lobby").messages.map((m) => m.text), ["one", "two", "three"]);
});
