import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { NodeEvent } from "../../peer/api.ts";
import {
  createPeerNode,
  type Inbox,
  type PeerNodeOptions,
  type StartablePeerNode,
} from "../../peer/node/node.ts";
import { dialTcp } from "../../lib/transport.ts";
import { createTracker, type Tracker } from "../../tracker/mod.ts";
import { request } from "../_tracker_process.ts";
import { FakeHistory } from "../_fake_history.ts";
import { LineClient } from "../_line_client.ts";
import { MAX_BATCH_ITEMS } from "../../peer/protocol/batch.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Polls `check` every 10 ms for up to `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const FAST: Partial<PeerNodeOptions> = {
  host: "127.0.0.1",
  port: 0,
  pingIntervalMs: 1_000,
  discoverIntervalMs: 100,
  ackTimeoutMs: 2_000,
};

interface Running {
  node: StartablePeerNode;
  port: number;
  events: NodeEvent[];
}

async function startNode(
  name: string,
  namespace: string,
  options: Partial<PeerNodeOptions> = {},
): Promise<Running> {
  const node = createPeerNode({ name, namespace, ...FAST, ...options }, {
    log: memoryLogger("warn").log,
  });
  const events: NodeEvent[] = [];
  node.subscribe((event) => events.push(event));
  const { port } = await node.start();
  return { node, port, events };
}

async function startTracker(): Promise<{ tracker: Tracker; port: number }> {
  const tracker = createTracker({ host: "127.0.0.1", port: 0, rateLimit: false }, {
    clock: systemClock,
    log: memoryLogger("error").log,
  });
  const { port } = await tracker.start();
  return { tracker, port };
}

const connected = (r: Running, peerId: string) =>
  r.node.peers().some((p) => p.peerId === peerId && p.state === "connected");

const received = (r: Running) =>
  r.events.flatMap((e) => e.type === "message" ? [`${e.kind} ${e.from} ${e.to} ${e.text}`] : []);

/** A raw TCP client/server end that reads lines, as a small pyp2p program would. */
class RawPeer {
  #buffer = "";
  #ended = false;
  readonly chunks: string[] = [];
  readonly #reading: Promise<void>;

  constructor(readonly conn: Deno.TcpConn) {
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const count = await this.conn.read(buffer).catch(() => null);
      if (count === null) break;
      const text = decoder.decode(buffer.subarray(0, count));
      this.chunks.push(text);
      this.#buffer += text;
    }
    this.#ended = true;
  }

  write(message: unknown): Promise<number> {
    const text = typeof message === "string" ? message : JSON.stringify(message) + "\n";
    return this.conn.write(encoder.encode(text));
  }

  /** The next line, or undefined at EOF or after `timeoutMs`. */
  async line(timeoutMs = 3_000): Promise<Record<string, unknown> | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#buffer.includes("\n")) {
      if (this.#ended || Date.now() > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const newline = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, newline);
    this.#buffer = this.#buffer.slice(newline + 1);
    return JSON.parse(line);
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }
}

Deno.test("two peers found through the tracker exchange a direct message with ACK", async () => {
  const { tracker, port } = await startTracker();
  const trackerAddress = { hostname: "127.0.0.1", port };
  const alice = await startNode("alice", "lab", { tracker: trackerAddress });
  const bob = await startNode("bob", "lab", { tracker: trackerAddress });
  try {
    await waitFor("a connection", () => connected(alice, "bob@lab") && connected(bob, "alice@lab"));
    const result = await alice.node.send("bob@lab", "hello bob");
    assert.equal(result.ok, true);
    await waitFor("delivery", () => received(bob).length === 1);
    assert.deepEqual(received(bob), ["direct alice@lab bob@lab hello bob"]);
    assert.equal(alice.node.status().publicIp, "127.0.0.1");
    assert.equal(alice.node.status().tracker.reachable, true);
    assert.deepEqual(await alice.node.send("nobody@lab", "x"), {
      ok: false,
      reason: "unknown_peer",
    });
  } finally {
    await alice.node.stop();
    await bob.node.stop();
    await tracker.stop();
  }
});

