/**
 * The message store's contract, through its public interface, against every backend: a file
 * (closing and reopening where a restart matters) and memory.
 */
import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { TRANSFER_LINE_PREFIX } from "../../peer/api.ts";
import { PRUNE_STEP_ROWS } from "../../peer/store/limits.ts";
import { MAX_DUE_ID_CHARS, MAX_DUE_PER_PEER } from "../../peer/store/receipts_due.ts";
import { BACKENDS, incoming, outgoing, type StoreBackend, TestStore } from "../_message_store.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

function contract(name: string, run: (backend: StoreBackend) => void | Promise<void>): void {
  for (const backend of BACKENDS) {
    Deno.test(`MessageStore (${backend}): ${name}`, () => run(backend));
  }
}

/** For a file store: closes and reopens it, so what follows reads what was saved. */
function restart(t: TestStore): void {
  if (t.backend === "file") t.reopen();
}

contract("every field of an incoming and an outgoing message comes back", (backend) => {
  using t = new TestStore(backend);
  const received = t.store.addIncoming(incoming({
    msgId: "m-1",
    kind: "pub",
    from: "bob@lobby",
    conversation: "#lobby",
    text: "héllo 👋\n\"quoted\" 'x' \\ %_",
    at: 1_767_225_600_123,
    encrypted: true,
    fingerprint: "SHA256:abc",
  }));
  const sent = t.store.addOutgoing(outgoing({
    msgId: "m-2",
    kind: "pub",
    conversation: "#lobby",
    text: "to the room",
    at: 1_767_225_600_456,
    encrypted: false,
    state: "sent",
    pendingFor: ["carol@lobby", "dave@other"],
  }));
  const expectedIn = {
    id: received!.id,
    msgId: "m-1",
    conversation: "#lobby",
    kind: "pub",
    from: "bob@lobby",
    outgoing: false,
    text: "héllo 👋\n\"quoted\" 'x' \\ %_",
    at: 1_767_225_600_123,
    state: "delivered",
    encrypted: true,
    fingerprint: "SHA256:abc",
    stranger: true,
  };
  const expectedOut = {
    id: sent.id,
    msgId: "m-2",
    conversation: "#lobby",
    kind: "pub",
    from: "alice@lobby",
    outgoing: true,
    text: "to the room",
    at: 1_767_225_600_456,
    state: "sent",
    encrypted: false,
    pendingFor: ["carol@lobby", "dave@other"],
  };
  assert.deepEqual(received, expectedIn);
  assert.deepEqual(sent, expectedOut);
  restart(t);
  assert.deepEqual(t.store.byId(received!.id), expectedIn);
  assert.deepEqual(t.store.byId(sent.id), expectedOut);
  assert.deepEqual(t.store.page("#lobby").messages, [expectedIn, expectedOut]);
});

contract("ids increase and are never reused, even after the newest are pruned", (backend) => {
  using t = new TestStore(backend, { retentionDays: 1 });
  const first = t.store.addIncoming(incoming({ at: t.clock.now() }))!;
  const second = t.store.addOutgoing(outgoing({ at: t.clock.now() }));
  assert.ok(second.id > first.id);
  assert.equal(t.store.prune(t.clock.now() + 2 * DAY_MS), 2);
  restart(t);
  const third = t.store.addIncoming(incoming({ at: t.clock.now() }))!;
  assert.ok(third.id > second.id, `${third.id} > ${second.id}`);
});

contract(
  "a message seen before from the same sender is refused, even after a restart",
  (backend) => {
    using t = new TestStore(backend);
    assert.ok(t.store.addIncoming(incoming({ msgId: "same", from: "bob@lobby" })));
    assert.equal(t.store.addIncoming(incoming({ msgId: "same", from: "bob@lobby" })), undefined);
    restart(t);
    assert.equal(
      t.store.addIncoming(incoming({ msgId: "same", from: "bob@lobby", text: "forged" })),
      undefined,
    );
    // Another sender cannot suppress bob's message by reusing its id, nor can our own.
    assert.ok(t.store.addIncoming(incoming({ msgId: "same", from: "mallory@lobby" })));
    t.store.addOutgoing(outgoing({ msgId: "mine" }));
    assert.ok(t.store.addIncoming(incoming({ msgId: "mine", from: "alice@lobby" })));
    // A room message and its copy relayed by another member are one message.
    const room = { msgId: "r-1", kind: "pub" as const, from: "carol@lobby", conversation: "#r" };
    assert.ok(t.store.addIncoming(incoming(room)));
    assert.equal(t.store.addIncoming(incoming(room)), undefined);
    assert.equal(t.store.page("bob@lobby").messages.filter((m) => !m.outgoing).length, 1);
  },
);

