import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { MAX_LINE_BYTES } from "../../lib/constants.ts";
import { utf8Length } from "../../lib/framing.ts";
import { memoryLogger } from "../../lib/log.ts";
import { memoryConnPair } from "../../lib/transport.ts";
import type { SendResult } from "../../peer/api.ts";
import { LinkIo, runLink } from "../../peer/node/link.ts";
import { MAX_BATCH_ITEMS } from "../../peer/protocol/batch.ts";
import { RecentIds } from "../../peer/protocol/recent_ids.ts";
import {
  type CloseReason,
  type ConnectionHooks,
  type ConnectionSettings,
  PeerConnection,
  PYP2P_ACK_DELAY_MS,
  type ReceivedMessage,
} from "../../peer/protocol/connection.ts";

const encoder = new TextEncoder();
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The `[msg_id, payload]` pairs of a written SENDS line. */
function entriesOf(line: Record<string, unknown>): [string, string][] {
  const payloads = line.payloads as string[];
  return (line.msg_ids as string[]).map((id, i) => [id, payloads[i]]);
}

interface Harness {
  connection: PeerConnection;
  clock: ManualClock;
  /** Each write, decoded. */
  writes: string[];
  messages: ReceivedMessage[];
  closed: { reason: CloseReason; detail?: string }[];
  /** Every written line parsed as JSON. */
  sent(): Record<string, unknown>[];
  feed(message: unknown): void;
  /** Makes writes hang until `release()` (a peer that does not read). */
  hold(): void;
  release(): void;
}

function harness(
  settings: Partial<ConnectionSettings> & { direction: "inbound" | "outbound" },
  admit: () => string | undefined = () => undefined,
  hooks: Partial<ConnectionHooks> = {},
): Harness {
  const clock = new ManualClock();
  const writes: string[] = [];
  const messages: ReceivedMessage[] = [];
  const closed: { reason: CloseReason; detail?: string }[] = [];
  let held: (() => void)[] | undefined;
  let next = 0;
  const connection = new PeerConnection(
    { localPeerId: "me@ns", expectedPeerId: "bob@ns", ...settings },
    {
      writeText(text) {
        writes.push(text);
        const bytes = encoder.encode(text).length;
        if (!held) return { bytes, written: Promise.resolve() };
        return { bytes, written: new Promise<void>((resolve) => held!.push(resolve)) };
      },
      close() {},
    },
    {
      admit,
      message: (_s, message) => {
        messages.push(message);
      },
      closed: (_s, reason, detail) => closed.push({ reason, detail }),
      ...hooks,
    },
    { clock, log: memoryLogger().log, seen: new RecentIds(), newId: () => `id-${next++}` },
  );
  return {
    connection,
    clock,
    writes,
    messages,
    closed,
    sent: () =>
      writes.flatMap((w) => w.split("\n").filter((line) => line !== "")).map((line) =>
        JSON.parse(line)
      ),
    feed: (message) =>
      connection.receiveLine(typeof message === "string" ? message : JSON.stringify(message)),
    hold: () => (held = []),
    release: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const resolve of waiting) resolve();
    },
  };
}

const PLAIN_FEATURES = ["ack", "metrics"];
/** An earlier p2pchat: pipelining, without SENDS and ACKS. */
const P2PCHAT_FEATURES = ["ack", "metrics", "p2pchat"];
const BATCH_FEATURES = ["ack", "metrics", "p2pchat", "p2pchat-batch"];

/** A connection past its handshake with a peer listing `features`. */
async function openConnection(
  direction: "inbound" | "outbound",
  features: string[],
  hooks: Partial<ConnectionHooks> = {},
) {
  const h = harness({ direction }, undefined, hooks);
  h.connection.start();
  if (direction === "outbound") {
    h.feed({ type: "HELLO_OK", peer_id: "bob@ns", version: "1.0", features, ttl: 1 });
  } else {
    h.feed({ type: "HELLO", peer_id: "bob@ns", version: "1.0", features, ttl: 1 });
  }
  await tick();
  assert.equal(h.connection.state, "open");
  h.writes.length = 0;
  return h;
}

Deno.test("PeerConnection dialling side sends HELLO and nothing else until HELLO_OK", async () => {
  const h = harness({ direction: "outbound" });
  h.connection.start();
  await tick();
  assert.deepEqual(h.sent(), [{
    type: "HELLO",
    peer_id: "me@ns",
    version: "1.0",
    features: [
      "ack",
      "metrics",
      "p2pchat",
      "p2pchat-batch",
      "p2pchat-noise",
      "p2pchat-receipts",
      "p2pchat-read",
      "p2pchat-files",
      "p2pchat-file-frames",
    ],
    ttl: 1,
  }]);
  const early = await h.connection.send("too early");
  assert.equal(early.ok, false);
  assert.equal(h.connection.publish("m1", "*", "too early"), false);
  assert.equal(h.writes.length, 1);
  h.feed({ type: "HELLO_OK", peer_id: "bob@ns", features: PLAIN_FEATURES });
  assert.equal(h.connection.state, "open");
  assert.equal(h.connection.peerId, "bob@ns");
  assert.deepEqual(h.connection.features, ["ack", "metrics"]);
  assert.equal(h.connection.pipelining, false);
});