Deno.test("a burst of direct messages between p2pchat peers arrives whole, once each, in order", async () => {
  const alice = await startNode("alice", "lab");
  const bob = await startNode("bob", "lab");
  try {
    alice.node.addPeer("bob", "lab", { hostname: "127.0.0.1", port: bob.port });
    await waitFor("a connection", () => connected(alice, "bob@lab"));
    const texts = Array.from({ length: 2_000 }, (_, i) => `burst ${i} ${"é".repeat(i % 50)}`);
    const results = await Promise.all(texts.map((text) => alice.node.send("bob@lab", text)));
    assert.ok(results.every((result) => result.ok));
    assert.equal(new Set(results.map((result) => result.msgId)).size, texts.length);
    await waitFor("delivery", () => received(bob).length === texts.length);
    assert.deepEqual(received(bob), texts.map((text) => `direct alice@lab bob@lab ${text}`));
    const features = alice.node.peers()[0].features;
    assert.deepEqual(features, [
      "ack",
      "metrics",
      "p2pchat",
      "p2pchat-batch",
      "p2pchat-receipts",
      "p2pchat-read",
    ]);
  } finally {
    await alice.node.stop();
    await bob.node.stop();
  }
});

Deno.test("an earlier p2pchat peer, without the batch feature, gets an ACK line per SEND", async () => {
  const bob = await startNode("bob", "lab");
  const raw = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: bob.port }));
  try {
    await raw.write({ type: "HELLO", peer_id: "old@lab", features: ["ack", "metrics", "p2pchat"] });
    assert.equal((await raw.line())?.type, "HELLO_OK");
    assert.equal((await raw.line())?.type, "PING", "a p2pchat accepter measures the RTT at once");
    // Pipelined SENDs in one write, as an earlier p2pchat writes them.
    await raw.write(
      ["m1", "m2", "m3"].map((id) =>
        JSON.stringify({ type: "SEND", msg_id: id, src: "old@lab", dst: "bob@lab", payload: id }) +
        "\n"
      ).join(""),
    );
    const replies = [await raw.line(), await raw.line(), await raw.line()];
    assert.deepEqual(replies.map((m) => [m?.type, m?.msg_id]), [
      ["ACK", "m1"],
      ["ACK", "m2"],
      ["ACK", "m3"],
    ]);
    await waitFor("delivery", () => received(bob).length === 3);
  } finally {
    await raw.close();
    await bob.node.stop();
  }
});

Deno.test("a direct message sent right after start waits for discovery and the dial", async () => {
  const { tracker, port } = await startTracker();
  const trackerAddress = { hostname: "127.0.0.1", port };
  const bob = await startNode("bob", "lab", { tracker: trackerAddress });
  const ann = await startNode("ann", "lab", {
    tracker: trackerAddress,
    discoverIntervalMs: 60_000,
  });
  try {
    assert.equal(connected(ann, "bob@lab"), false, "nothing is connected yet");
    const result = await ann.node.send("bob@lab", "early bird");
    assert.equal(result.ok, true);
    await waitFor("delivery", () => received(bob).includes("direct ann@lab bob@lab early bird"));
  } finally {
    await ann.node.stop();
    await bob.node.stop();
    await tracker.stop();
  }
});

