/**
 * The local HTTP API's history, outbox, contact and storage routes, and how message sends and
 * the event stream look with a message store: through `app.request()` over the fake node and
 * the in-memory history.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { NodeEvent, SendResult, StoredMessage } from "../../peer/api.ts";
import { createPeerApi } from "../../peer/http/routes.ts";
import { FakeHistory } from "../_fake_history.ts";
import { FakePeerNode } from "../_fake_node.ts";

const TOKEN = "c".repeat(64);
const AUTH = { authorization: `Bearer ${TOKEN}` };

function setup(options: { history?: boolean } = {}) {
  const node = new FakePeerNode("alice", "lobby");
  node.addPeer("bob@lobby");
  const history = new FakeHistory();
  if (options.history ?? true) node.history = history;
  const clock = new ManualClock();
  const { log, lines } = memoryLogger();
  const app = createPeerApi(node, { token: TOKEN, log, clock });
  const call = (path: string, init: RequestInit = {}) =>
    app.request(`http://127.0.0.1:7001${path}`, {
      ...init,
      headers: { ...AUTH, ...init.headers as Record<string, string> },
    });
  const send = (method: string, path: string, body?: unknown) =>
    call(path, {
      method,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  const json = async (path: string) => {
    const response = await call(path);
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    return await response.json();
  };
  return { node, history, app, call, send, json, logLines: lines };
}

async function assertError(response: Response, status: number, code: string) {
  const body = await response.json();
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, "string");
  return body;
}

const ids = (messages: StoredMessage[]) => messages.map((message) => message.id);

/** Every history route, as a method and a path with valid parameters. */
const ROUTES: [string, string, unknown?][] = [
  ["GET", "/api/conversations"],
  ["GET", "/api/conversations/bob%40lobby/messages"],
  ["POST", "/api/conversations/bob%40lobby/read", {}],
  ["GET", "/api/search?q=hi"],
  ["GET", "/api/outbox"],
  ["DELETE", "/api/outbox/1"],
  ["GET", "/api/contacts"],
  ["POST", "/api/contacts", { peer: "bob" }],
  ["DELETE", "/api/contacts/bob@lobby"],
  ["DELETE", "/api/conversations/bob%40lobby"],
  ["GET", "/api/storage"],
];

Deno.test("Every history route needs the bearer token and a loopback Host", async () => {
  const { app, history } = setup();
  history.add({ conversation: "bob@lobby", text: "secret" });
  history.addContact("bob@lobby");
  for (const [method, path, body] of ROUTES) {
    const init = { method, body: body === undefined ? undefined : JSON.stringify(body) };
    const url = `http://127.0.0.1:7001${path}`;
    await assertError(await app.request(url, init), 401, "unauthorized");
    await assertError(
      await app.request(url, { ...init, headers: { authorization: "Bearer wrong" } }),
      401,
      "unauthorized",
    );
    await assertError(
      await app.request(url, { ...init, headers: { ...AUTH, host: "evil.example" } }),
      403,
      "forbidden_host",
    );
  }
  // Nothing was changed by the refused requests.
  assert.equal(history.messages[0].state, "delivered");
  assert.deepEqual(history.contacts().map((contact) => contact.peerId), ["bob@lobby"]);
});

Deno.test("Without a message store every history route answers 404 no_history", async () => {
  const { send, json } = setup({ history: false });
  for (const [method, path, body] of ROUTES) {
    await assertError(await send(method, path, body), 404, "no_history");
  }
  assert.equal("storage" in await json("/api/status"), false);
});

Deno.test("GET /api/conversations lists conversations newest first with unread counts", async () => {
  const { history, json } = setup();
  history.add({ conversation: "bob@lobby", text: "hi alice" });
  history.add({ conversation: "#games", text: "gg", from: "carol@lobby" });
  history.add({ conversation: "bob@lobby", text: "hi bob", outgoing: true });
  history.add({ conversation: "bob@lobby", text: "still there?" });
  history.add({ conversation: "*", text: "hello world", from: "dave@other", state: "read" });
  const body = await json("/api/conversations");
  assert.equal(body.unread, 3);
  assert.deepEqual(
    body.conversations.map((c: { conversation: string; kind: string; unread: number }) => [
      c.conversation,
      c.kind,
      c.unread,
    ]),
    [["*", "broadcast", 0], ["bob@lobby", "direct", 2], ["#games", "room", 1]],
  );
  assert.equal(body.conversations[1].last.text, "still there?");
  assert.deepEqual(await json("/api/conversations?x=1"), body);
});