contract("messages without a msg_id are all kept", (backend) => {
  using t = new TestStore(backend);
  assert.ok(t.store.addIncoming(incoming({ msgId: "", text: "one" })));
  assert.ok(t.store.addIncoming(incoming({ msgId: "", text: "two" })));
  assert.deepEqual(t.store.page("bob@lobby").messages.map((m) => m.text), ["one", "two"]);
});

contract("a text over 65536 characters is refused with text_too_long", (backend) => {
  using t = new TestStore(backend);
  const long = "x".repeat(65_537);
  assert.throws(() => t.store.addIncoming(incoming({ text: long })), { code: "text_too_long" });
  assert.throws(() => t.store.addOutgoing(outgoing({ text: long })), { code: "text_too_long" });
  assert.ok(t.store.addIncoming(incoming({ text: "x".repeat(65_536) })));
  assert.equal(t.store.page("bob@lobby").messages.length, 1);
});

contract(
  "pages go back with before and forward with after, and say whether more exist",
  (backend) => {
    using t = new TestStore(backend);
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(t.store.addIncoming(incoming({ text: `m${i}` }))!.id);
      t.store.addIncoming(incoming({ from: "carol@lobby", text: `other ${i}` }));
    }
    restart(t);
    const texts = (page: { messages: { text: string }[] }) => page.messages.map((m) => m.text);
    const last = t.store.page("bob@lobby", { limit: 3 });
    assert.deepEqual(texts(last), ["m4", "m5", "m6"]);
    assert.equal(last.more, true);
    const before = t.store.page("bob@lobby", { before: ids[4], limit: 3 });
    assert.deepEqual(texts(before), ["m1", "m2", "m3"]);
    assert.equal(before.more, true);
    const oldest = t.store.page("bob@lobby", { before: ids[1], limit: 3 });
    assert.deepEqual(texts(oldest), ["m0"]);
    assert.equal(oldest.more, false);
    const after = t.store.page("bob@lobby", { after: ids[1], limit: 3 });
    assert.deepEqual(texts(after), ["m2", "m3", "m4"]);
    assert.equal(after.more, true);
    const end = t.store.page("bob@lobby", { after: ids[4], limit: 3 });
    assert.deepEqual(texts(end), ["m5", "m6"]);
    assert.equal(end.more, false);
    const between = t.store.page("bob@lobby", { after: ids[1], before: ids[4] });
    assert.deepEqual(texts(between), ["m2", "m3"]);
    assert.equal(between.more, false);
    assert.equal(t.store.page("bob@lobby").messages.length, 7);
    assert.equal(t.store.page("bob@lobby", { limit: 10_000 }).messages.length, 7);
    assert.deepEqual(t.store.page("nobody@lobby"), { messages: [], more: false });
  },
);

contract("a page holds at most 500 messages", (backend) => {
  using t = new TestStore(backend);
  for (let i = 0; i < 501; i++) t.store.addIncoming(incoming());
  const page = t.store.page("bob@lobby", { limit: 1000 });
  assert.equal(page.messages.length, 500);
  assert.equal(page.more, true);
});

contract("conversations come newest first with unread counts; markRead clears them", (backend) => {
  using t = new TestStore(backend);
  const b1 = t.store.addIncoming(incoming({ from: "bob@lobby", text: "b1" }))!;
  const b2 = t.store.addIncoming(incoming({ from: "bob@lobby", text: "b2" }))!;
  t.store.addIncoming(incoming({ kind: "pub", from: "carol@lobby", conversation: "#room" }));
  t.store.addOutgoing(outgoing({ kind: "pub", conversation: "*", text: "to all" }));
  t.store.addIncoming(incoming({ from: "bob@lobby", text: "b3" }));
  t.store.addOutgoing(outgoing({ conversation: "bob@lobby", text: "mine" }));
  restart(t);
  const list = t.store.conversations();
  assert.deepEqual(
    list.map((c) => [c.conversation, c.kind, c.unread, c.last.text]),
    [["bob@lobby", "direct", 3, "mine"], ["*", "broadcast", 0, "to all"], [
      "#room",
      "room",
      1,
      "hello",
    ]],
  );
  const read = t.store.markRead("bob@lobby", b2.id);
  assert.deepEqual(read.map((m) => [m.id, m.state]), [[b1.id, "read"], [b2.id, "read"]]);
  assert.deepEqual(t.store.markRead("bob@lobby", b2.id), []);
  restart(t);
  assert.equal(t.store.conversations()[0].unread, 1);
  assert.deepEqual(t.store.markRead("bob@lobby").map((m) => m.text), ["b3"]);
  assert.equal(t.store.conversations()[0].unread, 0);
  assert.equal(t.store.byId(b1.id)!.state, "read");
  // New messages after a read mark are unread again.
  t.store.addIncoming(incoming({ from: "bob@lobby", text: "b4" }));
  assert.equal(t.store.conversations()[0].unread, 1);
  assert.deepEqual(t.store.markRead("nobody@lobby"), []);
});

