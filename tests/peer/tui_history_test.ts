/**
 * The terminal UI over the message store: history at start and on switching, /history and
 * paging, /search, /conversations, marks and state notices of your own messages, the outbox,
 * contacts, strangers and storage warnings. Driven as a user would: input lines in, screen out.
 */
import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import type { SendResult, StoredMessage } from "../../peer/api.ts";
import { complete } from "../../peer/tui/completion.ts";
import { createStyle } from "../../peer/tui/format.ts";
import { formatStamp, stateMark } from "../../peer/tui/history_format.ts";
import { KeyDecoder } from "../../peer/tui/keys.ts";
import { CLEAR_LINE } from "../../peer/tui/screen.ts";
import { runTerminal, type TerminalOptions } from "../../peer/tui/terminal.ts";
import { FakeHistory } from "../_fake_history.ts";
import { FakePeerNode } from "../_fake_node.ts";

const encoder = new TextEncoder();
const plain = createStyle(false);

/** A time of today (so that lines show the time alone). */
function today(hours: number, minutes = 0, seconds = 0): number {
  const date = new Date();
  date.setHours(hours, minutes, seconds, 0);
  return date.getTime();
}

/** A node whose sends answer what the test sets (e.g. queued), with a fake history. */
class StoreNode extends FakePeerNode {
  readonly store = new FakeHistory();
  /** When set, every send answers this. */
  answerWith?: SendResult;

  constructor() {
    super("alice", "lobby");
    this.history = this.store;
    this.addPeer("bob@lobby");
  }

  override send(peerId: string, text: string): Promise<SendResult> {
    if (!this.answerWith) return super.send(peerId, text);
    this.sent.push({ peerId, text });
    return Promise.resolve(this.answerWith);
  }
}

/** Tells the UI that `stored`, a direct message to alice, arrived (by default from a stranger). */
function directArrived(node: StoreNode, stored: StoredMessage, stranger = true): void {
  stored.stranger = stranger;
  node.emit({
    type: "message",
    kind: "direct",
    msgId: stored.msgId,
    from: stored.from,
    to: "alice@lobby",
    text: stored.text,
    at: stored.at,
    stored,
  });
}

/** The UI over an input the test writes to; `output()` is everything printed so far. */
function start(
  node: FakePeerNode,
  isTerminal: boolean,
  options: Partial<TerminalOptions> = {},
) {
  const printed: string[] = [];
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (controller) => void (feed = controller) });
  const done = runTerminal(node, {
    log: memoryLogger().log,
    color: false,
    isTerminal,
    input,
    output: (text) => printed.push(text),
    columns: () => 300,
    ...options,
  });
  return {
    done,
    output: () => printed.join(""),
    /** The lines printed above the prompt (interactive) or output lines (pipe). */
    lines: () =>
      printed.join("").split(/\r?\n/).map((line) => line.split(CLEAR_LINE).at(-1)!)
        .filter((line) => line !== ""),
    write: (text: string) => feed.enqueue(encoder.encode(text)),
    end: () => feed.close(),
  };
}

/** Runs input lines without a terminal to their end and returns the output lines. */
async function pipe(node: FakePeerNode, script: string[]): Promise<string[]> {
  const ui = start(node, false);
  ui.write(script.map((line) => line + "\n").join(""));
  ui.end();
  await ui.done;
  return ui.lines();
}

/** Waits (bounded) until `condition` holds, letting the session's promises run. */
async function until(condition: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(condition(), `${what} not reached`);
}

/** Lets pending promises and microtasks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** `count` messages in #lobby from bob, at 08:00:00, 08:00:01 ... today. */
function lobbyLines(store: FakeHistory, count: number, state: "delivered" | "read" = "read") {
  for (let i = 0; i < count; i++) {
    store.add({
      conversation: "#lobby",
      from: "bob@lobby",
      text: `line ${i + 1}`,
      at: today(8, 0, i),
      state,
    });
  }
}

Deno.test("the terminal shows the current conversation's last 20 lines at start, then live ones", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 25);
  node.store.add({ conversation: "bob@lobby", text: "another conversation", at: today(9) });
  const ui = start(node, true);
  await until(() => ui.output().includes("-- history of #lobby"));
  node.emit({
    type: "message",
    kind: "pub",
    msgId: "live",
    from: "bob@lobby",
    to: "#lobby",
    text: "fresh",
    at: today(10),
  });
  await until(() => ui.output().includes("fresh"));
  const lines = ui.lines();
  const first = lines.indexOf("08:00:05 [#lobby] bob@lobby: line 6");
  assert.ok(first >= 0, lines.join("\n"));
  assert.deepEqual(lines.slice(first, first + 23), [
    ...Array.from(
      { length: 20 },
      (_, i) => `08:00:${String(i + 5).padStart(2, "0")} [#lobby] bob@lobby: line ${i + 6}`,
    ),
    "-- history of #lobby: 20 messages; older: PageUp --",
    "-- unread elsewhere: bob@lobby 1 (/conversations) --",
    "10:00:00 [#lobby] bob@lobby: fresh",
  ]);
  assert.ok(!ui.output().includes("another conversation"));
  // The prompt is drawn again after the history, ready for typing.
  assert.ok(ui.output().endsWith("#lobby> "));
  ui.write("\x03");
  await ui.done;
});

Deno.test("the terminal marks unread lines and reads the conversation it opens", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 2, "read");
  lobbyLines(node.store, 3, "delivered");
  const ui = start(node, true);
  await until(() => ui.output().includes("-- history of #lobby"));
  const lines = ui.lines();
  const divider = lines.indexOf("-- 3 unread --");
  assert.equal(lines[divider - 1], "08:00:01 [#lobby] bob@lobby: line 2");
  assert.equal(lines[divider + 1], "08:00:00 [#lobby] bob@lobby: line 1");
  assert.equal(node.store.conversations()[0].unread, 0);
  ui.write("\x03");
  await ui.done;
});

