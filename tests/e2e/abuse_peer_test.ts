/**
 * Floods and hostile ids against a real peer process: made-up HELLO ids from one address,
 * connections that never say HELLO, and peer_ids built to forge log lines or the `FROM: TEXT`
 * output. The flood comes from 127.0.0.5/6 (a different address than the real peers).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { E2e, pollUntil } from "../_peer_process.ts";

/** A raw client from `localAddress` that writes lines and keeps what it receives. */
function rawPeer(port: number, localAddress: string) {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  let received = "";
  let closed = false;
  socket.on("data", (data) => received += String(data));
  socket.on("error", () => {});
  socket.on("close", () => closed = true);
  return {
    send: (message: Record<string, unknown>) => socket.write(JSON.stringify(message) + "\n"),
    get received() {
      return received;
    },
    get closed() {
      return closed;
    },
    destroy: () => void socket.destroy(),
  };
}

const hello = (peerId: string) => ({
  type: "HELLO",
  peer_id: peerId,
  version: "1.0",
  features: ["ack"],
  ttl: 1,
});

Deno.test("a flood of made-up HELLO ids holds a bounded share and a real peer still connects", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const ann = await e2e.peer({ name: "ann", namespace: "ns", trackerPort: tracker.port });
    // Before: 1,024 made-up ids kept every slot, and each one printed "connected" and "gone".
    const flood: ReturnType<typeof rawPeer>[] = [];
    e2e.defer(() => flood.forEach((client) => client.destroy()));
    for (let index = 0; index < 80; index++) {
      const client = rawPeer(ann.port, "127.0.0.5");
      flood.push(client);
      client.send(hello(`fake${index}@ns`));
      await pollUntil(
        "the HELLO answered",
        () => client.received.includes("HELLO") ? true : undefined,
        5_000,
        10,
      );
    }
    const answered = {
      ok: flood.filter((client) => client.received.includes('"HELLO_OK"')).length,
      rejected: flood.filter((client) => client.received.includes('"HELLO_REJECT"')),
    };
    assert.equal(answered.ok, 32, "one address holds at most 32 unknown-peer connections");
    assert.ok(answered.rejected.every((client) => client.received.includes('"busy"')));

    // A peer the tracker lists is known: it connects whatever the flood holds.
    const bob = await e2e.peer({ name: "bob", namespace: "ns", trackerPort: tracker.port });
    await bob.waitForLine(/-- peer ann@ns connected/);
    const mark = bob.mark();
    const sent = await ann.send("/msg bob hello");
    await bob.waitForLine(/\[dm\] ann@ns: hello$/, undefined, mark);
    await ann.waitForLine(/delivered to bob@ns/, undefined, sent);

    // Notices stay readable: at most 10 per 5 s window, then one summary line.
    const notices = ann.lines.filter((line) => /-- peer fake\d+@ns/.test(line));
    assert.ok(notices.length <= 10, `${notices.length} notices`);
    await ann.waitForLine(/-- \d+ more peer notices \(\d+ connected/);
  } finally {
    await e2e.close();
  }
});

Deno.test("connections that never say HELLO get a bounded share and are closed at the deadline", async () => {
  const e2e = new E2e();
  try {
    const ann = await e2e.peer({ name: "ann", namespace: "ns" });
    const silent = Array.from({ length: 30 }, () => rawPeer(ann.port, "127.0.0.6"));
    e2e.defer(() => silent.forEach((client) => client.destroy()));
    // 16 handshake slots per address: the others are closed at once.
    const early = await pollUntil(
      "the extra connections closed",
      () => {
        const closed = silent.filter((client) => client.closed).length;
        return closed >= 14 ? closed : undefined;
      },
      3_000,
      50,
    );
    assert.equal(early, 14);
    // Before: a silent connection held its slot for 10 s; now the handshake deadline is 5 s.
    const started = Date.now();
    await pollUntil(
      "every silent connection closed",
      () => silent.every((client) => client.closed) ? true : undefined,
      8_000,
      100,
    );
    assert.ok(Date.now() - started < 6_500);
  } finally {
    await e2e.close();
  }
});

Deno.test("peer_ids with control characters are refused; a colon in one cannot forge the FROM: TEXT output", async () => {
  const e2e = new E2e();
  try {
    const ann = await e2e.peer({ name: "ann", namespace: "ns" });
    // Printable, but shaped to pass for another sender in "FROM: TEXT": shown quoted.
    const colon = "alice@default: I changed my number";
    const client = rawPeer(ann.port, "127.0.0.7");
    e2e.defer(() => client.destroy());
    client.send(hello(colon));
    await pollUntil("HELLO_OK", () => client.received.includes("HELLO_OK") ? true : undefined);
    client.send({ type: "SEND", msg_id: "m0", src: colon, dst: "ann@ns", payload: "text 0" });
    await pollUntil("ACK", () => client.received.includes('"m0"') ? true : undefined);
    const { line } = await ann.waitForLine(/: text 0$/);
    const match = /^(\d\d:\d\d:\d\d) \[dm\] ("(?:[^"\\]|\\.)*"|[^\s:"]+): (.*)$/.exec(line);
    assert.ok(match, line);
    assert.equal(JSON.parse(match[2]), colon);
    // A NUL would make another peer's id once stored (SQLite keeps text up to it), a lone
    // surrogate too (stored as U+FFFD), an escape or a newline would forge terminal and log
    // output, a bidirectional override makes a name read as another: no HELLO_OK, no message.
    const refused = [
      "evil\x1b[2J@ns",
      "x\n2026-01-01T00:00:00.000Z INFO  [Router] Connected peer=alice@default",
      "ann@ns\x00x",
      "bob\ud800@ns",
      "\u202ebob@ns",
    ];
    for (const [index, peerId] of refused.entries()) {
      const rogue = rawPeer(ann.port, "127.0.0.7");
      e2e.defer(() => rogue.destroy());
      rogue.send(hello(peerId));
      rogue.send({
        type: "SEND",
        msg_id: `r${index}`,
        src: peerId,
        dst: "ann@ns",
        payload: "rogue",
      });
      await pollUntil("closed", () => rogue.closed ? true : undefined);
      assert.ok(!rogue.received.includes("HELLO_OK"), JSON.stringify(peerId));
    }
    assert.ok(
      !ann.lines.some((line) => line.includes("rogue")),
      "no refused id's message is shown",
    );
    // deno-lint-ignore no-control-regex -- looking for raw control bytes
    assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(ann.stderr), "no raw control byte in the log");
    assert.ok(!ann.stderr.split("\n").some((line) => line.startsWith("2026-01-01T")));
  } finally {
    await e2e.close();
  }
});