contract(
  "search finds substrings in any ASCII case, newest first, across conversations",
  (backend) => {
    using t = new TestStore(backend);
    t.store.addIncoming(incoming({ text: "Lunch tomorrow?" }));
    t.store.addIncoming(incoming({ from: "carol@lobby", text: "no LUNCH for me" }));
    t.store.addOutgoing(outgoing({ text: "lunchbox" }));
    t.store.addIncoming(incoming({ text: "dinner" }));
    const found = t.store.search("lunch");
    assert.deepEqual(found.map((m) => m.text), ["lunchbox", "no LUNCH for me", "Lunch tomorrow?"]);
    assert.deepEqual(t.store.search("LUNCH", 2).map((m) => m.text), [
      "lunchbox",
      "no LUNCH for me",
    ]);
    assert.deepEqual(t.store.search("n").length, 4);
    assert.deepEqual(t.store.search("zebra"), []);
    assert.deepEqual(t.store.search(""), []);
  },
);

contract("search treats % _ \\ and quotes as plain characters", (backend) => {
  using t = new TestStore(backend);
  const texts = [
    "50% off",
    "5000 off",
    "snake_case",
    "snakeXcase",
    "back\\slash",
    "back/slash",
    `it's "quoted"`,
    "its quoted",
  ];
  for (const text of texts) t.store.addIncoming(incoming({ text }));
  const search = (needle: string) => t.store.search(needle).map((m) => m.text);
  assert.deepEqual(search("50%"), ["50% off"]);
  assert.deepEqual(search("%"), ["50% off"]);
  assert.deepEqual(search("e_c"), ["snake_case"]);
  assert.deepEqual(search("_"), ["snake_case"]);
  assert.deepEqual(search("k\\s"), ["back\\slash"]);
  assert.deepEqual(search(`'s "q`), [`it's "quoted"`]);
  assert.deepEqual(search(`"`), [`it's "quoted"`]);
});

contract(
  "an ACK (delivered) moves our sent message once, wherever the store keeps it",
  async (backend) => {
    using t = new TestStore(backend);
    // The first message of ours goes into the tables; the next ones (on disk) to the message log.
    const first = t.store.addOutgoing(outgoing({ text: "first" }));
    await t.store.committed();
    const second = t.store.addOutgoing(outgoing({ text: "second" }));
    const third = t.store.addOutgoing(outgoing({ text: "third" }));
    for (const message of [first, second]) {
      const delivered = t.store.delivered(message);
      assert.deepEqual(delivered, { ...message, state: "delivered" });
      assert.equal(t.store.delivered(message), undefined, "no change is no event");
    }
    await t.store.committed();
    restart(t);
    const states = [first, second, third].map((m) => t.store.byId(m.id)?.state);
    assert.deepEqual(states, ["delivered", "delivered", "sent"]);
    assert.equal(t.store.delivered(third)?.state, "delivered");
  },
);