Deno.test("at start the terminal says which other conversations have unread messages", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 2, "delivered");
  node.store.add({ conversation: "bob@lobby", text: "are you there?" });
  node.store.add({ conversation: "bob@lobby", text: "hello?" });
  node.store.add({ conversation: "#games", text: "gg", from: "carol@lobby" });
  node.store.add({ conversation: "dan@lobby", text: "seen", state: "read" });
  // A name made to look like more entries is one quoted token.
  node.store.add({ conversation: "mal 40, x@lobby", text: "hi" });
  const ui = start(node, true);
  await until(() => ui.output().includes("unread elsewhere"));
  assert.ok(
    ui.lines().includes(
      '-- unread elsewhere: bob@lobby 2, "mal 40, x@lobby" 1, #games 1 (/conversations) --',
    ),
    ui.lines().join("\n"),
  );
  ui.write("\x03");
  await ui.done;
});

Deno.test("the unread divider counts the unread lines above the shown ones too", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 45, "delivered");
  const ui = start(node, true);
  await until(() => ui.output().includes("-- history of #lobby"));
  const lines = ui.lines();
  const divider = lines.indexOf("-- 45 unread (25 above: PageUp) --");
  assert.ok(divider >= 0, lines.join("\n"));
  assert.equal(lines.filter((line) => line.includes("[#lobby]")).length, 20);
  ui.write("\x03");
  await ui.done;
});

Deno.test("the terminal shows nothing of history when the conversation is empty or there is no store", async () => {
  for (const node of [new StoreNode(), new FakePeerNode()]) {
    const ui = start(node, true);
    await until(() => ui.output().includes("#lobby> "));
    await settle();
    assert.ok(!ui.output().includes("history"), ui.output());
    ui.write("\x03");
    await ui.done;
  }
});

Deno.test("/msg PEER TEXT to a conversation not open yet shows its history without the new message", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", text: "earlier", at: today(7) });
  // The fake node stores what it sends, as the messenger does, before the switch shows history.
  const send = node.send.bind(node);
  node.send = (peerId, text) => {
    node.store.add({ conversation: peerId, text, outgoing: true, state: "sent" });
    return send(peerId, text);
  };
  const ui = start(node, true);
  ui.write("/msg bob just now\r");
  await until(() => ui.output().includes("delivered to bob@lobby"));
  const lines = ui.lines();
  const at = lines.indexOf("-- history of bob@lobby: 1 message --");
  assert.ok(at > 0, lines.join("\n"));
  assert.ok(lines[at - 1].endsWith("[dm] bob@lobby: earlier"), lines.join("\n"));
  assert.ok(!lines.some((line) => line.includes("[dm] alice@lobby: just now")), lines.join("\n"));
  ui.write("\x03");
  await ui.done;
});

Deno.test("a room member who was offline getting a room message is told, with who still waits", async () => {
  const node = new StoreNode();
  const message = outgoing(node, "#team", "meeting at 10", "sent", {
    kind: "pub",
    pendingFor: ["dave"],
    at: today(9),
  });
  const lunch = outgoing(node, "#team", "lunch?", "sent", {
    kind: "pub",
    pendingFor: ["dave"],
    at: today(9, 30),
  });
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  // Carol is back and gets both at once: one line.
  for (const got of [message, lunch]) {
    node.emit({ type: "message_state", message: { ...got }, at: today(11), member: "carol@lobby" });
  }
  await settle();
  node.emit({
    type: "message_state",
    message: { ...message, pendingFor: [] },
    at: today(11, 5),
    member: "dave@lobby",
  });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    '11:00:00 -- ✓✓ delivered to carol@lobby in #team: "lunch?" and 1 earlier (1 still waiting)',
    '11:05:00 -- ✓✓ delivered to dave@lobby in #team: "meeting at 10"',
  ]);
});

Deno.test("a message sent elsewhere (the web chat, the API) into the open conversation is shown", async () => {
  const node = new StoreNode();
  const ui = start(node, true);
  ui.write("/msg bob\r");
  await until(() => ui.output().includes("conversation: bob@lobby"));
  await settle();
  const added = (conversation: string, text: string) =>
    node.emit({
      type: "message_added",
      message: outgoing(node, conversation, text, "sent", { at: today(11) }),
      at: today(11),
    });
  added("bob@lobby", "from the web chat");
  added("carol@lobby", "elsewhere entirely");
  // Typed here: stored and told as the messenger does, and the send's own lines say it.
  const send = node.send.bind(node);
  node.send = (peerId, text) => {
    added(peerId, text);
    return send(peerId, text);
  };
  ui.write("typed here\r");
  await until(() => ui.lines().some((line) => line.startsWith("delivered to bob@lobby")));
  const lines = ui.lines();
  assert.ok(lines.includes("11:00:00 [dm] alice@lobby: from the web chat  ✓"), lines.join("\n"));
  assert.ok(!lines.some((line) => line.includes("elsewhere entirely")), lines.join("\n"));
  assert.ok(!lines.some((line) => line.includes("[dm] alice@lobby: typed here")), lines.join("\n"));
  ui.write("\x03");
  await ui.done;
});

Deno.test("switching conversation shows its last lines once, and reads it", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", text: "hi alice", at: today(7) });
  node.store.add({ conversation: "bob@lobby", text: "hi bob", outgoing: true, at: today(7, 1) });
  const ui = start(node, true);
  ui.write("/msg bob\r");
  await until(() => ui.output().includes("-- history of bob@lobby"));
  const lines = ui.lines();
  const at = lines.indexOf("conversation: bob@lobby");
  assert.deepEqual(lines.slice(at, at + 5), [
    "conversation: bob@lobby",
    "-- 1 unread --",
    "07:00:00 [dm] bob@lobby: hi alice",
    "07:01:00 [dm] alice@lobby: hi bob  ✓✓",
    "-- history of bob@lobby: 2 messages --",
  ]);
  assert.equal(node.store.messages[0].state, "read");
  // Back and forth: the lines were shown already, and live lines keep the view complete.
  ui.write("/pub #lobby\r/msg bob\r");
  await until(() => ui.lines().filter((line) => line === "conversation: bob@lobby").length === 2);
  await settle();
  assert.equal(ui.output().split("-- history of bob@lobby").length, 2);
  ui.write("\x03");
  await ui.done;
});

