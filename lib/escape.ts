/**
 * Untrusted text made safe where it meets a person or a log: names, ids and messages from the
 * network or disk may hold control, bidi or invisible characters that move the cursor, clear
 * the screen, reorder a line or forge a second one. Free of I/O. The model is Go's log/slog
 * text handler: values are bare when they read unambiguously, else quoted with escapes.
 */

// C0 controls, DEL, C1 controls, line and paragraph separators, bidi embeddings, overrides
// and isolates: what can change the terminal's state or the layout of a line.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const _CONTROL = /[\x00-\x1f\x7f\x80-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Free text (a chat message, a log message) made printable on one line: C0 controls and DEL
 * become caret notation (`^[`, `^J`, `^?`), the other controls U+FFFD. Everything else, emoji
 * sequences included, is left as it is.
 */
export function escapeText(text: string): string {
  return text.replace(_CONTROL, (char) => {
    const code = char.charCodeAt(0);
    if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
    if (code === 0x7f) return "^?";
    return "\ufffd";
  });
}

// A character a value cannot hold bare: white space, quote, backslash, `=`, anything that is
// not a visible letter, mark, number, punctuation or symbol (controls, format characters such
// as zero-width space and soft hyphen, bidi controls, unassigned code points), or one drawn as
// nothing though it is a letter or a mark (variation selectors, Hangul fillers: "bob" with one
// looks like "bob").
const _NEEDS_QUOTES = /[\s"\\=]|[^\p{L}\p{M}\p{N}\p{P}\p{S}]|\p{Default_Ignorable_Code_Point}/u;
// What a quoted value shows as an escape: anything invisible but the plain space.
const _INVISIBLE = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]|\p{Default_Ignorable_Code_Point}/u;

/**
 * A value (a name, an id, a field) as one token: bare when it is non-empty and needs no
 * escaping, else a JSON string literal in which every invisible or control character is a
 * `\uXXXX` escape. `alsoQuote` lists characters that must not appear bare in this context
 * (`:` for the sender in `FROM: TEXT`). The result never holds a line break.
 */
export function quoteValue(value: string, alsoQuote = ""): string {
  if (
    value !== "" && !_NEEDS_QUOTES.test(value) && ![...alsoQuote].some((c) => value.includes(c))
  ) {
    return value;
  }
  let quoted = '"';
  for (const char of value) {
    if (char === '"' || char === "\\") quoted += "\\" + char;
    else if (char === "\n") quoted += "\\n";
    else if (char === "\r") quoted += "\\r";
    else if (char === "\t") quoted += "\\t";
    else if (!_INVISIBLE.test(char)) quoted += char;
    else quoted += _unicodeEscape(char);
  }
  return quoted + '"';
}

/** JSON text with every control, bidi and invisible character escaped (JSON.stringify leaves C1, U+2028 and bidi controls raw). */
export function escapeJsonText(json: string): string {
  return json.replace(
    /[\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g,
    _unicodeEscape,
  );
}

function _unicodeEscape(char: string): string {
  let escaped = "";
  // Astral characters become a surrogate pair of escapes, as JSON writes them.
  for (let index = 0; index < char.length; index++) {
    escaped += "\\u" + char.charCodeAt(index).toString(16).padStart(4, "0");
  }
  return escaped;
}