Deno.test("GET /api/conversations with an empty store answers no conversations", async () => {
  const { json } = setup();
  assert.deepEqual(await json("/api/conversations"), { conversations: [], unread: 0 });
});

/** 120 messages with bob among 60 of a room, in one timeline; returns bob's ids. */
function fillBob(history: FakeHistory): number[] {
  const bob: number[] = [];
  for (let i = 0; i < 120; i++) {
    bob.push(
      history.add({ conversation: "bob@lobby", text: `bob ${i}`, outgoing: i % 3 === 0 }).id,
    );
    if (i % 2 === 0) history.add({ conversation: "#games", text: `room ${i}` });
  }
  return bob;
}

Deno.test("Paging back with before= walks a conversation newest first, each message once", async () => {
  const { history, json } = setup();
  const bob = fillBob(history);
  const first = await json("/api/conversations/bob%40lobby/messages");
  // A bare name is a peer of our namespace.
  assert.deepEqual(await json("/api/conversations/bob/messages"), first);
  assert.equal(first.conversation, "bob@lobby");
  assert.deepEqual(ids(first.messages), bob.slice(-50), "the newest 50, oldest first");
  assert.equal(first.more, true);
  const seen = [...first.messages];
  const pages = [first];
  while (pages.at(-1).more) {
    const oldest = seen[0].id;
    const page = await json(`/api/conversations/bob%40lobby/messages?before=${oldest}`);
    seen.unshift(...page.messages);
    pages.push(page);
  }
  assert.deepEqual(pages.map((page) => page.messages.length), [50, 50, 20]);
  assert.deepEqual(ids(seen), bob, "every message of the conversation, once, in order");
  assert.ok(seen.every((message) => message.conversation === "bob@lobby"));
});

Deno.test("Paging forward with after= catches up on newer messages", async () => {
  const { history, json } = setup();
  const bob = fillBob(history);
  const seen: StoredMessage[] = [];
  let after = bob[9];
  let more = true;
  let requests = 0;
  while (more) {
    const page = await json(`/api/conversations/bob%40lobby/messages?after=${after}&limit=25`);
    seen.push(...page.messages);
    more = page.more;
    after = seen.at(-1)!.id;
    requests++;
  }
  assert.deepEqual(ids(seen), bob.slice(10));
  assert.equal(requests, 5);
  const newest = await json(`/api/conversations/bob%40lobby/messages?after=${bob.at(-1)}`);
  assert.deepEqual(newest, { conversation: "bob@lobby", messages: [], more: false });
});

Deno.test("A page between after= and before=, and the largest limit", async () => {
  const { history, json } = setup();
  const bob = fillBob(history);
  const range = await json(
    `/api/conversations/bob%40lobby/messages?after=${bob[4]}&before=${bob[10]}`,
  );
  assert.deepEqual(ids(range.messages), bob.slice(5, 10));
  assert.equal(range.more, false);
  const all = await json("/api/conversations/bob%40lobby/messages?limit=500");
  assert.deepEqual(ids(all.messages), bob);
  assert.equal(all.more, false);
  const one = await json("/api/conversations/bob%40lobby/messages?limit=1");
  assert.deepEqual(ids(one.messages), [bob.at(-1)]);
  assert.equal(one.more, true);
});