Deno.test("a pipe gets no history by itself: only /history, which counts lines and reads the conversation", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 30, "delivered");
  const lines = await pipe(node, [
    "/history 3",
    "/history",
    "/history 0",
    "/history 501",
    "/history x",
  ]);
  assert.deepEqual(lines.slice(0, 5), [
    "-- 30 unread (27 above: /history N) --",
    "08:00:27 [#lobby] bob@lobby: line 28",
    "08:00:28 [#lobby] bob@lobby: line 29",
    "08:00:29 [#lobby] bob@lobby: line 30",
    "-- history of #lobby: 3 messages; older: /history N --",
  ]);
  // Opening read the whole conversation: /history without a count shows 20 lines, none unread.
  assert.equal(lines[5], "08:00:10 [#lobby] bob@lobby: line 11");
  assert.equal(lines[25], "-- history of #lobby: 20 messages; older: /history N --");
  assert.equal(lines.filter((line) => line.includes("[#lobby]")).length, 3 + 20);
  assert.deepEqual(lines.slice(-3), [
    'error: bad count "0": use a number from 1 to 500',
    'error: bad count "501": use a number from 1 to 500',
    'error: bad count "x": use a number from 1 to 500',
  ]);
  assert.equal(node.store.conversations()[0].unread, 0);
});

Deno.test("/history says so when the conversation is empty, or when the peer keeps no store", async () => {
  assert.deepEqual(await pipe(new StoreNode(), ["/history"]), ["no messages in #lobby yet"]);
  const bare = new FakePeerNode();
  for (const command of ["/history", "/search x", "/convs", "/queue", "/contacts", "/add bob"]) {
    assert.deepEqual(await pipe(bare, [command]), [
      "error: this peer keeps no message store: no history, outbox or contacts",
    ], command);
  }
});

Deno.test("history lines older than today carry the date; escapes and marks are kept", async () => {
  const node = new StoreNode();
  const old = new Date(2020, 4, 6, 7, 8, 9).getTime();
  const conversation = "bob@lobby";
  node.store.add({ conversation, text: "old \x1b[2J news", at: old });
  const states: [StoredMessage["state"], string | undefined][] = [
    ["queued", undefined],
    ["sent", undefined],
    ["delivered", undefined],
    ["read", undefined],
    ["failed", "expired"],
  ];
  for (const [state, reason] of states) {
    node.store.add({ conversation, text: state, outgoing: true, state, reason, at: today(9) });
  }
  const lines = await pipe(node, ["/msg bob", "/history"]);
  assert.deepEqual(lines.slice(1, 8), [
    "-- 1 unread --",
    "2020-05-06 07:08:09 [dm] bob@lobby: old ^[[2J news",
    "09:00:00 [dm] alice@lobby: queued  ·",
    "09:00:00 [dm] alice@lobby: sent  ✓",
    "09:00:00 [dm] alice@lobby: delivered  ✓✓",
    "09:00:00 [dm] alice@lobby: read  ✓✓ read",
    "09:00:00 [dm] alice@lobby: failed  ✗ expired",
  ]);
});

Deno.test("stateMark() colours a read mark as good and a failure as an error", () => {
  const color = createStyle(true);
  const base = { outgoing: true, kind: "direct", conversation: "bob@lobby" } as StoredMessage;
  assert.equal(stateMark({ ...base, state: "read" }, color), "\x1b[32m✓✓ read\x1b[0m");
  assert.equal(
    stateMark({ ...base, state: "failed", reason: "refused\x07" }, color),
    "\x1b[31m✗ refused^G\x1b[0m",
  );
  assert.equal(stateMark({ ...base, outgoing: false, state: "delivered" }, color), "");
  assert.equal(
    stateMark({ ...base, kind: "pub", state: "sent", pendingFor: ["a@x", "b@x"] }, plain),
    "✓ (2 waiting)",
  );
  assert.equal(formatStamp(today(0, 0, 1), Date.now()), "00:00:01");
});

Deno.test("PageUp prints older pages above the prompt and PageDown comes back, the typed text intact", async () => {
  const node = new StoreNode();
  lobbyLines(node.store, 45);
  const ui = start(node, true);
  await until(() => ui.output().includes("-- history of #lobby"));
  ui.write("draft");
  await until(() => ui.output().endsWith("#lobby> draft"));
  ui.write("\x1b[5~");
  await until(() => ui.output().includes("older messages"));
  assert.ok(ui.output().endsWith("\r\x1b[2K#lobby> draft"), "the input row is redrawn as it was");
  ui.write("\x1b[5~");
  await until(() => ui.output().includes("the first messages"));
  ui.write("\x1b[5~");
  await until(() => ui.output().includes("no older messages"));
  ui.write("\x1b[6~");
  await until(() => ui.output().includes("newer messages"));
  ui.write("\x1b[6~\x1b[6~");
  await until(() => ui.output().includes("no newer messages"));
  const lines = ui.lines();
  const older = lines.findIndex((line) => line.startsWith("-- #lobby: older messages"));
  assert.deepEqual(lines.slice(older, older + 3), [
    "-- #lobby: older messages, from 08:00:05 --",
    "08:00:05 [#lobby] bob@lobby: line 6",
    "08:00:06 [#lobby] bob@lobby: line 7",
  ]);
  assert.equal(lines[older + 20], "08:00:24 [#lobby] bob@lobby: line 25");
  const first = lines.indexOf("-- #lobby: the first messages, from 08:00:00 --");
  assert.deepEqual(lines.slice(first + 1, first + 6).map((line) => line.slice(-6)), [
    "line 1",
    "line 2",
    "line 3",
    "line 4",
    "line 5",
  ]);
  assert.equal(lines[first + 6], "-- no older messages in #lobby --");
  assert.equal(lines[first + 7], "-- #lobby: newer messages, from 08:00:05 --");
  assert.ok(lines.includes("-- #lobby: the newest messages, from 08:00:25 --"));
  assert.equal(lines.at(-2), "-- #lobby: no newer messages, this is the present --");
  // The draft was never sent or lost.
  assert.ok(ui.output().endsWith("#lobby> draft"));
  assert.deepEqual(node.published, []);
  ui.write("\x03");
  await ui.done;
});

Deno.test("KeyDecoder.push() reads PageUp and PageDown", () => {
  const keys = new KeyDecoder().push(encoder.encode("\x1b[5~\x1b[6~"));
  assert.deepEqual(keys, [{ name: "page-up" }, { name: "page-down" }]);
});

