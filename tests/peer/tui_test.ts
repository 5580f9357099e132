import assert from "node:assert/strict";
import { parseInput, splitFirstWord } from "../../peer/tui/commands.ts";
import {
  createStyle,
  formatEvent,
  formatPeerTable,
  peerColorCode,
  sanitize,
} from "../../peer/tui/format.ts";
import { type Key, KeyDecoder } from "../../peer/tui/keys.ts";
import { displayWidth, LineEditor } from "../../peer/tui/line_editor.ts";
import { renderAbove, renderInputRow } from "../../peer/tui/screen.ts";

const plain = createStyle(false);
const encoder = new TextEncoder();

Deno.test("parseInput() tells commands, text and empty lines apart", () => {
  const cases: [string, ReturnType<typeof parseInput>][] = [
    ["", { kind: "empty" }],
    ["   ", { kind: "empty" }],
    ["hello world", { kind: "text", text: "hello world" }],
    ["  indented", { kind: "text", text: "  indented" }],
    ["//etc/passwd", { kind: "text", text: "/etc/passwd" }],
    ["/help", { kind: "command", name: "help", args: [], argText: "" }],
    ["/PEERS #lobby", { kind: "command", name: "peers", args: ["#lobby"], argText: "#lobby" }],
    [
      "/msg bob@lobby  hi   there ",
      {
        kind: "command",
        name: "msg",
        args: ["bob@lobby", "hi", "there"],
        argText: "bob@lobby  hi   there",
      },
    ],
    ["/", { kind: "command", name: "", args: [], argText: "" }],
  ];
  for (const [line, expected] of cases) assert.deepEqual(parseInput(line), expected, line);
});

Deno.test("splitFirstWord() keeps the message text exactly as typed", () => {
  assert.deepEqual(splitFirstWord("bob  hi  there"), ["bob", "hi  there"]);
  assert.deepEqual(splitFirstWord("bob"), ["bob", ""]);
  assert.deepEqual(splitFirstWord(""), ["", ""]);
});

Deno.test("KeyDecoder.push() joins UTF-8 characters split across reads", () => {
  const decoder = new KeyDecoder();
  const bytes = encoder.encode("é😀");
  const keys: Key[] = [];
  for (const byte of bytes) keys.push(...decoder.push(new Uint8Array([byte])));
  assert.deepEqual(keys, [{ name: "char", char: "é" }, { name: "char", char: "😀" }]);
});

Deno.test("KeyDecoder.push() reads arrows, home/end and delete, also split across reads", () => {
  const decoder = new KeyDecoder();
  const keys = [
    ...decoder.push(encoder.encode("\x1b[A\x1b[B\x1b[C\x1b")),
    ...decoder.push(encoder.encode("[D\x1b[H\x1b[F\x1bOH\x1b[4~\x1b[3~\x1b[1;5C")),
  ];
  assert.deepEqual(keys.map((key) => key.name), [
    "up",
    "down",
    "right",
    "left",
    "home",
    "end",
    "home",
    "end",
    "delete",
    "right",
  ]);
});

Deno.test("KeyDecoder.push() maps control bytes to editing keys and counts CR LF as one Enter", () => {
  const keys = new KeyDecoder().push(
    encoder.encode("a\x7f\b\x15\x0b\x17\x01\x05\x03\x04\r\n\x07\t\x0c"),
  );
  assert.deepEqual(keys.map((key) => key.name), [
    "char",
    "backspace",
    "backspace",
    "kill-line",
    "kill-to-end",
    "kill-word",
    "home",
    "end",
    "interrupt",
    "eof",
    "enter",
    "complete",
    "clear",
  ]);
});

function typeInto(editor: LineEditor, text: string): void {
  for (const char of text) editor.press({ name: "char", char });
}

/** An editor holding `text` with the cursor at `cursor`. */
function typed(text: string, cursor: number): LineEditor {
  const editor = new LineEditor();
  editor.insert(text);
  for (let i = text.length; i > cursor; i--) editor.press({ name: "left" });
  return editor;
}

Deno.test("LineEditor inserts at the cursor and backspace removes a whole emoji", () => {
  const editor = new LineEditor();
  typeInto(editor, "hi😀");
  assert.deepEqual(editor.press({ name: "backspace" }), { type: "redraw" });
  assert.equal(editor.text, "hi");
  editor.press({ name: "left" });
  typeInto(editor, "é");
  assert.equal(editor.text, "héi");
  assert.equal(editor.cursor, 2);
  editor.press({ name: "home" });
  assert.deepEqual(editor.press({ name: "left" }), { type: "none" });
  editor.press({ name: "delete" });
  assert.equal(editor.text, "éi");
  editor.press({ name: "end" });
  assert.equal(editor.cursor, 2);
});

