/**
 * The tracker's shared budget for output queued toward session clients that do not read: in
 * process, with connections whose writes never complete (a client that stopped reading).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { Address, Conn } from "../../lib/transport.ts";
import type { TrackerExtension } from "../../tracker/extension.ts";
import { createTracker } from "../../tracker/server.ts";

/** A connection whose peer writes lines but never reads: writes stay pending until close. */
class StalledConn implements Conn {
  readonly local: Address = { hostname: "127.0.0.1", port: 8080 };
  closed = false;
  #input: Uint8Array[] = [];
  #wake?: () => void;
  #closedSignal = Promise.withResolvers<void>();

  constructor(readonly remote: Address) {}

  feed(line: string): void {
    this.#input.push(new TextEncoder().encode(line + "\n"));
    this.#wake?.();
  }

  async *chunks(): AsyncIterable<Uint8Array> {
    while (!this.closed) {
      const chunk = this.#input.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  write(): Promise<void> {
    return this.#closedSignal.promise.then(() => {
      throw new Error("closed");
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#wake?.();
    this.#closedSignal.resolve();
  }
}

/** Sessions that answer a line "N" with N kilobytes. */
const bulkExtension: TrackerExtension = {
  opensSession: (type) => type === "BULK",
  openSession(link) {
    return {
      receive(result) {
        if (result.ok) {
          link.send({ type: "DATA", fill: "x".repeat(Number(result.message.fields.kb) * 1000) });
        }
      },
      closed() {},
    };
  },
  checkRegister: () => undefined,
  onNameOwned: () => {},
  metrics: () => [],
  start: () => Promise.resolve(),
  stop: () => Promise.resolve(),
};

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("unread session output over the shared budget closes the largest backlog first", async () => {
  const { log } = memoryLogger();
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false, outputBudgetBytes: 200_000 },
    { clock: new ManualClock(), log, extension: bulkExtension },
  );
  await tracker.start();
  const conns = ["a", "b", "c", "d"].map((_, index) =>
    new StalledConn({ hostname: `10.0.0.${index + 1}`, port: 40000 })
  );
  try {
    conns.forEach((conn) => tracker.serve(conn));
    const [a, b, c, d] = conns;
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