Deno.test("/search lists hits across conversations, newest first, with time, conversation and sender", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", text: "Lunch at noon?", at: today(8) });
  node.store.add({ conversation: "#games", from: "carol@lobby", text: "no lunch", at: today(9) });
  outgoing(node, "bob@lobby", "lunch it is", "read", { at: today(9, 30) });
  node.store.add({ conversation: "#lobby", from: "dan@lobby", text: "dinner", at: today(10) });
  const lines = await pipe(node, ["/search LUNCH", "/search pizza", "/search 50%_off"]);
  assert.deepEqual(lines, [
    '3 messages hold "LUNCH", newest first:',
    "09:30:00 [bob@lobby] alice@lobby: lunch it is  ✓✓ read",
    "09:00:00 [#games] carol@lobby: no lunch",
    "08:00:00 [bob@lobby] bob@lobby: Lunch at noon?",
    'no messages hold "pizza"',
    'no messages hold "50%_off"',
  ]);
});

Deno.test("/search says when more messages match than it shows", async () => {
  const node = new StoreNode();
  for (let i = 0; i < 51; i++) {
    node.store.add({ conversation: "bob@lobby", text: `ping ${i}`, at: today(8, 0, i) });
  }
  let lines = await pipe(node, ["/search ping"]);
  assert.equal(lines[0], 'more than 50 messages hold "ping"; the newest 50, newest first:');
  assert.equal(lines.length, 51);
  assert.ok(lines[1].endsWith("ping 50"));
  node.store.add({ conversation: "bob@lobby", text: "last pong", at: today(9) });
  lines = await pipe(node, ["/search pong"]);
  assert.equal(lines[0], '1 message holds "pong", newest first:');
});

Deno.test("/conversations lists unread counts and last lines; opening one reads it", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", text: "are you there?", at: today(8) });
  node.store.add({ conversation: "bob@lobby", text: "hello?", at: today(8, 1) });
  node.store.add({
    conversation: "#lobby",
    from: "carol@lobby",
    text: "x".repeat(60),
    at: today(9),
  });
  outgoing(node, "carol@lobby", "see you", "queued", { at: today(10) });
  const lines = await pipe(node, ["/conversations", "/msg bob", "/history 1", "/convs"]);
  assert.deepEqual(lines.slice(0, 5), [
    "3 conversations, 3 unread in 2",
    "CONVERSATION  UNREAD  LAST",
    "carol@lobby   -       10:00:00 alice@lobby: see you  ·",
    `#lobby        1       09:00:00 carol@lobby: ${"x".repeat(40)}…`,
    "bob@lobby     2       08:01:00 bob@lobby: hello?",
  ]);
  assert.equal(lines.at(-5), "3 conversations, 1 unread in 1");
  assert.equal(lines.at(-1), "bob@lobby     -       08:01:00 bob@lobby: hello?");
});

Deno.test("history in memory by choice (--no-history) is said calmly at start, a failure as a warning", async () => {
  const node = new StoreNode();
  node.store.storageStatus = { persistent: false };
  const [chosen] = await pipe(node, ["/convs"]);
  assert.match(
    chosen,
    /^\d\d:\d\d:\d\d -- history is kept in memory only: it is gone when you quit$/,
  );
  node.store.storageStatus = { persistent: false, problem: "the disk is full" };
  const [failed] = await pipe(node, ["/convs"]);
  assert.match(failed, /!! history is not being saved: the disk is full;/);
});

Deno.test("/quit warns once when queued messages would be lost with history in memory", async () => {
  const node = new StoreNode();
  outgoing(node, "carol@lobby", "see you", "queued", { at: today(10) });
  // Saved: quits at once.
  assert.deepEqual(await pipe(node, ["/quit", "/convs"]), []);
  node.store.storageStatus = { persistent: false, problem: "--no-history" };
  const warning = "1 queued message is lost if you quit: history is not being saved " +
    "(/status says why); /quit again to quit anyway";
  // The first line is the start-up notice that history is not being saved.
  const stayed = (await pipe(node, ["/quit", "/convs"])).slice(1);
  assert.equal(stayed[0], warning);
  assert.ok(stayed[1].startsWith("1 conversation"), stayed[1]);
  assert.deepEqual((await pipe(node, ["/quit", "/quit", "/convs"])).slice(1), [warning]);
});

Deno.test("a message arriving in the conversation on screen is read; elsewhere, or unfocused, it waits", async () => {
  const node = new StoreNode();
  const ui = start(node, true);
  await until(() => ui.output().includes("#lobby> "));
  const arrive = (conversation: string, text: string) => {
    const stored = node.store.add({ conversation, from: "bob@lobby", text });
    node.emit({
      type: "message",
      kind: conversation.startsWith("#") ? "pub" : "direct",
      msgId: stored.msgId,
      from: "bob@lobby",
      to: conversation.startsWith("#") ? conversation : "alice@lobby",
      text,
      at: stored.at,
      stored,
    });
    return stored;
  };
  assert.equal(arrive("#lobby", "seen at once").state, "read");
  assert.equal(arrive("bob@lobby", "elsewhere").state, "delivered");
  ui.write("\x1b[O");
  await settle();
  const away = arrive("#lobby", "while away");
  assert.equal(away.state, "delivered");
  ui.write("\x1b[I");
  await until(() => away.state === "read", "read on focus");
  assert.equal(node.store.messages[1].state, "delivered", "another conversation stays unread");
  ui.write("\x03");
  await ui.done;
});

Deno.test("a direct message from a stranger is preceded by a notice, once per conversation", async () => {
  const node = new StoreNode();
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  for (const [from, text] of [["eve@lobby", "hi"], ["eve@lobby", "again"], ["bob@lobby", "yo"]]) {
    directArrived(
      node,
      node.store.add({ conversation: from, from, text, at: today(11) }),
      from === "eve@lobby",
    );
  }
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    "11:00:00 -- eve@lobby is not in your contacts (/add eve@lobby adds them)",
    "11:00:00 [dm] eve@lobby: hi",
    "11:00:00 [dm] eve@lobby: again",
    "11:00:00 [dm] bob@lobby: yo",
  ]);
});