Deno.test("PUB to * reaches every namespace and PUB to #ns only that namespace", async () => {
  const { tracker, port } = await startTracker();
  const trackerAddress = { hostname: "127.0.0.1", port };
  const a = await startNode("a", "one", { tracker: trackerAddress });
  const b = await startNode("b", "one", { tracker: trackerAddress });
  const c = await startNode("c", "two", { tracker: trackerAddress });
  const all = [a, b, c];
  try {
    await waitFor(
      "a full mesh",
      () => all.every((r) => r.node.peers().filter((p) => p.state === "connected").length === 2),
    );
    const everyone = await a.node.publish("*", "to all");
    assert.equal(everyone.reached, 2);
    const two = await a.node.publish("#two", "to two");
    assert.deepEqual([two.reached, two.peers], [1, ["c@two"]]);
    await waitFor("PUB delivery", () => received(c).length === 2 && received(b).length === 1);
    assert.deepEqual(received(b), ["pub a@one * to all"]);
    assert.deepEqual(received(c), ["pub a@one * to all", "pub a@one #two to two"]);
    assert.deepEqual(a.node.peers("#two").map((p) => p.peerId), ["c@two"]);
  } finally {
    await Promise.all(all.map((r) => r.node.stop()));
    await tracker.stop();
  }
});

Deno.test("peers dialling each other at once end with one shared connection", async () => {
  const left = await startNode("left", "ns");
  const right = await startNode("right", "ns");
  try {
    left.node.addPeer("right", "ns", { hostname: "127.0.0.1", port: right.port });
    right.node.addPeer("left", "ns", { hostname: "127.0.0.1", port: left.port });
    const settled = () => {
      const l = left.node.peers()[0];
      const r = right.node.peers()[0];
      return l?.state === "connected" && r?.state === "connected" &&
        l.direction !== r.direction;
    };
    await waitFor("one connection", settled);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let any loser finish closing
    assert.ok(settled());
    // "left" < "right": the connection left dialled is the one kept.
    assert.equal(left.node.peers()[0].direction, "outbound");
    assert.equal((await right.node.send("left@ns", "ping")).ok, true);
    assert.equal((await left.node.send("right@ns", "pong")).ok, true);
  } finally {
    await left.node.stop();
    await right.node.stop();
  }
});

Deno.test("our dial that completes after the peer's own connection still wins by the rule", async () => {
  // "alice" < "bob": alice's dial is the one kept, even when bob's connection is up first.
  const dialGate = Promise.withResolvers<void>();
  const bobListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const alice = createPeerNode({ name: "alice", namespace: "ns", ...FAST }, {
    log: memoryLogger("error").log,
    dial: async (address, signal) => {
      await dialGate.promise;
      return dialTcp(address.hostname, address.port, { signal });
    },
  });
  const { port } = await alice.start();
  const raws: RawPeer[] = [];
  try {
    alice.addPeer("bob", "ns", { hostname: "127.0.0.1", port: bobListener.addr.port });
    const bobDialled = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
    raws.push(bobDialled);
    await bobDialled.write({ type: "HELLO", peer_id: "bob@ns", features: ["ack"] });
    assert.equal((await bobDialled.line())?.type, "HELLO_OK");
    assert.equal(alice.peers()[0].direction, "inbound");
    dialGate.resolve();
    const aliceDialled = new RawPeer(await bobListener.accept());
    raws.push(aliceDialled);
    assert.equal((await aliceDialled.line())?.type, "HELLO");
    await aliceDialled.write({ type: "HELLO_OK", peer_id: "bob@ns", features: ["ack"] });
    await waitFor("alice's own dial", () => alice.peers()[0]?.direction === "outbound");
    const bye = await bobDialled.line();
    assert.deepEqual([bye?.type, bye?.reason], ["BYE", "duplicate_connection"]);
  } finally {
    await alice.stop();
    await Promise.all(raws.map((raw) => raw.close()));
    bobListener.close();
  }
});

Deno.test("a node survives garbage and oversized lines from raw sockets", async () => {
  const node = await startNode("sturdy", "ns");
  try {
    const garbage = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
    await garbage.write("this is not json\n");
    assert.equal(await garbage.line(), undefined); // closed, nothing said
    await garbage.close();

    const huge = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
    await huge.write({ type: "HELLO", peer_id: "huge@ns", features: [] });
    assert.equal((await huge.line())?.type, "HELLO_OK");
    await huge.write("x".repeat(40_000) + "\n").catch(() => 0);
    assert.equal(await huge.line(), undefined);
    await huge.close();

    const fine = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
    await fine.write({ type: "HELLO", peer_id: "fine@ns" });
    assert.equal((await fine.line())?.type, "HELLO_OK");
    await fine.close();
  } finally {
    await node.node.stop();
  }
});

