/**
 * Turns the bytes a terminal sends in raw mode into key presses. Pure: fed chunks, returns
 * keys. UTF-8 characters and escape sequences may be split across chunks (a read can end
 * anywhere), so both are buffered until complete.
 */

/** Keys the line editor understands; `char` carries one printable code point. */
export type Key =
  | { name: "char"; char: string }
  | {
    name:
      | "enter"
      | "backspace"
      | "delete"
      | "left"
      | "right"
      | "home"
      | "end"
      | "up"
      | "down"
      | "kill-line"
      | "kill-to-end"
      | "kill-word"
      | "interrupt"
      | "eof"
      | "redraw";
  };

/** Single control bytes and what they mean (emacs/readline bindings). */
const CONTROL_KEYS: Record<string, Key> = {
  "\r": { name: "enter" },
  "\n": { name: "enter" },
  "\x7f": { name: "backspace" },
  "\b": { name: "backspace" },
  "\x01": { name: "home" }, // Ctrl-A
  "\x05": { name: "end" }, // Ctrl-E
  "\x02": { name: "left" }, // Ctrl-B
  "\x06": { name: "right" }, // Ctrl-F
  "\x10": { name: "up" }, // Ctrl-P
  "\x0e": { name: "down" }, // Ctrl-N
  "\x15": { name: "kill-line" }, // Ctrl-U
  "\x0b": { name: "kill-to-end" }, // Ctrl-K
  "\x17": { name: "kill-word" }, // Ctrl-W
  "\x03": { name: "interrupt" }, // Ctrl-C
  "\x04": { name: "eof" }, // Ctrl-D
  "\x0c": { name: "redraw" }, // Ctrl-L
  "\t": { name: "char", char: " " },
};

/** The final part of CSI (`ESC [`) and SS3 (`ESC O`) sequences that name a key. */
const SEQUENCE_KEYS: Record<string, Key> = {
  "A": { name: "up" },
  "B": { name: "down" },
  "C": { name: "right" },
  "D": { name: "left" },
  "H": { name: "home" },
  "F": { name: "end" },
  "1~": { name: "home" },
  "7~": { name: "home" },
  "4~": { name: "end" },
  "8~": { name: "end" },
  "3~": { name: "delete" },
};

/** Stateful decoder: `push(bytes)` returns the keys completed by that chunk. */
export class KeyDecoder {
  #text = new TextDecoder("utf-8", { fatal: false });
  #pending = "";

  push(bytes: Uint8Array): Key[] {
    this.#pending += this.#text.decode(bytes, { stream: true });
    const keys: Key[] = [];
    let i = 0;
    const input = this.#pending;
    while (i < input.length) {
      const char = String.fromCodePoint(input.codePointAt(i)!);
      if (char === "\x1b") {
        const end = _escapeEnd(input, i);
        if (end === undefined) break; // incomplete: wait for the rest
        const key = _sequenceKey(input.slice(i, end));
        if (key) keys.push(key);
        i = end;
        continue;
      }
      i += char.length;
      const control = CONTROL_KEYS[char];
      if (control) {
        // A terminal sends "\r\n" for one Enter in some modes: count it once.
        if (control.name === "enter" && char === "\n" && input[i - 2] === "\r") continue;
        keys.push(control);
      } else if (!_isControl(char)) {
        keys.push({ name: "char", char });
      }
    }
    this.#pending = input.slice(i);
    return keys;
  }
}

/** Index just past the escape sequence starting at `start`, or undefined when incomplete. */
function _escapeEnd(input: string, start: number): number | undefined {
  const kind = input[start + 1];
  if (kind === undefined) return undefined;
  if (kind !== "[" && kind !== "O") return start + 2; // Alt+key: consumed and ignored
  for (let i = start + 2; i < input.length; i++) {
    const code = input.charCodeAt(i);
    // CSI parameters and intermediates are 0x20..0x3f; the final byte is 0x40..0x7e.
    if (code >= 0x40 && code <= 0x7e) return i + 1;
    if (code < 0x20 || code > 0x3f) return i; // malformed: drop what we have
  }
  return undefined;
}

function _sequenceKey(sequence: string): Key | undefined {
  // Modifiers (e.g. "ESC [1;5C" for Ctrl-Right) are ignored: the plain key is used.
  const body = sequence.slice(2).replace(/^1;\d+/, "");
  return SEQUENCE_KEYS[body];
}

function _isControl(char: string): boolean {
  const code = char.codePointAt(0)!;
  return code < 0x20 || (code >= 0x7f && code < 0xa0);
}