Deno.test("PeerConnection accepting side stays silent until HELLO, then answers HELLO_OK", async () => {
  const h = harness({ direction: "inbound" });
  h.connection.start();
  await tick();
  assert.equal(h.writes.length, 0);
  h.feed({ type: "hello", peer_id: "bob@ns", features: ["ack", "p2pchat"] });
  await tick();
  const [helloOk, ping] = h.sent();
  assert.deepEqual(helloOk, {
    type: "HELLO_OK",
    peer_id: "me@ns",
    version: "1.0",
    features: [
      "ack",
      "metrics",
      "p2pchat",
      "p2pchat-batch",
      "p2pchat-noise",
      "p2pchat-receipts",
      "p2pchat-read",
      "p2pchat-files",
      "p2pchat-file-frames",
    ],
    ttl: 1,
  });
  // Between p2pchat peers the accepter PINGs at once, so both sides know the RTT from the start.
  assert.equal(ping.type, "PING");
  assert.equal(h.sent().length, 2);
  assert.deepEqual(h.connection.features, ["ack", "p2pchat"]);
  assert.equal(h.connection.pipelining, true);
});

for (
  const [label, line] of [
    ["invalid JSON", "{nope"],
    ["a PING", JSON.stringify({ type: "PING", msg_id: "1" })],
    ["a HELLO without peer_id", JSON.stringify({ type: "HELLO", features: [] })],
    ["a HELLO with a numeric peer_id", JSON.stringify({ type: "HELLO", peer_id: 7 })],
    ["an unknown type", JSON.stringify({ type: "WHATEVER", peer_id: "x@y" })],
  ]
) {
  Deno.test(`PeerConnection closes an accepted connection whose first line is ${label}`, async () => {
    const h = harness({ direction: "inbound" });
    h.connection.start();
    h.feed(line);
    await tick();
    assert.equal(h.writes.length, 0);
    assert.deepEqual(h.closed.map((c) => c.reason), ["not_hello"]);
  });
}

Deno.test("PeerConnection refuses a HELLO the owner does not admit with HELLO_REJECT", async () => {
  const h = harness({ direction: "inbound" }, () => "duplicate_connection");
  h.connection.start();
  h.feed({ type: "HELLO", peer_id: "bob@ns" });
  await tick();
  assert.deepEqual(h.sent(), [{
    type: "HELLO_REJECT",
    peer_id: "me@ns",
    reason: "duplicate_connection",
    ttl: 1,
  }]);
  assert.deepEqual(h.closed, [{ reason: "refused", detail: "duplicate_connection" }]);
});

Deno.test("PeerConnection closes a dialled connection the peer rejects after HELLO_OK", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  h.feed({ type: "HELLO_REJECT", peer_id: "bob@ns", reason: "already connected" });
  assert.deepEqual(h.closed, [{ reason: "rejected", detail: "already connected" }]);
});

Deno.test("PeerConnection writes one message per write and one SEND in flight to a plain peer", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  const results: Promise<SendResult>[] = [];
  for (const text of ["one", "two", "three"]) results.push(h.connection.send(text));
  h.connection.publish("p1", "*", "hello all");
  await tick();
  for (const write of h.writes) assert.equal(write.split("\n").length, 2, write);
  const sends = () => h.sent().filter((m) => m.type === "SEND");
  assert.deepEqual(sends().map((m) => m.payload), ["one"]);
  assert.equal(h.sent().filter((m) => m.type === "PUB").length, 1);
  h.feed({ type: "ACK", msg_id: sends()[0].msg_id });
  await tick();
  assert.deepEqual(sends().map((m) => m.payload), ["one", "two"]);
  h.feed({ type: "ACK", msg_id: sends()[1].msg_id });
  await tick();
  h.feed({ type: "ACK", msg_id: sends()[2].msg_id });
  const settled = await Promise.all(results);
  assert.deepEqual(settled.map((r) => r.ok), [true, true, true]);
  assert.deepEqual(sends()[0], {
    type: "SEND",
    msg_id: sends()[0].msg_id,
    src: "me@ns",
    dst: "bob@ns",
    payload: "one",
    require_ack: true,
    ttl: 1,
  });
});

