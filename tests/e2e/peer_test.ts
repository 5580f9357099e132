/**
 * End-to-end tests of `p2pchat peer`: real peer and tracker processes on loopback, driven
 * through the peer's line-oriented standard input and its stable output lines.
 */
import assert from "node:assert/strict";
import { E2e, type PeerProcess, pollUntil, WAIT_MS } from "../_peer_process.ts";
import { request } from "../_tracker_process.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";

/** Waits until `peer` reports each of `others` connected (looking at lines from `from` on). */
async function connected(peer: PeerProcess, others: PeerProcess[], from = 0): Promise<void> {
  for (const other of others) {
    await peer.waitForLine(
      new RegExp(`-- peer ${_escape(other.peerId)} connected(: \\w+)?$`),
      WAIT_MS,
      from,
    );
  }
}

/** Sends a DM from `from` to `to` and checks both ends: the ACK report and the [dm] line. */
async function dm(from: PeerProcess, to: PeerProcess, text: string): Promise<void> {
  const mark = await from.send(`/msg ${to.peerId} ${text}`);
  await from.waitForLine(
    new RegExp(`^delivered to ${_escape(to.peerId)} \\(\\d+ ms\\)$`),
    WAIT_MS,
    mark,
  );
  await to.waitForLine(
    new RegExp(`^\\d\\d:\\d\\d:\\d\\d \\[dm\\] ${_escape(from.peerId)}: ${text}$`),
  );
}

/** The peer ids a tracker lists for `namespace`. */
async function listed(trackerPort: number, namespace: string): Promise<string[]> {
  const reply = await request(trackerPort, { type: "DISCOVER", namespace });
  assert.equal(reply.status, "OK");
  return (reply.peers as { name: string; namespace: string }[])
    .map((peer) => `${peer.name}@${peer.namespace}`).sort();
}

function _escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("three peers chat through a tracker: DM with ACK, #ns and * scopes, RTT, BYE on quit", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const [a, b, c] = await e2e.peers([
      { name: "a", namespace: "ns1", trackerPort: tracker.port },
      { name: "b", namespace: "ns1", trackerPort: tracker.port },
      { name: "c", namespace: "ns2", trackerPort: tracker.port },
    ]);
    await Promise.all([connected(a, [b, c]), connected(b, [a, c]), connected(c, [a, b])]);

    await dm(a, b, "hello b");

    // Each PUB line says how many got it encrypted and how many in clear: p2pchat peers encrypt.
    let mark = await a.send("/pub #ns1 only ns1");
    await a.waitForLine(
      /^reached 1 peer in #ns1 \(1 encrypted, 0 in clear\): b@ns1$/,
      WAIT_MS,
      mark,
    );
    await b.waitForLine(/^\d\d:\d\d:\d\d \[#ns1\] a@ns1: only ns1$/);
    mark = await a.send("/pub * everyone");
    const two = /^reached 2 peers in \* \(2 encrypted, 0 in clear\): (\S+) (\S+)$/;
    const reached = await a.waitForLine(two, WAIT_MS, mark);
    assert.deepEqual(reached.match.slice(1).sort(), ["b@ns1", "c@ns2"]);
    await b.waitForLine(/ \[\*\] a@ns1: everyone$/);
    await c.waitForLine(/ \[\*\] a@ns1: everyone$/);
    // The `*` PUB came after the `#ns1` one on the same connection, so c has seen both by now.
    assert.ok(!c.lines.some((line) => line.includes("only ns1")), "c got the #ns1 PUB");

    // Pings run every second; poll /rtt until both connections show a measured round trip.
    await pollUntil("a number in /rtt for b and c", async () => {
      const mark = await a.send("/rtt");
      const table = await a.waitForLine(/^c@ns2 /, WAIT_MS, mark);
      const rows = a.lines.slice(mark, table.index + 1);
      const measured = rows.filter((row) =>
        /^[bc]@ns\d\s{2,}\d+(\.\d)?ms\s{2,}\d+(\.\d)?ms$/.test(row)
      );
      return measured.length === 2 ? true : undefined;
    });

    mark = await a.send("/status");
    await a.waitForLine(/^log level: /, WAIT_MS, mark);
    const status = a.lines.slice(mark);
    assert.ok(status.includes("peer: a@ns1"), status.join("\n"));
    assert.ok(status.includes(`tracker: 127.0.0.1:${tracker.port} reachable`), status.join("\n"));
    assert.ok(status.includes("peers: 2 known, 2 connected"), status.join("\n"));
    mark = await c.send("/peers");
    await c.waitForLine(/^b@ns1 /, WAIT_MS, mark);
    const table = c.lines.slice(mark, mark + 3);
    assert.match(table[0], /^PEER\s{2,}STATE\s{2,}DIR\s{2,}RTT\s{2,}SECURITY\s{2,}ADDRESS$/);
    const security = "unverified";
    for (const [row, peer] of [[table[1], a], [table[2], b]] as const) {
      assert.match(
        row,
        new RegExp(
          `^${peer.peerId}\\s{2,}connected\\s{2,}(in|out)bound\\s{2,}\\S+\\s{2,}${security}\\s{2,}\\S+$`,
        ),
      );
    }

    const bMark = b.mark();
    const aMark = a.mark();
    await c.send("/quit");
    assert.equal((await c.waitForExit()).code, 0);
    for (const [peer, from] of [[a, aMark], [b, bMark]] as const) {
      const gone = await peer.waitForLine(/-- peer c@ns2 gone: /, WAIT_MS, from);
      const between = peer.lines.slice(from, gone.index);
      assert.ok(
        !between.some((line) => /-- peer c@ns2 (stale|failed)/.test(line)),
        between.join("\n"),
      );
    }
  } finally {
    await e2e.close();
  }
});