Deno.test("a node closes new connections at once past its connection cap", async () => {
  const node = await startNode("capped", "ns", { maxConnections: 1 });
  const first = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
  const second = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
  try {
    await first.write({ type: "HELLO", peer_id: "first@ns" });
    assert.equal((await first.line())?.type, "HELLO_OK");
    await second.write({ type: "HELLO", peer_id: "second@ns" }).catch(() => 0);
    assert.equal(await second.line(), undefined, "the second connection is closed unanswered");
  } finally {
    await first.close();
    await second.close();
    await node.node.stop();
  }
});

Deno.test("a second connection claiming a live peer's id is refused and the real one stays", async () => {
  const node = await startNode("host", "ns");
  const real = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
  const impostor = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
  try {
    await real.write({ type: "HELLO", peer_id: "alice@ns" });
    assert.equal((await real.line())?.type, "HELLO_OK");
    await impostor.write({ type: "HELLO", peer_id: "alice@ns" });
    const refusal = await impostor.line();
    assert.deepEqual([refusal?.type, refusal?.reason], ["HELLO_REJECT", "duplicate_connection"]);
    const sent = node.node.send("alice@ns", "still you?");
    const delivered = await real.line();
    assert.equal(delivered?.payload, "still you?");
    await real.write({ type: "ACK", msg_id: delivered?.msg_id });
    assert.equal((await sent).ok, true);
  } finally {
    await impostor.close();
    await real.close();
    await node.node.stop();
  }
});

Deno.test("a pyp2p-style client dials us, says HELLO, sends SEND and gets ACK", async () => {
  const node = await startNode("host", "ns");
  const raw = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
  try {
    await raw.write({
      type: "HELLO",
      peer_id: "py@ns",
      version: "1.0",
      features: ["ack", "metrics"],
    });
    const ok = await raw.line();
    assert.equal(ok?.type, "HELLO_OK");
    assert.equal(ok?.peer_id, "host@ns");
    await raw.write({ type: "SEND", msg_id: "u-1", src: "py@ns", dst: "host@ns", payload: "hi" });
    const ackLine = await raw.line();
    assert.deepEqual([ackLine?.type, ackLine?.msg_id, ackLine?.ttl], ["ACK", "u-1", 1]);
    assert.deepEqual(received(node), ["direct py@ns host@ns hi"]);
    assert.equal(node.node.peers()[0].state, "connected");
    await raw.write({ type: "BYE", msg_id: "b-1", src: "py@ns", dst: "host@ns", reason: "done" });
    const byeOk = await raw.line();
    assert.deepEqual([byeOk?.type, byeOk?.msg_id], ["BYE_OK", "b-1"]);
    await waitFor("the peer to be gone", () => node.node.peers().length === 0);
  } finally {
    await raw.close();
    await node.node.stop();
  }
});