contract("outgoing states only move forward", (backend) => {
  using t = new TestStore(backend);
  const m = t.store.addOutgoing(outgoing({ state: "queued" }));
  assert.equal(t.store.setState(m.id, "sent")?.state, "sent");
  assert.equal(
    t.store.setState(m.id, "queued")?.state,
    "queued",
    "queued again after a lost write",
  );
  assert.equal(t.store.setState(m.id, "delivered")?.state, "delivered");
  assert.equal(t.store.setState(m.id, "sent"), undefined);
  assert.equal(t.store.setState(m.id, "queued"), undefined);
  assert.equal(t.store.setState(m.id, "failed", "refused"), undefined);
  assert.equal(t.store.setState(m.id, "delivered"), undefined, "no change is no event");
  assert.equal(t.store.setState(m.id, "read")?.state, "read");
  assert.equal(t.store.setState(m.id, "delivered"), undefined);
  restart(t);
  assert.equal(t.store.byId(m.id)!.state, "read");

  const f = t.store.addOutgoing(outgoing({ state: "sent" }));
  assert.deepEqual(
    [t.store.setState(f.id, "failed", "refused")?.state, t.store.byId(f.id)?.reason],
    ["failed", "refused"],
  );
  for (const state of ["queued", "sent", "delivered", "read"] as const) {
    assert.equal(t.store.setState(f.id, state), undefined, `failed -> ${state}`);
  }
  const received = t.store.addIncoming(incoming())!;
  assert.equal(t.store.setState(received.id, "read"), undefined, "incoming: markRead only");
  assert.equal(t.store.setState(999_999, "sent"), undefined);
});

contract(
  "receipts move our messages of that conversation forward and ignore the rest",
  (backend) => {
    using t = new TestStore(backend);
    const a = t.store.addOutgoing(outgoing({ msgId: "a", conversation: "bob@lobby" }));
    const b = t.store.addOutgoing(outgoing({ msgId: "b", conversation: "bob@lobby" }));
    const c = t.store.addOutgoing(outgoing({ msgId: "c", conversation: "carol@lobby" }));
    t.store.addIncoming(incoming({ msgId: "theirs", from: "bob@lobby" }));
    restart(t);
    const delivered = t.store.receipt(
      "bob@lobby",
      ["a", "b", "c", "theirs", "unknown", "a"],
      "delivered",
    );
    assert.deepEqual(delivered.map((m) => [m.id, m.state]), [[a.id, "delivered"], [
      b.id,
      "delivered",
    ]]);
    assert.equal(t.store.byId(c.id)!.state, "sent", "carol's message is not bob's to confirm");
    assert.deepEqual(t.store.receipt("bob@lobby", ["a"], "delivered"), []);
    assert.deepEqual(t.store.receipt("bob@lobby", ["b"], "read").map((m) => m.state), ["read"]);
    assert.deepEqual(t.store.receipt("bob@lobby", ["b"], "delivered"), [], "never backwards");
    assert.deepEqual(t.store.receipt("nobody@lobby", ["a"], "read"), []);
  },
);

contract("a receipt looks at no more than 1000 ids", (backend) => {
  using t = new TestStore(backend);
  const last = t.store.addOutgoing(outgoing({ msgId: "last" }));
  const ids = Array.from({ length: 1000 }, (_, i) => `unknown-${i}`);
  assert.deepEqual(t.store.receipt("bob@lobby", [...ids, "last"], "delivered"), []);
  assert.equal(t.store.byId(last.id)!.state, "sent");
});

contract("the outbox is capped in all and per conversation with queue_full", (backend) => {
  using t = new TestStore(backend, { maxQueued: 5, maxQueuedPerConversation: 3 });
  for (let i = 0; i < 3; i++) t.store.addOutgoing(outgoing({ state: "queued" }));
  assert.throws(
    () => t.store.addOutgoing(outgoing({ state: "queued" })),
    (error) => error instanceof P2pError && error.code === "queue_full",
  );
  t.store.addOutgoing(outgoing({ state: "sent" }));
  t.store.addOutgoing(outgoing({ conversation: "carol@lobby", state: "queued" }));
  restart(t);
  t.store.addOutgoing(outgoing({ conversation: "dave@lobby", state: "queued" }));
  assert.throws(
    () => t.store.addOutgoing(outgoing({ conversation: "erin@lobby", state: "queued" })),
    { code: "queue_full" },
  );
  // Leaving the outbox makes room.
  const first = t.store.queued()[0];
  assert.equal(t.store.setState(first.id, "sent")?.state, "sent");
  assert.ok(t.store.addOutgoing(outgoing({ conversation: "erin@lobby", state: "queued" })));
  assert.equal(t.store.queued().length, 5);
});

