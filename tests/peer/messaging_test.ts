/**
 * The messenger between real nodes on loopback, each with its own store: the outbox, delivery
 * exactly once across a restart of the receiver, receipts, room messages to members that were
 * offline, contacts with presence.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { NodeEvent, SendResult, StoredMessage } from "../../peer/api.ts";
import { lateInbox, Messenger } from "../../peer/messaging/mod.ts";
import { createPeerNode, type StartablePeerNode } from "../../peer/node/mod.ts";
import { type MessageStoreOptions, openMessageStore } from "../../peer/store/mod.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  identityFromPrivateKey,
} from "../../lib/noise/mod.ts";
import { KeyPins, TrustPolicy } from "../../peer/identity/mod.ts";
import { FakeAccountKeys } from "../_fake_account_keys.ts";
import { LineClient } from "../_line_client.ts";
import { SendIds } from "../../peer/protocol/send_ids.ts";
import { createTracker } from "../../tracker/mod.ts";

/** Polls `check` every 10 ms for up to `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Chat {
  node: StartablePeerNode;
  messenger: Messenger;
  port: number;
  events: NodeEvent[];
  stop(): Promise<void>;
}

interface ChatOptions {
  store?: Partial<MessageStoreOptions>;
  readReceipts?: boolean;
  roomMembers?: (room: string) => readonly string[] | undefined;
  queueMaxAgeMs?: number;
  /** With an identity key registered as the key of the account of the node's name. */
  accounts?: FakeAccountKeys;
  /** Told after each commit of the store. */
  onCommit?: () => void;
  /** The tracker to register with (none by default). */
  tracker?: { hostname: string; port: number };
}

async function startChat(name: string, options: ChatOptions = {}): Promise<Chat> {
  const log = memoryLogger("error").log;
  const store = openMessageStore({ path: ":memory:", ...options.store }, {
    log,
    clock: systemClock,
  }, { onCommit: options.onCommit });
  const node = createPeerNode({
    name,
    namespace: "lab",
    host: "127.0.0.1",
    port: 0,
    pingIntervalMs: 1_000,
    ackTimeoutMs: 300,
    byeCooldownMs: 50,
    inbox: lateInbox(() => messenger),
    readReceipts: options.readReceipts,
    tracker: options.tracker,
    identity: options.accounts && _accountIdentity(name, options.accounts),
  }, { log });
  const messenger: Messenger = new Messenger(
    {
      sweepIntervalMs: 50,
      queueMaxAgeMs: options.queueMaxAgeMs,
      readReceipts: options.readReceipts,
    },
    { node, chat: node, store, clock: systemClock, log, roomMembers: options.roomMembers },
  );
  messenger.start();
  const events: NodeEvent[] = [];
  messenger.subscribe((event) => events.push(event));
  const { port } = await node.start();
  return {
    node,
    messenger,
    port,
    events,
    async stop() {
      await messenger.stop();
      store.close();
    },
  };
}

// A fresh identity key, which `accounts` then holds for the account `name`.
function _accountIdentity(name: string, accounts: FakeAccountKeys) {
  const key = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  accounts.keys.set(name, key.publicKey);
  return {
    key: { ...key, fingerprint: fingerprint(key.publicKey) },
    trust: new TrustPolicy(KeyPins.inMemory(), accounts, systemClock, {}),
  };
}

const texts = (chat: Chat) =>
  chat.events.flatMap((event) => event.type === "message" ? [event.text] : []);

const connect = async (from: Chat, to: Chat, name: string) => {
  from.node.addPeer(name, "lab", { hostname: "127.0.0.1", port: to.port });
  await waitFor(`${name} connected`, () => from.node.peerRow(`${name}@lab`)?.state === "connected");
};

const stateOf = (chat: Chat, id: number) =>
  chat.messenger.history.page("bob@lab").messages.find((message) => message.id === id)?.state;