Deno.test("a stranger seen before this run gets no notice again", async () => {
  const node = new StoreNode();
  // Stored by an earlier run of the peer.
  node.store.add({ conversation: "eve@lobby", from: "eve@lobby", text: "hi", at: today(10) });
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  directArrived(
    node,
    node.store.add({ conversation: "eve@lobby", from: "eve@lobby", text: "again" }),
  );
  ui.end();
  await ui.done;
  assert.ok(
    ui.lines().some((line) => line.endsWith("[dm] eve@lobby: again")),
    ui.lines().join("\n"),
  );
  assert.ok(
    !ui.lines().some((line) => line.includes("not in your contacts")),
    ui.lines().join("\n"),
  );
});

Deno.test("/msg to a name never met says so; to a peer, a contact or a known history it does not", async () => {
  const node = new StoreNode();
  node.addPeer("bob@lobby");
  node.store.addContact("dave@lobby");
  node.store.add({ conversation: "eve@lobby", from: "eve@lobby", text: "hi", at: today(10) });
  // A typo sent once, which failed: still nobody we know.
  outgoing(node, "zed@lobby", "hi", "failed", { reason: "unknown_peer" });
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  // Names compare without case (the history holds eve@lobby).
  for (const name of ["carol", "bob", "dave", "eve", "Eve", "zed"]) ui.write(`/msg ${name}\n`);
  ui.end();
  await ui.done;
  const hints = ui.lines().filter((line) => line.startsWith("-- nothing is known of"));
  assert.deepEqual(
    hints,
    ["carol", "zed"].map((name) =>
      `-- nothing is known of ${name}@lobby (not seen online, not in your contacts, no history): ` +
      `messages fail unless they are online (/peers lists who is; /add ${name}@lobby keeps ` +
      "messages for them until they come)"
    ),
  );
  assert.ok(ui.lines().includes("conversation: eve@lobby"), ui.lines().join("\n"));
});

Deno.test("someone the user wrote to first gets no stranger notice when they answer", async () => {
  const node = new StoreNode();
  node.addPeer("eve@lobby");
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  ui.write("/msg eve hello eve\n");
  await until(() => ui.lines().some((line) => line.startsWith("delivered to eve@lobby")));
  directArrived(node, node.store.add({ conversation: "eve@lobby", from: "eve@lobby", text: "hi" }));
  ui.end();
  await ui.done;
  assert.ok(
    !ui.lines().some((line) => line.includes("not in your contacts")),
    ui.lines().join("\n"),
  );
  assert.ok(ui.lines().some((line) => line.endsWith("[dm] eve@lobby: hi")));
});

Deno.test("lines typed while a /msg to a new name is on its way go to that name", async () => {
  const node = new StoreNode();
  const sent: string[] = [];
  let release!: (result: SendResult) => void;
  node.send = (peerId: string, text: string) => {
    sent.push(`${peerId}: ${text}`);
    if (sent.length > 1) return Promise.resolve({ ok: true, msgId: "b", roundTripMs: 1 });
    return new Promise<SendResult>((resolve) => release = resolve);
  };
  const ui = start(node, true);
  await settle();
  ui.write("/msg carol part one\r");
  await until(() => sent.length === 1, "the first send");
  ui.write("part two\r");
  await until(() => sent.length === 2, "the second send");
  assert.deepEqual(sent, ["carol@lobby: part one", "carol@lobby: part two"]);
  release({ ok: true, msgId: "a", roundTripMs: 1 });
  ui.write("\x04");
  await ui.done;
});

Deno.test("a send kept in the outbox says queued and why, and keeps the conversation", async () => {
  const node = new StoreNode();
  const reasons = [
    ["offline", "offline"],
    ["unknown_peer", "not known to the tracker now"],
    ["not_connected", "not connected"],
    ["closed", "unreachable"],
  ] as const;
  for (const [reason, words] of reasons) {
    node.answerWith = { ok: false, reason, queued: true, id: 7, msgId: "q7" };
    const lines = await pipe(node, ["/msg carol see you", "/status"]);
    assert.equal(
      lines[0],
      `queued for carol@lobby (${words}): it goes out by itself when they are back ` +
        "(/queue lists the outbox, /cancel 7 cancels it)",
    );
    assert.ok(lines.includes("conversation: carol@lobby"), reason);
  }
  node.answerWith = { ok: false, reason: "queue_full" };
  assert.deepEqual(await pipe(node, ["/msg carol one more"]), [
    "not delivered to carol@lobby: queue_full: the outbox is full (/queue lists it, /cancel ID makes room)",
  ]);
});

Deno.test("/queue lists the outbox and /cancel takes a message out of it", async () => {
  const node = new StoreNode();
  const hour = 3_600_000;
  const first = outgoing(
    node,
    "carol@lobby",
    "first of all, a long message that is cut in the list",
    "queued",
    { at: Date.now() - 3 * hour },
  );
  outgoing(node, "dan@other", "hi dan", "queued", { at: Date.now() - 90_000 });
  const ui = start(node, false);
  ui.write(`/queue\n/cancel ${first.id}\n/cancel ${first.id}\n/cancel x\n/queue\n`);
  await until(() => node.listenerCount === 1);
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    "ID  TO           AGE  TEXT",
    "1   carol@lobby  3h   first of all, a long message that is cut…",
    "2   dan@other    1m   hi dan",
    "they go out by themselves when the peer is back; /cancel ID cancels one",
    "cancelled message 1 to carol@lobby: it will not be sent",
    "error: no queued or waiting message has id 1 (/queue lists them)",
    'error: bad id "x": use a number that /queue lists',
    "ID  TO         AGE  TEXT",
    "2   dan@other  1m   hi dan",
    "they go out by themselves when the peer is back; /cancel ID cancels one",
  ]);
  assert.equal(first.state, "failed");
  assert.deepEqual(await pipe(new StoreNode(), ["/queue"]), [
    "the outbox is empty: nothing waits to be delivered",
  ]);
  // Room messages waiting for members who were offline are listed too, and can stop waiting.
  const rooms = new StoreNode();
  const meeting = outgoing(rooms, "#team", "meeting at 10", "sent", {
    kind: "pub",
    pendingFor: ["carol", "dave"],
    at: Date.now() - 2 * hour,
  });
  assert.deepEqual(await pipe(rooms, ["/queue", `/cancel ${meeting.id}`, "/queue"]), [
    "ID  ROOM   WAITING     AGE  TEXT",
    "1   #team  carol,dave  2h   meeting at 10",
    "room messages: each member who was offline gets it when back; /cancel ID stops waiting",
    "message 1 in #team stopped waiting: carol, dave will not get it",
    "the outbox is empty: nothing waits to be delivered",
  ]);
  assert.equal(meeting.state, "sent");
});

