/**
 * Turns the bytes a terminal sends in raw mode into key presses. Pure: fed chunks, returns
 * keys. UTF-8 characters and escape sequences may be split across chunks (a read can end
 * anywhere), so both are buffered until complete. A run of printable characters in one read
 * (fast typing, a paste) comes out as one key, so a long paste costs one key, not thousands.
 */

/** Keys the line editor understands; `char` carries printable text (one or more code points). */
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
      | "clear"
      | "complete"
      | "page-up"
      | "page-down"
      | "focus-in"
      | "focus-out";
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
  "\x0c": { name: "clear" }, // Ctrl-L
  "\t": { name: "complete" },
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
  "5~": { name: "page-up" },
  "6~": { name: "page-down" },
  // Focus reporting (ESC [?1004h): the window gained or lost the keyboard focus.
  "I": { name: "focus-in" },
  "O": { name: "focus-out" },
};

/** Bracketed paste (ESC [?2004h): the terminal wraps pasted text in these two sequences. */
export const PASTE_START = "\x1b[200~";
export const PASTE_END = "\x1b[201~";

/** Stateful decoder: `push(bytes)` returns the keys completed by that chunk. */
export class KeyDecoder {
  #text = new TextDecoder("utf-8", { fatal: false });
  #pending = "";
  #pasting = false;
  #pasteEndsInCr = false;

  push(bytes: Uint8Array): Key[] {
    const input = this.#pending + this.#text.decode(bytes, { stream: true });
    const keys: Key[] = [];
    let i = 0;
    while (i < input.length) {
      if (this.#pasting) {
        i = this.#pasted(input, i, keys);
        if (this.#pasting) break; // the end marker has not arrived yet
        continue;
      }
      const code = input.charCodeAt(i);
      if (!_isControlCode(code)) {
        let end = i + 1;
        while (end < input.length && !_isControlCode(input.charCodeAt(end))) end++;
        keys.push({ name: "char", char: input.slice(i, end) });
        i = end;
        continue;
      }
      if (code === 0x1b) {
        const end = _escapeEnd(input, i);
        if (end === undefined) break; // incomplete: wait for the rest
        const sequence = input.slice(i, end);
        if (sequence === PASTE_START) this.#pasting = true;
        else {
          const key = _sequenceKey(sequence);
          if (key) keys.push(key);
        }
        i = end;
        continue;
      }
      const char = input[i++];
      const control = CONTROL_KEYS[char];
      // A terminal sends "\r\n" for one Enter in some modes: count it once.
      if (control && !(char === "\n" && input[i - 2] === "\r")) keys.push(control);
    }
    this.#pending = input.slice(i);
    return keys;
  }

  // Inside a paste, text is text: line breaks and tabs become spaces (a paste never sends a
  // line by itself), other controls are dropped. Returns where decoding goes on.
  #pasted(input: string, start: number, keys: Key[]): number {
    const endMarker = input.indexOf(PASTE_END, start);
    let stop = endMarker >= 0 ? endMarker : input.length;
    // A tail that may be the start of the end marker waits for the next read.
    if (endMarker < 0) {
      const escape = input.lastIndexOf("\x1b");
      if (escape >= start && PASTE_END.startsWith(input.slice(escape))) stop = escape;
    }
    let raw = input.slice(start, stop);
    // A CR LF split between two reads is still one line break.
    if (this.#pasteEndsInCr && raw.startsWith("\n")) raw = raw.slice(1);
    if (raw !== "") this.#pasteEndsInCr = raw.endsWith("\r");
    const text = _pastedText(raw);
    if (text !== "") keys.push({ name: "char", char: text });
    if (endMarker < 0) return stop;
    this.#pasting = false;
    return endMarker + PASTE_END.length;
  }
}

function _pastedText(raw: string): string {
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  return raw.replace(/\r\n|[\r\n\t]/g, " ").replace(/[\x00-\x1f\x7f-\x9f]/g, "");
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
  // SS3 sequences name only keys; "ESC O O" is not a focus report.
  if (sequence[1] === "O" && (sequence[2] === "I" || sequence[2] === "O")) return undefined;
  // Modifiers (e.g. "ESC [1;5C" for Ctrl-Right) are ignored: the plain key is used.
  const body = sequence.slice(2).replace(/^1;\d+/, "");
  return SEQUENCE_KEYS[body];
}

// C0 controls, DEL and C1 controls (UTF-16 code units: surrogates are never controls).
function _isControlCode(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code < 0xa0);
}
