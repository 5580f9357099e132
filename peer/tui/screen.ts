/**
 * Terminal output around a prompt that must never be garbled: every print clears the input
 * line, writes the new lines above it, and redraws prompt and typed text with the cursor in
 * place. The escape sequences are built by pure functions; `runTerminal` only writes them.
 */
import { displayWidth } from "./line_editor.ts";

/** Erases the current terminal row and returns to its first column. */
export const CLEAR_LINE = "\r\x1b[2K";

/**
 * The input row: prompt and the part of `text` that fits in `columns`, then the cursor moved
 * back to `cursor` (a code point index). A text wider than the terminal scrolls sideways so
 * that the cursor stays visible; the row never wraps, so clearing one row is always enough.
 */
export function renderInputLine(
  prompt: string,
  promptWidth: number,
  text: string,
  cursor: number,
  columns: number,
): string {
  const chars = Array.from(text);
  // One cell is kept free so the cursor can sit after the last character without wrapping.
  const room = Math.max(1, columns - promptWidth - 1);
  let start = 0;
  while (start < cursor && displayWidth(chars.slice(start, cursor).join("")) > room) start++;
  let end = cursor;
  let width = displayWidth(chars.slice(start, cursor).join(""));
  while (end < chars.length && width + displayWidth(chars[end]) <= room) {
    width += displayWidth(chars[end]);
    end++;
  }
  const visible = chars.slice(start, end).join("");
  const back = displayWidth(chars.slice(cursor, end).join(""));
  return CLEAR_LINE + prompt + visible + (back > 0 ? `\x1b[${back}D` : "");
}

/** Lines printed above the input row, followed by the redrawn input row. */
export function renderAbove(lines: readonly string[], inputLine: string): string {
  return CLEAR_LINE + lines.map((line) => line + "\r\n").join("") + inputLine;
}
