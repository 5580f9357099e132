/**
 * Messages that last, between real peer processes: history after a restart, a direct message to
 * a peer that is not running delivered once it starts (the sender killed and restarted in
 * between), an ACK that means the message is on disk, and a profile two peers cannot share.
 */
import assert from "node:assert/strict";
import { E2e, PeerProcess, WAIT_MS } from "../_peer_process.ts";
import { LineClient } from "../_line_client.ts";

/** Lines of `peer` from `from` on that match `pattern`. */
function linesMatching(peer: PeerProcess, pattern: RegExp, from = 0): string[] {
  return peer.lines.slice(from).filter((line) => pattern.test(line));
}

/** Runs `/history N` and returns the history lines it printed. */
async function history(peer: PeerProcess, pattern: RegExp, count: number): Promise<string[]> {
  const mark = await peer.send("/history 50");
  await peer.waitUntil(`${count} history lines`, () => {
    const lines = linesMatching(peer, pattern, mark);
    return lines.length >= count ? lines : undefined;
  });
  // Anything more would follow at once: give the rest of the output a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return linesMatching(peer, pattern, mark);
}

Deno.test("a conversation is still there after the peer restarts", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const dataDir = await e2e.tempDir();
    const [ann, bob] = await e2e.peers([
      { name: "ann", namespace: "h", trackerPort: tracker.port, dataDir },
      { name: "bob", namespace: "h", trackerPort: tracker.port },
    ]);
    await ann.waitForLine(/peer bob@h connected/);
    await ann.send("/msg bob@h hello from before");
    await ann.waitForLine(/delivered to bob@h/);
    await bob.waitForLine(/\[dm\] ann@h: hello from before/);
    await bob.send("/msg ann@h and an answer");
    await ann.waitForLine(/\[dm\] bob@h: and an answer/);
    await ann.closeInput();
    assert.equal((await ann.waitForExit()).code, 0);

    const again = await e2e.peer({
      name: "ann",
      namespace: "h",
      trackerPort: tracker.port,
      dataDir,
    });
    await again.send("/msg bob@h");
    const lines = await history(again, /hello from before|and an answer/, 2);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[0], /\[dm\] ann@h: hello from before .*✓✓/);
    assert.match(lines[1], /\[dm\] bob@h: and an answer/);
  } finally {
    await e2e.close();
  }
});

Deno.test("a message to a peer that is not running is delivered once it starts, exactly once, after the sender was killed", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const dataDir = await e2e.tempDir();
    const ann = await e2e.peer({ name: "ann", namespace: "q", trackerPort: tracker.port, dataDir });
    // A friend: only people we know wait in the outbox.
    const added = await ann.send("/add cat");
    await ann.waitForLine(/cat@q/, WAIT_MS, added);
    for (const text of ["first", "second", "third"]) {
      const mark = await ann.send(`/msg cat@q ${text}`);
      await ann.waitForLine(/queued for cat@q/, WAIT_MS, mark);
    }
    ann.kill("SIGKILL");
    await ann.waitForExit();

    const restarted = await e2e.peer({
      name: "ann",
      namespace: "q",
      trackerPort: tracker.port,
      dataDir,
    });
    const cat = await e2e.peer({ name: "cat", namespace: "q", trackerPort: tracker.port });
    await cat.waitForLine(/\[dm\] ann@q: third/);
    await restarted.waitForLine(/delivered to cat@q.*third/);
    // Later connections (redials, the other side's dial) must not bring them again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const received = linesMatching(cat, /\[dm\] ann@q:/).map((line) => line.replace(/^.*: /, ""));
    assert.deepEqual(received, ["first", "second", "third"]);
  } finally {
    await e2e.close();
  }
});

Deno.test("an ACK means the message is on disk: the receiver killed right after it still has it, once", async () => {
  const e2e = new E2e();
  try {
    const dataDir = await e2e.tempDir();
    const start = () => e2e.peer({ name: "bob", namespace: "k", dataDir });
    const sendAndWaitForAck = async (port: number) => {
      const raw = await LineClient.connect(port);
      try {
        await raw.ask({ type: "HELLO", peer_id: "old@k", version: "1.0", features: ["ack"] });
        await raw.send({
          type: "SEND",
          msg_id: "m-1",
          src: "old@k",
          dst: "bob@k",
          payload: "kept",
        });
        assert.equal((await raw.next())?.msg_id, "m-1");
      } finally {
        raw.close();
      }
    };
    const bob = await start();
    await sendAndWaitForAck(bob.port);
    bob.kill("SIGKILL");
    await bob.waitForExit();

    const again = await start();
    await again.send("/msg old@k");
    assert.equal((await history(again, /\[dm\] old@k: kept/, 1)).length, 1);
    // The same SEND once more (its ACK was lost, say): ACKed, not shown, not stored twice.
    const mark = again.mark();
    await sendAndWaitForAck(again.port);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(linesMatching(again, /\[dm\] old@k: kept/, mark), []);
    assert.equal((await history(again, /\[dm\] old@k: kept/, 1)).length, 1);
  } finally {
    await e2e.close();
  }
});

