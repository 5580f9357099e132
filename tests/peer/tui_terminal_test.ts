import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import { runTerminal, type TerminalOptions } from "../../peer/tui/terminal.ts";
import type { Command } from "../../peer/tui/commands.ts";
import { webCommand } from "../../peer/tui/web_command.ts";
import { FakePeerNode } from "../_fake_node.ts";

const encoder = new TextEncoder();

/** An input stream the test writes to, and the output collected as lines. */
function harness(
  node: FakePeerNode,
  options: Partial<Omit<TerminalOptions, "log" | "input" | "output">> = {},
) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  const chunks: string[] = [];
  const { log, lines: logLines } = memoryLogger("info");
  const originalSink = log.settings.sink;
  const done = runTerminal(node, {
    log,
    color: false,
    input,
    output: (text) => chunks.push(text),
    ...options,
    isTerminal: options.isTerminal ?? false,
  });
  return {
    log,
    logLines,
    originalSink,
    done,
    write: (text: string) => controller.enqueue(encoder.encode(text)),
    end: () => controller.close(),
    output: () => chunks.join(""),
    lines: () => chunks.join("").split("\n").filter((line) => line !== ""),
  };
}

/** Runs a script of input lines to EOF and returns the output lines. */
async function run(node: FakePeerNode, script: string[]): Promise<string[]> {
  const session = harness(node);
  session.write(script.map((line) => line + "\n").join(""));
  session.end();
  await session.done;
  return session.lines();
}

