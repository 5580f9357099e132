/**
 * The input line of the terminal UI as a pure state machine: keys in, actions out, and a
 * `view()` that says what the screen line looks like. The text is kept as code points so
 * that the cursor never lands inside a UTF-8 character or a surrogate pair.
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

/** How many submitted lines history keeps. */
const HISTORY_LIMIT = 500;

/** A single-line editor with history (readline-like bindings). */
export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  #history: string[] = [];
  /** Position while browsing history; equal to the history length when editing a new line. */
  #historyIndex = 0;
  /** The new line being typed, kept while browsing history. */
  #draft: string[] = [];

  /** While true the line is a secret: shown as "*" and never kept in history. */
  secret = false;

  /** Lines for which this is false never enter history (commands that carry a password). */
  keepInHistory: (line: string) => boolean = () => true;

  constructor(readonly maxChars = 32768) {}

  /** The current text. */
  get text(): string {
    return this.#chars.join("");
  }

  /** The text as the screen may show it: one "*" per character for a secret. */
  get shownText(): string {
    return this.secret ? "*".repeat(this.#chars.length) : this.text;
  }

  /** The cursor position in code points. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Applies one key. */
  press(key: Key): EditorAction {
    switch (key.name) {
      case "char":
        if (this.#chars.length >= this.maxChars) return NONE;
        this.#chars.splice(this.#cursor, 0, key.char);
        this.#cursor++;
        return REDRAW;
      case "backspace":
        if (this.#cursor === 0) return NONE;
        this.#chars.splice(--this.#cursor, 1);
        return REDRAW;
      case "delete":
        if (this.#cursor >= this.#chars.length) return NONE;
        this.#chars.splice(this.#cursor, 1);
        return REDRAW;
      case "left":
        return this.#moveTo(this.#cursor - 1);
      case "right":
        return this.#moveTo(this.#cursor + 1);
      case "home":
        return this.#moveTo(0);
      case "end":
        return this.#moveTo(this.#chars.length);
      case "kill-line":
        this.#chars.splice(0, this.#cursor);
        this.#cursor = 0;
        return REDRAW;
      case "kill-to-end":
        this.#chars.length = this.#cursor;
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
        if (this.#chars.length === 0) return { type: "quit" };
        return this.press({ name: "delete" });
      case "redraw":
        return REDRAW;
    }
  }

  /** The text and cursor column of the input line (without prompt). */
  view(): EditorView {
    return {
      text: this.text,
      cursorColumn: displayWidth(this.#chars.slice(0, this.#cursor).join("")),
    };
  }

  #moveTo(position: number): EditorAction {
    const clamped = Math.max(0, Math.min(this.#chars.length, position));
    if (clamped === this.#cursor) return NONE;
    this.#cursor = clamped;
    return REDRAW;
  }

  #killWord(): EditorAction {
    let start = this.#cursor;
    while (start > 0 && this.#chars[start - 1] === " ") start--;
    while (start > 0 && this.#chars[start - 1] !== " ") start--;
    if (start === this.#cursor) return NONE;
    this.#chars.splice(start, this.#cursor - start);
    this.#cursor = start;
    return REDRAW;
  }

  #browse(step: number): EditorAction {
    const target = this.#historyIndex + step;
    if (target < 0 || target > this.#history.length) return NONE;
    if (this.#historyIndex === this.#history.length) this.#draft = this.#chars;
    this.#historyIndex = target;
    this.#chars = target === this.#history.length ? this.#draft : Array.from(this.#history[target]);
    this.#cursor = this.#chars.length;
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
    this.#chars = [];
    this.#draft = [];
    this.#cursor = 0;
    return { type: "submit", line };
  }
}

const REDRAW: EditorAction = { type: "redraw" };
const NONE: EditorAction = { type: "none" };

/** Terminal cells taken by `text`: 0 for combining marks, 2 for wide (CJK, emoji), else 1. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += _charWidth(char.codePointAt(0)!);
  return width;
}

function _charWidth(code: number): number {
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