contract("queuedFor and queued list the outbox oldest first; cancel fails a message", (backend) => {
  using t = new TestStore(backend);
  const q1 = t.store.addOutgoing(outgoing({ state: "queued", text: "one" }));
  t.store.addOutgoing(outgoing({ state: "sent", text: "sent" }));
  const q2 = t.store.addOutgoing(outgoing({ state: "queued", text: "two" }));
  const other = t.store.addOutgoing(outgoing({ conversation: "carol@lobby", state: "queued" }));
  t.store.addOutgoing(outgoing({ kind: "pub", conversation: "#room", state: "queued" }));
  restart(t);
  assert.deepEqual(t.store.queuedFor("bob@lobby").map((m) => m.text), ["one", "two"]);
  assert.deepEqual(t.store.queuedFor("#room"), [], "room messages wait through pendingFor");
  assert.equal(t.store.queued().length, 4);
  const cancelled = t.store.cancel(q1.id);
  assert.deepEqual([cancelled?.state, cancelled?.reason], ["failed", "cancelled"]);
  assert.equal(t.store.cancel(q1.id), undefined);
  assert.deepEqual(t.store.queuedFor("bob@lobby").map((m) => m.id), [q2.id]);
  t.store.setState(other.id, "sent");
  assert.equal(t.store.cancel(other.id), undefined, "no longer queued");
});

contract("room messages wait for offline members until each is reached", (backend) => {
  using t = new TestStore(backend);
  const m1 = t.store.addOutgoing(outgoing({
    kind: "pub",
    conversation: "#room",
    pendingFor: ["carol@lobby", "dave@lobby"],
  }));
  const m2 = t.store.addOutgoing(outgoing({
    kind: "pub",
    conversation: "#room",
    pendingFor: ["carol@lobby"],
  }));
  t.store.addOutgoing(outgoing({ kind: "pub", conversation: "#room", pendingFor: [] }));
  restart(t);
  assert.deepEqual(t.store.waiting().map((m) => m.id), [m1.id, m2.id]);
  assert.deepEqual(t.store.pendingFor("carol@lobby").map((m) => m.id), [m1.id, m2.id]);
  assert.deepEqual(t.store.pendingFor("dave@lobby").map((m) => m.id), [m1.id]);
  assert.deepEqual(t.store.memberReached(m1.id, "carol@lobby")?.pendingFor, ["dave@lobby"]);
  assert.equal(t.store.memberReached(m1.id, "carol@lobby"), undefined);
  const done = t.store.memberReached(m2.id, "carol@lobby");
  assert.ok(done && done.pendingFor === undefined, "nobody left to wait for");
  restart(t);
  assert.deepEqual(t.store.pendingFor("carol@lobby"), []);
  assert.deepEqual(t.store.pendingFor("dave@lobby").map((m) => m.id), [m1.id]);
  assert.deepEqual(t.store.waiting().map((m) => m.id), [m1.id]);
});

contract(
  "read receipts owed to a peer outlive a restart, are taken once, and are bounded",
  (backend) => {
    using t = new TestStore(backend);
    t.store.holdReceipts("bob@lobby", ["b1", "b2"]);
    t.store.holdReceipts("carol@lobby", ["c1"]);
    t.store.holdReceipts("bob@lobby", ["b3"]);
    restart(t);
    assert.deepEqual(t.store.takeReceipts("bob@lobby"), ["b1", "b2", "b3"]);
    assert.deepEqual(t.store.takeReceipts("bob@lobby"), []);
    restart(t);
    assert.deepEqual(t.store.takeReceipts("carol@lobby"), ["c1"]);
    // The newest are kept.
    const many = Array.from({ length: MAX_DUE_PER_PEER + 5 }, (_, i) => `d${i}`);
    t.store.holdReceipts("dave@lobby", many.slice(0, 10));
    t.store.holdReceipts("dave@lobby", many.slice(10));
    assert.deepEqual(t.store.takeReceipts("dave@lobby"), many.slice(-MAX_DUE_PER_PEER));
    // An id too long for a receipt is not kept.
    t.store.holdReceipts("erin@lobby", ["e1", "x".repeat(MAX_DUE_ID_CHARS + 1), "e2"]);
    assert.deepEqual(t.store.takeReceipts("erin@lobby"), ["e1", "e2"]);
  },
);