/** Waits (bounded) until `condition` holds, letting the session's promises run. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(condition(), "condition not reached");
}

function lobby(): FakePeerNode {
  const node = new FakePeerNode("alice", "lobby");
  node.addPeer("bob@lobby", {
    direction: "inbound",
    rtt: { lastMs: 12.4, smoothedMs: 11.6 },
    address: { hostname: "127.0.0.1", port: 5001 },
  });
  node.addPeer("carol@lobby", {
    state: "failed",
    direction: undefined,
    features: [],
    address: { hostname: "127.0.0.1", port: 5002 },
  });
  node.addPeer("dave@other", {
    direction: "outbound",
    features: ["ack"],
    address: { hostname: "127.0.0.1", port: 5003 },
  });
  return node;
}

Deno.test("runTerminal() without a terminal prints the /peers table, per scope", async () => {
  const lines = await run(lobby(), ["/peers", "/peers #other", "/peers #nobody", "/peers bad"]);
  assert.deepEqual(lines, [
    "PEER         STATE      DIR       RTT   SECURITY  ADDRESS",
    "bob@lobby    connected  inbound   12ms  -         127.0.0.1:5001",
    "carol@lobby  failed     -         -     -         127.0.0.1:5002",
    "dave@other   connected  outbound  -     -         127.0.0.1:5003",
    "PEER        STATE      DIR       RTT  SECURITY  ADDRESS",
    "dave@other  connected  outbound  -    -         127.0.0.1:5003",
    "no known peers in #nobody",
    'error: bad scope "bad": use * or #namespace',
  ]);
});

Deno.test("runTerminal() sends plain text as a PUB to our namespace at first", async () => {
  const node = lobby();
  const lines = await run(node, ["hello everyone"]);
  assert.deepEqual(node.published, [{ scope: "#lobby", text: "hello everyone" }]);
  assert.deepEqual(lines, ["reached 1 peer in #lobby (0 encrypted, 1 in clear): bob@lobby"]);
});

Deno.test("runTerminal() /msg reports delivery and makes the peer the conversation", async () => {
  const node = lobby();
  const lines = await run(node, ["/msg bob@lobby hi  bob", "and again", "/msg carol still there?"]);
  assert.deepEqual(node.sent, [
    { peerId: "bob@lobby", text: "hi  bob" },
    { peerId: "bob@lobby", text: "and again" },
    { peerId: "carol@lobby", text: "still there?" },
  ]);
  assert.deepEqual(lines, [
    "delivered to bob@lobby (12 ms)",
    "delivered to bob@lobby (12 ms)",
    "not delivered to carol@lobby: not_connected",
  ]);
});

Deno.test("runTerminal() /msg reports a delivery timeout", async () => {
  const node = lobby();
  node.sendMode = "timeout";
  assert.deepEqual(await run(node, ["/msg bob@lobby ping?"]), [
    "not delivered to bob@lobby: timeout",
  ]);
});

Deno.test("runTerminal() /pub says so when it reached nobody and switches the conversation", async () => {
  const node = lobby();
  const lines = await run(node, [
    "/pub #empty anyone?",
    "still nobody",
    "/pub * all",
    "/pub bob x",
  ]);
  assert.deepEqual(node.published.map((p) => p.scope), ["#empty", "#empty", "*"]);
  assert.deepEqual(lines, [
    "reached nobody in #empty: no connected peer in scope",
    "reached nobody in #empty: no connected peer in scope",
    "reached 2 peers in * (0 encrypted, 2 in clear): bob@lobby dave@other",
    'error: bad scope "bob": use * or #namespace',
  ]);
});

Deno.test("runTerminal() a room message for offline members says it waits for them", async () => {
  const node = lobby();
  node.publishWaiting = 2;
  const lines = await run(node, ["/pub #empty anyone?", "/pub * all"]);
  assert.deepEqual(lines, [
    "reached nobody in #empty now; 2 offline members get it when back (/cancel 1 stops it waiting)",
    "reached 2 peers in * (0 encrypted, 2 in clear): bob@lobby dave@other; " +
    "2 offline members get it when back (/cancel 2 stops it waiting)",
  ]);
});

Deno.test("runTerminal() /msg or /pub without text only changes the conversation", async () => {
  const node = lobby();
  const lines = await run(node, ["/msg bob", "to bob", "/pub *", "to all", "/status"]);
  assert.deepEqual(node.sent, [{ peerId: "bob@lobby", text: "to bob" }]);
  assert.deepEqual(node.published, [{ scope: "*", text: "to all" }]);
  assert.equal(lines[0], "conversation: bob@lobby");
  assert.equal(lines[2], "conversation: *");
  assert.ok(lines.includes("conversation: *") && lines.indexOf("conversation: *", 3) > 2);
});

Deno.test("runTerminal() /conn and /rtt list connected peers only", async () => {
  const lines = await run(lobby(), ["/conn", "/rtt"]);
  assert.deepEqual(lines, [
    "PEER        DIR       ADDRESS         ENCRYPTION  TRUST  FEATURES",
    "bob@lobby   inbound   127.0.0.1:5001  clear       -      ack,metrics",
    "dave@other  outbound  127.0.0.1:5003  clear       -      ack",
    "PEER        LAST  SMOOTHED",
    "bob@lobby   12ms  12ms",
    "dave@other  -     -",
  ]);
});

Deno.test("runTerminal() says so when there are no connections", async () => {
  const node = new FakePeerNode();
  assert.deepEqual(await run(node, ["/conn", "/rtt", "/peers"]), [
    "no connections",
    "no connections",
    "no known peers in *",
  ]);
});

Deno.test("runTerminal() /reconnect dials failed peers and prints how many", async () => {
  const node = lobby();
  const lines = await run(node, ["/reconnect", "/reconnect bob@lobby", "/reconnect @x"]);
  assert.deepEqual(node.reconnects, [undefined, "bob@lobby"]);
  assert.deepEqual(lines, [
    "reconnecting 1 peer",
    "reconnecting 0 peers",
    'error: bad peer "@x": use name@namespace or name',
  ]);
});

Deno.test("runTerminal() /log sets the log level and refuses unknown levels", async () => {
  const session = harness(lobby());
  session.write("/log debug\n/log loud\n/log\n");
  session.end();
  await session.done;
  assert.equal(session.log.settings.level, "debug");
  assert.deepEqual(session.lines(), [
    "log level: debug",
    'error: bad log level "loud": use one of debug, info, warn, error',
    "log level: debug",
  ]);
});

Deno.test("runTerminal() /status prints key: value lines", async () => {
  const node = lobby();
  node.setTracker({ reachable: false, lastError: "connection refused" });
  const lines = await run(node, ["/status"]);
  assert.deepEqual(lines.slice(0, 3), [
    "peer: alice@lobby",
    "listen: 127.0.0.1:4001",
    "public ip: 127.0.0.1",
  ]);
  assert.ok(lines.includes("tracker: 127.0.0.1:8080 unreachable"));
  assert.ok(lines.includes("tracker error: connection refused"));
  assert.ok(lines.includes("last register: -"));
  assert.ok(lines.includes("peers: 3 known, 2 connected"));
  assert.ok(lines.includes("conversation: #lobby"));
  assert.ok(lines.includes("log level: info"));
  assert.ok(lines.some((line) => /^uptime: \d+h\d\dm\d\ds$/.test(line)));
});

Deno.test("runTerminal() /status ends with the HTTP API's address and token file when it runs", async () => {
  const session = harness(lobby(), {
    status: () => ["http api: http://127.0.0.1:8700", "api token: /data/api-token"],
  });
  session.write("/status\n");
  session.end();
  await session.done;
  assert.deepEqual(session.lines().slice(-2), [
    "http api: http://127.0.0.1:8700",
    "api token: /data/api-token",
  ]);
});

Deno.test("runTerminal() answers unknown commands and wrong arguments with one error line", async () => {
  const lines = await run(lobby(), ["/frobnicate now", "/msg", "/conn extra", "/", "/help me"]);
  assert.deepEqual(lines, [
    'error: unknown command "/frobnicate" (try /help)',
    "error: usage: /msg PEER [TEXT]",
    "error: usage: /conn",
    'error: unknown command "/" (try /help)',
    "error: usage: /help",
  ]);
});

Deno.test("runTerminal() /help lists every command, including registered ones", async () => {
  const extra: Command = {
    name: "rooms",
    usage: "/rooms",
    summary: "list rooms",
    maxArgs: 0,
    run: (context) => context.print("room list"),
  };
  const session = harness(lobby(), { commands: [extra] });
  session.write("/help\n/rooms\n");
  session.end();
  await session.done;
  const lines = session.lines();
  for (
    const name of [
      "help",
      "peers",
      "msg",
      "pub",
      "conn",
      "rtt",
      "reconnect",
      "log",
      "status",
      "quit",
      "rooms",
    ]
  ) {
    assert.ok(lines.some((line) => line.startsWith(`/${name}`)), name);
  }
  // And how to send a text that starts with "/".
  assert.ok(lines.some((line) => line.startsWith("//TEXT") && line.includes("send /TEXT")));
  assert.equal(lines.at(-1), "room list");
});

Deno.test("runTerminal() prints a command's failure instead of crashing", async () => {
  const broken: Command = {
    name: "boom",
    usage: "/boom",
    summary: "fails",
    run: () => Promise.reject(new Error("kaput\x1b[2J")),
  };
  const session = harness(lobby(), { commands: [broken] });
  session.write("/boom\n/peers #other\n");
  session.end();
  await session.done;
  assert.equal(session.lines()[0], "error: /boom failed: kaput^[[2J");
  assert.equal(
    session.lines()[2],
    "dave@other  connected  outbound  -    -         127.0.0.1:5003",
  );
});

Deno.test("runTerminal() /quit resolves without reading further lines", async () => {
  const node = lobby();
  const session = harness(node);
  session.write("/quit\nnever sent\n");
  await session.done;
  assert.deepEqual(node.published, []);
  assert.equal(node.listenerCount, 0);
  assert.equal(node.stopped, false, "the caller stops the node");
});

Deno.test("runTerminal() prints events as they arrive and unsubscribes at end of input", async () => {
  const node = lobby();
  const session = harness(node);
  await until(() => node.listenerCount === 1);
  const at = new Date(2026, 0, 1, 8, 0, 1).getTime();
  node.emit({
    type: "message",
    kind: "direct",
    msgId: "1",
    from: "bob@lobby",
    to: "alice@lobby",
    text: "yo",
    at,
  });
  node.emit({ type: "peer", peerId: "dave@other", state: "stale", at });
  session.write("/conn ");
  session.write("x\n");
  session.end();
  await session.done;
  assert.equal(node.listenerCount, 0);
  assert.deepEqual(session.lines(), [
    "08:00:01 [dm] bob@lobby: yo",
    "08:00:01 -- peer dave@other stale",
    "error: usage: /conn",
  ]);
});

Deno.test("runTerminal() handles CRLF input and a last line without newline", async () => {
  const node = lobby();
  const session = harness(node);
  session.write("/peers #other\r\n/pub * tail");
  session.end();
  await session.done;
  assert.deepEqual(node.published, [{ scope: "*", text: "tail" }]);
});

Deno.test("runTerminal() in a terminal keeps typed text while a message arrives, then sends it", async () => {
  const node = lobby();
  const session = harness(node, { isTerminal: true });
  await until(() => session.output().includes("#lobby> "));
  session.write("hel");
  await until(() => session.output().endsWith("#lobby> hel"));
  node.emit({
    type: "message",
    kind: "pub",
    msgId: "1",
    from: "bob@lobby",
    to: "#lobby",
    text: "hi",
    at: new Date(2026, 0, 1, 10, 0, 0).getTime(),
  });
  assert.ok(
    session.output().endsWith("\r\x1b[2K10:00:00 [#lobby] bob@lobby: hi\r\n\r\x1b[2K#lobby> hel"),
  );
  session.write("lo\r");
  await until(() => node.published.length === 1);
  assert.deepEqual(node.published, [{ scope: "#lobby", text: "hello" }]);
  await until(() =>
    session.output().includes("reached 1 peer in #lobby (0 encrypted, 1 in clear): bob@lobby")
  );
  session.write("\x03");
  await session.done;
  assert.equal(node.listenerCount, 0);
});

Deno.test("runTerminal() in a terminal prints log lines above the prompt and restores the sink", async () => {
  const node = lobby();
  const session = harness(node, { isTerminal: true });
  const original = session.originalSink;
  await until(() => session.output().includes("#lobby> "));
  assert.notEqual(session.log.settings.sink, original);
  session.log.info("tracker answered");
  const segments = session.output().split("\r\x1b[2K");
  assert.equal(segments.at(-1), "#lobby> ");
  // The same shape as the notices: the time, "--", the level, the message.
  assert.match(segments.at(-2)!, /^\d\d:\d\d:\d\d -- info tracker answered\r\n$/);
  assert.deepEqual(session.logLines, []);
  session.write("\x04");
  await session.done;
  assert.equal(session.log.settings.sink, original);
  session.log.info("after");
  assert.equal(session.logLines.length, 1);
});

Deno.test("runTerminal() in a terminal quits on /quit while a send is still waiting", async () => {
  const node = lobby();
  node.sendMode = "manual";
  const session = harness(node, { isTerminal: true });
  session.write("/msg bob@lobby hi\r");
  await until(() => node.waitingSends === 1);
  session.write("/quit\r");
  await session.done;
  node.answer({ ok: true, msgId: "m1", roundTripMs: 5 });
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(!session.output().includes("delivered"));
});

Deno.test("runTerminal() in a terminal draws the input row once per read, however long the paste", async () => {
  const node = lobby();
  const session = harness(node, { isTerminal: true });
  await until(() => session.output().includes("#lobby> "));
  const rows = () => session.output().split("#lobby> ").length - 1;
  const before = rows();
  session.write("\x1b[200~" + "x".repeat(20_000) + "\x1b[201~");
  await until(() => rows() > before);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(rows(), before + 1);
  session.write("\r");
  await until(() => node.published.length === 1);
  assert.equal(node.published[0].text, "x".repeat(20_000));
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() in a terminal says so when a paste is longer than the input line holds", async () => {
  const node = lobby();
  const session = harness(node, { isTerminal: true, columns: () => 200 });
  // In reads of 4096 bytes, as a pseudo-terminal passes them on: told once, not per read.
  session.write("\x1b[200~");
  for (let i = 0; i < 10; i++) session.write("y".repeat(4096));
  session.write("\x1b[201~x");
  const told = "at most 32768 characters; what was typed or pasted past that was dropped";
  await until(() => session.output().includes(told));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(session.output().split(told).length, 2);
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() in a terminal completes with Tab and lists ambiguous matches", async () => {
  const node = lobby();
  node.addPeer("bobby@lobby");
  const session = harness(node, { isTerminal: true, rooms: () => ["games"] });
  session.write("/ms\t");
  await until(() => session.output().endsWith("#lobby> /msg "));
  session.write("b\t");
  await until(() => session.output().endsWith("#lobby> /msg bob"));
  session.write("\t");
  await until(() => session.output().includes("bob  bobby\r\n"));
  session.write("\x15/pub #g\t");
  await until(() => session.output().endsWith("#lobby> /pub #games "));
  session.write("\x03");
  await session.done;
});

Deno.test("Tab never puts a name with escape sequences on the input line", async () => {
  const node = new FakePeerNode("alice", "lobby");
  // The only peer, named to set the window title and paint the line red.
  node.addPeer("x\u001b]0;PWNED\u0007\u001b[41m@lobby");
  node.addPeer("eve@\u001b[2Jns");
  const session = harness(node, { isTerminal: true });
  session.write("/msg \t");
  session.write("x\t");
  session.write("\x15/pub #\t");
  session.write("hello");
  await until(() => session.output().endsWith("hello"));
  assert.ok(!session.output().includes("\u001b]0;"), JSON.stringify(session.output()));
  assert.ok(!session.output().includes("\u001b[41m"), JSON.stringify(session.output()));
  assert.ok(!session.output().includes("\u001b[2Jns"), JSON.stringify(session.output()));
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() in a terminal clears the screen on Ctrl-L and redraws the typed text", async () => {
  const session = harness(lobby(), { isTerminal: true });
  session.write("draft");
  await until(() => session.output().endsWith("#lobby> draft"));
  session.write("\x0c");
  await until(() => session.output().endsWith("\x1b[H\x1b[2J\r\x1b[2K#lobby> draft"));
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() in a terminal stamps your own lines with the time", async () => {
  const session = harness(lobby(), { isTerminal: true });
  session.write("/rtt\r");
  await until(() => /\d\d:\d\d:\d\d #lobby> \/rtt\r\n/.test(session.output()));
  session.write("\x03");
  await session.done;
});

/** A direct message from bob, as the node reports it. */
function directMessage(node: FakePeerNode): void {
  node.emit({
    type: "message",
    kind: "direct",
    msgId: "d1",
    from: "bob@lobby",
    to: "alice@lobby",
    text: "psst",
    at: Date.now(),
  });
}

