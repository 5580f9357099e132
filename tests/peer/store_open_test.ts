/**
 * Opening the message store on bad ground: another peer on the profile, a damaged file, a
 * newer schema, a folder that cannot be written, a full disk. And what a crash keeps.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { P2pError } from "../../lib/errors.ts";
import { incoming, outgoing, StoreChild, TestStore } from "../_message_store.ts";
import { SCHEMA_VERSION } from "../../peer/store/schema.ts";

function files(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

Deno.test("a second store on the same file fails with store_in_use; the first keeps working", () => {
  using t = new TestStore("file");
  t.store.addIncoming(incoming({ text: "before" }));
  t.store.flush();
  const before = Deno.readFileSync(t.path);
  assert.throws(
    () => t.open(),
    (error) =>
      error instanceof P2pError && error.code === "store_in_use" &&
      error.message.includes(`"${t.dir}"`) &&
      /another p2pchat peer is running/i.test(error.message),
  );
  assert.deepEqual(Deno.readFileSync(t.path), before, "the failed open wrote nothing");
});

Deno.test("a store held by another process: store_in_use here, the other one still writes", async () => {
  using t = new TestStore("file");
  t.store.close();
  await using child = new StoreChild(t.path);
  assert.equal(await child.answer(), "ready");
  assert.equal(await child.ask("write 3"), "committed 3");
  assert.throws(() => t.open(), { code: "store_in_use" });
  assert.equal(await child.ask("write 2"), "committed 2");
  assert.equal(await child.ask("count"), "count 5");
  await child.ask("exit").catch(() => {});
  await child[Symbol.asyncDispose]();
  const store = t.open();
  assert.equal(store.page("bob@lobby").messages.length, 5);
});

Deno.test("messages committed before a kill -9 are there on the next start", async () => {
  using t = new TestStore("file");
  t.store.close();
  const child = new StoreChild(t.path);
  try {
    assert.equal(await child.answer(), "ready");
    assert.equal(await child.ask("write 100"), "committed 100");
    assert.equal(await child.ask("write 28"), "committed 28");
  } finally {
    await child.kill();
  }
  const store = t.open();
  assert.deepEqual(store.storage(), { persistent: true, path: t.path });
  const texts = store.page("bob@lobby", { limit: 500 }).messages.map((m) => m.text);
  assert.equal(texts.length, 128);
  assert.equal(texts.at(-1), "message 128");
  // And they still count as seen: a re-sent one is a duplicate.
  assert.equal(store.addIncoming(incoming({ msgId: "child-7", from: "bob@lobby" })), undefined);
});

Deno.test("a file that is not a database is moved aside with its WAL and reported", () => {
  using t = new TestStore("file");
  t.store.close();
  const garbage = new TextEncoder().encode("not a database at all\n".repeat(200));
  Deno.writeFileSync(t.path, garbage);
  Deno.writeFileSync(`${t.path}-wal`, garbage.slice(0, 100));
  const store = t.open();
  const status = store.storage();
  assert.equal(status.persistent, true);
  assert.match(status.movedAside!, /messages\.db\.corrupt-\d{4}-\d\d-\d\dT[\d-]+\.\d+Z$/);
  assert.deepEqual(Deno.readFileSync(status.movedAside!), garbage);
  assert.ok(files(t.dir).includes(`${status.movedAside!.split("/").pop()}-wal`));
  assert.ok(t.logged.some((line) => line.includes("ERROR") && line.includes("damaged")));
  assert.ok(store.addIncoming(incoming({ text: "a fresh start" })));
  store.flush();
  t.reopen();
  assert.equal(t.store.storage().movedAside, undefined, "reported once, at the start it happened");
  assert.equal(t.store.page("bob@lobby").messages[0].text, "a fresh start");
});

Deno.test("a database with damaged pages is moved aside and a new one started", () => {
  using t = new TestStore("file");
  for (let i = 0; i < 50; i++) t.store.addIncoming(incoming({ text: "x".repeat(500) }));
  t.store.close();
  const bytes = Deno.readFileSync(t.path);
  for (let i = 100; i < 4096; i++) bytes[i] = (i * 7) & 0xff;
  Deno.writeFileSync(t.path, bytes);
  const store = t.open();
  assert.equal(store.storage().persistent, true);
  assert.ok(store.storage().movedAside);
  assert.deepEqual(Deno.readFileSync(store.storage().movedAside!), bytes);
  assert.deepEqual(store.conversations(), []);
});

Deno.test("a database at our version without our schema is moved aside, not half used", () => {
  const crafted: [string, RegExp][] = [
    ["DROP TABLE contacts", /the table contacts is missing/],
    [
      "CREATE TRIGGER spy AFTER INSERT ON messages BEGIN DELETE FROM contacts; END",
      /a trigger spy that p2pchat did not make/,
    ],
    ["DROP INDEX messages_outbox; CREATE INDEX messages_outbox ON messages (at)", /not the one/],
  ];
  for (const [change, reason] of crafted) {
    using t = new TestStore("file");
    t.store.addIncoming(incoming({ text: "kept aside" }));
    t.store.close();
    const db = new DatabaseSync(t.path);
    db.exec(change);
    db.close();
    const store = t.open();
    const status = store.storage();
    assert.equal(status.persistent, true, change);
    assert.ok(status.movedAside, change);
    assert.ok(t.logged.some((line) => reason.test(line)), `${change}: ${t.logged.join("\n")}`);
    assert.deepEqual(store.conversations(), []);
    // Nothing was lost: the old file is there to be looked at.
    const old = new DatabaseSync(status.movedAside!, { readOnly: true });
    assert.deepEqual(old.prepare("SELECT text FROM messages").all().map((row) => row.text), [
      "kept aside",
    ]);
    old.close();
  }
});

Deno.test("ANALYZE's statistics table is not taken for damage", () => {
  using t = new TestStore("file");
  t.store.addIncoming(incoming({ text: "still here" }));
  t.store.close();
  const db = new DatabaseSync(t.path);
  db.exec("ANALYZE");
  db.close();
  const store = t.open();
  assert.equal(store.storage().movedAside, undefined);
  assert.equal(store.page("bob@lobby").messages[0].text, "still here");
});

Deno.test("a database from a newer p2pchat is left untouched and history runs in memory", () => {
  using t = new TestStore("file");
  t.store.close();
  Deno.removeSync(t.path);
  const newer = new DatabaseSync(t.path);
  newer.exec("CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99");
  newer.close();
  const before = Deno.readFileSync(t.path);
  const listing = files(t.dir);
  const store = t.open();
  const status = store.storage();
  assert.equal(status.persistent, false);
  assert.equal(status.path, t.path);
  assert.match(
    status.problem!,
    new RegExp(`newer p2pchat \\(schema 99; this one knows ${SCHEMA_VERSION}\\)`),
  );
  assert.match(status.problem!, /history is not being saved/);
  assert.ok(store.addIncoming(incoming({ text: "kept in memory" })));
  assert.equal(store.page("bob@lobby").messages.length, 1);
  store.close();
  assert.deepEqual(Deno.readFileSync(t.path), before);
  assert.deepEqual(files(t.dir), listing);
});

Deno.test("a folder that cannot be written: history runs in memory and says why", () => {
  using t = new TestStore("file");
  t.store.close();
  // A file where the profile folder should be: mkdir and open fail for root too.
  Deno.writeTextFileSync(`${t.dir}/profile`, "");
  const store = t.open({}, `${t.dir}/profile/messages.db`);
  {
    const status = store.storage();
    assert.equal(status.persistent, false);
    assert.match(status.problem!, /cannot be written .*history is not being saved/);
    assert.ok(store.addOutgoing({
      msgId: "q",
      kind: "direct",
      from: "alice@lobby",
      conversation: "bob@lobby",
      text: "still works",
      at: 0,
      encrypted: true,
      state: "queued",
    }));
    assert.equal(store.queued().length, 1);
  }
});

Deno.test("a disk full at open: history runs in memory and says why", () => {
  using t = new TestStore("file");
  t.store.close();
  Deno.removeSync(t.path);
  const store = t.open({ onConnection: (db) => db.exec("PRAGMA max_page_count = 1") });
  const status = store.storage();
  assert.equal(status.persistent, false);
  assert.match(status.problem!, /database or disk is full/);
  assert.ok(store.addIncoming(incoming()));
});

Deno.test("a database that cannot be written keeps its history and outbox in view", () => {
  using t = new TestStore("file");
  t.store.addIncoming(incoming({ text: "from before" }));
  const queued = t.store.addOutgoing(outgoing({ state: "queued" }));
  t.store.close();
  const before = Deno.readFileSync(t.path);
  // query_only: SQLite refuses every write, as on a read-only disk.
  const store = t.open({ onConnection: (db) => db.exec("PRAGMA query_only = 1") });
  const status = store.storage();
  assert.equal(status.persistent, false);
  assert.match(status.problem!, /readonly database.*history is not being saved/);
  assert.deepEqual(store.page("bob@lobby").messages.map((m) => m.text), ["from before", "hi"]);
  assert.deepEqual(store.queued().map((m) => m.id), [queued.id]);
  assert.equal(store.addIncoming(incoming({ text: "new" }))!.id, queued.id + 1);
  store.close();
  assert.deepEqual(Deno.readFileSync(t.path), before);
});

Deno.test("a link or a FIFO where the database should be is never opened: history runs in memory", () => {
  using t = new TestStore("file");
  t.store.close();
  Deno.removeSync(t.path);
  const outside = `${t.dir}/outside.db`;
  Deno.symlinkSync(outside, t.path);
  const linked = t.open();
  assert.equal(linked.storage().persistent, false);
  assert.match(linked.storage().problem!, /not a plain file/);
  assert.ok(linked.addIncoming(incoming({ text: "kept in memory" })));
  linked.close();
  assert.throws(() => Deno.statSync(outside), Deno.errors.NotFound, "nothing written through it");
  Deno.removeSync(t.path);
  new Deno.Command("mkfifo", { args: [t.path] }).outputSync();
  const fifo = t.open();
  assert.equal(fifo.storage().persistent, false);
  fifo.close();
});
