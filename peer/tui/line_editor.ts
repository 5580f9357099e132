/**
 * The input line of the terminal UI as a pure state machine: keys in, actions out. The text
 * is kept as code points, so that the cursor never lands inside a UTF-8 character or a
 * surrogate pair, in a gap buffer: the code points before the cursor, and those after it in
 * reverse order. Typing, pasting, deleting and moving by one are then O(1) per code point
 * wherever the cursor is, so a long line costs no more per key than a short one.
 */
import type { Key } from "./keys.ts";

/** What a key press asks the terminal UI to do. */
export type EditorAction =
  | { type: "redraw" }
  | { type: "submit"; line: string }
  | { type: "quit" }
  | { type: "none" };

/** The visible input line: its text, and the cursor column counted in terminal cells. */
export interface EditorView {
  text: string;
  cursorColumn: number;
}

/** Code points by index, what `renderInputLine` needs to draw the part around the cursor. */
export interface InputText {
  readonly length: number;
  readonly cursor: number;
  at(index: number): string;
}

/** How many submitted lines history keeps. */
const HISTORY_LIMIT = 500;

/** A single-line editor with history (readline-like bindings). */
export class LineEditor implements InputText {
  #before: string[] = [];
  /** The code points after the cursor, last one first. */
  #after: string[] = [];
  #history: string[] = [];
  /** Position while browsing history; equal to the history length when editing a new line. */
  #historyIndex = 0;
  /** The new line being typed, kept while browsing history. */
  #draft = "";
  /** Code points dropped by the last insert for want of room (see `maxChars`). */
  #dropped = 0;

  /** While true the line is a secret: shown as "*" and never kept in history. */
  secret = false;

  /** Lines for which this is false never enter history (commands that carry a password). */
  keepInHistory: (line: string) => boolean = () => true;

  constructor(readonly maxChars = 32768) {}

  /** The current text. */
  get text(): string {
    return this.#before.join("") + this.#after.toReversed().join("");
  }

  /** The text before the cursor (what Tab completes). */
  get textBeforeCursor(): string {
    return this.#before.join("");
  }

  /** The length in code points. */
  get length(): number {
    return this.#before.length + this.#after.length;
  }

  /** The cursor position in code points. */
  get cursor(): number {
    return this.#before.length;
  }

  /** The code point at `index` as the screen may show it ("*" for a secret). */
  at(index: number): string {
    if (this.secret) return "*";
    const before = this.#before.length;
    return index < before
      ? this.#before[index]
      : this.#after[this.#after.length - 1 - index + before];
  }

  /** How many code points the last insert could not take (the line is full); 0 mostly. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Inserts text at the cursor, up to `maxChars` in all. */
  insert(text: string): EditorAction {
    this.#dropped = 0;
    const before = this.#before;
    let room = this.maxChars - this.length;
    for (const char of text) {
      if (room-- <= 0) this.#dropped++;
      else before.push(char);
    }
    return REDRAW;
  }

  /** Applies one key. */
  press(key: Key): EditorAction {
    switch (key.name) {
      case "char":
        return this.insert(key.char);
      case "backspace":
        return this.#before.pop() === undefined ? NONE : REDRAW;
      case "delete":
        return this.#after.pop() === undefined ? NONE : REDRAW;
      case "left":
        return this.#move(this.#before, this.#after, 1);
      case "right":
        return this.#move(this.#after, this.#before, 1);
      case "home":
        return this.#move(this.#before, this.#after, Infinity);
      case "end":
        return this.#move(this.#after, this.#before, Infinity);
      case "kill-line":
        if (this.#before.length === 0) return NONE;
        this.#before = [];
        return REDRAW;
      case "kill-to-end":
        if (this.#after.length === 0) return NONE;
        this.#after = [];
        return REDRAW;
      case "kill-word":
        return this.#killWord();
      case "up":
        return this.#browse(-1);
      case "down":
        return this.#browse(1);
      case "enter":
        return this.#submit();
      case "interrupt":
        return { type: "quit" };
      case "eof":
        // Ctrl-D quits only on an empty line; elsewhere it deletes forward, as in a shell.
        if (this.length === 0) return { type: "quit" };
        return this.press({ name: "delete" });
      default:
        return NONE; // keys for the terminal itself (Tab, Ctrl-L, focus)
    }
  }

  /** The text and cursor column of the input line (without prompt). */
  view(): EditorView {
    return { text: this.text, cursorColumn: displayWidth(this.textBeforeCursor) };
  }

  // Moves up to `count` code points across the cursor, from one side of the gap to the other.
  #move(from: string[], to: string[], count: number): EditorAction {
    if (from.length === 0) return NONE;
    for (let moved = 0; moved < count && from.length > 0; moved++) to.push(from.pop()!);
    return REDRAW;
  }

  #killWord(): EditorAction {
    const before = this.#before;
    const length = before.length;
    while (before.length > 0 && before.at(-1) === " ") before.pop();
    while (before.length > 0 && before.at(-1) !== " ") before.pop();
    return before.length === length ? NONE : REDRAW;
  }

  #browse(step: number): EditorAction {
    const target = this.#historyIndex + step;
    if (target < 0 || target > this.#history.length) return NONE;
    if (this.#historyIndex === this.#history.length) this.#draft = this.text;
    this.#historyIndex = target;
    this.#before = Array.from(
      target === this.#history.length ? this.#draft : this.#history[target],
    );
    this.#after = [];
    return REDRAW;
  }

  #submit(): EditorAction {
    const line = this.text;
    if (
      !this.secret && line.trim() !== "" && this.#history.at(-1) !== line &&
      this.keepInHistory(line)
    ) {
      this.#history.push(line);
      if (this.#history.length > HISTORY_LIMIT) this.#history.shift();
    }
    this.#historyIndex = this.#history.length;
    this.#before = [];
    this.#after = [];
    this.#draft = "";
    return { type: "submit", line };
  }
}

const REDRAW: EditorAction = { type: "redraw" };
const NONE: EditorAction = { type: "none" };

/** Terminal cells taken by `text`: 0 for combining marks, 2 for wide (CJK, emoji), else 1. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char.codePointAt(0)!);
  return width;
}

/** Terminal cells taken by one code point. */
export function charWidth(code: number): number {
  if (
    (code >= 0x0300 && code <= 0x036f) || (code >= 0x200b && code <= 0x200f) ||
    (code >= 0xfe00 && code <= 0xfe0f) || (code >= 0x20d0 && code <= 0x20ff)
  ) return 0;
  if (
    (code >= 0x1100 && code <= 0x115f) || (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) || (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) || (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1f300 && code <= 0x1faff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  ) return 2;
  return 1;
}