Deno.test("toward an accepting pyp2p-style peer we wait for HELLO_OK and keep one SEND in flight", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const node = await startNode("dialer", "ns");
  let raw: RawPeer | undefined;
  try {
    node.node.addPeer("py", "ns", { hostname: "127.0.0.1", port: listener.addr.port });
    raw = new RawPeer(await listener.accept());
    const hello = await raw.line();
    assert.deepEqual([hello?.type, hello?.peer_id], ["HELLO", "dialer@ns"]);
    assert.equal(await raw.line(200), undefined); // nothing more before HELLO_OK
    await raw.write({ type: "HELLO_OK", peer_id: "py@ns", features: ["ack", "metrics"] });
    await waitFor("connected", () => connected(node, "py@ns"));

    const first = node.node.send("py@ns", "one");
    const second = node.node.send("py@ns", "two");
    const send1 = await raw.line();
    assert.deepEqual([send1?.type, send1?.payload, send1?.require_ack], ["SEND", "one", true]);
    assert.equal(await raw.line(200), undefined); // second SEND waits for the ACK
    await raw.write({ type: "ACK", msg_id: send1?.msg_id });
    const send2 = await raw.line();
    assert.equal(send2?.payload, "two");
    await raw.write({ type: "ACK", msg_id: send2?.msg_id });
    assert.deepEqual([(await first).ok, (await second).ok], [true, true]);
    for (const chunk of raw.chunks) assert.equal(chunk.split("\n").length, 2, chunk);
  } finally {
    const stopping = node.node.stop();
    // Answer the BYE like a polite pyp2p peer.
    const bye = await raw?.line(1_000);
    if (bye?.type === "BYE") await raw?.write({ type: "BYE_OK", msg_id: bye.msg_id });
    await stopping;
    await raw?.close();
    listener.close();
  }
});

Deno.test("a pyp2p peer that answers HELLO_OK then HELLO_REJECT ends failed, not redialled forever", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const node = await startNode("dialer", "ns", { maxReconnectAttempts: 1 });
  const refuse = async () => {
    const raw = new RawPeer(await listener.accept());
    await raw.line();
    await raw.write({ type: "HELLO_OK", peer_id: "grumpy@ns", features: [] });
    await raw.write({ type: "HELLO_REJECT", reason: "already connected" });
    await raw.close();
  };
  try {
    node.node.addPeer("grumpy", "ns", { hostname: "127.0.0.1", port: listener.addr.port });
    await refuse();
    await refuse(); // the one retry allowed
    await waitFor("failed", () => node.node.peers()[0]?.state === "failed");
    const dials = node.events.filter((e) => e.type === "peer" && e.state === "connected");
    assert.equal(dials.length, 2);
  } finally {
    await node.node.stop();
    listener.close();
  }
});

Deno.test("a peer that vanishes without BYE is marked stale and redialled with backoff", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const port = listener.addr.port;
  const node = await startNode("watcher", "ns", { maxReconnectAttempts: 1 });
  try {
    node.node.addPeer("ghost", "ns", { hostname: "127.0.0.1", port });
    const raw = new RawPeer(await listener.accept());
    await raw.line();
    await raw.write({ type: "HELLO_OK", peer_id: "ghost@ns", features: [] });
    await waitFor("connected", () => connected(node, "ghost@ns"));
    listener.close();
    await raw.close(); // like kill -9: the kernel closes the socket, no BYE
    await waitFor("stale", () => node.node.peers()[0]?.state === "stale");
    const row = node.node.peers()[0];
    assert.ok(row.nextAttemptAt !== undefined);
    // The redial is refused (nobody listens), and one retry is all it may have.
    await waitFor("failed", () => node.node.peers()[0]?.state === "failed", 6_000);
    assert.equal(node.node.reconnect("ghost@ns"), 1);
  } finally {
    await node.node.stop();
  }
});

Deno.test("while the tracker is away, a peer we have no row for is not connected, not unknown", async () => {
  const { tracker, port } = await startTracker();
  const alice = await startNode("alice", "lab", {
    tracker: { hostname: "127.0.0.1", port },
    ackTimeoutMs: 300,
  });
  try {
    await waitFor("tracker reachable", () => alice.node.status().tracker.reachable);
    await tracker.stop();
    // The send asks the tracker now, which finds it away.
    await alice.node.send("nobody@lab", "probe");
    await waitFor("tracker away", () => !alice.node.status().tracker.reachable);
    assert.deepEqual(await alice.node.send("nobody@lab", "x"), {
      ok: false,
      reason: "not_connected",
    });
  } finally {
    await alice.node.stop();
  }
});