Deno.test("runTerminal() in a terminal rings for a direct message only while the window is not focused", async () => {
  const node = lobby();
  const session = harness(node, { isTerminal: true });
  await until(() => session.output().includes("\x1b[?1004h"));
  directMessage(node);
  assert.ok(!session.output().includes("\x07"));
  session.write("\x1b[O");
  await new Promise((r) => setTimeout(r, 5));
  directMessage(node);
  assert.ok(session.output().endsWith("\x07"));
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() in a terminal sets the title instead, or nothing, as the option says", async () => {
  for (const notify of ["title", "off"] as const) {
    const node = lobby();
    const session = harness(node, { isTerminal: true, notify });
    session.write("\x1b[O");
    await new Promise((r) => setTimeout(r, 5));
    directMessage(node);
    const titled = session.output().includes("\x1b]2;p2pchat: message from bob@lobby\x07");
    assert.equal(titled, notify === "title");
    assert.ok(!session.output().includes("\x07") || notify === "title");
    session.write("\x1b[I");
    if (notify === "title") await until(() => session.output().endsWith("\x1b]2;\x07"));
    session.write("\x03");
    await session.done;
  }
});

Deno.test("runTerminal() in a terminal redraws the input row after a resize, erasing its re-wrapped rows", async () => {
  let columns = 80;
  let resize = () => {};
  const session = harness(lobby(), {
    isTerminal: true,
    columns: () => columns,
    onResize: (listener) => {
      resize = listener;
      return () => {
        resize = () => {};
      };
    },
  });
  session.write("z".repeat(60));
  await until(() => session.output().endsWith("z".repeat(60)));
  columns = 30;
  resize();
  // The cursor was at column 68: on 30 columns that is two rows below the row's start.
  assert.ok(session.output().endsWith("\r\x1b[2A\x1b[J\r\x1b[2K#lobby> " + "z".repeat(21)));
  session.write("\x03");
  await session.done;
});