Deno.test("LineEditor kills the line, to the end, and the previous word", () => {
  const editor = new LineEditor();
  typeInto(editor, "one two three");
  editor.press({ name: "kill-word" });
  assert.equal(editor.text, "one two ");
  for (let i = 0; i < 4; i++) editor.press({ name: "left" });
  editor.press({ name: "kill-to-end" });
  assert.equal(editor.text, "one ");
  editor.press({ name: "kill-line" });
  assert.equal(editor.text, "");
  assert.equal(editor.cursor, 0);
});

Deno.test("LineEditor submits the line and browses history, keeping the draft", () => {
  const editor = new LineEditor();
  typeInto(editor, "first");
  assert.deepEqual(editor.press({ name: "enter" }), { type: "submit", line: "first" });
  typeInto(editor, "second");
  editor.press({ name: "enter" });
  typeInto(editor, "draft");
  editor.press({ name: "up" });
  assert.equal(editor.text, "second");
  editor.press({ name: "up" });
  assert.equal(editor.text, "first");
  assert.deepEqual(editor.press({ name: "up" }), { type: "none" });
  editor.press({ name: "down" });
  editor.press({ name: "down" });
  assert.equal(editor.text, "draft");
  assert.equal(editor.cursor, 5);
});

Deno.test("LineEditor quits on Ctrl-C, and on Ctrl-D only when the line is empty", () => {
  const editor = new LineEditor();
  typeInto(editor, "ab");
  editor.press({ name: "home" });
  assert.deepEqual(editor.press({ name: "eof" }), { type: "redraw" });
  assert.equal(editor.text, "b");
  assert.deepEqual(editor.press({ name: "interrupt" }), { type: "quit" });
  editor.press({ name: "kill-to-end" });
  assert.deepEqual(editor.press({ name: "eof" }), { type: "quit" });
});

Deno.test("LineEditor.view() counts wide characters as two cells", () => {
  const editor = new LineEditor();
  typeInto(editor, "日本x");
  editor.press({ name: "left" });
  assert.deepEqual(editor.view(), { text: "日本x", cursorColumn: 4 });
  assert.equal(displayWidth("e\u0301"), 1);
});

/** A minimal terminal: enough of VT100 to replay what the UI writes. */
class VirtualTerminal {
  rows: string[][] = [[]];
  row = 0;
  column = 0;