Deno.test("a message to a peer the tracker does not list fails at once; one registered since the last DISCOVER is found", async () => {
  const { tracker, port } = await startTracker();
  const trackerAddress = { hostname: "127.0.0.1", port };
  // A long DISCOVER period, and a delivery timeout longer than the wait for "nobody": only
  // asking the tracker now can explain a quick answer for "nobody", and carol (started after
  // alice's DISCOVER) being reached. (A 10-minute timeout once held the suite that long, when
  // a loaded machine dropped the connection to carol until the next DISCOVER.)
  const slow = { tracker: trackerAddress, discoverIntervalMs: 600_000, ackTimeoutMs: 30_000 };
  const alice = await startNode("alice", "lab", slow);
  let carol: Running | undefined;
  try {
    await waitFor(
      "alice's first DISCOVER",
      () => alice.node.status().tracker.lastDiscoverAt !== undefined,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const nobody = await Promise.race([
      alice.node.send("nobody@lab", "x"),
      new Promise((resolve) => timer = setTimeout(() => resolve("still waiting"), 10_000)),
    ]);
    clearTimeout(timer);
    assert.deepEqual(nobody, { ok: false, reason: "unknown_peer" });
    carol = await startNode("carol", "lab", slow);
    await waitFor(
      "carol registered",
      () => carol!.node.status().tracker.lastRegisterAt !== undefined,
    );
    const result = await alice.node.send("carol@lab", "found you");
    assert.equal(result.ok, true);
  } finally {
    await alice.node.stop();
    await carol?.node.stop();
    await tracker.stop();
  }
});

Deno.test("a second peer with a name a live peer uses is told at start; a stale record of it is not a clash", async () => {
  const { tracker, port } = await startTracker();
  const trackerAddress = { hostname: "127.0.0.1", port };
  const first = await startNode("dave", "lab", { tracker: trackerAddress });
  let second: Running | undefined;
  let third: Running | undefined;
  try {
    await waitFor(
      "dave registered",
      () => first.node.status().tracker.lastRegisterAt !== undefined,
    );
    second = await startNode("dave", "lab", { tracker: trackerAddress });
    await waitFor("the warning", () => second!.events.some((e) => e.type === "name_in_use"));
    const warning = second.events.find((e) => e.type === "name_in_use");
    assert.deepEqual(warning?.type === "name_in_use" && warning.address, {
      hostname: "127.0.0.1",
      port: first.port,
    });
    assert.ok(!first.events.some((e) => e.type === "name_in_use"), "the first one is not warned");
    // Both gone without UNREGISTER would leave records; here: only a record, nobody listening.
    await second.node.stop();
    await first.node.stop();
    await request(port, { type: "REGISTER", namespace: "lab", name: "erin", port: first.port });
    third = await startNode("erin", "lab", { tracker: trackerAddress });
    await waitFor(
      "erin discovered",
      () => third!.node.status().tracker.lastDiscoverAt !== undefined,
    );
    assert.ok(!third.events.some((e) => e.type === "name_in_use"));
  } finally {
    await first.node.stop();
    await second?.node.stop();
    await third?.node.stop();
    await tracker.stop();
  }
});

Deno.test("a peer that said BYE while the tracker was down is not dialled from the record the tracker kept", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-bye-" });
  const trackerAt = (port: number) =>
    createTracker({ host: "127.0.0.1", port, rateLimit: false, dataDir, saveDelayMs: 0 }, {
      clock: systemClock,
      log: memoryLogger("error").log,
    });
  let tracker = trackerAt(0);
  const { port } = await tracker.start();
  const options = { tracker: { hostname: "127.0.0.1", port } };
  const alice = await startNode("alice", "lab", options);
  const carol = await startNode("carol", "lab", options);
  let carolAgain: Running | undefined;
  try {
    await waitFor("alice and carol connected", () => connected(alice, "carol@lab"));
    // Old enough that the tracker's whole seconds tell it from a registration after the BYE.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // The tracker goes down (keeping carol's record on disk), then carol quits: her BYE reaches
    // alice, her UNREGISTER reaches nobody.
    await tracker.stop();
    await carol.node.stop();
    await waitFor("carol gone", () => !alice.node.peers().some((p) => p.peerId === "carol@lab"));
    tracker = trackerAt(port);
    await tracker.start();
    const listed = alice.node.status().tracker.lastDiscoverAt ?? 0;
    // Several DISCOVERs that list carol's old record.
    await waitFor(
      "DISCOVERs after the restart",
      () => (alice.node.status().tracker.lastDiscoverAt ?? 0) > listed + 500,
    );
    assert.deepEqual(alice.node.peers().map((p) => p.peerId), []);
    const dialled = alice.events.filter((e) =>
      e.type === "peer" && e.peerId === "carol@lab" && e.state === "connecting"
    );
    assert.equal(dialled.length, 1, "only the first dial, before she quit");
    // Once she registers again, she is dialled.
    carolAgain = await startNode("carol", "lab", options);
    await waitFor("alice and carol connected again", () => connected(alice, "carol@lab"));
  } finally {
    await alice.node.stop();
    await carolAgain?.node.stop();
    await tracker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a peer that says BYE to refuse us for now (not to quit) is dialled again from its record", async () => {
  const { tracker, port } = await startTracker();
  const bobListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const raws: RawPeer[] = [];
  let alice: Running | undefined;
  try {
    const registered = await request(port, {
      type: "REGISTER",
      namespace: "lab",
      name: "bob",
      port: bobListener.addr.port,
      ttl: 3600,
    });
    assert.equal(registered.status, "OK");
    // Older than the BYE by more than the tracker's whole seconds can blur.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    alice = await startNode("alice", "lab", { tracker: { hostname: "127.0.0.1", port } });
    const first = new RawPeer(await bobListener.accept());
    raws.push(first);
    assert.equal((await first.line())?.type, "HELLO");
    await first.write({ type: "HELLO_OK", peer_id: "bob@lab", features: ["ack"] });
    // As a p2pchat peer whose accounts tracker did not answer yet: not a quit.
    await first.write({ type: "BYE", msg_id: "b1", reason: "key_unchecked" });
    const again = await Promise.race([
      bobListener.accept(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000)),
    ]);
    assert.ok(again, "alice dials bob again");
    raws.push(new RawPeer(again));
  } finally {
    await alice?.node.stop();
    await Promise.all(raws.map((raw) => raw.close()));
    bobListener.close();
    await tracker.stop();
  }
});