Deno.test("Room, broadcast and direct conversations are named URL-encoded in the path", async () => {
  const { history, json } = setup();
  history.add({ conversation: "#games", text: "in the room", from: "carol@lobby" });
  history.add({ conversation: "*", text: "to everyone", from: "dave@other" });
  history.add({ conversation: "bob@lobby", text: "direct" });
  for (
    const [path, conversation, text] of [
      ["%23games", "#games", "in the room"],
      ["*", "*", "to everyone"],
      ["%2A", "*", "to everyone"],
      ["bob%40lobby", "bob@lobby", "direct"],
      ["bob@lobby", "bob@lobby", "direct"],
    ]
  ) {
    const body = await json(`/api/conversations/${path}/messages`);
    assert.equal(body.conversation, conversation);
    assert.deepEqual(body.messages.map((m: StoredMessage) => m.text), [text], path);
  }
  const unknown = await json("/api/conversations/zed%40lobby/messages");
  assert.deepEqual(unknown, { conversation: "zed@lobby", messages: [], more: false });
});

Deno.test("Bad conversations, cursors and limits are refused with bad_field", async () => {
  const { call } = setup();
  const long = "x".repeat(65);
  for (
    const path of [
      "/api/conversations/bob%40/messages",
      "/api/conversations/bad%20name/messages",
      "/api/conversations/%40lobby/messages",
      "/api/conversations/a%40b%40c/messages",
      "/api/conversations/%23/messages",
      `/api/conversations/%23${long}/messages`,
      `/api/conversations/${long}%40lobby/messages`,
      "/api/conversations/%ZZ/messages",
      "/api/conversations/**/messages",
      ...["0", "-1", "1.5", "abc", "01", "1e3", "", " 1", "99999999999999999"].flatMap((v) => [
        `/api/conversations/*/messages?before=${encodeURIComponent(v)}`,
        `/api/conversations/*/messages?after=${encodeURIComponent(v)}`,
      ]),
      ...["0", "501", "ten", "", "-5", "2.5"].map((v) =>
        `/api/conversations/*/messages?limit=${v}`
      ),
      "/api/conversations/*/messages?after=5&before=5",
      "/api/conversations/*/messages?after=9&before=5",
    ]
  ) {
    await assertError(await call(path), 400, "bad_field");
  }
});

Deno.test("POST /api/conversations/{c}/read marks incoming messages read, up to an id", async () => {
  const { history, send, json } = setup();
  const first = history.add({ conversation: "bob@lobby", text: "one" });
  history.add({ conversation: "bob@lobby", text: "mine", outgoing: true, state: "sent" });
  const second = history.add({ conversation: "bob@lobby", text: "two" });
  history.add({ conversation: "bob@lobby", text: "three" });
  history.add({ conversation: "#games", text: "elsewhere" });
  const partly = await send("POST", "/api/conversations/bob%40lobby/read", { upTo: second.id });
  assert.equal(partly.status, 200);
  assert.deepEqual(await partly.json(), { conversation: "bob@lobby", marked: 2 });
  assert.equal(history.messages.find((m) => m.id === first.id)?.state, "read");
  assert.equal((await json("/api/conversations")).unread, 2);
  // No body (or an empty one) marks the whole conversation.
  const rest = await send("POST", "/api/conversations/bob%40lobby/read");
  assert.deepEqual(await rest.json(), { conversation: "bob@lobby", marked: 1 });
  const again = await send("POST", "/api/conversations/bob%40lobby/read", {});
  assert.deepEqual(await again.json(), { conversation: "bob@lobby", marked: 0 });
  assert.equal(history.messages.find((m) => m.text === "mine")?.state, "sent", "outgoing kept");
  assert.equal((await json("/api/conversations")).unread, 1, "the room is still unread");
});

Deno.test("POST /api/conversations/{c}/read refuses a bad upTo and a bad body", async () => {
  const { history, send } = setup();
  history.add({ conversation: "bob@lobby", text: "one" });
  for (const upTo of ["1", 0, -1, 1.5, null, true, 2 ** 53]) {
    await assertError(
      await send("POST", "/api/conversations/bob%40lobby/read", { upTo }),
      400,
      "bad_field",
    );
  }
  await assertError(await send("POST", "/api/conversations/*/read", "{"), 400, "invalid_json");
  await assertError(await send("POST", "/api/conversations/*/read", "[1]"), 400, "not_an_object");
  await assertError(await send("POST", "/api/conversations/bo%23b/read", {}), 400, "bad_field");
  assert.equal(history.messages[0].state, "delivered", "nothing was marked");
});