Deno.test("a direct message to a peer that is away is queued, then delivered in order once it connects", async () => {
  const alice = await startChat("alice");
  let bob: Chat | undefined;
  try {
    alice.messenger.history.addContact("bob@lab");
    const results: SendResult[] = [];
    for (const text of ["one", "two", "three"]) {
      results.push(await alice.messenger.send("bob@lab", text));
    }
    for (const result of results) {
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.queued, true);
    }
    // The later ones wait behind the first, and for the same reason.
    const reasons = results.map((result) => !result.ok && result.reason);
    assert.deepEqual(reasons, [reasons[0], reasons[0], reasons[0]]);
    assert.deepEqual(alice.messenger.history.queued().map((message) => message.text), [
      "one",
      "two",
      "three",
    ]);
    bob = await startChat("bob");
    await connect(alice, bob, "bob");
    await waitFor("three messages", () => texts(bob!).length === 3);
    assert.deepEqual(texts(bob), ["one", "two", "three"]);
    await waitFor("delivered", () => results.every((r) => stateOf(alice, r.id!) === "delivered"));
    assert.deepEqual(alice.messenger.history.queued(), []);
    const states = alice.events.flatMap((event) =>
      event.type === "message_state" ? [`${event.message.text} ${event.message.state}`] : []
    );
    assert.ok(states.includes("one delivered"), states.join(", "));
  } finally {
    await alice.stop();
    await bob?.stop();
  }
});

Deno.test("a message queued for a peer whose key we remember is marked as going encrypted", async () => {
  const accounts = new FakeAccountKeys();
  const alice = await startChat("alice", { accounts });
  let bob = await startChat("bob", { accounts });
  try {
    alice.messenger.history.addContact("bob@lab");
    alice.messenger.history.addContact("carol@lab");
    await connect(alice, bob, "bob");
    await bob.stop();
    await waitFor("bob gone", () => alice.node.peerRow("bob@lab")?.state !== "connected");
    const toBob = await alice.messenger.send("bob@lab", "later, encrypted");
    // Never connected: nothing is known of how it will go.
    const toCarol = await alice.messenger.send("carol@lab", "later, who knows");
    assert.ok(!toBob.ok && toBob.queued && !toCarol.ok && toCarol.queued);
    const queued = alice.messenger.history.queued();
    assert.deepEqual(queued.map((m) => [m.text, m.encrypted]), [
      ["later, encrypted", true],
      ["later, who knows", false],
    ]);
    bob = await startChat("bob", { accounts });
    await connect(alice, bob, "bob");
    await waitFor("delivered", () => stateOf(alice, toBob.id!) === "delivered");
    const sent = alice.messenger.history.page("bob@lab").messages.find((m) => m.id === toBob.id);
    assert.equal(sent?.encrypted, true);
  } finally {
    await alice.stop();
    await bob.stop();
  }
});

Deno.test("queued, cancelled and contact changes are on disk before the user is told", async () => {
  let commits = 0;
  const alice = await startChat("alice", { onCommit: () => commits++ });
  try {
    let before = commits;
    alice.messenger.history.addContact("carol@lab");
    assert.equal(commits, before + 1, "a contact added");
    // Carol is a contact nobody lists: the send fails, and the message is queued.
    before = commits;
    const queued = await alice.messenger.send("carol@lab", "for later");
    assert.ok(!queued.ok && queued.queued);
    assert.ok(commits > before, "queued");
    before = commits;
    const cancelled = alice.messenger.history.cancel(queued.id!);
    assert.equal(cancelled?.reason, "cancelled");
    assert.equal(commits, before + 1, "cancelled");
    before = commits;
    assert.equal(alice.messenger.history.removeContact("carol@lab"), true);
    assert.equal(commits, before + 1, "a contact removed");
  } finally {
    await alice.stop();
  }
});

Deno.test("while the tracker is away, a friend's message is queued as not connected and a stranger's still fails", async () => {
  const tracker = createTracker({ host: "127.0.0.1", port: 0, rateLimit: false }, {
    clock: systemClock,
    log: memoryLogger("error").log,
  });
  const { port } = await tracker.start();
  const alice = await startChat("alice", { tracker: { hostname: "127.0.0.1", port } });
  try {
    await waitFor("tracker reachable", () => alice.node.status().tracker.reachable);
    await tracker.stop();
    alice.messenger.history.addContact("carol@lab");
    const friend = await alice.messenger.send("carol@lab", "when you are back");
    assert.deepEqual([friend.ok, !friend.ok && friend.reason, !friend.ok && friend.queued], [
      false,
      "not_connected",
      true,
    ]);
    // A name never met may be a typo: whoever took it later would get the message.
    const typo = await alice.messenger.send("carl@lab", "hi");
    assert.ok(!typo.ok && !typo.queued);
    assert.deepEqual(alice.messenger.history.queued().map((m) => m.text), ["when you are back"]);
  } finally {
    await alice.stop();
  }
});