Deno.test("messages of a burst kept in the message log: the receiver killed after their ACKs has each, once", async () => {
  const e2e = new E2e();
  // A p2pchat sender's msg_ids: its connection's prefix and a counter.
  const counted = (n: number) => `5f0c3a1e-7b2d-8c4e-9a6f-${n.toString(16).padStart(12, "0")}`;
  try {
    const dataDir = await e2e.tempDir();
    const logFile = `${dataDir}/messages.db-msglog`;
    const start = () => e2e.peer({ name: "bob", namespace: "k", dataDir });
    const bob = await start();
    const raw = await LineClient.connect(bob.port);
    await raw.ask({ type: "HELLO", peer_id: "fast@k", version: "1.0", features: ["ack"] });
    const sendAndWaitForAck = async (n: number) => {
      const msgId = counted(n);
      await raw.send({
        type: "SEND",
        msg_id: msgId,
        src: "fast@k",
        dst: "bob@k",
        payload: `n${n}`,
      });
      for (;;) {
        const line = await raw.next();
        if (line === undefined) throw new Error("closed");
        if (line.type === "ACK" && line.msg_id === msgId) return;
      }
    };
    // The first from a sender is looked up; once it is in the table, its next ones need no
    // lookup and go to the log.
    await sendAndWaitForAck(1);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let n = 2; n <= 5; n++) await sendAndWaitForAck(n);
    assert.ok(Deno.statSync(logFile).size > 0, "the last ones wait in the log");
    bob.kill("SIGKILL");
    await bob.waitForExit();
    raw.close();

    const again = await start();
    await again.send("/msg fast@k");
    assert.equal((await history(again, /\[dm\] fast@k: n\d/, 5)).length, 5);
    assert.equal(Deno.statSync(logFile).size, 0, "moved into the tables at start");
    // Sent again (their ACKs were lost, say): ACKed, not shown, not stored twice.
    const mark = again.mark();
    const rawAgain = await LineClient.connect(again.port);
    try {
      await rawAgain.ask({ type: "HELLO", peer_id: "fast@k", version: "1.0", features: ["ack"] });
      await rawAgain.send({
        type: "SEND",
        msg_id: counted(5),
        src: "fast@k",
        dst: "bob@k",
        payload: "n5",
      });
      assert.equal((await rawAgain.next())?.msg_id, counted(5));
    } finally {
      rawAgain.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(linesMatching(again, /\[dm\] fast@k: n5/, mark), []);
    assert.equal((await history(again, /\[dm\] fast@k: n\d/, 5)).length, 5);
  } finally {
    await e2e.close();
  }
});

Deno.test("a second peer on the same profile stops with a clear error and harms nothing", async () => {
  const e2e = new E2e();
  try {
    const dataDir = await e2e.tempDir();
    const first = await e2e.peer({ name: "dee", namespace: "l", dataDir });
    const second = new PeerProcess({ name: "dee", namespace: "l" }, dataDir);
    e2e.defer(() => second.close());
    const status = await second.waitForExit(30_000);
    assert.notEqual(status.code, 0);
    assert.match(second.stderr, /in use|another p2pchat peer/i);
    // Keeping no history does not make sharing the profile safe: the same key and name.
    const memoryOnly = new PeerProcess(
      { name: "dee", namespace: "l", args: ["--no-history"] },
      dataDir,
    );
    e2e.defer(() => memoryOnly.close());
    assert.notEqual((await memoryOnly.waitForExit(30_000)).code, 0);
    assert.match(memoryOnly.stderr, /another p2pchat peer/i);
    // The first one still works and keeps its history.
    await first.send("/add friend");
    await first.send("/msg friend@l still here");
    await first.waitForLine(/queued for friend@l/);
  } finally {
    await e2e.close();
  }
});