Deno.test("GET /api/search finds text across conversations, any case, newest first", async () => {
  const { history, json } = setup();
  history.add({ conversation: "bob@lobby", text: "Lunch at noon?" });
  history.add({ conversation: "#games", text: "no lunch today" });
  history.add({ conversation: "bob@lobby", text: "dinner" });
  const found = await json("/api/search?q=LUNCH");
  assert.equal(found.q, "LUNCH");
  assert.deepEqual(found.messages.map((m: StoredMessage) => m.text), [
    "no lunch today",
    "Lunch at noon?",
  ]);
  const limited = await json("/api/search?q=lunch&limit=1");
  assert.deepEqual(limited.messages.map((m: StoredMessage) => m.text), ["no lunch today"]);
  assert.deepEqual((await json("/api/search?q=%23%20x")).messages, []);
  assert.equal((await json(`/api/search?q=${"é".repeat(200)}`)).q, "é".repeat(200));
});

Deno.test("GET /api/search refuses a missing, empty or too long q and a bad limit", async () => {
  const { call } = setup();
  await assertError(await call("/api/search"), 400, "missing_field");
  await assertError(await call("/api/search?q="), 400, "bad_field");
  await assertError(await call(`/api/search?q=${"x".repeat(201)}`), 400, "bad_field");
  await assertError(await call("/api/search?q=x&limit=0"), 400, "bad_field");
  await assertError(await call("/api/search?q=x&limit=501"), 400, "bad_field");
});

Deno.test("GET /api/outbox lists queued messages and DELETE cancels one, once (or stops a room message waiting)", async () => {
  const { history, call, json } = setup();
  const sent = history.add({ conversation: "bob@lobby", text: "went", outgoing: true });
  const first = history.add({
    conversation: "carol@lobby",
    text: "wait 1",
    outgoing: true,
    state: "queued",
  });
  const second = history.add({
    conversation: "carol@lobby",
    text: "wait 2",
    outgoing: true,
    state: "queued",
  });
  const room = history.add({
    conversation: "#team",
    text: "meeting",
    outgoing: true,
    state: "sent",
    kind: "pub",
    pendingFor: ["dave"],
  });
  const outbox = await json("/api/outbox");
  assert.deepEqual(ids(outbox.messages), [first.id, second.id]);
  // Room messages that members still wait for, apart.
  assert.deepEqual(ids(outbox.waiting), [room.id]);
  const cancel = (id: number | string) => call(`/api/outbox/${id}`, { method: "DELETE" });
  const response = await cancel(first.id);
  assert.equal(response.status, 200);
  const { cancelled } = await response.json();
  assert.deepEqual(
    [cancelled.id, cancelled.text, cancelled.state, cancelled.reason],
    [first.id, "wait 1", "failed", "cancelled"],
  );
  assert.deepEqual(ids((await json("/api/outbox")).messages), [second.id]);
  await assertError(await cancel(first.id), 404, "not_queued");
  await assertError(await cancel(sent.id), 404, "not_queued");
  await assertError(await cancel(999), 404, "not_queued");
  assert.equal(sent.state, "delivered", "a sent message is not touched");
  for (const bad of ["0", "abc", "-2", "1.0"]) {
    await assertError(await cancel(bad), 400, "bad_field");
  }
  assert.deepEqual(ids((await json("/api/outbox")).messages), [second.id]);
  // A room message stops waiting; it stays sent (the members online got it).
  const stopped = await cancel(room.id);
  assert.equal(stopped.status, 200);
  const { cancelled: roomCancelled } = await stopped.json();
  assert.deepEqual(
    [roomCancelled.id, roomCancelled.state, roomCancelled.pendingFor],
    [room.id, "sent", undefined],
  );
  assert.deepEqual(ids((await json("/api/outbox")).waiting), []);
  await assertError(await cancel(room.id), 404, "not_queued");
});