Deno.test("a peer killed with -9 or frozen is detected, and once restarted it is reconnected", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const options = (name: string) => ({ name, namespace: "k", trackerPort: tracker.port });
    const [a, b, c] = await e2e.peers([options("a"), options("b"), options("c")]);
    await connected(a, [b, c]);

    // kill -9: the kernel closes c's sockets, so a notices the lost connection at once. (A peer
    // only known from its own dial has no address to redial: it is reported gone, not stale.)
    let mark = a.mark();
    c.kill("SIGKILL");
    await c.waitForExit();
    await a.waitForLine(/-- peer c@k (stale|gone): eof$/, WAIT_MS, mark);
    // c comes back at once on its old port, with its profile (and so its key): while the port
    // is free, any program's outgoing connection on this machine may take it.
    const cBack = a.mark();
    const c2 = await e2e.peer({
      ...options("c"),
      dataDir: c.dataDir,
      args: ["--port", String(c.port)],
    });
    assert.equal(c2.port, c.port);

    // A frozen peer keeps its sockets open: only the keep-alive (1 s pings) can tell.
    mark = a.mark();
    b.kill("SIGSTOP");
    await a.waitForLine(/-- peer b@k (stale|gone): stale$/, WAIT_MS, mark);
    b.kill("SIGKILL");
    await b.waitForExit();

    // b comes back on another port.
    mark = a.mark();
    const b2 = await e2e.peer({ ...options("b"), dataDir: b.dataDir });
    await connected(a, [c2], cBack);
    await connected(a, [b2], mark);
    await dm(a, b2, "welcome back b");
    await dm(c2, a, "c is back");
  } finally {
    await e2e.close();
  }
});

Deno.test("peers re-register after a tracker restart, and a peer started meanwhile joins", async () => {
  const e2e = new E2e();
  try {
    const dataDir = await e2e.tempDir();
    const tracker = await e2e.tracker({ dataDir });
    const port = tracker.port;
    const options = (name: string) => ({ name, namespace: "t", trackerPort: port });
    const [a, b] = await e2e.peers([options("a"), options("b")]);
    await connected(a, [b]);
    await connected(b, [a]);

    const mark = a.mark();
    await tracker.stop("SIGKILL");
    await a.waitForLine(/-- tracker unreachable/, WAIT_MS, mark);
    await dm(b, a, "the tracker is down");
    const c = await e2e.peer(options("c"));
    await c.waitForLine(/-- tracker unreachable/);

    // Same port and key, no registrations: it knows nobody until the peers re-register.
    const fresh = await e2e.tempDir();
    await Deno.copyFile(`${dataDir}/identity.json`, `${fresh}/identity.json`);
    await e2e.tracker({ port, dataDir: fresh });
    await pollUntil("a, b and c registered again", async () => {
      const ids = await listed(port, "t");
      return ids.join(" ") === "a@t b@t c@t" ? true : undefined;
    });
    await a.waitForLine(/-- tracker reachable/, WAIT_MS, mark);
    await connected(c, [a, b]);
    await dm(a, b, "still here");
    await dm(c, b, "hello from c");
  } finally {
    await e2e.close();
  }
});

