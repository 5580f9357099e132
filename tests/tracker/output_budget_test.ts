/**
 * The tracker's shared budget for output queued toward session clients that do not read: in
 * process, with connections whose writes never complete (a client that stopped reading).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import { type Address, type Conn, memoryConnPair } from "../../lib/transport.ts";
import { newSessionIdentity, secureSession } from "../_session_identity.ts";
import { sessionExtension } from "./_session_extension.ts";
import { createTracker } from "../../tracker/server.ts";

/**
 * The tracker's end of an in-memory connection whose client stops reading once `stall()` is
 * called: from then on the tracker's writes stay pending until the connection closes.
 */
class StallableConn implements Conn {
  #stalled = false;
  #closedSignal = Promise.withResolvers<void>();

  constructor(readonly inner: Conn) {}

  get local(): Address {
    return this.inner.local;
  }
  get remote(): Address {
    return this.inner.remote;
  }
  get closed(): boolean {
    return this.inner.closed;
  }

  stall(): void {
    this.#stalled = true;
  }

  chunks(): AsyncIterable<Uint8Array> {
    return this.inner.chunks();
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.#stalled) return this.inner.write(bytes);
    return this.#closedSignal.promise.then(() => {
      throw new Error("closed");
    });
  }

  close(): void {
    this.inner.close();
    this.#closedSignal.resolve();
  }
}

/** Sessions that answer a line "N" with N kilobytes. */
const bulkExtension = sessionExtension((link) => ({
  receive(result) {
    if (result.ok) {
      link.send({ type: "DATA", fill: "x".repeat(Number(result.message.fields.kb) * 1000) });
    }
  },
  closed() {},
}));

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("unread session output over the shared budget closes the largest backlog first", async () => {
  const { log } = memoryLogger();
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false, outputBudgetBytes: 200_000 },
    { clock: new ManualClock(), log, extension: bulkExtension },
  );
  await tracker.start();
  const ends = await Promise.all(["a", "b", "c", "d"].map(async (_, index) => {
    const [client, server] = memoryConnPair(
      { hostname: `10.0.0.${index + 1}`, port: 40000 },
      { hostname: "127.0.0.1", port: 8080 },
    );
    const stallable = new StallableConn(server);
    tracker.serve(stallable);
    const { conn } = await secureSession(client, newSessionIdentity());
    stallable.stall(); // the client reads no more
    const feed = (line: string) => void conn.write(new TextEncoder().encode(line + "\n"));
    return { feed, server: stallable };
  }));
  const conns = ends.map((end) => end.server);
  try {
    const [a, b, c, d] = ends;
    a.feed('{"type":"BULK","kb":60}');
    a.feed('{"type":"BULK","kb":30}'); // 90 kB: over the 64 kB pause, so a is read no further
    a.feed('{"type":"BULK","kb":30}');
    b.feed('{"type":"BULK","kb":50}');
    c.feed('{"type":"BULK","kb":50}');
    for (let index = 0; index < 5; index++) await tick();
    assert.ok(conns.every((conn) => !conn.closed), "190 kB fits the budget");
    d.feed('{"type":"BULK","kb":20}'); // 210 kB: over it
    for (let index = 0; index < 5; index++) await tick();
    assert.deepEqual(conns.map((conn) => conn.closed), [true, false, false, false]);
    assert.match(tracker.metricsText(), /^p2pchat_tracker_sessions_shed_total 1$/m);
  } finally {
    conns.forEach((conn) => conn.close());
    await tracker.stop();
  }
});

Deno.test("a session whose client left is closed, and the rest of what it sent is not handled", async () => {
  let handled = 0;
  const countingExtension = sessionExtension((link) => ({
    receive() {
      handled++;
      link.send({ type: "ERROR", message: "no" });
    },
    closed() {},
  }));
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false },
    { clock: new ManualClock(), log: memoryLogger().log, extension: countingExtension },
  );
  await tracker.start();
  const [client, server] = memoryConnPair(
    { hostname: "10.0.0.9", port: 40000 },
    { hostname: "127.0.0.1", port: 8080 },
  );
  const leaving = new StallableConn(server);
  tracker.serve(leaving);
  try {
    const { conn } = await secureSession(client, newSessionIdentity());
    // Every write fails from now on, as toward a client that reset the connection.
    leaving.write = () => Promise.reject(new Error("connection reset"));
    await conn.write(new TextEncoder().encode('{"type":"JUNK"}\n'.repeat(500)));
    for (let index = 0; index < 50 && !leaving.closed; index++) await tick();
    assert.ok(leaving.closed, "the session is closed");
    assert.ok(handled < 10, `${handled} of 500 lines handled after the client left`);
  } finally {
    leaving.close();
    await tracker.stop();
  }
});
