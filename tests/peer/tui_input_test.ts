/** Input handling of the terminal UI: pasted text, the editor's cost, Tab completion, resize. */
import assert from "node:assert/strict";
import { type Key, KeyDecoder, PASTE_END, PASTE_START } from "../../peer/tui/keys.ts";
import { type InputText, LineEditor } from "../../peer/tui/line_editor.ts";
import { complete, type CompletionSources } from "../../peer/tui/completion.ts";
import { eraseAfterResize, renderInputRow, wrapWords } from "../../peer/tui/screen.ts";

const encoder = new TextEncoder();

/** Feeds `text` to a decoder in reads of `size` bytes and returns every key. */
function decodeInReads(text: string, size: number): Key[] {
  const decoder = new KeyDecoder();
  const bytes = encoder.encode(text);
  const keys: Key[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    keys.push(...decoder.push(bytes.subarray(at, at + size)));
  }
  return keys;
}

Deno.test("KeyDecoder.push() gives the printable run of one read as one key", () => {
  const keys = new KeyDecoder().push(encoder.encode("hello wörld😀\x7fab"));
  assert.deepEqual(keys, [
    { name: "char", char: "hello wörld😀" },
    { name: "backspace" },
    { name: "char", char: "ab" },
  ]);
});

Deno.test("KeyDecoder.push() takes a bracketed paste as text: line breaks are spaces, Enter is not pressed", () => {
  const pasted = `${PASTE_START}line one\r\nline two\ttab\x07\n${PASTE_END}\r`;
  for (const size of [1, 3, 7, pasted.length]) {
    const keys = decodeInReads(pasted, size);
    const text = keys.filter((key) => key.name === "char").map((key) => key.char).join("");
    assert.equal(text, "line one line two tab ", `reads of ${size} bytes`);
    assert.deepEqual(keys.filter((key) => key.name !== "char"), [{ name: "enter" }]);
  }
});

Deno.test("KeyDecoder.push() reads focus reports, and does not take SS3 O as one", () => {
  const keys = new KeyDecoder().push(encoder.encode("\x1b[O\x1b[I\x1bOO\x1bOH"));
  assert.deepEqual(keys.map((key) => key.name), ["focus-out", "focus-in", "home"]);
});

Deno.test("A 100,000-character paste reaches the editor as a few keys and fills the line to its limit", () => {
  const text = "0123456789".repeat(10_000);
  const keys = decodeInReads(`${PASTE_START}${text}${PASTE_END}`, 4096);
  assert.ok(keys.length <= Math.ceil(text.length / 4096) + 1, `${keys.length} keys`);
  const editor = new LineEditor();
  for (const key of keys) editor.press(key);
  assert.equal(editor.length, 32768);
  assert.equal(editor.text, text.slice(0, 32768));
  assert.equal(editor.dropped > 0, true);
});

Deno.test("LineEditor inserts a paste in the middle of the line and keeps moving correctly", () => {
  const editor = new LineEditor();
  editor.insert("ad");
  editor.press({ name: "left" });
  editor.insert("bc");
  assert.equal(editor.text, "abcd");
  assert.equal(editor.cursor, 3);
  assert.deepEqual([0, 1, 2, 3].map((i) => editor.at(i)), ["a", "b", "c", "d"]);
  editor.press({ name: "right" });
  editor.press({ name: "backspace" });
  assert.equal(editor.text, "abc");
  editor.secret = true;
  assert.equal(editor.at(0), "*");
});

/** An input line that counts how many code points were read from it. */
function countingInput(length: number, cursor: number): InputText & { reads: number } {
  return {
    length,
    cursor,
    reads: 0,
    at(index: number) {
      this.reads++;
      return String.fromCharCode(97 + index % 26);
    },
  };
}

Deno.test("renderInputRow() reads only what fits on the screen, however long the line", () => {
  for (const length of [100, 100_000]) {
    for (const cursor of [0, length >> 1, length]) {
      const input = countingInput(length, cursor);
      const row = renderInputRow("> ", 2, input, 80);
      assert.ok(input.reads <= 3 * 80, `${input.reads} reads for ${length} chars`);
      assert.ok(row.cursorColumn >= 2 && row.cursorColumn < 80);
    }
  }
});