Deno.test("runTerminal() /msg to an unknown or offline peer says why and keeps the conversation", async () => {
  const cases = [
    ["unknown_peer", true, "the tracker lists no such peer (/peers shows the known ones)"],
    [
      "unknown_peer",
      false,
      "no such peer is known, and the tracker is unreachable to look it up (/status)",
    ],
    ["offline", true, "that account is not online"],
  ] as const;
  for (const [reason, reachable, why] of cases) {
    const node = lobby();
    node.unknownReason = reason;
    node.setTracker({ reachable });
    const lines = await run(node, ["/msg nobody hello", "still here"]);
    assert.deepEqual(lines.slice(0, 2), [
      `not delivered to nobody@lobby: ${reason}: ${why}`,
      "conversation stays #lobby",
    ]);
    assert.deepEqual(node.published, [{ scope: "#lobby", text: "still here" }]);
  }
});

Deno.test("runTerminal() /msg to a mistyped name suggests the peer meant, by name", async () => {
  const lines = await run(lobby(), ["/msg bobb hello", "/msg nobody hello"]);
  assert.equal(
    lines[0],
    "not delivered to bobb@lobby: unknown_peer: the tracker lists no such peer (did you mean bob@lobby?) " +
      "(/peers shows the known ones)",
  );
  assert.ok(lines.includes(
    "not delivered to nobody@lobby: unknown_peer: the tracker lists no such peer (/peers shows the known ones)",
  ));
});