Deno.test("PeerConnection pipelines SEND lines toward a p2pchat peer without the batch feature", async () => {
  const h = await openConnection("outbound", P2PCHAT_FEATURES);
  h.hold();
  const results = ["a", "b", "c", "d"].map((text) => h.connection.send(text));
  await tick();
  // Several SENDs in flight, as lines of their own in one write.
  assert.equal(h.writes.length, 1);
  assert.equal(h.writes[0].split("\n").length, 5);
  h.release();
  const sends = h.sent();
  assert.deepEqual(sends.map((m) => [m.type, m.payload]), [
    ["SEND", "a"],
    ["SEND", "b"],
    ["SEND", "c"],
    ["SEND", "d"],
  ]);
  for (const send of sends) h.feed({ type: "ACK", msg_id: send.msg_id });
  assert.deepEqual((await Promise.all(results)).map((r) => r.ok), [true, true, true, true]);
  // And its SENDs are answered with an ACK each.
  h.writes.length = 0;
  h.feed({ type: "SEND", msg_id: "m1", src: "bob@ns", dst: "me@ns", payload: "x" });
  h.feed({ type: "SEND", msg_id: "m2", src: "bob@ns", dst: "me@ns", payload: "y" });
  await tick();
  assert.deepEqual(h.sent().map((m) => [m.type, m.msg_id]), [["ACK", "m1"], ["ACK", "m2"]]);
});

Deno.test("PeerConnection batches the SENDs of one task into a SENDS line between p2pchat peers", async () => {
  const h = await openConnection("outbound", BATCH_FEATURES);
  const results = ["a", "b", "c", "d"].map((text) => h.connection.send(text));
  await tick();
  assert.equal(h.writes.length, 1);
  const [batch] = h.sent();
  assert.deepEqual({ ...batch, msg_ids: [], payloads: [] }, {
    type: "SENDS",
    src: "me@ns",
    dst: "bob@ns",
    msg_ids: [],
    payloads: [],
    require_ack: true,
    ttl: 1,
  });
  assert.deepEqual(entriesOf(batch).map(([, text]) => text), ["a", "b", "c", "d"]);
  h.feed({ type: "ACKS", msg_ids: entriesOf(batch).map(([id]) => id) });
  assert.deepEqual((await Promise.all(results)).map((r) => r.ok), [true, true, true, true]);
  // A SEND alone goes out as a plain SEND, and a plain ACK settles it.
  const single = h.connection.send("e");
  await tick();
  const send = h.sent().at(-1)!;
  assert.deepEqual([send.type, send.payload], ["SEND", "e"]);
  h.feed({ type: "ACK", msg_id: send.msg_id });
  assert.equal((await single).ok, true);
});

Deno.test("PeerConnection keeps SENDS lines within their item bound and the line limit", async () => {
  const h = await openConnection("outbound", BATCH_FEATURES);
  const texts = [
    // Empty texts: only the item bound ends these batches.
    ...Array.from({ length: 2 * MAX_BATCH_ITEMS + 10 }, () => ""),
    // Every character needs a six-character escape; then two texts too long to share a line.
    ...Array.from({ length: 40 }, () => "\u0001".repeat(100)),
    "x".repeat(5_000),
    "y".repeat(5_000),
  ];
  const results = texts.map((text) => h.connection.send(text));
  await tick();
  for (const line of h.writes.join("").split("\n")) {
    assert.ok(utf8Length(line) <= MAX_LINE_BYTES, `${utf8Length(line)} bytes`);
  }
  const lines = h.sent();
  assert.deepEqual(lines.slice(0, 2).map((line) => entriesOf(line).length), [
    MAX_BATCH_ITEMS,
    MAX_BATCH_ITEMS,
  ]);
  assert.ok(
    lines.every((line) => line.type === "SEND" || entriesOf(line).length <= MAX_BATCH_ITEMS),
  );
  assert.deepEqual(lines.slice(-2).map((line) => line.type), ["SEND", "SEND"]);
  const sent = lines.flatMap((line) =>
    line.type === "SENDS" ? entriesOf(line) : [[line.msg_id as string, line.payload as string]]
  );
  assert.deepEqual(sent.map(([, text]) => text), texts);
  h.feed({ type: "ACKS", msg_ids: sent.map(([id]) => id) });
  assert.ok((await Promise.all(results)).every((result) => result.ok));
});

Deno.test("PeerConnection shows each message of a SENDS and answers with ACKS", async () => {
  const h = await openConnection("inbound", BATCH_FEATURES);
  h.feed({
    type: "SENDS",
    src: "bob@ns",
    dst: "me@ns",
    msg_ids: ["m1", "m2", "m1", null, "m3"],
    payloads: ["one", "two", "one again", "no id"],
  });
  await tick();
  assert.deepEqual(h.messages.map((m) => [m.msgId, m.text, m.to]), [
    ["m1", "one", "me@ns"],
    ["m2", "two", "me@ns"],
    ["m3", "", "me@ns"],
  ]);
  assert.equal(h.connection.stats.duplicates, 1);
  assert.equal(h.connection.stats.ignored, 1);
  const [reply] = h.sent();
  assert.deepEqual([reply.type, reply.msg_ids], ["ACKS", ["m1", "m2", "m1", "m3"]]);
});