Deno.test("a DM to a pyp2p peer that does not ACK reports a timeout after about 5 s", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const mute = startRawPeer(e2e, "mute@ack");
    const registered = await request(tracker.port, {
      type: "REGISTER",
      namespace: "ack",
      name: "mute",
      port: mute.port,
    });
    assert.equal(registered.status, "OK");
    const a = await e2e.peer({ name: "a", namespace: "ack", trackerPort: tracker.port });
    await a.waitForLine(/-- peer mute@ack connected/);

    const started = Date.now();
    const mark = await a.send("/msg mute@ack are you there?");
    await a.waitForLine(/^not delivered to mute@ack: timeout$/, WAIT_MS, mark);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 4_500 && elapsed < 9_500, `reported after ${elapsed} ms`);
    const send = mute.received.find((message) => message.type === "SEND");
    assert.equal(send?.payload, "are you there?");
    assert.equal(send?.require_ack, true);

    // The timed-out SEND no longer holds the one in-flight slot a pyp2p peer gets.
    const next = await a.send("/msg mute@ack please ack me");
    await a.waitForLine(/^delivered to mute@ack \(\d+ ms\)$/, WAIT_MS, next);
  } finally {
    await e2e.close();
  }
});

Deno.test("garbage, unknown types, oversized lines and abrupt closes leave the peer chatting", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const [a, b] = await e2e.peers([
      { name: "a", namespace: "g", trackerPort: tracker.port },
      { name: "b", namespace: "g", trackerPort: tracker.port },
    ]);
    await connected(a, [b]);

    // Not a HELLO first: closed without an answer.
    let raw = await RawClient.open(e2e, a.port);
    await raw.write("this is not json\n");
    assert.equal(await raw.readUntilClose(), "");

    // After a handshake: bad JSON, an unknown type and a line without type are skipped.
    raw = await RawClient.open(e2e, a.port);
    await raw.write(JSON.stringify({ type: "HELLO", peer_id: "junk@g", version: "1.0" }) + "\n");
    assert.equal((await raw.readMessage()).type, "HELLO_OK");
    await raw.write('{"type":"SEND", oops\n{"type":"WHATEVER","x":1}\n{"no_type":true}\n[1,2]\n');
    await raw.write(JSON.stringify({ type: "PING", msg_id: "p1" }) + "\n");
    const pong = await raw.readMessage((message) => message.type === "PONG");
    assert.equal(pong.msg_id, "p1");
    // A 40 KB line closes that connection only.
    await raw.write(JSON.stringify({ type: "SEND", payload: "x".repeat(40_000) }) + "\n");
    await raw.readUntilClose();

    // A 40 KB first line, and a connection dropped in the middle of a line.
    raw = await RawClient.open(e2e, a.port);
    await raw.write("y".repeat(40_000) + "\n");
    await raw.readUntilClose();
    raw = await RawClient.open(e2e, a.port);
    await raw.write(JSON.stringify({ type: "HELLO", peer_id: "junk2@g" }) + "\n");
    await raw.readMessage();
    await raw.write('{"type":"SEND","msg_id":"half');
    raw.close();

    assert.ok(a.running);
    await dm(a, b, "still alive");
    await dm(b, a, "me too");
  } finally {
    await e2e.close();
  }
});

Deno.test("two peers that dial each other at the same moment keep exactly one connection", async () => {
  const e2e = new E2e();
  try {
    const gate = startGateTracker(e2e, 2);
    const [a, b] = await e2e.peers([
      { name: "a", namespace: "sim", trackerPort: gate.port },
      { name: "b", namespace: "sim", trackerPort: gate.port },
    ]);
    await gate.released;
    await Promise.all([connected(a, [b]), connected(b, [a])]);
    await dm(a, b, "one link");
    await dm(b, a, "one link back");

    // The connection dialled by the smaller peer_id survives on both sides.
    for (const [peer, other, direction] of [[a, b, "outbound"], [b, a, "inbound"]] as const) {
      const mark = await peer.send("/conn");
      await peer.waitForLine(new RegExp(`^${other.peerId} `), WAIT_MS, mark);
      const rows = peer.lines.slice(mark + 1).filter((line) => line.startsWith(other.peerId));
      assert.equal(rows.length, 1, rows.join("\n"));
      assert.match(rows[0], new RegExp(`^${other.peerId}\\s{2,}${direction}\\s{2,}`));
    }
  } finally {
    await e2e.close();
  }
});

