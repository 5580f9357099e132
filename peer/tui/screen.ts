/**
 * Terminal output around a prompt that must never be garbled: every print clears the input
 * line, writes the new lines above it, and redraws prompt and typed text with the cursor in
 * place. The escape sequences are built by pure functions; `runTerminal` only writes them.
 */
import { charWidth, displayWidth, type InputText } from "./line_editor.ts";

/** Erases the current terminal row and returns to its first column. */
export const CLEAR_LINE = "\r\x1b[2K";

/** Clears the whole screen and puts the cursor at the top left (Ctrl-L). */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/** The input row as drawn: the escape sequence text, and the cursor's column on the screen. */
export interface InputRow {
  text: string;
  cursorColumn: number;
}

/**
 * The input row: prompt and the part of the text that fits in `columns`, then the cursor
 * moved back to its place. A text wider than the terminal scrolls sideways so that the cursor
 * stays visible; the row never wraps, so clearing one row is always enough. Only the visible
 * part is read: the cost depends on the terminal's width, not on the line's length.
 */
export function renderInputRow(
  prompt: string,
  promptWidth: number,
  input: InputText,
  columns: number,
): InputRow {
  // One cell is kept free so the cursor can sit after the last character without wrapping.
  const room = Math.max(1, columns - promptWidth - 1);
  const cursor = input.cursor;
  let start = cursor;
  let width = 0;
  while (start > 0) {
    const cells = charWidth(input.at(start - 1).codePointAt(0)!);
    if (width + cells > room) break;
    width += cells;
    start--;
  }
  const cursorCells = width;
  let end = cursor;
  let back = 0;
  while (end < input.length) {
    const cells = charWidth(input.at(end).codePointAt(0)!);
    if (width + cells > room) break;
    width += cells;
    back += cells;
    end++;
  }
  let visible = "";
  for (let i = start; i < end; i++) visible += input.at(i);
  return {
    text: CLEAR_LINE + prompt + visible + (back > 0 ? `\x1b[${back}D` : ""),
    cursorColumn: promptWidth + cursorCells,
  };
}

/** The text of `renderInputRow`. */
export function renderInputLine(
  prompt: string,
  promptWidth: number,
  input: InputText,
  columns: number,
): string {
  return renderInputRow(prompt, promptWidth, input, columns).text;
}

/**
 * Breaks a line into rows of at most `columns` cells at spaces, the rows after the first
 * indented by `indent` cells; a word wider than a row is cut. Colour sequences (SGR) take no
 * cells. The terminal would otherwise wrap in the middle of words.
 */
export function wrapWords(text: string, columns: number, indent: number): string[] {
  const pad = " ".repeat(Math.min(indent, Math.max(0, columns - 10)));
  const rows: string[] = [];
  let row = "";
  let width = 0;
  let rowStart = 0; // cells of indentation: a row holds text once it is wider
  const breakRow = () => {
    rows.push(row);
    [row, width, rowStart] = [pad, pad.length, pad.length];
  };
  text.split(" ").forEach((word, index) => {
    if (index > 0) {
      if (width > rowStart && width + 1 + displayWidth(word.replace(SGR, "")) > columns) {
        breakRow();
      } else {
        row += " ";
        width++;
      }
    }
    for (const part of word.split(SGR_PARTS)) {
      if (SGR_WHOLE.test(part)) {
        row += part;
        continue;
      }
      for (const char of part) {
        const cells = charWidth(char.codePointAt(0)!);
        if (width > rowStart && width + cells > columns) breakRow();
        row += char;
        width += cells;
      }
    }
  });
  rows.push(row);
  return rows;
}

// deno-lint-ignore no-control-regex -- colour sequences start with ESC
const SGR = /\x1b\[[0-9;]*m/g;
// deno-lint-ignore no-control-regex -- colour sequences start with ESC
const SGR_PARTS = /(\x1b\[[0-9;]*m)/;
// deno-lint-ignore no-control-regex -- colour sequences start with ESC
const SGR_WHOLE = /^\x1b\[[0-9;]*m$/;

/** Lines printed above the input row, followed by the redrawn input row. */
export function renderAbove(lines: readonly string[], inputLine: string): string {
  return CLEAR_LINE + lines.map((line) => line + "\r\n").join("") + inputLine;
}

/**
 * After the terminal got narrower, the input row drawn for the old width may have been
 * re-wrapped over several rows (tmux and most terminals re-flow): go up to its first row and
 * erase from there down, so no stale piece of the prompt stays on the screen.
 */
export function eraseAfterResize(cursorColumn: number, columns: number): string {
  const rows = Math.floor(cursorColumn / Math.max(1, columns));
  return "\r" + (rows > 0 ? `\x1b[${rows}A` : "") + "\x1b[J";
}