Deno.test("PeerConnection shows no more of a SENDS once its ACKs overflowed the queue bound", async () => {
  const h = harness({ direction: "inbound", maxQueueBytes: 4_000 });
  h.connection.start();
  h.feed({ type: "HELLO", peer_id: "bob@ns", features: BATCH_FEATURES });
  await tick();
  h.hold(); // the peer stopped reading
  const ids = Array.from({ length: 300 }, (_, i) => `${i}`.padStart(50, "0"));
  let shownAfterClose = 0;
  const show = h.messages.push.bind(h.messages);
  h.messages.push = (...messages) => {
    if (h.closed.length > 0) shownAfterClose += messages.length;
    return show(...messages);
  };
  h.feed({ type: "SENDS", msg_ids: ids, payloads: ids.map(() => "hi") });
  await tick();
  assert.deepEqual(h.closed.map((c) => c.reason), ["backpressure"]);
  assert.equal(shownAfterClose, 0);
  assert.ok(h.messages.length < ids.length);
});

Deno.test("PeerConnection accepts SENDS and ACKS from a peer without the batch feature", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  const result = h.connection.send("one");
  await tick();
  const [send] = h.sent();
  h.feed({ type: "ACKS", msg_ids: [send.msg_id, "not ours", null] });
  assert.equal((await result).ok, true);
  h.feed({ type: "SENDS", msg_ids: ["m1", "m2"], payloads: ["a", "b"] });
  h.clock.advance(PYP2P_ACK_DELAY_MS);
  await tick();
  assert.deepEqual(h.messages.map((m) => m.text), ["a", "b"]);
  // Answered the plain way: one ACK per message, one message per write.
  assert.deepEqual(h.sent().slice(1).map((m) => [m.type, m.msg_id]), [["ACK", "m1"], [
    "ACK",
    "m2",
  ]]);
  assert.equal(h.connection.stats.ignored, 1);
});

Deno.test("PeerConnection settles only its own SENDs from an ACKS", async () => {
  const h = await openConnection("outbound", BATCH_FEATURES);
  const results = ["a", "b"].map((text) => h.connection.send(text));
  await tick();
  const [ours] = entriesOf(h.sent()[0]);
  // An id in our format from another connection, and the same number under another prefix.
  const foreign = `${crypto.randomUUID().slice(0, 24)}${ours[0].slice(24)}`;
  h.feed({ type: "ACKS", msg_ids: [foreign, ours[0].toUpperCase(), ours[0]] });
  assert.equal((await results[0]).ok, true);
  h.clock.advance(5_000);
  const second = await results[1];
  assert.deepEqual(second.ok ? "ok" : second.reason, "timeout");
});

Deno.test("PeerConnection writes no ACK over the line limit, even for a SEND at the limit", async () => {
  const h = await openConnection("inbound", BATCH_FEATURES);
  const head = '{"type":"SEND","msg_id":"';
  const tail = '"}';
  h.feed(head + "x".repeat(MAX_LINE_BYTES - head.length - tail.length) + tail);
  h.feed({ type: "SEND", msg_id: "short", payload: "after" });
  await tick();
  assert.deepEqual(h.sent().map((m) => [m.type, m.msg_id]), [["ACK", "short"]]);
  assert.equal(h.messages.length, 2, "both are shown");
});

Deno.test("PeerConnection.flush() writes what a read queued at once, without a microtask", async () => {
  const h = await openConnection("inbound", BATCH_FEATURES);
  h.feed({ type: "SEND", msg_id: "m1", src: "bob@ns", dst: "me@ns", payload: "a" });
  h.feed({ type: "SEND", msg_id: "m2", src: "bob@ns", dst: "me@ns", payload: "b" });
  assert.equal(h.writes.length, 0, "replies wait for the end of the read");
  h.connection.flush();
  assert.deepEqual(h.sent().map((m) => [m.type, m.msg_ids]), [["ACKS", ["m1", "m2"]]]);
  h.connection.flush(); // nothing more to write
  await tick(); // and the microtask queued by the read writes nothing again
  assert.equal(h.writes.length, 1);
});

Deno.test("PeerConnection answers the SENDs of a long read with ACKS lines of bounded size", async () => {
  const h = await openConnection("inbound", BATCH_FEATURES);
  // SENDs handled in one go, as link.ts does for one read.
  const count = MAX_BATCH_ITEMS + 22;
  for (let i = 0; i < count; i++) {
    h.feed({ type: "SEND", msg_id: `m${i}`, src: "bob@ns", dst: "me@ns", payload: `${i}` });
  }
  await tick();
  // A full batch goes out at once, while the read goes on.
  assert.equal(h.writes.length, 2);
  const replies = h.sent();
  assert.ok(replies.every((m) => m.type === "ACKS"));
  assert.deepEqual(replies.map((m) => (m.msg_ids as string[]).length), [MAX_BATCH_ITEMS, 22]);
  assert.deepEqual(
    replies.flatMap((m) => m.msg_ids as string[]),
    Array.from({ length: count }, (_, i) => `m${i}`),
  );
});