Deno.test("SIGINT, SIGTERM and the end of piped input make a peer say BYE and exit with status 0", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const options = (name: string) => ({ name, namespace: "sig", trackerPort: tracker.port });
    const [a, b, c, d] = await e2e.peers([options("a"), options("b"), options("c"), options("d")]);
    await connected(a, [b, c, d]);
    // Open on both ends: one still deciding about a (asking the tracker for its key) has no
    // connection to say BYE on, and a would see it end (stale: eof).
    for (const other of [b, c, d]) await connected(other, [a]);
    const mark = a.mark();
    await d.closeInput();
    assert.equal((await d.waitForExit()).code, 0, "exit status after the end of input");
    await a.waitForLine(/-- peer d@sig gone: /, WAIT_MS, mark);
    for (const [peer, signal] of [[b, "SIGINT"], [c, "SIGTERM"]] as const) {
      const mark = a.mark();
      peer.kill(signal);
      assert.equal((await peer.waitForExit()).code, 0, `exit status after ${signal}`);
      await a.waitForLine(new RegExp(`-- peer ${peer.peerId} gone: `), WAIT_MS, mark);
    }
  } finally {
    await e2e.close();
  }
});

Deno.test("a peer whose input ends at once, or that is sent SIGTERM at once, leaves no registration behind", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const options = (name: string) => ({ name, namespace: "brief", trackerPort: tracker.port });
    const [quick, killed] = await e2e.peers([options("quick"), options("killed")]);
    // Right after the listening line: the first REGISTER is still under way.
    await quick.closeInput();
    killed.kill("SIGTERM");
    for (const peer of [quick, killed]) assert.equal((await peer.waitForExit()).code, 0);
    const reply = await request(tracker.port, { type: "DISCOVER", namespace: "brief" });
    assert.deepEqual(reply.peers, []);
  } finally {
    await e2e.close();
  }
});

/** A pyp2p-style peer: answers HELLO and PING, records everything, ACKs only "ack me" texts. */
function startRawPeer(e2e: E2e, peerId: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Record<string, unknown>[] = [];
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    const decoder = new LineDecoder();
    const reply = (message: unknown) => conn.write(encodeLine(message)).catch(() => 0);
    try {
      for await (const chunk of conn.readable) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind !== "line") return;
          const message = JSON.parse(frame.text);
          received.push(message);
          if (message.type === "HELLO") {
            await reply({ type: "HELLO_OK", peer_id: peerId, version: "1.0", features: ["ack"] });
          } else if (message.type === "PING") {
            await reply({
              type: "PONG",
              msg_id: message.msg_id,
              timestamp: new Date().toISOString(),
            });
          } else if (message.type === "SEND" && String(message.payload).includes("ack me")) {
            await reply({
              type: "ACK",
              msg_id: message.msg_id,
              timestamp: new Date().toISOString(),
            });
          } else if (message.type === "BYE") {
            await reply({ type: "BYE_OK", msg_id: message.msg_id, src: peerId, dst: message.src });
          }
        }
      }
    } catch {
      // The peer closed or reset the connection.
    } finally {
      conns.delete(conn);
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void serve(conn);
    }
  })().catch(() => {});
  e2e.defer(async () => {
    listener.close();
    for (const conn of conns) _closeQuietly(conn);
    await accepting;
  });
  return { port: (listener.addr as Deno.NetAddr).port, received };
}

/**
 * A Rendezvous tracker that lists nobody until `count` peers registered, then holds DISCOVER
 * requests until `count` of them wait and answers them all at once: the peers learn of each
 * other at the same moment and dial simultaneously.
 */
