/**
 * End-to-end test of the peer's terminal UI in a real pseudo-terminal: util-linux `script`
 * runs the peer process on a pty, the test types into it and reads the screen output.
 */
import assert from "node:assert/strict";
import { E2e, type PeerProcess, WAIT_MS } from "../_peer_process.ts";

/** Colour sequences (SGR): what NO_COLOR forbids. Cursor movement and erasing stay allowed. */
// deno-lint-ignore no-control-regex -- matching escape sequences is the point
const SGR = /\x1b\[[0-9;]*m/;

/** The output as the eye reads it: escape sequences removed. */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex -- matching escape sequences is the point
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

/** Waits until the plain text of `peer`'s output from character `from` on matches `pattern`. */
function waitForScreen(peer: PeerProcess, pattern: RegExp, from = 0): Promise<RegExpExecArray> {
  return peer.waitUntil(`screen text matching ${pattern}`, () => {
    return pattern.exec(plain(peer.output.slice(from))) ?? undefined;
  }, WAIT_MS);
}

Deno.test("in a terminal, a message arriving while typing keeps the typed text, and /quit says BYE", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const [b, t, u] = await e2e.peers([
      { name: "b", namespace: "tty", trackerPort: tracker.port },
      {
        name: "t",
        namespace: "tty",
        trackerPort: tracker.port,
        terminal: true,
        env: { NO_COLOR: undefined },
      },
      {
        name: "u",
        namespace: "tty",
        trackerPort: tracker.port,
        terminal: true,
        env: { NO_COLOR: "1" },
      },
    ]);
    await b.waitForLine(/-- peer t@tty connected/);
    await b.waitForLine(/-- peer u@tty connected/);
    await waitForScreen(t, /-- peer b@tty connected/);
    await waitForScreen(u, /-- peer b@tty connected/);

    // t: a partly typed line survives a message printed above it.
    let from = t.output.length;
    await t.write("half typ");
    await waitForScreen(t, /#tty> half typ/, from);
    from = t.output.length;
    await b.send("/msg t@tty incoming while typing");
    const shown = await waitForScreen(
      t,
      /\[dm\] b@tty: incoming while typing\r*\n[^\n]*#tty> half typ/,
      from,
    );
    assert.ok(shown);
    assert.match(t.output.slice(from), SGR, "colour expected on a terminal without NO_COLOR");
    await t.write("ed\r");
    await b.waitForLine(/ \[#tty\] t@tty: half typed$/);

    // u: NO_COLOR leaves no colour sequence anywhere, and Ctrl-D on an empty line quits.
    await b.send("/msg u@tty plain please");
    await waitForScreen(u, /\[dm\] b@tty: plain please/);

    for (const [peer, keys] of [[t, "/quit\r"], [u, "\x04"]] as const) {
      const mark = b.mark();
      await peer.write(keys);
      assert.equal((await peer.waitForExit()).code, 0);
      await b.waitForLine(new RegExp(`-- peer ${peer.peerId} gone: `), WAIT_MS, mark);
    }
    assert.doesNotMatch(u.output, SGR);
  } finally {
    await e2e.close();
  }
});

Deno.test("in a terminal, a 100,000-character paste is taken at once and a message arriving meanwhile is ACKed and shown", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const [b, t] = await e2e.peers([
      { name: "b", namespace: "paste", trackerPort: tracker.port },
      { name: "t", namespace: "paste", trackerPort: tracker.port, terminal: true },
    ]);
    await b.waitForLine(/-- peer t@paste connected/);
    await waitForScreen(t, /-- peer b@paste connected/);
    const from = t.output.length;
    const pasted = "p".repeat(100_000);
    // The paste goes in while b's message is on its way.
    const writing = t.write(`\x1b[200~${pasted}\x1b[201~`);
    const mark = await b.send("/msg t@paste during the paste");
    await writing;
    await b.waitForLine(/^delivered to t@paste \(\d+ ms\)$/, WAIT_MS, mark);
    await waitForScreen(t, /\[dm\] b@paste: during the paste/, from);
    // The line holds its first 32768 characters; the user is told the rest was dropped.
    await waitForScreen(t, /holds at most 32768 characters;/, from);
    await t.write("\x15/quit\r");
    assert.equal((await t.waitForExit()).code, 0);
  } finally {
    await e2e.close();
  }
});