Deno.test("PeerConnection closes after the BYE timeout when its BYE_OK cannot be written", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.hold(); // the peer stopped reading
  h.feed({ type: "BYE", msg_id: "b1", src: "bob@ns", dst: "me@ns", reason: "quit" });
  await tick();
  assert.equal(h.connection.state, "closing");
  h.clock.advance(1_000);
  assert.equal(h.connection.state, "closed");
  assert.equal(h.clock.pendingTimers, 0);
});

Deno.test("PeerConnection counts bytes in unfinished writes against its queue bound", async () => {
  const h = harness({ direction: "inbound", maxQueueBytes: 10_000 });
  h.connection.start();
  h.feed({ type: "HELLO", peer_id: "bob@ns", features: BATCH_FEATURES });
  await tick();
  h.hold(); // the peer stopped reading: no write completes
  // Each ACK echoes a 60-character id: an ACKS line of 80 makes a write of about 5 KB.
  for (let i = 0; i < 256 && h.connection.state === "open"; i++) {
    h.feed({ type: "SEND", msg_id: `${i}`.padStart(60, "0"), src: "bob@ns", payload: "hi" });
  }
  await tick();
  assert.equal(h.connection.state, "closed");
  assert.equal(h.closed[0]?.reason, "backpressure");
  const inFlight = h.writes.slice(1).reduce((sum, write) => sum + write.length, 0);
  assert.ok(inFlight <= 10_000, `at most the bound in unfinished writes, got ${inFlight} bytes`);
});

Deno.test("PeerConnection measures RTT from PING/PONG with a smoothed value", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  h.clock.advance(30_000);
  await tick();
  const [first] = h.sent();
  assert.equal(first.type, "PING");
  assert.equal(first.ttl, 1);
  h.clock.advance(40);
  h.feed({ type: "PONG", msg_id: first.msg_id });
  assert.deepEqual(h.connection.rtt, { lastMs: 40, smoothedMs: 40 });
  h.clock.advance(30_000 - 40);
  await tick();
  const second = h.sent()[1];
  h.clock.advance(120);
  h.feed({ type: "PONG", msg_id: second.msg_id });
  assert.deepEqual(h.connection.rtt, { lastMs: 120, smoothedMs: 50 });
});

Deno.test("PeerConnection answers PING with a PONG echoing msg_id, numbers as strings too", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.feed('{"type":"PING","msg_id":42}');
  await tick();
  const [reply] = h.sent();
  assert.equal(reply.type, "PONG");
  assert.equal(reply.msg_id, "42");
});

Deno.test("PeerConnection reports a delivery timeout when no ACK came within 5 s", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  let result: SendResult | undefined;
  h.connection.send("lost").then((r) => (result = r));
  h.clock.advance(4_999);
  await tick();
  assert.equal(result, undefined);
  h.clock.advance(1);
  await tick();
  const [send] = h.sent();
  assert.deepEqual(result, { ok: false, msgId: send.msg_id, reason: "timeout" });
  h.feed({ type: "ACK", msg_id: send.msg_id }); // late ACK: ignored
  assert.equal(h.connection.state, "open");
});

Deno.test("PeerConnection ACKs a repeated SEND again but shows it once", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  const send = { type: "SEND", msg_id: "m-1", src: "bob@ns", dst: "me@ns", payload: "hi" };
  h.feed(send);
  h.feed(send);
  h.clock.advance(PYP2P_ACK_DELAY_MS);
  await tick();
  assert.deepEqual(h.sent().map((m) => [m.type, m.msg_id]), [["ACK", "m-1"], ["ACK", "m-1"]]);
  assert.deepEqual(h.messages, [{
    kind: "direct",
    msgId: "m-1",
    from: "bob@ns",
    to: "me@ns",
    text: "hi",
  }]);
  assert.equal(h.connection.stats.duplicates, 1);
});

Deno.test("PeerConnection shows a PUB whatever its dst and never ACKs it", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.feed({ type: "PUB", msg_id: "p-1", src: "bob@ns", dst: "#elsewhere", payload: "x" });
  h.feed({ type: "PUB", msg_id: "p-2", src: "bob@ns", dst: "*", payload: "y", require_ack: true });
  await tick();
  assert.equal(h.writes.length, 0);
  assert.deepEqual(h.messages.map((m) => [m.kind, m.to, m.text]), [
    ["pub", "#elsewhere", "x"],
    ["pub", "*", "y"],
  ]);
});

Deno.test("PeerConnection answers BYE with BYE_OK echoing msg_id, then closes", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.feed({ type: "BYE", msg_id: "b-1", src: "bob@ns", dst: "me@ns", reason: "quit" });
  await tick();
  assert.deepEqual(h.sent(), [{
    type: "BYE_OK",
    msg_id: "b-1",
    src: "me@ns",
    dst: "bob@ns",
    ttl: 1,
  }]);
  assert.deepEqual(h.closed, [{ reason: "bye", detail: "quit" }]);
});