Deno.test("DELETE /api/conversations/{c} deletes a conversation and its messages, once", async () => {
  const { history, call, json } = setup();
  history.add({ conversation: "bob@lobby", text: "hi" });
  history.add({ conversation: "bob@lobby", text: "queued", outgoing: true, state: "queued" });
  history.add({ conversation: "#games", text: "gg" });
  const forget = (conversation: string) =>
    call(`/api/conversations/${encodeURIComponent(conversation)}`, { method: "DELETE" });
  // A bare name is a peer of our namespace, as in the other conversation routes.
  const response = await forget("bob");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { conversation: "bob@lobby", deleted: 2 });
  assert.deepEqual(
    (await json("/api/conversations")).conversations.map((c: { conversation: string }) =>
      c.conversation
    ),
    ["#games"],
  );
  assert.deepEqual((await json("/api/outbox")).messages, []);
  await assertError(await forget("bob@lobby"), 404, "no_conversation");
  await assertError(await forget("@nobody"), 400, "bad_field");
  assert.equal(history.messages.length, 1, "the room is untouched");
});

Deno.test("?exact=1 takes a conversation's name as listed: a pyp2p peer without namespace is not ours", async () => {
  const { history, call } = setup();
  history.add({ conversation: "bob@lobby", text: "the real bob" });
  history.add({ conversation: "bob", text: "a pyp2p peer called bob" });
  history.add({ conversation: "a@b@lobby", text: "two @" });
  const texts = async (path: string) =>
    ((await (await call(path)).json()).messages as StoredMessage[]).map((m) => m.text);
  assert.deepEqual(await texts("/api/conversations/bob/messages"), ["the real bob"]);
  assert.deepEqual(await texts("/api/conversations/bob/messages?exact=1"), [
    "a pyp2p peer called bob",
  ]);
  assert.deepEqual(await texts("/api/conversations/a%40b%40lobby/messages?exact=1"), ["two @"]);
  const forget = (name: string) =>
    call(`/api/conversations/${encodeURIComponent(name)}?exact=1`, { method: "DELETE" });
  assert.equal((await (await forget("bob")).json()).deleted, 1);
  // Asked twice (a double click), the second does not fall back on bob@lobby.
  await assertError(await forget("bob"), 404, "no_conversation");
  assert.deepEqual(history.messages.map((m) => m.text), ["the real bob", "two @"]);
  await assertError(await forget("bad\u0000id"), 400, "bad_field");
});

Deno.test("Contacts: add by bare name or peer id, list, remove", async () => {
  const { history, send, json } = setup();
  const added = await send("POST", "/api/contacts", { peer: "bob" });
  assert.equal(added.status, 201);
  const bob = await added.json();
  assert.equal(bob.peerId, "bob@lobby", "a bare name is a peer of our namespace");
  assert.equal(bob.verified, false);
  const again = await send("POST", "/api/contacts", { peer: "bob@lobby" });
  assert.equal(again.status, 200, "already a contact");
  assert.deepEqual(await again.json(), bob);
  assert.equal((await send("POST", "/api/contacts", { peer: "carol@other" })).status, 201);
  assert.deepEqual(
    (await json("/api/contacts")).contacts.map((c: { peerId: string }) => c.peerId),
    ["bob@lobby", "carol@other"],
  );
  const removed = await send("DELETE", "/api/contacts/bob%40lobby");
  assert.equal(removed.status, 200);
  assert.deepEqual(await removed.json(), { peerId: "bob@lobby", removed: true });
  await assertError(await send("DELETE", "/api/contacts/bob@lobby"), 404, "not_contact");
  assert.deepEqual(history.contacts().map((c) => c.peerId), ["carol@other"]);
});

Deno.test("Contacts: bad peers and our own id are refused, nothing is added", async () => {
  const { history, send } = setup();
  await assertError(await send("POST", "/api/contacts", {}), 400, "missing_field");
  for (const peer of ["", 7, "bob@", "@lobby", "a@b@c", "x".repeat(65), "alice", "alice@lobby"]) {
    await assertError(await send("POST", "/api/contacts", { peer }), 400, "bad_field");
  }
  await assertError(await send("POST", "/api/contacts", "nope"), 400, "invalid_json");
  await assertError(await send("DELETE", "/api/contacts/bob@"), 400, "bad_field");
  await assertError(await send("DELETE", "/api/contacts/bob"), 404, "not_contact");
  assert.deepEqual(history.contacts(), []);
});