  write(text: string): void {
    for (let i = 0; i < text.length;) {
      const escape = text[i] === "\x1b" ? /^.\[(\d*)([A-Za-z])/.exec(text.slice(i)) : null;
      if (escape) {
        const count = Number(escape[1] || "1");
        if (escape[2] === "K") this.rows[this.row] = [];
        if (escape[2] === "D") this.column = Math.max(0, this.column - count);
        if (escape[2] === "C") this.column += count;
        if (escape[2] === "m") { /* colours do not move the cursor */ }
        i += escape[0].length;
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(i)!);
      i += char.length;
      if (char === "\r") this.column = 0;
      else if (char === "\n") this.rows[++this.row] ??= [];
      else {
        this.rows[this.row][this.column] = char;
        this.column += displayWidth(char);
      }
    }
  }

  lines(): string[] {
    return this.rows.map((row) => Array.from(row, (cell) => cell ?? "").join(""));
  }
}

Deno.test("A message printed mid-typing goes above the prompt and the typed text stays intact", () => {
  const editor = new LineEditor();
  const terminal = new VirtualTerminal();
  const prompt = "#lobby> ";
  const draw = () => renderInputRow(prompt, prompt.length, editor, 80).text;
  typeInto(editor, "hello wörld");
  terminal.write(draw());
  for (let i = 0; i < 3; i++) editor.press({ name: "left" });
  terminal.write(draw());
  const event = {
    type: "message",
    kind: "pub",
    msgId: "m1",
    from: "bob@lobby",
    to: "#lobby",
    text: "hi all",
    at: new Date(2026, 0, 1, 9, 5, 7).getTime(),
  } as const;
  terminal.write(renderAbove([formatEvent(event, plain)], draw()));
  assert.deepEqual(terminal.lines(), [
    "09:05:07 [#lobby] bob@lobby: hi all",
    "#lobby> hello wörld",
  ]);
  assert.equal(terminal.column, prompt.length + "hello wö".length);
  editor.press({ name: "char", char: "X" });
  terminal.write(draw());
  assert.equal(terminal.lines()[1], "#lobby> hello wöXrld");
});

Deno.test("renderInputLine() scrolls a long line sideways so the cursor stays visible", () => {
  const text = "abcdefghijklmnopqrstuvwxyz";
  const terminal = new VirtualTerminal();
  terminal.write(renderInputRow("> ", 2, typed(text, text.length), 12).text);
  assert.equal(terminal.lines()[0], "> rstuvwxyz");
  assert.equal(terminal.column, 11);
  const start = new VirtualTerminal();
  start.write(renderInputRow("> ", 2, typed(text, 0), 12).text);
  assert.equal(start.lines()[0], "> abcdefghi");
  assert.equal(start.column, 2);
});

Deno.test("formatEvent() writes messages and notices as stable plain lines", () => {
  const at = new Date(2026, 0, 1, 13, 4, 5).getTime();
  const cases: [Parameters<typeof formatEvent>[0], string][] = [
    [
      {
        type: "message",
        kind: "direct",
        msgId: "1",
        from: "bob@lobby",
        to: "alice@lobby",
        text: "hey",
        at,
      },
      "13:04:05 [dm] bob@lobby: hey",
    ],
    [
      { type: "message", kind: "pub", msgId: "2", from: "bob@lobby", to: "*", text: "all", at },
      "13:04:05 [*] bob@lobby: all",
    ],
    [
      { type: "peer", peerId: "bob@lobby", state: "connected", at },
      "13:04:05 -- peer bob@lobby connected",
    ],
    [
      { type: "peer", peerId: "bob@lobby", state: "failed", reason: "connection refused", at },
      "13:04:05 -- peer bob@lobby failed: connection refused",
    ],
    [{ type: "peer", peerId: "bob@lobby", state: "gone", at }, "13:04:05 -- peer bob@lobby gone"],
    [{ type: "tracker", reachable: true, at }, "13:04:05 -- tracker reachable"],
    [
      {
        type: "tracker",
        reachable: true,
        detail: "Tracker refused REGISTER: name_owned",
        refused: "name_owned",
        at,
      },
      "13:04:05 -- the tracker refused our REGISTER: name_owned",
    ],
    [
      { type: "tracker", reachable: false, detail: "timeout", at },
      "13:04:05 -- tracker unreachable: timeout",
    ],
  ];
  for (const [event, expected] of cases) assert.equal(formatEvent(event, plain), expected);
});

Deno.test("sanitize() neutralises escape sequences and line breaks from the network", () => {
  assert.equal(sanitize("a\x1b[2Jb\nc\x7f\u009bd\u202ee"), "a^[[2Jb^Jc^?\ufffdd\ufffde");
  const event = {
    type: "message",
    kind: "direct",
    msgId: "1",
    from: "evil\x1b]0;x\x07@lobby",
    to: "alice@lobby",
    text: "line1\r\nline2",
    at: 0,
  } as const;
  const line = formatEvent(event, plain);
  assert.ok(![...line].some((char) => char.charCodeAt(0) < 0x20), line);
  // The sender holds control characters, so it is quoted (escapes are JSON's); the text keeps
  // caret notation.
  assert.ok(line.endsWith('"evil\\u001b]0;x\\u0007@lobby": line1^M^Jline2'), line);
});

Deno.test("Sender names get a stable colour derived from the peer id", () => {
  assert.equal(peerColorCode("bob@lobby"), peerColorCode("bob@lobby"));
  const colours = new Set(
    ["a", "b", "c", "d", "e", "f", "g", "h"].map((n) => peerColorCode(`${n}@x`)),
  );
  assert.ok(colours.size > 1);
  const colored = createStyle(true);
  const event = {
    type: "message",
    kind: "direct",
    msgId: "1",
    from: "bob@lobby",
    to: "me",
    text: "x",
    at: 0,
  } as const;
  assert.ok(
    formatEvent(event, colored).includes(`\x1b[${peerColorCode("bob@lobby")}mbob@lobby\x1b[0m`),
  );
});

Deno.test("formatPeerTable() aligns columns and writes - for empty cells", () => {
  const lines = formatPeerTable([
    {
      peerId: "bob@lobby",
      name: "bob",
      namespace: "lobby",
      state: "connected",
      direction: "inbound",
      features: [],
      rtt: { lastMs: 1.24, smoothedMs: 1.26 },
      reconnectAttempts: 0,
      address: { hostname: "::1", port: 4000 },
    },
    {
      peerId: "carol@lobby",
      name: "carol",
      namespace: "lobby",
      state: "failed",
      features: [],
      reconnectAttempts: 3,
    },
  ], plain);
  assert.deepEqual(lines, [
    "PEER         STATE      DIR      RTT    SECURITY  ADDRESS",
    "bob@lobby    connected  inbound  1.3ms  -         [::1]:4000",
    "carol@lobby  failed     -        -      -         -",
  ]);
});
