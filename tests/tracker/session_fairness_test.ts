/**
 * Sessions that have not logged in share one rate of lines besides their own, so a crowd of
 * anonymous sessions costs a bounded share of the tracker; a logged-in session is not held back.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import { memoryConnPair } from "../../lib/transport.ts";
import { newSessionIdentity, secureSession } from "../_session_identity.ts";
import { sessionExtension } from "./_session_extension.ts";
import { createTracker } from "../../tracker/server.ts";

/** Counts the lines handled for each session id; ids starting with "member" are logged in. */
function countingExtension(handled: Map<string, number>) {
  return sessionExtension((link) => ({
    loggedIn: link.remoteId.startsWith("member"),
    receive() {
      handled.set(link.remoteId, (handled.get(link.remoteId) ?? 0) + 1);
    },
    closed() {},
  }));
}

Deno.test("anonymous sessions share 1,000 lines a second, in turn; a logged-in one keeps its own rate", async () => {
  const handled = new Map<string, number>();
  const clock = new ManualClock();
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false },
    { clock, log: memoryLogger().log, extension: countingExtension(handled) },
  );
  await tracker.start();
  const ids = ["anon1@x", "anon2@x", "anon3@x", "member@x"];
  const servers = [];
  const clients = [];
  try {
    for (const [index, id] of ids.entries()) {
      const [client, server] = memoryConnPair(
        { hostname: `10.0.0.${index + 1}`, port: 40000 },
        { hostname: "127.0.0.1", port: 8080 },
      );
      servers.push(server);
      tracker.serve(server);
      clients.push((await secureSession(client, newSessionIdentity(id))).conn);
    }
    const timersBefore = clock.pendingTimers;
    // 800 lines each: within a session's own burst of 1,000.
    const lines = new TextEncoder().encode('{"type":"PING"}\n'.repeat(800));
    for (const conn of clients) await conn.write(lines);
    const total = () =>
      ["anon1@x", "anon2@x", "anon3@x"].reduce((sum, id) => sum + (handled.get(id) ?? 0), 0);
    const deadline = Date.now() + 5000;
    while ((total() < 1000 || (handled.get("member@x") ?? 0) < 800) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(handled.get("member@x"), 800, "the logged-in session is not held back");
    assert.equal(total(), 1000, "the anonymous ones share a burst of 1,000");
    // The three wait for the shared rate on one timer, not one each.
    assert.equal(clock.pendingTimers, timersBefore + 1);
    // Then one line a millisecond, to each waiting session in turn.
    const before = ["anon1@x", "anon2@x", "anon3@x"].map((id) => handled.get(id) ?? 0);
    for (let ms = 0; ms < 30; ms++) {
      clock.advance(1);
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const gained = ["anon1@x", "anon2@x", "anon3@x"].map((id, i) => handled.get(id)! - before[i]);
    assert.deepEqual(gained, [10, 10, 10]);
    // A second later, 1,000 more between them.
    clock.advance(1000);
    const later = Date.now() + 5000;
    while (total() < 2030 && Date.now() < later) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(total(), 2030);
  } finally {
    servers.forEach((server) => server.close());
    clock.advance(60_000); // sessions waiting for a line's turn see the close
    await tracker.stop();
  }
});
