/**
 * The message log: during a burst, messages that need no lookup are appended to a log beside
 * the database instead of its tables, and moved in when the writes pause. What the log holds
 * survives a crash with its ids and states; a record a crash cut is dropped; a damaged log is
 * kept aside after its sound records are moved in; a disk that refuses the log sends the store
 * to memory with everything it had.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { LOG_SUFFIX } from "../../peer/store/open.ts";
import { incoming, outgoing, TestStore } from "../_message_store.ts";

const PREFIX = "5f0c3a1e-7b2d-8c4e-9a6f-";

// A p2pchat msg_id: the connection's prefix, then a 12-digit counter.
function counted(n: number): string {
  return PREFIX + n.toString(16).padStart(12, "0");
}

// The database, its WAL and the log as a crash leaves them (copied while the store has them
// open); `log` replaces the log's content when given.
function crashCopy(t: TestStore, log?: string): string {
  const copy = `${t.dir}/crashed-${crypto.randomUUID()}.db`;
  for (const suffix of ["", "-wal", LOG_SUFFIX]) {
    Deno.copyFileSync(`${t.path}${suffix}`, `${copy}${suffix}`);
  }
  if (log !== undefined) Deno.writeTextFileSync(`${copy}${LOG_SUFFIX}`, log);
  return copy;
}

function rowsIn(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return count("messages") + count("staged");
  } finally {
    db.close();
  }
}

// A burst from bob (known by his first message) and our answers, some ACKed.
async function burst(t: TestStore, count: number) {
  const first = t.store.addIncoming(incoming({ msgId: counted(0), text: "first" }))!;
  const mine = t.store.addOutgoing(outgoing({ text: "first answer" }));
  await t.store.committed();
  t.store.settle();
  const heard = [], sent = [];
  for (let i = 1; i <= count; i++) {
    heard.push(t.store.addIncoming(incoming({ msgId: counted(i), text: `in ${i}` }))!);
    sent.push(t.store.addOutgoing(outgoing({ text: `out ${i}` })));
    if (i % 2 === 0) t.store.delivered(sent[sent.length - 1]);
  }
  await t.store.committed();
  return { first, mine, heard, sent };
}

Deno.test("a burst goes to the log, not the tables, and survives a crash with its ids and states", async () => {
  using t = new TestStore("file");
  const { heard, sent } = await burst(t, 10);
  assert.ok(Deno.statSync(`${t.path}${LOG_SUFFIX}`).size > 0, "in the log");
  const copy = crashCopy(t);
  assert.equal(rowsIn(copy), 2, "only the first two reached the tables");
  t.store.close();

  const store = t.open({}, copy);
  const page = store.page("bob@lobby", { limit: 100 }).messages;
  assert.equal(page.length, 22);
  for (const message of [...heard, ...sent]) {
    const kept = store.byId(message.id)!;
    assert.equal(kept.text, message.text);
    assert.equal(kept.msgId, message.msgId);
  }
  assert.deepEqual(
    sent.map((message) => store.byId(message.id)!.state),
    sent.map((_, i) => i % 2 === 1 ? "delivered" : "sent"),
  );
  assert.equal(store.conversations()[0].unread, 11);
  // Moved in at start, and the log emptied.
  assert.equal(Deno.statSync(`${copy}${LOG_SUFFIX}`).size, 0);
  // Still known: the same message is not stored twice, and ids go on after the log's.
  assert.equal(store.addIncoming(incoming({ msgId: counted(5) })), undefined);
  assert.ok(store.addIncoming(incoming({ msgId: counted(11) }))!.id > sent[9].id);
  store.close();
  assert.equal(rowsIn(copy), 23);
});

Deno.test("what the log holds is in every read at once, and a pause moves it in", async () => {
  using t = new TestStore("file");
  const { heard, sent } = await burst(t, 3);
  assert.deepEqual(
    t.store.search("in 2").map((message) => message.id),
    [heard[1].id],
  );
  assert.equal(t.store.page("bob@lobby").messages.length, 8);
  assert.equal(t.store.byId(sent[1].id)?.state, "delivered");

  // Another burst, left alone: a pause in the writes moves it in and empties the log.
  for (let i = 10; i < 20; i++) t.store.addIncoming(incoming({ msgId: counted(i) }));
  await t.store.committed();
  assert.ok(Deno.statSync(`${t.path}${LOG_SUFFIX}`).size > 0);
  for (let tick = 0; tick < 20; tick++) {
    t.clock.advance(25);
    await t.store.committed();
  }
  assert.equal(Deno.statSync(`${t.path}${LOG_SUFFIX}`).size, 0);
  assert.equal(rowsIn(crashCopy(t)), 18);
});

Deno.test("a burst stays in the log while it lasts; a steady trickle moves in as it comes", async () => {
  using t = new TestStore("file");
  await burst(t, 1); // four messages, the last two in the log
  const inTables = () => rowsIn(crashCopy(t));
  const before = inTables();
  let next = 100;
  // Writes in each 25 ms upkeep interval, spread over it in turns of 5 ms, for `intervals`.
  const writeFor = async (intervals: number, perInterval: number) => {
    for (let tick = 0; tick < intervals * 5; tick++) {
      for (let i = 0; i < perInterval / 5; i++) {
        t.store.addIncoming(incoming({ msgId: counted(next++), text: `message ${next}` }));
      }
      await t.store.committed();
      t.clock.advance(5);
    }
  };
  // Longer than upkeep waits on writes (8 intervals), and faster than a step per forced round
  // could move in: each would only slow the burst down.
  await writeFor(12, 300);
  assert.equal(inTables(), before, "nothing moved in during the burst");
  // A pause moves it all in.
  await writeFor(20, 0);
  assert.equal(inTables(), 4 + 3600);
  // A trickle never pauses for a whole interval, yet moves in while it goes on.
  await writeFor(12, 10);
  assert.ok(inTables() > 4 + 3600, "part of the trickle moved in while it lasted");
});

Deno.test("writes that never pause: past its size bound, the log moves in at once and starts again", async () => {
  using t = new TestStore("file", { maxLogBytes: 20_000 });
  await burst(t, 1);
  const log = `${t.path}${LOG_SUFFIX}`;
  let largest = 0;
  for (let i = 100; i < 1100; i++) {
    t.store.addIncoming(incoming({ msgId: counted(i), text: `message ${i}` }));
    await t.store.committed();
    largest = Math.max(largest, Deno.statSync(log).size);
  }
  assert.ok(largest > 10_000 && largest < 21_000, `the log grew to ${largest} bytes`);
  const copy = crashCopy(t);
  t.store.close();
  assert.equal(t.open({}, copy).conversations()[0].unread, 1002);
});

Deno.test("a record a crash cut short is dropped, the rest is kept", async () => {
  using t = new TestStore("file");
  const { heard } = await burst(t, 4);
  const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
  const copy = crashCopy(t, log + '{"seq":99,"in":{"first":');
  t.store.close();
  const store = t.open({}, copy);
  assert.equal(store.byId(heard[3].id)?.text, "in 4");
  assert.equal(store.storage().logMovedAside, undefined);
  assert.ok(t.logged.some((line) => /cut short/.test(line)), t.logged.join("\n"));
});

Deno.test("a damaged log: its sound records are moved in, the damaged line skipped, the file kept aside", async () => {
  const damage = [
    (line: string) => line.replace('"seq"', '"sequence"'),
    (line: string) => line.replace('"msgIds":[', '"msgIds":[7,'),
    (line: string) => line.replace(/"at":\[\[(\d+),\d+\]\]/, '"at":[[$1,99999999]]'),
    (line: string) => line.slice(0, 40) + "\u0000" + line.slice(41),
    () => "not json at all",
  ];
  for (const [index, spoil] of damage.entries()) {
    using t = new TestStore("file");
    const { heard } = await burst(t, 2);
    const before = t.store.addIncoming(incoming({ msgId: counted(40), text: "spoilt" }))!;
    await t.store.committed();
    const after = t.store.addIncoming(incoming({ msgId: counted(41), text: "after" }))!;
    await t.store.committed();
    // The record of "sound" is spoilt; the one after it ("after") is not.
    const lines = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`).split("\n");
    lines[lines.length - 3] = spoil(lines[lines.length - 3]);
    const copy = crashCopy(t, lines.join("\n"));
    t.store.close();
    const store = t.open({}, copy);
    const status = store.storage();
    assert.ok(status.logMovedAside?.includes(`${LOG_SUFFIX}.corrupt-`), `${index}`);
    assert.equal(status.movedAside, undefined, "the database is not the one damaged");
    assert.equal(Deno.readTextFileSync(status.logMovedAside!), lines.join("\n"), "kept as it was");
    assert.equal(store.byId(heard[1].id)?.text, "in 2", `${index}`);
    assert.equal(store.byId(before.id), undefined, `${index}: the damaged line's message`);
    assert.equal(store.byId(after.id)?.text, "after", `${index}: the line after the damage`);
    assert.equal(status.persistent, true);
    assert.ok(t.logged.some((line) => /message log .* is damaged/.test(line)), `${index}`);
  }
});

Deno.test("log records already moved in before a crash are not moved in twice", async () => {
  using t = new TestStore("file");
  await burst(t, 3);
  const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
  t.store.page("bob@lobby"); // moves the log in
  await t.store.committed();
  // A crash between the commit that moved them in and the log being emptied.
  const copy = crashCopy(t, log);
  t.store.close();
  const store = t.open({}, copy);
  assert.equal(store.page("bob@lobby", { limit: 100 }).messages.length, 8);
  assert.equal(store.storage().logMovedAside, undefined);
});

Deno.test("a log whose ids the tables hold already is kept aside, not moved in", async () => {
  using t = new TestStore("file");
  await burst(t, 2);
  const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
  t.store.page("bob@lobby");
  await t.store.committed();
  const copy = crashCopy(t, log);
  // The mark set back: the log looks new, but its ids are taken.
  const db = new DatabaseSync(copy);
  db.exec("UPDATE meta SET value = 0 WHERE key = 'log_seq'");
  db.close();
  t.store.close();
  const store = t.open({}, copy);
  assert.ok(store.storage().logMovedAside?.includes(LOG_SUFFIX));
  assert.equal(store.page("bob@lobby", { limit: 100 }).messages.length, 6);
});

Deno.test("log lines p2pchat never writes are skipped as damage, quickly, and nothing they name changes", async () => {
  using t = new TestStore("file");
  const { heard, sent } = await burst(t, 2);
  const queued = t.store.addOutgoing(outgoing({ state: "queued", text: "waiting" }));
  await t.store.committed();
  const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
  const run = (first: number, from = "mallory@lobby", conversation = from) =>
    JSON.stringify({
      first,
      from,
      conversation,
      encrypted: false,
      fingerprint: null,
      at: [[1, 1]],
      msgIds: ["m"],
      texts: ["forged"],
    });
  const forged = [
    // Ids past where numbers are exact, and a seq there.
    `{"seq":9000,"in":${run(2 ** 53 - 2)}}`,
    `{"seq":9007199254740990,"in":${run(900_000)}}`,
    // A received message filed under another conversation.
    `{"seq":9001,"in":${run(900_001, "mallory@lobby", "#team")}}`,
    // States p2pchat never logs, or for messages it did not send in this log: a queued one, and
    // a million ids.
    `{"seq":9002,"state":{"state":4,"ids":[[${sent[0].id},1]]}}`,
    `{"seq":9003,"state":{"state":2,"ids":[[${queued.id},1]]}}`,
    ...Array.from(
      { length: 50 },
      (_, i) => `{"seq":${9004 + i},"state":{"state":2,"ids":[[1,1000000]]}}`,
    ),
  ];
  const copy = crashCopy(t, log + forged.join("\n") + "\n");
  t.store.close();
  const started = performance.now();
  const store = t.open({}, copy);
  assert.ok(performance.now() - started < 2_000, "not one state per id of a million");
  assert.ok(store.storage().logMovedAside);
  assert.ok(t.logged.some((line) => /and 54 more damaged lines/.test(line)), t.logged.join("\n"));
  assert.deepEqual(store.conversations().map((c) => c.conversation), ["bob@lobby"]);
  assert.equal(store.byId(heard[1].id)?.text, "in 2");
  assert.equal(store.byId(queued.id)?.state, "queued");
  assert.equal(store.byId(sent[0].id)?.state, "sent");
  // Ids go on as before.
  assert.equal(store.addOutgoing(outgoing()).id, queued.id + 1);
});

Deno.test("a log that cannot be read back: the store goes on in memory and keeps every record taken", async () => {
  using t = new TestStore("file");
  const { first } = await burst(t, 3);
  const log = `${t.path}${LOG_SUFFIX}`;
  // Something else wrote over it.
  Deno.writeTextFileSync(log, "x".repeat(Deno.statSync(log).size));
  const page = t.store.page("bob@lobby").messages;
  assert.deepEqual(page.map((m) => m.id).slice(0, 2), [first.id, first.id + 1]);
  const status = t.store.storage();
  assert.equal(status.persistent, false);
  assert.match(status.problem!, /no longer holds its record/);
  assert.ok(t.logged.some((line) => /not shown until the next start/.test(line)));
  assert.ok(t.store.addIncoming(incoming({ msgId: counted(50), text: "still here" })));
});

Deno.test("a log that cannot be read back when a message makes room: that message is kept all the same", async () => {
  using t = new TestStore("file", { maxStaged: 4 });
  await burst(t, 1);
  for (let i = 10; i < 12; i++) t.store.addIncoming(incoming({ msgId: counted(i) }));
  await t.store.committed();
  const log = `${t.path}${LOG_SUFFIX}`;
  Deno.writeTextFileSync(log, "x".repeat(Deno.statSync(log).size));
  // Past the bound: the oldest must move in first, and cannot be read back.
  const kept = t.store.addIncoming(incoming({ msgId: counted(20), text: "made room" }))!;
  assert.equal(t.store.storage().persistent, false);
  assert.equal(t.store.byId(kept.id)?.text, "made room");
});

Deno.test("one commit's ACKs reaching across two runs of sent messages survive a crash", async () => {
  using t = new TestStore("file");
  t.store.addOutgoing(outgoing({ text: "first" }));
  await t.store.committed();
  t.store.settle();
  const one = [
    t.store.addOutgoing(outgoing({ text: "a1" })),
    t.store.addOutgoing(outgoing({ text: "a2" })),
  ];
  await t.store.committed();
  const two = [
    t.store.addOutgoing(outgoing({ text: "b1" })),
    t.store.addOutgoing(outgoing({ text: "b2" })),
  ];
  await t.store.committed();
  t.store.delivered(one[1]);
  t.store.delivered(two[0]);
  t.store.flush();
  const copy = crashCopy(t);
  t.store.close();
  const store = t.open({}, copy);
  assert.equal(store.storage().logMovedAside, undefined, t.logged.join("\n"));
  assert.deepEqual(
    [...one, ...two].map((m) => store.byId(m.id)?.state),
    ["sent", "delivered", "delivered", "sent"],
  );
});

Deno.test("a log made to cost at start (repeated ACKs, a million empty lines) is read quickly and kept aside", async () => {
  for (const make of ["acks", "empty"]) {
    using t = new TestStore("file");
    await burst(t, 1);
    t.store.addOutgoing(outgoing({ text: "ours" }));
    await t.store.committed();
    const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
    const run = JSON.parse(log.trim().split("\n").at(-1)!).out;
    const extra = make === "acks"
      ? Array.from(
        { length: 200 },
        (_, i) => `{"seq":${9000 + i},"state":{"state":2,"ids":[[${run.first},1]]}}\n`,
      ).join("")
      : "\n".repeat(1_000_000);
    const copy = crashCopy(t, log + extra);
    t.store.close();
    const started = performance.now();
    const store = t.open({}, copy);
    assert.ok(performance.now() - started < 3_000, `${make}: ${performance.now() - started} ms`);
    assert.ok(store.storage().logMovedAside, make);
    assert.equal(store.page("bob@lobby").messages.at(-1)?.text, "ours", make);
  }
});

Deno.test("state lines that mark much and then fail are not examined past twice what the log sent", async () => {
  for (const failing of [1, 3]) {
    using t = new TestStore("file");
    await burst(t, 1); // one message of ours in the log
    const sent = Array.from(
      { length: 10 },
      (_, i) => t.store.addOutgoing(outgoing({ text: `${i}` })),
    );
    await t.store.committed();
    const first = sent[0].id;
    // Each names our ten, then an id the log never sent: all marked, then all undone.
    const lines = Array.from(
      { length: failing },
      (_, i) =>
        `{"seq":${9000 + i},"state":{"state":2,"ids":[[${first},10],[${first + 100},1]]}}\n`,
    );
    lines.push(`{"seq":9100,"state":{"state":2,"ids":[[${first},10]]}}\n`);
    const copy = crashCopy(t, Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`) + lines.join(""));
    t.store.close();
    const store = t.open({}, copy);
    assert.ok(store.storage().logMovedAside, `${failing}`);
    // One failing line leaves room for the sound one; three use up what 11 sent messages allow.
    const expected = failing === 1 ? "delivered" : "sent";
    for (const message of sent) assert.equal(store.byId(message.id)?.state, expected, `${failing}`);
  }
});

Deno.test("a log with ids or seqs near its bound: the store keeps saving, the usual way", async () => {
  for (const field of ["seq", "first"]) {
    using t = new TestStore("file");
    await burst(t, 1);
    t.store.close();
    const big = 2 ** 52 - 2;
    const record = field === "seq"
      ? `{"seq":${big},"in":{"first":900000,"from":"bob@lobby","conversation":"bob@lobby","encrypted":false,"fingerprint":null,"at":[[1,1]],"msgIds":["near"],"texts":["near the bound"]}}\n`
      : `{"seq":9000,"in":{"first":${big},"from":"bob@lobby","conversation":"bob@lobby","encrypted":false,"fingerprint":null,"at":[[1,1]],"msgIds":["near"],"texts":["near the bound"]}}\n`;
    Deno.writeTextFileSync(`${t.path}${LOG_SUFFIX}`, record);
    let store = t.open();
    // Ours: the fast way, were it not for the bound.
    for (let i = 0; i < 5; i++) {
      store.addOutgoing(outgoing({ text: `after ${i}` }));
      await store.committed();
    }
    assert.equal(store.storage().persistent, true, field);
    assert.equal(store.search("after 4").length, 1, field);
    store = t.reopen();
    assert.equal(store.storage().persistent, true, field);
    assert.equal(store.storage().logMovedAside, undefined, field);
    assert.equal(store.search("after").length, 5, field);
  }
});

Deno.test("log records that name no peer, or send as someone else, or repeat a stored message, are left out", async () => {
  using t = new TestStore("file");
  const { heard } = await burst(t, 1);
  const log = Deno.readTextFileSync(`${t.path}${LOG_SUFFIX}`);
  const run = (kind: string, seq: number, first: number, from: string, msgId: string) =>
    `{"seq":${seq},"${kind}":${
      JSON.stringify({
        first,
        from,
        conversation: kind === "in" ? from : "bob@lobby",
        encrypted: false,
        fingerprint: null,
        at: [[1, 1]],
        msgIds: [msgId],
        texts: [`from ${from}`],
      })
    }}\n`;
  const crafted = [
    run("in", 9000, 500, "bob@lobby\u0000evil", "x1"),
    run("in", 9001, 501, "#general", "x2"),
    run("out", 9002, 502, "carol@lobby", "x3"),
    run("in", 9003, 503, "bob@lobby", heard[0].msgId),
    run("in", 9004, 504, "bob@lobby", "fresh"),
  ];
  const copy = crashCopy(t, log + crafted.join(""));
  t.store.close();
  const store = t.open({}, copy);
  assert.ok(store.storage().logMovedAside);
  assert.deepEqual(store.conversations().map((c) => c.conversation), ["bob@lobby"]);
  const texts = store.page("bob@lobby", { limit: 100 }).messages.map((m) => m.text);
  assert.equal(
    texts.filter((text) => text === "in 1").length,
    1,
    "a stored message is not stored twice",
  );
  assert.ok(texts.includes("from bob@lobby"), "the sound record is moved in");
  assert.ok(!texts.some((text) => /evil|general|carol/.test(text)));
  assert.equal(store.byId(504)?.text, "from bob@lobby");
});

Deno.test("a log larger than p2pchat ever writes is moved aside unread, and the peer starts", () => {
  using t = new TestStore("file", { maxLogBytes: 20_000 });
  t.store.close();
  // Sparse: its size says it all, and reading it would take more memory than there is.
  Deno.truncateSync(`${t.path}${LOG_SUFFIX}`, 600 * 1024 * 1024);
  const store = t.open();
  assert.ok(store.storage().logMovedAside?.includes(LOG_SUFFIX));
  assert.equal(store.storage().persistent, true);
  assert.ok(t.logged.some((line) => /more than p2pchat writes/.test(line)));
});

Deno.test("a log that is not a plain file is moved aside and never read", () => {
  using t = new TestStore("file");
  t.store.close();
  Deno.removeSync(`${t.path}${LOG_SUFFIX}`);
  Deno.symlinkSync("/dev/zero", `${t.path}${LOG_SUFFIX}`);
  const store = t.open();
  assert.ok(store.storage().logMovedAside?.includes(LOG_SUFFIX));
  assert.ok(Deno.lstatSync(`${t.path}${LOG_SUFFIX}`).isFile);
});

Deno.test("a disk that refuses the log: the store goes on in memory with every message", async () => {
  let full = false;
  using t = new TestStore("file", {}, {
    beforeLogAppend: () => {
      if (full) throw new Error("No space left on device (os error 28)");
    },
  });
  const { heard, sent } = await burst(t, 3);
  full = true;
  const late = t.store.addIncoming(incoming({ msgId: counted(30), text: "refused" }))!;
  await t.store.committed();
  const status = t.store.storage();
  assert.equal(status.persistent, false);
  assert.match(status.problem!, /No space left/);
  for (const message of [...heard, ...sent, late]) {
    assert.equal(t.store.byId(message.id)?.text, message.text);
  }
  assert.equal(t.store.byId(sent[1].id)?.state, "delivered");
  assert.equal(t.store.addIncoming(incoming({ msgId: counted(2) })), undefined);
  assert.equal(t.problems.length, 1);
});