Deno.test("/forget asks first, deletes a conversation on the same command again, and says so", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", text: "hi" });
  outgoing(node, "bob@lobby", "still queued", "queued");
  node.store.add({ conversation: "#games", text: "gg", from: "carol@lobby" });
  outgoing(node, "#games", "meeting at 10", "sent", { kind: "pub", pendingFor: ["dave"] });
  assert.deepEqual(
    await pipe(node, [
      "/forget bob",
      "/forget #games",
      "/forget bob",
      "/forget bob",
      "/forget zed",
    ]),
    [
      "this deletes bob@lobby and every message in it from this computer, with 1 message " +
      "queued (not sent again); bob@lobby keeps theirs. /forget bob again within 30 s to confirm",
      "this deletes #games and every message in it from this computer, with 1 message waiting " +
      "for members (not sent to them); the others keep theirs. /forget #games again within " +
      "30 s to confirm",
      // Another /forget in between: this one asks again.
      "this deletes bob@lobby and every message in it from this computer, with 1 message " +
      "queued (not sent again); bob@lobby keeps theirs. /forget bob again within 30 s to confirm",
      "deleted the conversation bob@lobby (2 messages)",
      "error: no conversation zed@lobby (/conversations lists them)",
    ],
  );
  assert.deepEqual(node.store.messages.map((m) => m.text), ["gg", "meeting at 10"]);
  // One deleted elsewhere (the web chat, the API) is told.
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  node.emit({ type: "conversation_forgotten", conversation: "#games", deleted: 2, at: today(9) });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), ["09:00:00 -- the conversation #games was deleted (2 messages)"]);
});

/** Stores a message we sent to `conversation`, in `state`. */
function outgoing(
  node: StoreNode,
  conversation: string,
  text: string,
  state: StoredMessage["state"],
  more: Partial<StoredMessage> = {},
): StoredMessage {
  return node.store.add({ conversation, text, outgoing: true, state, ...more });
}

/** A `message_state` event for `message` after its fields changed. */
function stateEvent(node: FakePeerNode, message: StoredMessage, fields: Partial<StoredMessage>) {
  Object.assign(message, fields);
  node.emit({ type: "message_state", message: { ...message }, at: today(12) });
}

/** The UI over `node` with `line` typed, its send waiting for `node.answer()`. */
async function typedWhileSendWaits(node: StoreNode, line: string) {
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  node.sendMode = "manual";
  ui.write(`${line}\n`);
  await until(() => node.waitingSends === 1);
  return ui;
}

Deno.test("state notices: a queued message's delivery and failures are told, an ACKed send is not told twice", async () => {
  const node = new StoreNode();
  // A send that ACKs: its delivered event comes before the send call returns.
  const ui = await typedWhileSendWaits(node, "/msg bob quick one");
  const quick = outgoing(node, "bob@lobby", "quick one", "sent", { msgId: "ack-1" });
  stateEvent(node, quick, { state: "delivered" });
  node.answer({ ok: true, msgId: "ack-1", roundTripMs: 4 });
  await until(() => ui.lines().length === 1);
  // A queued one, delivered an hour later; another expires; one sent elsewhere (the HTTP
  // API) is delivered at once, which its sender knows.
  const later = outgoing(node, "carol@lobby", "when you are back", "queued", { at: today(11) });
  stateEvent(node, later, { state: "sent" });
  stateEvent(node, later, { state: "delivered" });
  const lost = outgoing(node, "dan@lobby", "too late", "queued");
  stateEvent(node, lost, { state: "failed", reason: "expired" });
  const elsewhere = outgoing(node, "erin@lobby", "from a script", "sent", { at: today(12) });
  stateEvent(node, elsewhere, { state: "delivered" });
  const room = outgoing(node, "#games", "gg", "sent", { pendingFor: ["dan@lobby"] });
  stateEvent(node, room, { state: "delivered", pendingFor: [] });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    "delivered to bob@lobby (4 ms)",
    '12:00:00 -- ✓✓ delivered to carol@lobby: "when you are back"',
    '12:00:00 -- ✗ not delivered to dan@lobby (expired): "too late"',
  ]);
});

Deno.test("state notices: a delivered event held during a send to the same peer is told once that send ends", async () => {
  const node = new StoreNode();
  const queued = outgoing(node, "bob@lobby", "from yesterday", "queued", { at: today(1) });
  const ui = await typedWhileSendWaits(node, "/msg bob new one");
  stateEvent(node, queued, { state: "delivered" });
  await settle();
  assert.deepEqual(ui.lines(), [], "held while the send waits");
  node.answer({ ok: true, msgId: "other", roundTripMs: 2 });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    '12:00:00 -- ✓✓ delivered to bob@lobby: "from yesterday"',
    "delivered to bob@lobby (2 ms)",
  ]);
});

Deno.test("state notices: a send's own failure is told once, by its line; another's is told", async () => {
  const node = new StoreNode();
  node.addPeer("carol@lobby");
  const earlier = outgoing(node, "carol@lobby", "an old one", "queued", { at: today(1) });
  const ui = await typedWhileSendWaits(node, "/msg carol hello carol");
  const mine = outgoing(node, "carol@lobby", "hello carol", "sent");
  // As the messenger does: the state changes before the send call returns.
  stateEvent(node, earlier, { state: "failed", reason: "expired" });
  stateEvent(node, mine, { state: "failed", reason: "unknown_peer" });
  node.answer({ ok: false, reason: "unknown_peer", id: mine.id, msgId: "m" });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines().slice(0, 2), [
    '12:00:00 -- ✗ not delivered to carol@lobby (expired): "an old one"',
    "not delivered to carol@lobby: unknown_peer: the tracker lists no such peer (/peers shows the known ones)",
  ]);
  assert.ok(!ui.lines().some((line) => line.includes("(unknown_peer)")));
});