contract(
  "direct messages sent and never acknowledged go back to the outbox, others stay",
  (backend) => {
    using t = new TestStore(backend);
    const inTable = t.store.addOutgoing(outgoing({ state: "sent", text: "table" }));
    t.store.addOutgoing(outgoing({ state: "sent", kind: "pub", conversation: "#room" }));
    const acked = t.store.addOutgoing(outgoing({ state: "sent" }));
    t.store.setState(acked.id, "delivered");
    // A transfer's line, and a SEND a plain pyp2p peer left unconfirmed: not sent again.
    t.store.addOutgoing(outgoing({ state: "sent", msgId: `${TRANSFER_LINE_PREFIX}t1` }));
    const unconfirmed = t.store.addOutgoing(outgoing({ state: "sent" }));
    assert.equal(t.store.setUnconfirmed(unconfirmed.id)?.reason, "unconfirmed");
    t.store.settle();
    const staged = t.store.addOutgoing(outgoing({ state: "sent", text: "staged" }));
    restart(t);
    assert.equal(t.store.requeueUnacknowledged(), 2);
    assert.deepEqual(t.store.queued().map((m) => m.id), [inTable.id, staged.id]);
    assert.equal(t.store.requeueUnacknowledged(), 0);
    restart(t);
    assert.deepEqual(t.store.queued().map((m) => m.id), [inTable.id, staged.id]);
    assert.equal(t.store.byId(unconfirmed.id)?.state, "sent");
  },
);

contract("the conversation last open is remembered, if it holds messages", (backend) => {
  using t = new TestStore(backend);
  assert.equal(t.store.lastOpened(), undefined);
  t.store.addIncoming(incoming({ from: "bob@lobby", conversation: "bob@lobby" }));
  t.store.setLastOpened("bob@lobby");
  t.store.setLastOpened("nobody@lobby");
  restart(t);
  assert.equal(t.store.lastOpened(), "bob@lobby");
  t.store.addOutgoing(outgoing({ kind: "pub", conversation: "#room" }));
  t.store.setLastOpened("#room");
  restart(t);
  assert.equal(t.store.lastOpened(), "#room");
});

contract("cancel stops a room message waiting for members; its state stays", (backend) => {
  using t = new TestStore(backend);
  const room = (pendingFor: string[]) =>
    t.store.addOutgoing(outgoing({ kind: "pub", conversation: "#room", pendingFor }));
  const table = room(["carol@lobby", "dave@lobby"]);
  // One moved into the table, one still staged.
  t.store.settle();
  const staged = room(["carol@lobby"]);
  t.store.setState(staged.id, "delivered");
  for (const message of [table, staged]) {
    const stopped = t.store.cancel(message.id);
    assert.ok(stopped, `message ${message.id}`);
    assert.equal(stopped.pendingFor, undefined);
    assert.equal(stopped.state, message.id === staged.id ? "delivered" : "sent");
    assert.equal(t.store.cancel(message.id), undefined, "waits no more");
  }
  restart(t);
  assert.deepEqual(t.store.waiting(), []);
  assert.deepEqual(t.store.pendingFor("carol@lobby"), []);
  assert.equal(t.store.byId(staged.id)?.state, "delivered");
  assert.equal(t.store.byId(table.id)?.pendingFor, undefined);
});

contract("expire leaves alone a message on its way (its ACK may come yet)", (backend) => {
  using t = new TestStore(backend);
  const now = t.clock.now();
  const old = t.store.addOutgoing(outgoing({ state: "queued", at: now - 8 * DAY_MS }));
  assert.deepEqual(t.store.expire(now, 7 * DAY_MS, new Set([old.id])), []);
  assert.deepEqual(t.store.expire(now, 7 * DAY_MS).map((m) => m.id), [old.id]);
});

contract("expire fails old queued messages and stops old room entries waiting", (backend) => {
  using t = new TestStore(backend);
  const now = t.clock.now();
  const old = t.store.addOutgoing(outgoing({ state: "queued", at: now - 8 * DAY_MS }));
  const fresh = t.store.addOutgoing(outgoing({ state: "queued", at: now - DAY_MS }));
  const room = t.store.addOutgoing(outgoing({
    kind: "pub",
    conversation: "#room",
    at: now - 8 * DAY_MS,
    pendingFor: ["carol@lobby"],
  }));
  const sent = t.store.addOutgoing(outgoing({ state: "sent", at: now - 9 * DAY_MS }));
  restart(t);
  const expired = t.store.expire(now, 7 * DAY_MS);
  assert.deepEqual(
    expired.map((m) => [m.id, m.state, m.reason, m.pendingFor]),
    [[old.id, "failed", "expired", undefined], [room.id, "failed", "expired", undefined]],
  );
  assert.deepEqual(t.store.expire(now, 7 * DAY_MS), []);
  assert.deepEqual(t.store.queued().map((m) => m.id), [fresh.id]);
  assert.deepEqual(t.store.pendingFor("carol@lobby"), []);
  assert.equal(t.store.byId(sent.id)!.state, "sent");
});