Deno.test("PeerConnection.bye() closes on BYE_OK, or after the BYE timeout", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  const done = h.connection.bye("quit");
  await tick();
  const [bye] = h.sent();
  assert.deepEqual(bye, {
    type: "BYE",
    msg_id: bye.msg_id,
    src: "me@ns",
    dst: "bob@ns",
    reason: "quit",
    ttl: 1,
  });
  h.feed({ type: "BYE_OK", msg_id: bye.msg_id });
  await done;
  assert.deepEqual(h.closed.map((c) => c.reason), ["bye"]);

  const silent = await openConnection("outbound", PLAIN_FEATURES);
  const waiting = silent.connection.bye("quit");
  silent.clock.advance(1_000);
  await waiting;
  assert.deepEqual(silent.closed.map((c) => c.reason), ["bye"]);
});

Deno.test("PeerConnection ignores unknown types and extra fields and accepts a missing ttl", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.feed({ type: "FILE_OFFER", size: 10 });
  h.feed({ type: "send", msg_id: 7, payload: "x", color: "red", hops: [1, 2] });
  h.clock.advance(PYP2P_ACK_DELAY_MS);
  await tick();
  assert.equal(h.connection.state, "open");
  assert.equal(h.connection.stats.ignored, 1);
  assert.deepEqual(h.sent().map((m) => [m.type, m.msg_id]), [["ACK", "7"]]);
  assert.equal(h.messages[0].text, "x");
});

Deno.test("PeerConnection skips and counts malformed lines without closing", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  for (const line of ["{broken", "", "[1,2]", '{"no_type":1}', "null"]) h.feed(line);
  assert.equal(h.connection.state, "open");
  assert.equal(h.connection.stats.malformed, 5);
});

Deno.test("PeerConnection answers a second HELLO again, and closes on a changed peer_id", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.feed({ type: "HELLO", peer_id: "bob@ns" });
  await tick();
  assert.deepEqual(h.sent().map((m) => m.type), ["HELLO_OK"]);
  assert.equal(h.connection.state, "open");
  h.feed({ type: "HELLO", peer_id: "mallory@ns" });
  await tick();
  assert.deepEqual(h.sent().map((m) => [m.type, m.reason]), [
    ["HELLO_OK", undefined],
    ["HELLO_REJECT", "peer_id_changed"],
  ]);
  assert.deepEqual(h.closed, [{ reason: "peer_id_changed", detail: "mallory@ns" }]);
});

Deno.test("PeerConnection drops a dialled peer as stale after two silent ping intervals", async () => {
  const h = await openConnection("outbound", PLAIN_FEATURES);
  h.clock.advance(30_000);
  assert.equal(h.connection.state, "open");
  h.clock.advance(30_000);
  assert.deepEqual(h.closed.map((c) => c.reason), ["stale"]);
});

Deno.test("PeerConnection probes a silent plain dialler once before dropping it", async () => {
  const h = await openConnection("inbound", PLAIN_FEATURES);
  h.clock.advance(30_000);
  await tick();
  assert.equal(h.writes.length, 0); // the dialler is the one expected to PING
  h.clock.advance(30_000);
  await tick();
  assert.deepEqual(h.sent().map((m) => m.type), ["PING"]);
  h.feed({ type: "PONG", msg_id: h.sent()[0].msg_id });
  h.clock.advance(60_000);
  assert.equal(h.connection.state, "open");
  h.clock.advance(30_000);
  assert.deepEqual(h.closed.map((c) => c.reason), ["stale"]);
});

Deno.test("PeerConnection closes a handshake that never completes", () => {
  const h = harness({ direction: "inbound", handshakeTimeoutMs: 2_000 });
  h.connection.start();
  h.clock.advance(2_000);
  assert.deepEqual(h.closed.map((c) => c.reason), ["handshake_timeout"]);
  assert.equal(h.clock.pendingTimers, 0);
});

Deno.test("PeerConnection drops a peer that stops reading instead of buffering without bound", async () => {
  const h = harness({ direction: "outbound", maxQueueBytes: 10_000 });
  h.connection.start();
  h.feed({ type: "HELLO_OK", peer_id: "bob@ns", features: PLAIN_FEATURES });
  h.hold();
  const pending = h.connection.send("waiting for an ACK");
  let accepted = 0;
  while (h.connection.publish(`p${accepted}`, "*", "x".repeat(500))) accepted++;
  assert.ok(accepted >= 15 && accepted <= 20, `accepted ${accepted}`);
  assert.deepEqual(h.closed.map((c) => c.reason), ["backpressure"]);
  assert.equal((await pending).ok, false);
  assert.equal(h.clock.pendingTimers, 0);
});