Deno.test("eraseAfterResize() goes up to the first row the old input row now takes and clears down", () => {
  assert.equal(eraseAfterResize(79, 40), "\r\x1b[1A\x1b[J");
  assert.equal(eraseAfterResize(30, 40), "\r\x1b[J");
  assert.equal(eraseAfterResize(100, 20), "\r\x1b[5A\x1b[J");
});

const SOURCES: CompletionSources = {
  commands: ["help", "msg", "me", "peers", "pub", "quit"],
  peers: ["bob@lobby", "bobby@lobby", "carol@other"],
  scopes: ["#lobby", "#games", "#other"],
  namespace: "lobby",
};

Deno.test("complete() completes commands, peers (bare in our namespace) and scopes", () => {
  assert.deepEqual(complete("/pe", SOURCES), { insert: "ers ", candidates: [] });
  assert.deepEqual(complete("/msg ca", SOURCES), { insert: "rol@other ", candidates: [] });
  assert.deepEqual(complete("/msg bobb", SOURCES), { insert: "y ", candidates: [] });
  assert.deepEqual(complete("/pub #g", SOURCES), { insert: "ames ", candidates: [] });
  assert.deepEqual(complete("hello car", SOURCES), { insert: "ol@other ", candidates: [] });
});

Deno.test("complete() extends an ambiguous word as far as the matches agree, then lists them", () => {
  assert.deepEqual(complete("/msg b", SOURCES), { insert: "ob", candidates: [] });
  assert.deepEqual(complete("/msg bob", SOURCES), {
    insert: "",
    candidates: ["bob", "bobby"],
  });
  assert.deepEqual(complete("/msg bob@", SOURCES), { insert: "lobby ", candidates: [] });
  assert.deepEqual(complete("/m", SOURCES), { insert: "", candidates: ["/me", "/msg"] });
  // A command that takes a peer lists them all before a letter is typed; other words do not.
  assert.deepEqual(complete("/msg ", SOURCES), {
    insert: "",
    candidates: ["bob", "bobby", "carol@other"],
  });
  assert.deepEqual(complete("hello ", SOURCES), { insert: "", candidates: [] });
  assert.deepEqual(complete("/msg bob ", SOURCES), { insert: "", candidates: [] });
  // Two emoji that share their first UTF-16 half: no half is ever inserted.
  const emoji = { ...SOURCES, peers: ["x\u{1F600}a@lobby", "x\u{1F601}b@lobby"] };
  assert.deepEqual(complete("/msg x", emoji), {
    insert: "",
    candidates: ["x\u{1F600}a", "x\u{1F601}b"],
  });
  assert.deepEqual(complete("/nothing", SOURCES), { insert: "", candidates: [] });
});

Deno.test("wrapWords() breaks at spaces with a hanging indent and cuts only words wider than a row", () => {
  const line = "12:00:00 -- debug [Dialer] Dial failed; retrying peer=bob@default delayMs=1234";
  assert.deepEqual(wrapWords(line, 40, 9), [
    "12:00:00 -- debug [Dialer] Dial failed;",
    "         retrying peer=bob@default",
    "         delayMs=1234",
  ]);
  assert.deepEqual(wrapWords("short", 40, 9), ["short"]);
  assert.deepEqual(wrapWords("a " + "x".repeat(25), 20, 4), [
    "a",
    "    " + "x".repeat(16),
    "    " + "x".repeat(9),
  ]);
});

Deno.test("wrapWords() gives colour sequences no width", () => {
  const red = (text: string) => `\x1b[31m${text}\x1b[0m`;
  assert.deepEqual(wrapWords(`${red("aaaa")} bbbb ${red("cccc")}`, 12, 2), [
    `${red("aaaa")} bbbb`,
    `  ${red("cccc")}`,
  ]);
});