Deno.test("GET /api/storage says whether history is saved; /api/status carries it too", async () => {
  const { history, json } = setup();
  assert.deepEqual(await json("/api/storage"), {
    persistent: true,
    path: "/tmp/fake/messages.db",
  });
  history.storageStatus = {
    persistent: false,
    path: "/tmp/fake/messages.db",
    problem: "The disk is read-only",
  };
  assert.deepEqual(await json("/api/storage"), history.storageStatus);
  const status = await json("/api/status");
  assert.equal(status.peerId, "alice@lobby");
  assert.deepEqual(status.storage, history.storageStatus);
});

/** Makes the fake node's next sends answer `result`. */
function answerSends(node: FakePeerNode, result: SendResult): void {
  node.send = (peerId, text) => {
    node.sent.push({ peerId, text });
    return Promise.resolve(result);
  };
}

Deno.test("POST /api/messages answers 202 queued when the store keeps the message", async () => {
  const { node, send } = setup();
  answerSends(node, { ok: false, msgId: "m-7", reason: "offline", queued: true, id: 7 });
  const response = await send("POST", "/api/messages", { to: "carol", text: "see you" });
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), {
    delivered: false,
    queued: true,
    msgId: "m-7",
    id: 7,
    to: "carol@lobby",
    reason: "offline",
  });
  assert.deepEqual(node.sent, [{ peerId: "carol@lobby", text: "see you" }]);
});

Deno.test("POST /api/messages adds the store id to a delivered answer and to errors", async () => {
  const { node, send } = setup();
  answerSends(node, { ok: true, msgId: "m-8", roundTripMs: 4, id: 8 });
  const delivered = await send("POST", "/api/messages", { to: "bob", text: "hi" });
  assert.deepEqual(await delivered.json(), {
    delivered: true,
    msgId: "m-8",
    id: 8,
    to: "bob@lobby",
    roundTripMs: 4,
  });
  answerSends(node, { ok: false, reason: "queue_full", id: 9 });
  const full = await assertError(
    await send("POST", "/api/messages", { to: "bob", text: "hi" }),
    429,
    "queue_full",
  );
  assert.equal(full.error.id, 9);
  assert.equal("msgId" in full.error, false);
  answerSends(node, { ok: true, msgId: "m-10", roundTripMs: 2 });
  const withoutStore = await send("POST", "/api/messages", { to: "bob", text: "hi" });
  assert.equal("id" in await withoutStore.json(), false);
});

Deno.test("GET /api/events carries message_state, storage and stored messages", async () => {
  const { node, history, call } = setup();
  const response = await call("/api/events");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read();
  const message = history.add({
    conversation: "carol@lobby",
    text: "later",
    outgoing: true,
    state: "delivered",
  });
  const events: NodeEvent[] = [
    { type: "message_state", message, at: 1767225600000 },
    { type: "storage", status: { persistent: false, problem: "disk full" }, at: 1767225601000 },
    {
      type: "message",
      kind: "direct",
      msgId: "m-2",
      from: "bob@lobby",
      to: "alice@lobby",
      text: "hi",
      at: 1767225602000,
      stored: history.add({ conversation: "bob@lobby", text: "hi", stranger: true }),
    },
  ];
  for (const event of events) {
    node.emit(event);
    const chunk = (await reader.read()).value!;
    assert.equal(chunk, `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    assert.deepEqual(JSON.parse(chunk.split("\n")[1].slice("data: ".length)), event);
  }
  await reader.cancel();
  assert.equal(node.listenerCount, 0);
});

Deno.test("A store that throws becomes a logged 500, not an empty answer", async () => {
  const { history, call, logLines } = setup();
  history.conversations = () => {
    throw new Error("database disk image is malformed");
  };
  await assertError(await call("/api/conversations"), 500, "internal_error");
  assert.ok(logLines.some((line) => line.includes("database disk image is malformed")));
});