Deno.test("a received message is shown and ACKed only once its inbox committed it", async () => {
  let commit = Promise.withResolvers<void>();
  const commits: Promise<void>[] = [];
  const kept = new FakeHistory();
  const b = await startNode("b", "lab", {
    inbox: {
      accept: ({ from, msgId, text }) => kept.add({ conversation: from, msgId, text }),
      committed: () => {
        commits.push(commit.promise);
        return commit.promise;
      },
      commitNow: () => commit.resolve(),
      receipt: () => {},
      settled: (_message, result) => result,
    },
  });
  const raw = await LineClient.connect(b.port);
  try {
    await raw.ask({ type: "HELLO", peer_id: "pyp@lab", features: ["ack"] });
    await raw.send({ type: "SEND", msg_id: "m-1", src: "pyp@lab", dst: "b@lab", payload: "hi" });
    await waitFor("the inbox asked to commit", () => commits.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const shown = () => b.events.filter((event) => event.type === "message").length;
    assert.equal(shown(), 0, "not shown before the commit");
    await assert.rejects(raw.next(100), /no line within/, "not ACKed before the commit");
    commit.resolve();
    assert.equal((await raw.next())?.msg_id, "m-1", "ACKed after the commit");
    await waitFor("shown after the commit", () => shown() === 1);
    // A store that failed keeps the message in memory: it is shown and ACKed all the same.
    commit = Promise.withResolvers<void>();
    await raw.send({ type: "SEND", msg_id: "m-2", src: "pyp@lab", dst: "b@lab", payload: "ho" });
    await waitFor("the inbox asked again", () => commits.length === 2);
    commit.reject(new Error("disk full"));
    assert.equal((await raw.next())?.msg_id, "m-2");
    await waitFor("the second shown", () => shown() === 2);
  } finally {
    raw.close();
    await b.node.stop();
  }
});

Deno.test("a full ACKS line's worth of a batch is committed at once and ACKed; a failed commit waits", async () => {
  for (const commitFails of [false, true]) {
    let commit = Promise.withResolvers<void>();
    const kept = new FakeHistory();
    const logged = memoryLogger("error");
    const inbox: Inbox = {
      accept: ({ from, msgId, text }) => kept.add({ conversation: from, msgId, text }),
      committed: () => commit.promise,
      commitNow: () => {
        if (commitFails) throw new Error("disk I/O error");
        commit.resolve();
        commit = Promise.withResolvers<void>();
      },
      receipt: () => {},
      settled: (_message, result) => result,
    };
    const node = createPeerNode({ name: "b", namespace: "lab", ...FAST, inbox }, {
      log: logged.log,
    });
    const { port } = await node.start();
    const raw = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
    try {
      await raw.write({
        type: "HELLO",
        peer_id: "p@lab",
        features: ["ack", "p2pchat", "p2pchat-batch"],
      });
      assert.equal((await raw.line())?.type, "HELLO_OK");
      assert.equal((await raw.line())?.type, "PING");
      const ids = Array.from({ length: MAX_BATCH_ITEMS + 2 }, (_, i) => `m${i}`);
      const sends = (part: string[]) => ({
        type: "SENDS",
        src: "p@lab",
        dst: "b@lab",
        msg_ids: part,
        payloads: part,
      });
      await raw.write(
        [sends(ids.slice(0, MAX_BATCH_ITEMS)), sends(ids.slice(MAX_BATCH_ITEMS))]
          .map((line) => JSON.stringify(line) + "\n").join(""),
      );
      if (!commitFails) {
        assert.deepEqual((await raw.line())?.msg_ids, ids.slice(0, MAX_BATCH_ITEMS));
      }
      assert.equal(await raw.line(100), undefined, "the rest waits for its commit");
      if (commitFails) assert.match(logged.lines.join("\n"), /disk I\/O error/);
      commit.resolve();
      const rest = commitFails ? ids : ids.slice(MAX_BATCH_ITEMS);
      const answered: unknown[] = [];
      while (answered.length < rest.length) {
        answered.push(...((await raw.line())?.msg_ids as string[]));
      }
      assert.deepEqual(answered, rest);
    } finally {
      await raw.close();
      await node.stop();
    }
  }
});

Deno.test("a message the inbox fails to keep is shown and ACKed; the peer goes on", async () => {
  const b = await startNode("b", "lab", {
    inbox: {
      accept: () => {
        throw new Error("UNIQUE constraint failed: conversations.name");
      },
      committed: () => Promise.resolve(),
      commitNow: () => {},
      receipt: () => {},
      settled: (_message, result) => result,
    },
  });
  const raw = await LineClient.connect(b.port);
  try {
    await raw.ask({ type: "HELLO", peer_id: "pyp@lab", features: ["ack"] });
    for (const msgId of ["m-1", "m-2"]) {
      await raw.send({ type: "SEND", msg_id: msgId, src: "pyp@lab", dst: "b@lab", payload: "hi" });
      assert.equal((await raw.next())?.msg_id, msgId);
    }
    const shown = b.events.filter((event) => event.type === "message");
    assert.deepEqual(shown.map((event) => event.type === "message" && event.msgId), ["m-1", "m-2"]);
    assert.equal(b.node.status().peers.connected, 1, "the connection stays");
  } finally {
    raw.close();
    await b.node.stop();
  }
});