Deno.test("runLink closes only the connection that sent an oversized line", async () => {
  const [ours, theirs] = memoryConnPair();
  const h = harness({ direction: "inbound" });
  h.connection.start();
  const link = runLink(ours, h.connection, new LinkIo(ours), { log: memoryLogger().log });
  await theirs.write(new TextEncoder().encode('{"type":"HELLO","peer_id":"bob@ns"}\n'));
  await theirs.write(new Uint8Array(40_000).fill(0x61));
  await link;
  assert.deepEqual(h.closed.map((c) => c.reason), ["line_too_long"]);
  assert.equal(ours.closed, true);
});

Deno.test("PeerConnection knows the RTT from the handshake: the dialler times HELLO to HELLO_OK", async () => {
  const h = harness({ direction: "outbound" });
  h.connection.start();
  h.clock.advance(25);
  h.feed({ type: "HELLO_OK", peer_id: "bob@ns", version: "1.0", features: ["ack"], ttl: 1 });
  await tick();
  assert.deepEqual(h.connection.rtt, { lastMs: 25, smoothedMs: 25 });
  // Plain pyp2p peers get nothing unasked after HELLO_OK: the RTT cost no message.
  assert.deepEqual(h.sent().map((m) => m.type), ["HELLO"]);
});

Deno.test("PeerConnection ACKs a plain pyp2p peer a few ms after its SEND, a p2pchat peer at once", async () => {
  const plain = await openConnection("inbound", PLAIN_FEATURES);
  plain.feed({ type: "SEND", msg_id: "m-1", src: "bob@ns", dst: "me@ns", payload: "hi" });
  await tick();
  // Shown at once, but the ACK waits: that client would drop an ACK faster than its own log.
  assert.deepEqual(plain.messages.map((m) => m.text), ["hi"]);
  assert.deepEqual(plain.sent(), []);
  plain.clock.advance(PYP2P_ACK_DELAY_MS - 1);
  await tick();
  assert.deepEqual(plain.sent(), []);
  plain.clock.advance(1);
  await tick();
  assert.deepEqual(plain.sent().map((m) => [m.type, m.msg_id]), [["ACK", "m-1"]]);

  const ours = await openConnection("outbound", ["ack", "p2pchat"]);
  ours.feed({ type: "SEND", msg_id: "m-2", src: "bob@ns", dst: "me@ns", payload: "hi" });
  await tick();
  assert.deepEqual(ours.sent().map((m) => [m.type, m.msg_id]), [["ACK", "m-2"]]);
});

Deno.test("PeerConnection ACKs a SEND only once the store kept it, one ACKS for a batch", async () => {
  const kept = Promise.withResolvers<void>();
  const h = await openConnection("inbound", BATCH_FEATURES, { message: () => kept.promise });
  h.feed({ type: "SENDS", src: "bob@ns", dst: "me@ns", msg_ids: ["a", "b"], payloads: ["1", "2"] });
  h.connection.flush();
  await tick();
  assert.deepEqual(h.sent(), [], "no ACK before the commit");
  kept.resolve();
  await tick();
  assert.deepEqual(h.sent().map((line) => [line.type, line.msg_ids]), [["ACKS", ["a", "b"]]]);
});

Deno.test("PeerConnection commits a full ACKS line's worth at once, mid-read, when the store can", async () => {
  for (const canCommit of [true, false]) {
    const kept = Promise.withResolvers<void>();
    let commits = 0;
    const h = await openConnection("inbound", BATCH_FEATURES, {
      message: () => kept.promise,
      keptNow: () => {
        commits++;
        return canCommit;
      },
    });
    const ids = Array.from({ length: MAX_BATCH_ITEMS + 2 }, (_, i) => `m${i}`);
    const sends = (from: number, to: number) => ({
      type: "SENDS",
      src: "bob@ns",
      dst: "me@ns",
      msg_ids: ids.slice(from, to),
      payloads: ids.slice(from, to),
    });
    // One read: a full line's worth, then two more that its commit does not cover.
    h.feed(sends(0, MAX_BATCH_ITEMS));
    assert.equal(commits, 1);
    const midRead = h.sent().map((line) => line.msg_ids);
    assert.deepEqual(
      midRead,
      canCommit ? [ids.slice(0, MAX_BATCH_ITEMS)] : [],
      "before the read goes on",
    );
    h.feed(sends(MAX_BATCH_ITEMS, ids.length));
    h.connection.flush();
    await tick();
    assert.deepEqual(
      h.sent().map((line) => line.msg_ids),
      midRead,
      "the rest waits for its commit",
    );
    kept.resolve();
    await tick();
    assert.deepEqual(h.sent().flatMap((line) => line.msg_ids as string[]), ids);
  }
});

Deno.test("PeerConnection ACKs a repeated SEND of the same read only once the first copy is kept", async () => {
  const kept = Promise.withResolvers<void>();
  let shown = 0;
  const h = await openConnection("inbound", BATCH_FEATURES, {
    message: () => {
      shown++;
      return kept.promise;
    },
  });
  const send = { type: "SEND", msg_id: "a", src: "bob@ns", dst: "me@ns", payload: "hi" };
  h.feed(send);
  h.feed(send);
  h.connection.flush();
  await tick();
  assert.deepEqual(h.sent(), [], "not even for the copy: the first is not on disk yet");
  kept.resolve();
  await tick();
  assert.deepEqual(h.sent().map((line) => [line.type, line.msg_ids]), [["ACKS", ["a", "a"]]]);
  assert.equal(shown, 1);
});