function startGateTracker(e2e: E2e, count: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const records = new Map<string, Record<string, unknown>>();
  let held = 0;
  const conns = new Set<Deno.Conn>();
  const released = Promise.withResolvers<void>();
  const answer = (conn: Deno.Conn, reply: unknown) =>
    conn.write(encodeLine(reply)).catch(() => 0).finally(() => {
      conns.delete(conn);
      _closeQuietly(conn);
    });
  const reply = async (request: Record<string, unknown>) => {
    if (request.type === "REGISTER") {
      records.set(`${request.name}@${request.namespace}`, {
        ip: "127.0.0.1",
        port: request.port,
        name: request.name,
        namespace: request.namespace,
        ttl: 60,
        expires_in: 60,
      });
      return { status: "OK", ttl: 60, ip: "127.0.0.1", port: request.port };
    }
    if (request.type !== "DISCOVER") return { status: "OK" };
    if (held < count && records.size < count) return { status: "OK", peers: [] };
    if (held < count && ++held === count) released.resolve();
    await released.promise;
    return { status: "OK", peers: [...records.values()] };
  };
  const serve = async (conn: Deno.Conn) => {
    const decoder = new LineDecoder();
    // Reads with a reader, not `for await`: leaving that loop would cancel the stream and
    // close the socket before the (possibly held) reply is written.
    const reader = conn.readable.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const frame = decoder.push(value)[0];
      if (frame?.kind !== "line") continue;
      await answer(conn, await reply(JSON.parse(frame.text)));
      return;
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void serve(conn).catch(() => {});
    }
  })().catch(() => {});
  e2e.defer(async () => {
    listener.close();
    for (const conn of conns) _closeQuietly(conn);
    await accepting;
  });
  return { port: (listener.addr as Deno.NetAddr).port, released: released.promise };
}

/** A raw TCP client toward a peer's port, with bounded reads. */
class RawClient {
  #decoder = new LineDecoder(Infinity);
  #pending: Record<string, unknown>[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array>;

  private constructor(readonly conn: Deno.Conn) {
    this.#reader = conn.readable.getReader();
  }

  static async open(e2e: E2e, port: number): Promise<RawClient> {
    const client = new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
    e2e.defer(() => client.close());
    return client;
  }

  async write(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** The next message (that matches `accept`); fails if the connection closes first. */
  async readMessage(
    accept: (message: Record<string, unknown>) => boolean = () => true,
  ): Promise<Record<string, unknown>> {
    for (;;) {
      const message = this.#pending.shift();
      if (message !== undefined && accept(message)) return message;
      if (message !== undefined) continue;
      const chunk = await this.#read();
      if (chunk === undefined) throw new Error("connection closed before the expected message");
      for (const frame of this.#decoder.push(chunk)) {
        if (frame.kind === "line") this.#pending.push(JSON.parse(frame.text));
      }
    }
  }

  /** Reads until the peer closes the connection; returns what came meanwhile. */
  async readUntilClose(): Promise<string> {
    let text = "";
    for (;;) {
      const chunk = await this.#read();
      if (chunk === undefined) return text;
      text += new TextDecoder().decode(chunk);
    }
  }

  close(): void {
    this.#reader.releaseLock();
    _closeQuietly(this.conn);
  }

  async #read(): Promise<Uint8Array | undefined> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#reader.cancel();
    }, WAIT_MS);
    try {
      const { value, done } = await this.#reader.read();
      if (timedOut) throw new Error(`the peer neither answered nor closed within ${WAIT_MS} ms`);
      return done ? undefined : value;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

function _closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

Deno.test("a peer's embedded tracker listens on the peer's --host, and the peer registers there", async () => {
  const e2e = new E2e();
  try {
    const peer = await e2e.peer({
      name: "emb",
      namespace: "ns1",
      embedTracker: true,
      args: ["--host", "127.0.0.2"],
    });
    const listening = await peer.waitForLine(/^Tracker listening on 127\.0\.0\.2:(\d+)$/);
    const where = `127\\.0\\.0\\.2:${listening.match[1]}`;
    await pollUntil("a register with the embedded tracker", async () => {
      const mark = await peer.send("/status");
      const line = await peer.waitForLine(/^last register: /, WAIT_MS, mark);
      if (line.line === "last register: -") return undefined;
      return await peer.waitForLine(new RegExp(`^tracker: ${where} reachable$`), WAIT_MS, mark);
    });
  } finally {
    await e2e.close();
  }
});