contract("prune deletes by age and by count, oldest first, and keeps the outbox", (backend) => {
  using t = new TestStore(backend, { retentionDays: 30, maxMessages: 4 });
  const now = t.clock.now();
  const queued = t.store.addOutgoing(outgoing({ state: "queued", at: now - 60 * DAY_MS }));
  const room = t.store.addOutgoing(outgoing({
    kind: "pub",
    conversation: "#room",
    at: now - 60 * DAY_MS,
    pendingFor: ["carol@lobby"],
  }));
  t.store.addIncoming(incoming({ text: "old", at: now - 40 * DAY_MS }));
  const kept: number[] = [];
  for (let i = 0; i < 3; i++) kept.push(t.store.addIncoming(incoming({ text: `new ${i}` }))!.id);
  t.store.addIncoming(incoming({ from: "carol@lobby", text: "carol's only", at: now - DAY_MS }));
  restart(t);
  // 7 messages, 4 allowed: "old" goes by age, then the two oldest that are not in the outbox.
  assert.equal(t.store.prune(now), 3);
  assert.equal(t.store.prune(now), 0);
  const left = [
    ...t.store.page("bob@lobby").messages,
    ...t.store.page("#room").messages,
    ...t.store.page("carol@lobby").messages,
  ].map((m) => m.id).sort((a, b) => a - b);
  assert.deepEqual(left, [queued.id, room.id, kept[2], kept[2] + 1]);
  assert.equal(t.store.conversations().find((c) => c.conversation === "bob@lobby")!.unread, 1);
  restart(t);
  assert.equal(t.store.conversations().find((c) => c.conversation === "bob@lobby")!.unread, 1);
});

contract("prune of a whole conversation removes it from the list", (backend) => {
  using t = new TestStore(backend, { retentionDays: 1 });
  const now = t.clock.now();
  t.store.addIncoming(incoming({ from: "carol@lobby", at: now - 2 * DAY_MS }));
  t.store.addIncoming(incoming({ from: "bob@lobby", at: now }));
  assert.equal(t.store.prune(now), 1);
  restart(t);
  assert.deepEqual(t.store.conversations().map((c) => c.conversation), ["bob@lobby"]);
  assert.ok(t.store.addIncoming(incoming({ from: "carol@lobby", at: now })));
  assert.equal(t.store.conversations()[0].unread, 1);
});

contract(
  "forget deletes a conversation and all its messages, staged, in the table or queued",
  (backend) => {
    using t = new TestStore(backend, { maxQueued: 2 });
    t.store.addIncoming(incoming({ text: "old hello" }));
    t.store.addOutgoing(outgoing({ state: "queued", text: "queued hello" }));
    t.store.settle();
    t.store.addIncoming(incoming({ text: "new hello" }));
    t.store.addIncoming(incoming({ from: "carol@lobby", text: "carol stays" }));
    t.store.addOutgoing(outgoing({ conversation: "carol@lobby", state: "queued" }));
    assert.ok(t.store.setLastOpened("bob@lobby"));
    assert.equal(t.store.forget("bob@lobby"), 3);
    assert.equal(t.store.forget("bob@lobby"), undefined, "gone already");
    assert.equal(t.store.forget("nobody@lobby"), undefined);
    const check = () => {
      assert.deepEqual(t.store.conversations().map((c) => [c.conversation, c.unread]), [
        ["carol@lobby", 1],
      ]);
      assert.deepEqual(t.store.page("bob@lobby").messages, []);
      assert.deepEqual(t.store.queued().map((m) => m.conversation), ["carol@lobby"]);
      assert.deepEqual(t.store.search("hello"), []);
      assert.equal(t.store.lastOpened(), undefined);
    };
    check();
    restart(t);
    check();
    // Its queued message no longer takes room in the outbox; a new message starts it afresh.
    assert.ok(t.store.addOutgoing(outgoing({ state: "queued", text: "again" })));
    assert.ok(t.store.addIncoming(incoming({ text: "back" })));
    assert.deepEqual(t.store.page("bob@lobby").messages.map((m) => m.text), ["again", "back"]);
  },
);