Deno.test("PeerConnection still ACKs a SEND the store failed to keep (it is shown from memory)", async () => {
  const h = await openConnection("inbound", BATCH_FEATURES, {
    message: () => Promise.reject(new Error("disk full")),
  });
  h.feed({ type: "SEND", msg_id: "a", src: "bob@ns", dst: "me@ns", payload: "hi" });
  await tick();
  assert.deepEqual(h.sent().map((line) => [line.type, line.msg_id]), [["ACK", "a"]]);
});

Deno.test("PeerConnection confirms a kept PUB with a RECEIPT only to a peer that takes receipts", async () => {
  const withReceipts = [...BATCH_FEATURES, "p2pchat-receipts"];
  const h = await openConnection("inbound", withReceipts, { message: () => Promise.resolve() });
  h.feed({ type: "PUB", msg_id: "p1", src: "bob@ns", dst: "#room", payload: "hi" });
  await tick();
  assert.deepEqual(h.sent(), [{ type: "RECEIPT", msg_ids: ["p1"], status: "delivered", ttl: 1 }]);
  const plain = await openConnection("inbound", BATCH_FEATURES, {
    message: () => Promise.resolve(),
  });
  plain.feed({ type: "PUB", msg_id: "p1", src: "bob@ns", dst: "#room", payload: "hi" });
  await tick();
  assert.deepEqual(plain.sent(), []);
});

Deno.test("PeerConnection sends read receipts only when both sides listed p2pchat-read", async () => {
  const receipts = [...BATCH_FEATURES, "p2pchat-receipts"];
  const noRead = await openConnection("inbound", receipts);
  assert.equal(noRead.connection.receipt(["m1"], "read"), false);
  assert.equal(noRead.connection.receipt(["m1"], "delivered"), true);
  const read = await openConnection("inbound", [...receipts, "p2pchat-read"]);
  assert.equal(read.connection.receipt(["m1"], "read"), true);
  await tick();
  assert.deepEqual(read.sent(), [{ type: "RECEIPT", msg_ids: ["m1"], status: "read", ttl: 1 }]);
  const plain = await openConnection("inbound", PLAIN_FEATURES);
  assert.equal(plain.connection.receipt(["m1"], "read"), false);
});

Deno.test("PeerConnection hands a RECEIPT to its owner and ignores an unknown status", async () => {
  const receipts: [string[], string][] = [];
  const hooks = {
    receipt: (_c: unknown, msgIds: string[], status: string) => {
      receipts.push([msgIds, status]);
    },
  };
  const h = await openConnection("inbound", [...BATCH_FEATURES, "p2pchat-receipts"], hooks);
  h.feed({ type: "RECEIPT", msg_ids: ["a", 7, null], status: "read" });
  h.feed({ type: "RECEIPT", msg_ids: ["b"], status: "lost" });
  assert.deepEqual(receipts, [[["a", "7"], "read"]]);
  assert.equal(h.connection.stats.ignored, 1);
  // From a peer that never agreed on receipts: ignored (a stranger must not make us look).
  const stranger = await openConnection("inbound", BATCH_FEATURES, hooks);
  stranger.feed({ type: "RECEIPT", msg_ids: ["c"], status: "read" });
  assert.equal(receipts.length, 1);
  assert.equal(stranger.connection.stats.ignored, 1);
});

Deno.test("PeerConnection: one earlier-run id sent twice, the second ACKed, the first times out cleanly", async () => {
  const h = await openConnection("outbound", BATCH_FEATURES);
  const first = h.connection.send("one", "old-run-id-2");
  const second = h.connection.send("two", "old-run-id-2");
  await tick();
  h.feed({ type: "ACK", msg_id: "old-run-id-2" });
  assert.equal((await second).ok, true);
  // The first one's deadline passes after its id's entry is gone: it ends, nothing throws.
  h.clock.advance(6_000);
  assert.deepEqual(await first, { ok: false, msgId: "old-run-id-2", reason: "timeout" });
  assert.equal(h.connection.state, "open");
});

Deno.test("PeerConnection settles a SEND sent again under an id of an earlier run", async () => {
  const h = await openConnection("outbound", BATCH_FEATURES);
  const result = h.connection.send("again", "old-run-id-1");
  await tick();
  assert.deepEqual(h.sent().map((line) => [line.type, line.msg_id]), [["SEND", "old-run-id-1"]]);
  h.feed({ type: "ACK", msg_id: "old-run-id-1" });
  const settled = await result;
  assert.equal(settled.ok, true);
  assert.equal(settled.msgId, "old-run-id-1");
});