Deno.test("state notices: a receipt that comes with the ACK is told after 'delivered'", async () => {
  const node = new StoreNode();
  const ui = await typedWhileSendWaits(node, "/msg bob quick one");
  const mine = outgoing(node, "bob@lobby", "quick one", "delivered");
  stateEvent(node, mine, { state: "read" });
  node.answer({ ok: true, msgId: mine.msgId, roundTripMs: 3 });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    "delivered to bob@lobby (3 ms)",
    '12:00:00 -- ✓✓ read by bob@lobby: "quick one"',
  ]);
});

Deno.test("state notices: read receipts are one dim line per burst; /cancel here is not told twice", async () => {
  const node = new StoreNode();
  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  const sent = [1, 2, 3].map((n) => outgoing(node, "bob@lobby", `message ${n}`, "delivered"));
  for (const message of sent) stateEvent(node, message, { state: "read" });
  await settle();
  const queued = outgoing(node, "carol@lobby", "never mind", "queued");
  ui.write(`/cancel ${queued.id}\n`);
  await until(() => ui.lines().length === 2);
  stateEvent(node, queued, { state: "failed", reason: "cancelled" });
  ui.end();
  await ui.done;
  assert.deepEqual(ui.lines(), [
    '12:00:00 -- ✓✓ read by bob@lobby: "message 3" and 2 earlier',
    "cancelled message 4 to carol@lobby: it will not be sent",
  ]);
});

Deno.test("/contacts shows presence, last seen, address, fingerprint and verification; /add and /remove", async () => {
  const node = new StoreNode();
  node.store.contactList.set("bob@lobby", {
    peerId: "bob@lobby",
    addedAt: today(1),
    online: true,
    address: { hostname: "127.0.0.1", port: 5001 },
    fingerprint: "mfrg gzdf mztw q2lk nnwg 23tp obyx e3ll",
    verified: true,
    trust: "verified",
  });
  node.store.contactList.set("carol@other", {
    peerId: "carol@other",
    addedAt: today(1),
    online: false,
    lastSeenAt: new Date(2020, 0, 2, 3, 4, 5).getTime(),
    verified: false,
    trust: "key_changed",
    fingerprint: "aaaa bbbb cccc",
  });
  const lines = await pipe(node, [
    "/contacts",
    "/add dan",
    "/add dan@lobby",
    "/remove carol@other",
    "/remove carol@other",
    "/add @x",
    "/add ALICE",
    "/contacts",
  ]);
  assert.deepEqual(lines, [
    "2 contacts, 1 online",
    "PEER         STATE    LAST_SEEN   ADDRESS         FINGERPRINT  VERIFIED",
    "bob@lobby    online   now         127.0.0.1:5001  mfrg\u00a0gzdf\u00a0…  yes",
    "carol@other  offline  2020-01-02  -               aaaa\u00a0bbbb\u00a0…  key-changed",
    "added dan@lobby to your contacts",
    "dan@lobby is already in your contacts",
    "removed carol@other from your contacts",
    "error: carol@other is not in your contacts (/contacts lists them)",
    'error: bad peer "@x": use name@namespace or name',
    "error: ALICE@lobby is this peer: /add another peer",
    "2 contacts, 1 online",
    "PEER       STATE    LAST_SEEN  ADDRESS         FINGERPRINT  VERIFIED",
    "bob@lobby  online   now        127.0.0.1:5001  mfrg\u00a0gzdf\u00a0…  yes",
    "dan@lobby  offline  -          -               -            no",
  ]);
  assert.deepEqual(await pipe(new StoreNode(), ["/contacts"]), [
    "no contacts yet: /add PEER adds one",
  ]);
});

Deno.test("/status says where history is saved, or why not; a storage event is a warning", async () => {
  const node = new StoreNode();
  const status = await pipe(node, ["/status"]);
  assert.ok(status.includes("history: saved in /tmp/fake/messages.db"), status.join("\n"));
  assert.ok(status.includes("outbox: 0 queued"));

  const ui = start(node, false);
  await until(() => node.listenerCount === 1);
  node.emit({
    type: "storage",
    status: { persistent: false, path: "/data/messages.db", problem: "the disk is full" },
    at: today(13),
  });
  node.store.storageStatus = {
    persistent: false,
    path: "/data/messages.db",
    problem: "the disk is full",
  };
  ui.write("/status\n");
  ui.end();
  await ui.done;
  const lines = ui.lines();
  assert.equal(
    lines[0],
    "13:00:00 !! history is not being saved: the disk is full; the chat goes on, " +
      "messages are kept until you quit",
  );
  assert.ok(lines.includes("history: not saved: the disk is full"));
});

Deno.test("a store that was moved aside or is not saving is told at start", async () => {
  const node = new StoreNode();
  node.store.storageStatus = {
    persistent: true,
    path: "/data/messages.db",
    movedAside: "/data/messages.db.corrupt-2026",
  };
  const lines = await pipe(node, ["/status"]);
  assert.match(
    lines[0],
    /^\d\d:\d\d:\d\d !! the message store was damaged; it was moved aside to \/data\/messages\.db\.corrupt-2026 and a new one started/,
  );
  assert.ok(
    lines.includes("history: a damaged store was moved aside to /data/messages.db.corrupt-2026"),
  );
});

Deno.test("a damaged message log moved aside is told at start as the log, not as the store", async () => {
  const node = new StoreNode();
  node.store.storageStatus = {
    persistent: true,
    path: "/data/messages.db",
    logMovedAside: "/data/messages.db-msglog.corrupt-2026",
  };
  const lines = await pipe(node, ["/status"]);
  assert.match(
    lines[0],
    /^\d\d:\d\d:\d\d !! the message log was damaged; it was moved aside to \/data\/messages\.db-msglog\.corrupt-2026: the messages of its damaged lines are only in that file, the others are in history$/,
  );
  assert.ok(!lines.some((line) => /message store was damaged|new one started/.test(line)));
  assert.ok(
    lines.includes(
      "history: a damaged message log was moved aside to /data/messages.db-msglog.corrupt-2026",
    ),
  );
});