contract(
  "past the count cap, strangers' messages go first: a flood does not push out contacts'",
  (backend) => {
    using t = new TestStore(backend, { maxMessages: 10 });
    t.store.addContact("bob@lobby", 1);
    const bob = [1, 2, 3, 4, 5].map((i) => t.store.addIncoming(incoming({ text: `bob ${i}` }))!);
    const mine = [1, 2, 3].map((i) => t.store.addOutgoing(outgoing({ text: `mine ${i}` })));
    t.store.settle();
    for (let i = 0; i < 20; i++) {
      t.store.addIncoming(incoming({ from: "mallory@lobby", kind: "pub", conversation: "*" }));
    }
    restart(t);
    while (t.store.prune(t.clock.now()) > 0);
    const left = (conversation: string) => t.store.page(conversation).messages.length;
    assert.deepEqual([left("bob@lobby"), left("*")], [8, 2], "bob's 5 and ours 3 stay");
    // With no stranger's message left, the oldest go, whoever sent them.
    t.store.addIncoming(incoming({ from: "mallory@lobby", kind: "pub", conversation: "*" }));
    for (let i = 0; i < 3; i++) t.store.addIncoming(incoming({ text: "bob again" }));
    while (t.store.prune(t.clock.now()) > 0);
    assert.equal(left("*"), 0);
    assert.equal(t.store.byId(bob[0].id), undefined, "the oldest of bob's went last");
    assert.ok(t.store.byId(mine[2].id));
    assert.equal(left("bob@lobby"), 10);
  },
);

contract("retention 0 keeps messages of any age", (backend) => {
  using t = new TestStore(backend, { retentionDays: 0 });
  t.store.addIncoming(incoming({ at: 0 }));
  assert.equal(t.store.prune(t.clock.now()), 0);
  assert.equal(t.store.page("bob@lobby").messages.length, 1);
});

contract("one prune call deletes a bounded step", (backend) => {
  using t = new TestStore(backend, { maxMessages: 10 });
  for (let i = 0; i < 2.5 * PRUNE_STEP_ROWS + 10; i++) t.store.addIncoming(incoming());
  const steps = [t.store.prune(0), t.store.prune(0), t.store.prune(0), t.store.prune(0)];
  assert.deepEqual(steps, [PRUNE_STEP_ROWS, PRUNE_STEP_ROWS, PRUNE_STEP_ROWS / 2, 0]);
  assert.equal(t.store.page("bob@lobby", { limit: 500 }).messages.length, 10);
});

contract("contacts are kept, and messages from others are marked as from strangers", (backend) => {
  using t = new TestStore(backend);
  assert.deepEqual(t.store.addContact("bob@lobby", 1000), { peerId: "bob@lobby", addedAt: 1000 });
  assert.deepEqual(t.store.addContact("bob@lobby", 2000), { peerId: "bob@lobby", addedAt: 1000 });
  t.store.addContact("carol@lobby", 3000);
  const fromBob = t.store.addIncoming(incoming({ from: "bob@lobby" }))!;
  const fromMallory = t.store.addIncoming(incoming({ from: "mallory@lobby" }))!;
  assert.equal(fromBob.stranger, undefined);
  assert.equal(fromMallory.stranger, true);
  t.store.seen("bob@lobby", 5000, { hostname: "10.0.0.2", port: 4000 });
  t.store.seen("mallory@lobby", 5000, { hostname: "10.0.0.9", port: 4000 });
  restart(t);
  assert.equal(t.store.isContact("bob@lobby"), true);
  assert.equal(t.store.isContact("mallory@lobby"), false);
  assert.deepEqual(t.store.contactRows(), [
    {
      peerId: "bob@lobby",
      addedAt: 1000,
      lastSeenAt: 5000,
      address: { hostname: "10.0.0.2", port: 4000 },
    },
    { peerId: "carol@lobby", addedAt: 3000 },
  ]);
  assert.equal(t.store.removeContact("bob@lobby"), true);
  assert.equal(t.store.removeContact("bob@lobby"), false);
  assert.equal(t.store.byId(fromBob.id)!.stranger, true, "computed when read");
  restart(t);
  assert.deepEqual(t.store.contactRows().map((c) => c.peerId), ["carol@lobby"]);
});

contract("setEncrypted changes an outgoing message's encryption mark", (backend) => {
  using t = new TestStore(backend);
  const m = t.store.addOutgoing(outgoing({ encrypted: false, state: "queued" }));
  t.store.setEncrypted(m.id, true);
  restart(t);
  assert.equal(t.store.byId(m.id)!.encrypted, true);
});

contract(
  "committed() resolves once the writes are committed; the store says it saves",
  async (backend) => {
    using t = new TestStore(backend);
    await t.store.committed();
    t.store.addIncoming(incoming());
    await t.store.committed();
    assert.deepEqual(
      t.store.storage(),
      backend === "file" ? { persistent: true, path: t.path } : { persistent: false },
    );
  },
);