Deno.test("a message on its way cannot be cancelled; once its try failed and it is queued, it can", async () => {
  const alice = await startChat("alice");
  try {
    alice.messenger.history.addContact("carol@lab");
    const sending = alice.messenger.send("carol@lab", "on its way");
    const [queued] = alice.messenger.history.queued();
    assert.throws(() => alice.messenger.history.cancel(queued.id), /too late to cancel/);
    const result = await sending;
    assert.ok(!result.ok && result.queued);
    assert.equal(alice.messenger.history.cancel(queued.id)?.reason, "cancelled");
  } finally {
    await alice.stop();
  }
});

Deno.test("a message written and never acknowledged before a crash goes again after the restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const path = `${dir}/messages.db`;
  // What a crash left: the message written to bob's connection, no ACK stored.
  const store = openMessageStore({ path }, { log: memoryLogger("error").log, clock: systemClock });
  const cut = store.addOutgoing({
    msgId: crypto.randomUUID(),
    kind: "direct",
    from: "alice@lab",
    conversation: "bob@lab",
    text: "cut off by a crash",
    at: Date.now(),
    encrypted: false,
    state: "sent",
  });
  store.close();
  const alice = await startChat("alice", { store: { path } });
  const bob = await startChat("bob");
  try {
    assert.deepEqual(alice.messenger.history.queued().map((m) => m.id), [cut.id]);
    await connect(alice, bob, "bob");
    await waitFor("delivered", () => stateOf(alice, cut.id) === "delivered");
    assert.deepEqual(texts(bob), ["cut off by a crash"]);
  } finally {
    await alice.stop();
    await bob.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("what is read while read receipts are off is never owed, even once they are on again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const path = `${dir}/carol.db`;
  const alice = await startChat("alice");
  let carol = await startChat("carol", { store: { path }, readReceipts: false });
  try {
    await connect(alice, carol, "carol");
    const sent = await alice.messenger.send("carol@lab", "read quietly");
    assert.ok(sent.ok);
    await carol.stop();
    carol = await startChat("carol", { store: { path }, readReceipts: false });
    assert.equal(carol.messenger.history.markRead("alice@lab"), 1);
    await carol.stop();
    carol = await startChat("carol", { store: { path } });
    await connect(alice, carol, "carol");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mine = alice.messenger.history.page("carol@lab").messages[0];
    assert.equal(mine.state, "delivered");
  } finally {
    await alice.stop();
    await carol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SEND repeated after the receiver restarted is ACKed again and shown once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const path = `${dir}/messages.db`;
  let bob = await startChat("bob", { store: { path } });
  try {
    const sendOnce = async (port: number) => {
      const raw = await LineClient.connect(port);
      try {
        await raw.ask({ type: "HELLO", peer_id: "pyp@lab", features: ["ack"] });
        const send = { type: "SEND", msg_id: "m-1", src: "pyp@lab", dst: "bob@lab", payload: "hi" };
        await raw.send(send);
        assert.deepEqual((await raw.next())?.msg_id, "m-1", "ACKed");
      } finally {
        raw.close();
      }
    };
    await sendOnce(bob.port);
    await waitFor("shown", () => texts(bob).length === 1);
    await bob.stop();
    bob = await startChat("bob", { store: { path } });
    await sendOnce(bob.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(texts(bob), [], "not shown again");
    assert.deepEqual(
      bob.messenger.history.page("pyp@lab").messages.map((message) => message.text),
      ["hi"],
    );
  } finally {
    await bob.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SEND or PUB that comes again is ACKed again and shown once; SENDs without msg_id all show", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const bob = await startChat("bob", { store: { path: `${dir}/messages.db` } });
  const p2p = await LineClient.connect(bob.port);
  const plain = await LineClient.connect(bob.port);
  // The ids a p2pchat peer makes: a counter, which the store keeps without a lookup.
  const sendIds = new SendIds();
  const counter = [0, 1, 2].map((n) => sendIds.idOf(n));
  const line = (type: string, src: string, msgId: string, payload: string) =>
    JSON.stringify({ type, msg_id: msgId, src, dst: type === "PUB" ? "*" : "bob@lab", payload }) +
    "\n";
  // The ids ACKed, in order, past any other line.
  const acked = async (client: LineClient, count: number) => {
    const ids: unknown[] = [];
    while (ids.length < count) {
      const reply = await client.next();
      if (reply === undefined) break;
      if (reply.type === "ACK") ids.push(reply.msg_id);
      if (reply.type === "ACKS") ids.push(...(reply.msg_ids as unknown[]));
    }
    return ids;
  };
  try {
    await p2p.ask({
      type: "HELLO",
      peer_id: "new@lab",
      features: ["ack", "p2pchat", "p2pchat-batch"],
    });
    await plain.ask({ type: "HELLO", peer_id: "pyp@lab", features: ["ack"] });
    // One write each: a repeat in the same read as its first copy, before that is committed.
    await p2p.send([0, 1, 2, 1].map((n) => line("SEND", "new@lab", counter[n], `c${n}`)).join(""));
    await plain.send(
      [
        line("SEND", "pyp@lab", "m-1", "m1"),
        line("SEND", "pyp@lab", "m-1", "m1"),
        line("SEND", "pyp@lab", "", "e1"),
        line("SEND", "pyp@lab", "", "e2"),
        line("PUB", "pyp@lab", "p-1", "p1"),
        line("PUB", "pyp@lab", "p-1", "p1"),
      ].join(""),
    );
    assert.deepEqual(await acked(p2p, 4), [0, 1, 2, 1].map((n) => counter[n]));
    assert.deepEqual(await acked(plain, 4), ["m-1", "m-1", "", ""]);
    // And in a later read, once the first copy is stored.
    await p2p.send(line("SEND", "new@lab", counter[0], "c0"));
    assert.deepEqual(await acked(p2p, 1), [counter[0]]);
    await waitFor("shown", () => texts(bob).length >= 7);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(texts(bob).sort(), ["c0", "c1", "c2", "e1", "e2", "m1", "p1"]);
  } finally {
    p2p.close();
    plain.close();
    await bob.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SEND a plain pyp2p peer never ACKed stays sent, unconfirmed, and is not sent again after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const path = `${dir}/messages.db`;
  let alice = await startChat("alice", { store: { path } });
  const raw = await LineClient.connect(alice.port);
  try {
    await raw.ask({ type: "HELLO", peer_id: "pyp@lab", features: ["ack"] });
    await waitFor("pyp connected", () => alice.node.peerRow("pyp@lab")?.state === "connected");
    const sending = alice.messenger.send("pyp@lab", "shown, perhaps");
    assert.equal((await raw.next())?.type, "SEND");
    const result = await sending;
    assert.ok(!result.ok && result.reason === "timeout" && !result.queued);
    const mine = alice.messenger.history.page("pyp@lab").messages[0];
    assert.deepEqual([mine.state, mine.reason], ["sent", "unconfirmed"]);
    await alice.stop();
    alice = await startChat("alice", { store: { path } });
    assert.deepEqual(alice.messenger.history.queued(), []);
  } finally {
    raw.close();
    await alice.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a message read while its sender is away is receipted when the sender is back, after the reader restarted too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-store-" });
  const path = `${dir}/messages.db`;
  const bobPath = `${dir}/bob.db`;
  let alice = await startChat("alice", { store: { path } });
  let bob = await startChat("bob", { store: { path: bobPath } });
  try {
    await connect(alice, bob, "bob");
    const toBob = await alice.messenger.send("bob@lab", "read me later");
    const again = await alice.messenger.send("bob@lab", "and me");
    assert.ok(toBob.ok && again.ok);
    await alice.stop();
    await waitFor("alice gone", () => bob.node.peerRow("alice@lab")?.state !== "connected");
    const [first] = bob.messenger.history.page("alice@lab").messages;
    assert.equal(first.text, "read me later");
    assert.equal(bob.messenger.history.markRead("alice@lab", first.id), 1);
    // The first is owed across a restart of bob; the second is read after it.
    await bob.stop();
    bob = await startChat("bob", { store: { path: bobPath } });
    assert.equal(bob.messenger.history.markRead("alice@lab"), 1);
    alice = await startChat("alice", { store: { path } });
    assert.equal(stateOf(alice, toBob.id!), "delivered");
    await connect(alice, bob, "bob");
    await waitFor(
      "both read once back",
      () => stateOf(alice, toBob.id!) === "read" && stateOf(alice, again.id!) === "read",
    );
  } finally {
    await alice.stop();
    await bob.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("read receipts travel both ways, and not at all when one side turned them off", async () => {
  const alice = await startChat("alice");
  const bob = await startChat("bob");
  const carol = await startChat("carol", { readReceipts: false });
  try {
    await connect(alice, bob, "bob");
    await connect(alice, carol, "carol");
    const toBob = await alice.messenger.send("bob@lab", "read me");
    const fromBob = await bob.messenger.send("alice@lab", "and me");
    assert.ok(toBob.ok && fromBob.ok);
    assert.equal(bob.messenger.history.markRead("alice@lab"), 1);
    assert.equal(alice.messenger.history.markRead("bob@lab"), 1);
    await waitFor("read by bob", () => stateOf(alice, toBob.id!) === "read");
    await waitFor(
      "read by alice",
      () =>
        bob.messenger.history.page("alice@lab").messages.find((m) => m.id === fromBob.id)
          ?.state === "read",
    );
    const toCarol = await alice.messenger.send("carol@lab", "carol reads silently");
    assert.ok(toCarol.ok);
    assert.equal(carol.messenger.history.markRead("alice@lab"), 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const mine = alice.messenger.history.page("carol@lab").messages[0];
    assert.equal(mine.state, "delivered");
  } finally {
    await alice.stop();
    await bob.stop();
    await carol.stop();
  }
});

Deno.test("a message read the moment it is shown is ACKed before its read RECEIPT", async () => {
  const bob = await startChat("bob");
  // As a terminal that has the conversation open: what arrives is read on sight.
  bob.messenger.subscribe((event) => {
    if (event.type === "message" && event.stored) {
      bob.messenger.history.markRead(event.stored.conversation, event.stored.id);
    }
  });
  const raw = await LineClient.connect(bob.port);
  try {
    const features = ["ack", "p2pchat", "p2pchat-receipts", "p2pchat-read"];
    await raw.ask({ type: "HELLO", peer_id: "pyp@lab", features });
    await raw.send({ type: "SEND", msg_id: "m-1", src: "pyp@lab", dst: "bob@lab", payload: "hi" });
    const next = async () => {
      for (;;) {
        const line = await raw.next();
        if (line?.type !== "PING") return line;
      }
    };
    const first = await next();
    const second = await next();
    assert.deepEqual([first?.type, first?.msg_id], ["ACK", "m-1"]);
    assert.deepEqual([second?.type, second?.status, second?.msg_ids], ["RECEIPT", "read", ["m-1"]]);
  } finally {
    raw.close();
    await bob.stop();
  }
});

Deno.test("a room or broadcast message that reached nobody, with nobody to wait for, is stored as failed", async () => {
  const alice = await startChat("alice", { roomMembers: () => ["alice"] });
  try {
    const result = await alice.messenger.publish("#team", "anyone?");
    assert.deepEqual([result.reached, result.waiting], [0, 0]);
    const [stored] = alice.messenger.history.page("#team").messages;
    assert.deepEqual([stored.state, stored.reason], ["failed", "unreached"]);
    await alice.messenger.publish("*", "hello world");
    const [broadcast] = alice.messenger.history.page("*").messages;
    assert.deepEqual([broadcast.state, broadcast.reason], ["failed", "unreached"]);
  } finally {
    await alice.stop();
  }
});

Deno.test("a room message reaches a member that was offline when it was sent, once", async () => {
  const members = () => ["alice", "bob", "carol"];
  // Room members are accounts: their keys are the ones the tracker holds for their names.
  const accounts = new FakeAccountKeys();
  let commits = 0;
  const alice = await startChat("alice", {
    roomMembers: members,
    accounts,
    onCommit: () => commits++,
  });
  const bob = await startChat("bob", { roomMembers: members, accounts });
  let carol: Chat | undefined;
  try {
    await connect(alice, bob, "bob");
    const before = commits;
    const result = await alice.messenger.publish("#team", "meeting at 10", ["bob@lab"]);
    assert.deepEqual(result.peers, ["bob@lab"]);
    assert.equal(result.waiting, 1);
    assert.ok(commits > before, "waiting for carol is on disk when publish says so");
    const sent = alice.messenger.history.page("#team").messages[0];
    assert.deepEqual(sent.pendingFor, ["carol"]);
    carol = await startChat("carol", { roomMembers: members, accounts });
    await connect(alice, carol, "carol");
    await waitFor("carol got it", () => texts(carol!).includes("meeting at 10"));
    await waitFor(
      "no longer pending",
      () => (alice.messenger.history.page("#team").messages[0].pendingFor ?? []).length === 0,
    );
    // The change says who got it.
    const reached = alice.events.flatMap((event) =>
      event.type === "message_state" && event.member ? [event.member] : []
    );
    assert.deepEqual(reached, ["carol@lab"]);
    const stored = carol.messenger.history.page("#team").messages;
    assert.deepEqual(stored.map((m: StoredMessage) => [m.from, m.text]), [[
      "alice@lab",
      "meeting at 10",
    ]]);
    assert.deepEqual(texts(bob), ["meeting at 10"]);
  } finally {
    await alice.stop();
    await bob.stop();
    await carol?.stop();
  }
});

Deno.test("a room message reaches a member who signed up after we heard the name was no account", async () => {
  const members = () => ["alice", "carol"];
  const accounts = new FakeAccountKeys();
  const alice = await startChat("alice", { roomMembers: members, accounts });
  let carol: Chat | undefined;
  try {
    const result = await alice.messenger.publish("#team", "meeting at 10", []);
    assert.equal(result.waiting, 1);
    // Carol was no account when alice last asked (she met her before signing up): alice still
    // remembers that answer when carol, signed up since, connects.
    accounts.remembered.set("carol", { kind: "none" });
    carol = await startChat("carol", { roomMembers: members, accounts });
    await connect(alice, carol, "carol");
    await waitFor("carol got it", () => texts(carol!).includes("meeting at 10"));
    assert.equal(alice.node.peerRow("carol@lab")?.security?.accountBound, true);
    await waitFor(
      "no longer pending",
      () => (alice.messenger.history.page("#team").messages[0].pendingFor ?? []).length === 0,
    );
  } finally {
    await alice.stop();
    await carol?.stop();
  }
});

Deno.test('a peer admitted on an out-of-date "no account" is dropped once its name\'s account has another key', async () => {
  const accounts = new FakeAccountKeys();
  const alice = await startChat("alice", { roomMembers: () => ["alice", "carol"], accounts });
  let impostor: Chat | undefined;
  try {
    await alice.messenger.publish("#team", "the door code", []);
    // The account carol has a key of its own; alice remembers "no account" from before.
    accounts.keys.set("carol", generateIdentityKeyPair().publicKey);
    accounts.remembered.set("carol", { kind: "none" });
    // Encrypted, with a key of its own (its own tracker would vouch for it).
    impostor = await startChat("carol", { accounts: new FakeAccountKeys() });
    alice.node.addPeer("carol", "lab", { hostname: "127.0.0.1", port: impostor.port });
    const notices = () =>
      alice.events.flatMap((event) => event.type === "security" ? [event.notice.kind] : []);
    await waitFor("the impostor told", () => notices().includes("impostor"));
    // Admitted first (on the old answer), then dropped.
    const states = alice.events.flatMap((event) =>
      event.type === "peer" && event.peerId === "carol@lab" ? [event.state] : []
    );
    assert.ok(states.includes("connected"), states.join());
    await waitFor("dropped", () => alice.node.peerRow("carol@lab")?.state !== "connected");
    assert.deepEqual(texts(impostor), []);
    assert.deepEqual(alice.messenger.history.page("#team").messages[0].pendingFor, ["carol"]);
  } finally {
    await alice.stop();
    await impostor?.stop();
  }
});

Deno.test("a room message waits for the member's account key, not for anyone with the name", async () => {
  const accounts = new FakeAccountKeys();
  const alice = await startChat("alice", { roomMembers: () => ["alice", "carol"], accounts });
  let impostor: Chat | undefined;
  try {
    const result = await alice.messenger.publish("#team", "the door code", []);
    assert.equal(result.waiting, 1);
    // A peer named carol whose key is not the one the tracker holds for the account carol
    // (here: none yet, as in the moments before carol signs up).
    impostor = await startChat("carol");
    await connect(alice, impostor, "carol");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(texts(impostor), []);
    assert.deepEqual(alice.messenger.history.page("#team").messages[0].pendingFor, ["carol"]);
  } finally {
    await alice.stop();
    await impostor?.stop();
  }
});

Deno.test("contacts show presence and the remembered key; strangers are marked", async () => {
  const alice = await startChat("alice");
  const bob = await startChat("bob");
  try {
    const added = alice.messenger.history.addContact("bob@lab");
    assert.equal(added.online, false);
    await connect(alice, bob, "bob");
    const [contact] = alice.messenger.history.contacts();
    assert.equal(contact.peerId, "bob@lab");
    assert.equal(contact.online, true);
    assert.equal(contact.address?.port, bob.port);
    assert.ok(await bob.messenger.send("alice@lab", "from a contact"));
    const received = alice.messenger.history.page("bob@lab").messages[0];
    assert.equal(received.text, "from a contact");
    assert.notEqual(received.stranger, true);
    assert.equal(alice.messenger.history.removeContact("bob@lab"), true);
    assert.equal(alice.messenger.history.page("bob@lab").messages[0].stranger, true);
    // Every interface hears of a change, once: adding a contact again changes nothing.
    alice.messenger.history.addContact("carol@lab");
    alice.messenger.history.addContact("carol@lab");
    assert.equal(alice.messenger.history.removeContact("zed@lab"), false);
    assert.deepEqual(
      alice.events.flatMap((event) =>
        event.type === "contact" ? [`${event.change} ${event.peerId}`] : []
      ),
      ["added bob@lab", "removed bob@lab", "added carol@lab"],
    );
  } finally {
    await alice.stop();
    await bob.stop();
  }
});

Deno.test("a forgotten conversation is gone for good: what was queued in it never goes", async () => {
  const alice = await startChat("alice");
  let bob: Chat | undefined;
  try {
    alice.messenger.history.addContact("bob@lab");
    const queued = await alice.messenger.send("bob@lab", "never mind");
    assert.ok(!queued.ok && queued.queued);
    assert.equal(alice.messenger.history.forget("bob@lab"), 1);
    const told = alice.events.filter((event) => event.type === "conversation_forgotten");
    assert.deepEqual(
      told.map((event) => event.type === "conversation_forgotten" && event.deleted),
      [1],
    );
    assert.equal(alice.messenger.history.forget("bob@lab"), undefined);
    bob = await startChat("bob");
    await connect(alice, bob, "bob");
    assert.ok((await alice.messenger.send("bob@lab", "a fresh start")).ok);
    await waitFor("the fresh message", () => texts(bob!).length === 1);
    assert.deepEqual(texts(bob), ["a fresh start"]);
    assert.deepEqual(
      alice.messenger.history.page("bob@lab").messages.map((message) => message.text),
      ["a fresh start"],
    );
  } finally {
    await alice.stop();
    await bob?.stop();
  }
});

Deno.test("a conversation is not deleted while one of its messages is on its way", async () => {
  const alice = await startChat("alice");
  const raw = await LineClient.connect(alice.port);
  // The next line of `type` the raw peer gets (PINGs and the like are skipped).
  const next = async (type: string, timeoutMs: number) => {
    for (const deadline = Date.now() + timeoutMs;;) {
      const line = await raw.next(Math.max(1, deadline - Date.now()));
      if (line?.type === type || line === undefined) return line;
    }
  };
  try {
    // A p2pchat peer that never ACKs: each try times out and goes back to the outbox.
    const features = ["ack", "p2pchat", "p2pchat-receipts"];
    await raw.ask({ type: "HELLO", peer_id: "mute@lab", features });
    await waitFor("mute", () => alice.node.peerRow("mute@lab")?.state === "connected");
    alice.messenger.history.addContact("mute@lab");
    const sending = alice.messenger.send("mute@lab", "unanswered");
    assert.equal((await next("SEND", 2_000))?.payload, "unanswered");
    assert.throws(() => alice.messenger.history.forget("mute@lab"), { code: "bad_state" });
    assert.equal(alice.messenger.history.page("mute@lab").messages.length, 1, "nothing deleted");
    await sending;
    let deleted: number | undefined;
    await waitFor("deleted between two tries", () => {
      try {
        deleted = alice.messenger.history.forget("mute@lab");
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(deleted, 1);
    // Deleted means never sent again.
    await assert.rejects(next("SEND", 700), /no line within/);
  } finally {
    raw.close();
    await alice.stop();
  }
});

Deno.test("a queued message expires with a notice, and a cancelled one never goes", async () => {
  const alice = await startChat("alice", { queueMaxAgeMs: 100 });
  try {
    alice.messenger.history.addContact("bob@lab");
    const expiring = await alice.messenger.send("bob@lab", "too late");
    assert.ok(!expiring.ok && expiring.queued);
    await waitFor(
      "expired",
      () =>
        alice.events.some((event) =>
          event.type === "message_state" && event.message.id === expiring.id &&
          event.message.state === "failed" && event.message.reason === "expired"
        ),
    );
    assert.deepEqual(alice.messenger.history.queued(), []);
  } finally {
    await alice.stop();
  }
});

Deno.test("a message to a name nobody listed and we never heard from is not queued for a stranger to claim", async () => {
  const alice = await startChat("alice");
  try {
    const result = await alice.messenger.send("nobody@lab", "the door code");
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, "unknown_peer");
    assert.equal(!result.ok && result.queued, undefined);
    assert.deepEqual(alice.messenger.history.queued(), []);
    // A contact is someone we know: a message to them waits.
    alice.messenger.history.addContact("carol@lab");
    const toContact = await alice.messenger.send("carol@lab", "see you");
    assert.equal(!toContact.ok && toContact.queued, true);
    // Ourselves, in any case: refused, and nothing stored.
    const conversations = alice.messenger.history.conversations().length;
    const self = await alice.messenger.send("ALICE@lab", "to me");
    assert.equal(!self.ok && self.reason, "unknown_peer");
    assert.equal(alice.messenger.history.conversations().length, conversations);
  } finally {
    await alice.stop();
  }
});

Deno.test("what we send, and a transfer's line, is told to pages as soon as it is stored", async () => {
  const alice = await startChat("alice");
  try {
    const added = () =>
      alice.events.flatMap((event) =>
        event.type === "message_added" ? [`${event.message.text} ${event.message.state}`] : []
      );
    alice.messenger.history.addContact("bob@lab");
    const queued = await alice.messenger.send("bob@lab", "are you there?");
    assert.equal(!queued.ok && queued.queued, true);
    const published = await alice.messenger.publish("#lab", "hello all");
    assert.equal(typeof published.id, "number");
    alice.messenger.record({
      incoming: {
        msgId: "file-1",
        kind: "direct",
        from: "bob@lab",
        conversation: "bob@lab",
        text: "[file] cat.png",
        at: Date.now(),
        encrypted: true,
      },
    });
    assert.deepEqual(added(), [
      "are you there? queued",
      // Nobody is connected: it reached nobody.
      "hello all failed",
      "[file] cat.png delivered",
    ]);
    // Nothing of this is a message that arrived.
    assert.deepEqual(texts(alice), []);
  } finally {
    await alice.stop();
  }
});