Deno.test("runTerminal() /msg to this peer itself is refused before anything is sent", async () => {
  const node = lobby();
  const lines = await run(node, [`/msg ${node.peerId} hello`, "still here"]);
  assert.ok(lines[0].includes("is this peer: /msg another peer"), lines[0]);
  assert.deepEqual(node.sent, []);
  assert.deepEqual(node.published, [{ scope: "#lobby", text: "still here" }]);
});

Deno.test("runTerminal() says what to do when another live peer uses our name", async () => {
  const node = lobby();
  const session = harness(node);
  node.emit({
    type: "name_in_use",
    peerId: "alice@lobby",
    address: { hostname: "127.0.0.1", port: 4100 },
    at: new Date(2026, 0, 1, 9, 0, 0).getTime(),
  });
  session.end();
  await session.done;
  assert.deepEqual(session.lines(), [
    "09:00:00 -- another peer already uses the name alice@lobby (at 127.0.0.1:4100): " +
    "the others refuse our connections; /quit and start again with another --name",
  ]);
});

Deno.test("runTerminal() refuses a text too long for one protocol line instead of sending it", async () => {
  const node = lobby();
  const long = "x".repeat(32_760);
  const lines = await run(node, [`/msg bob ${long}`, `/pub * ${long}`]);
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.match(
      line,
      /^error: not sent: Text of 32760 characters makes a \d+-byte line; the limit is 32768; send it in parts$/,
    );
  }
  assert.deepEqual([node.sent, node.published], [[], []]);
});

Deno.test("runTerminal() /web prints a new sign-in link, or says how to get the web chat", async () => {
  let made = 0;
  const withWeb = harness(lobby(), {
    commands: [webCommand(() => `http://127.0.0.1:8765/?token=link${++made}`)],
  });
  withWeb.write("/web\n/web\n");
  withWeb.end();
  await withWeb.done;
  assert.deepEqual(withWeb.lines().filter((line) => line.includes("web chat")), [
    "web chat: open http://127.0.0.1:8765/?token=link1",
    "web chat: open http://127.0.0.1:8765/?token=link2",
  ]);
  const without = harness(lobby(), { commands: [webCommand(undefined)] });
  without.write("/web\n");
  without.end();
  await without.done;
  assert.ok(
    without.lines().includes("error: no web chat: start the peer with --web (or --http PORT)"),
  );
});