Deno.test("/help lists the history commands and Tab completes them and the ids after /cancel", async () => {
  const node = new StoreNode();
  const help = await pipe(node, ["/help"]);
  for (
    const name of [
      "history",
      "search",
      "conversations",
      "convs",
      "queue",
      "cancel",
      "forget",
      "contacts",
      "add",
      "remove",
    ]
  ) {
    assert.ok(help.some((line) => line.startsWith(`/${name}`)), name);
  }
  node.store.add({ conversation: "carol@lobby", text: "a", outgoing: true, state: "queued" });
  node.store.add({ conversation: "carol@lobby", text: "b", outgoing: true, state: "sent" });
  node.store.addContact("zoe@far");
  const ui = start(node, true);
  ui.write("/conv\t");
  await until(() => ui.output().includes("/conversations  /convs"));
  ui.write("\x15/cancel \t");
  await until(() => ui.output().endsWith("#lobby> /cancel 1 "));
  ui.write("\x15/forget car\t");
  await until(() => ui.output().endsWith("#lobby> /forget carol "));
  ui.write("\x15/remove zo\t");
  await until(() => ui.output().endsWith("#lobby> /remove zoe@far "));
  ui.write("\x03");
  await ui.done;
});

Deno.test("complete() offers a command's own arguments after it, and peers elsewhere", () => {
  const sources = {
    commands: ["cancel", "msg"],
    peers: ["bob@lobby"],
    scopes: [],
    namespace: "lobby",
    argumentsOf: (command: string) => command === "cancel" ? ["12", "13"] : undefined,
  };
  assert.deepEqual(complete("/cancel ", sources), { insert: "1", candidates: [] });
  assert.deepEqual(complete("/cancel 1", sources), { insert: "", candidates: ["12", "13"] });
  assert.deepEqual(complete("/CANCEL 13", sources), { insert: " ", candidates: [] });
  assert.deepEqual(complete("/msg b", sources), { insert: "ob ", candidates: [] });
  assert.deepEqual(complete("/cancel 12 b", sources), { insert: "ob ", candidates: [] });
});

Deno.test("a store that fails is told as an error and the chat goes on", async () => {
  const node = new StoreNode();
  const broken = node.store;
  broken.page = () => {
    throw new Error("disk I/O error\x1b[2J");
  };
  broken.markRead = () => {
    throw new Error("disk I/O error");
  };
  const ui = start(node, true);
  await until(() => ui.output().includes("error: history: disk I/O error^[[2J"));
  const stored = broken.add({ conversation: "#lobby", from: "bob@lobby", text: "still here" });
  node.emit({
    type: "message",
    kind: "pub",
    msgId: stored.msgId,
    from: "bob@lobby",
    to: "#lobby",
    text: "still here",
    at: today(14),
    stored,
  });
  ui.write("\x1b[5~hello\r");
  await until(() => node.published.length === 1);
  assert.ok(ui.output().includes("14:00:00 [#lobby] bob@lobby: still here"));
  assert.equal(ui.output().split("error: history: disk I/O error").length, 4);
  ui.write("\x03");
  await ui.done;
});

Deno.test("a line typed during a transfer is echoed with the plain prompt, not the progress bar", async () => {
  const node = new StoreNode();
  const activity = { text: () => "[big.bin ███░░░ 40% 120 MB/s 3s]", subscribe: () => () => {} };
  const ui = start(node, true, { activity });
  await settle();
  assert.ok(ui.output().includes("[big.bin ███░░░ 40%"), "the prompt shows the transfer");
  ui.write("/help\r");
  await until(() => ui.lines().some((line) => / #lobby> \/help$/.test(line)), "the echo");
  assert.ok(!ui.lines().some((line) => line.includes("40%") && line.includes("/help")));
  ui.write("\x04");
  await ui.done;
});

Deno.test("a terminal reopens the conversation it had open; a script starts in the namespace", async () => {
  const node = new StoreNode();
  node.store.add({ conversation: "bob@lobby", from: "bob@lobby", text: "hi", at: today(9) });
  node.store.add({ conversation: "#team", from: "bob@lobby", text: "all", at: today(10) });
  // Switching remembers the conversation (one that holds messages).
  const first = start(node, true);
  await until(() => node.listenerCount === 1);
  first.write("/msg bob\n");
  await until(() => node.store.open === "bob@lobby", "bob remembered");
  first.end();
  await first.done;
  // The next terminal opens there: what is typed goes to bob.
  const again = start(node, true);
  await until(() => node.listenerCount === 1);
  again.write("back again\n");
  await until(() => node.sent.length === 1, "sent");
  again.end();
  await again.done;
  assert.deepEqual(node.sent, [{ peerId: "bob@lobby", text: "back again" }]);
  // A script is not a person: it starts where the README says, in the namespace.
  await pipe(node, ["to everyone", "/pub #team"]);
  assert.deepEqual(node.published.map((p) => p.scope), ["#lobby"]);
  assert.equal(node.store.open, "bob@lobby", "a script's switches are not remembered");
  // A conversation switched to before its first message is remembered once that is stored.
  const last = start(node, true);
  await until(() => node.listenerCount === 1);
  last.write("/msg carol\n");
  await settle();
  assert.equal(node.store.open, "bob@lobby", "no message with carol yet");
  const toCarol = node.store.add({ conversation: "carol@lobby", text: "first", outgoing: true });
  node.emit({ type: "message_added", message: toCarol, at: Date.now() });
  assert.equal(node.store.open, "carol@lobby");
  // Deleted (here or from another client), it is no longer remembered as open; the next message
  // in it, while it is still the one shown, makes it so again.
  const deleted = node.store.forget("carol@lobby")!;
  node.emit({ type: "conversation_forgotten", conversation: "carol@lobby", deleted, at: 1 });
  assert.equal(node.store.open, undefined);
  const anew = node.store.add({ conversation: "carol@lobby", text: "anew", outgoing: true });
  node.emit({ type: "message_added", message: anew, at: Date.now() });
  assert.equal(node.store.open, "carol@lobby");
  last.end();
  await last.done;
});
