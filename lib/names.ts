/**
 * The one rule for names a person reads (account, peer, namespace and room names), and the
 * confusable-folded form under which the tracker compares names for ownership. Free of I/O.
 *
 * The rule is an explicit allow-list rather than RFC 8265's PRECIS profiles: 1..64 characters,
 * each a letter, a digit, a combining mark after one of those, or one of `-`, `_`, `.`; the
 * first a letter or a digit; the name already in NFKC form. That leaves out white space,
 * control, format (zero-width, soft hyphen), bidi-override and other invisible characters,
 * symbols, `@`, `#`, `/`, and fullwidth or other compatibility forms.
 */
import { charLength } from "./codec.ts";
import { MAX_NAME_CHARS } from "./constants.ts";
import { quoteValue } from "./escape.ts";

const _ALLOWED_CHAR = /^[\p{L}\p{N}\p{M}._-]$/u;
const _FIRST_CHAR = /^[\p{L}\p{N}]/u;
// Letters and marks drawn as nothing (variation selectors, Hangul fillers): "bob" with one
// would look like "bob".
const _DRAWN_AS_NOTHING = /^\p{Default_Ignorable_Code_Point}$/u;

/**
 * Checks a name against the rule; returns a sentence describing the problem, or undefined.
 * `kind` starts the sentence ("Username", "Peer name", ...).
 */
export function checkName(kind: string, value: string): string | undefined {
  if (value.length === 0) return `${kind} must not be empty`;
  const shown = _quoted(value);
  if (charLength(value) > MAX_NAME_CHARS) {
    return `${kind} ${shown} is longer than ${MAX_NAME_CHARS} characters`;
  }
  const bad = [...value].find((char) => !_ALLOWED_CHAR.test(char) || _DRAWN_AS_NOTHING.test(char));
  if (bad !== undefined) {
    return `${kind} ${shown} must not contain ${_quoted(bad)} (allowed: letters, ` +
      `digits, combining marks, "-", "_" and ".")`;
  }
  if (!_FIRST_CHAR.test(value)) return `${kind} ${shown} must start with a letter or digit`;
  if (value.normalize("NFKC") !== value) {
    return `${kind} ${shown} uses compatibility characters; write it as ` +
      _quoted(value.normalize("NFKC"));
  }
  return undefined;
}

// Always in quotes, with invisible characters escaped.
function _quoted(value: string): string {
  const token = quoteValue(value);
  return token.startsWith('"') ? token : `"${token}"`;
}

/**
 * Look-alikes folded onto the Latin letter they imitate: a subset of Unicode TR39's
 * confusables.txt covering Cyrillic, Greek, Armenian and a few Latin letters that pass for
 * ASCII, plus the digits 0 and 1 (read as o and l). Applied after NFKC and lower-casing, so
 * fullwidth and other compatibility forms never need a row here.
 */
const _CONFUSABLES: Record<string, string> = {
  // Cyrillic
  "а": "a",
  "в": "b",
  "ь": "b",
  "с": "c",
  "ԁ": "d",
  "е": "e",
  "ҽ": "e",
  "һ": "h",
  "і": "i",
  "ј": "j",
  "к": "k",
  "ӏ": "l",
  "м": "m",
  "н": "h",
  "о": "o",
  "р": "p",
  "ԛ": "q",
  "ѕ": "s",
  "т": "t",
  "ѵ": "v",
  "ԝ": "w",
  "х": "x",
  "у": "y",
  "ү": "y",
  "з": "3",
  // Greek
  "α": "a",
  "β": "b",
  "ε": "e",
  "η": "n",
  "ι": "i",
  "κ": "k",
  "ν": "v",
  "μ": "m",
  "ο": "o",
  "ρ": "p",
  "τ": "t",
  "υ": "u",
  "χ": "x",
  "γ": "y",
  "ω": "w",
  "ζ": "z",
  // Armenian
  "օ": "o",
  "ս": "u",
  "հ": "h",
  "ց": "g",
  "զ": "q",
  // Latin letters and digits that pass for others
  "ı": "i",
  "ȷ": "j",
  "ɡ": "g",
  "ɑ": "a",
  "ꭰ": "d",
  "ʟ": "l",
  "ℓ": "l",
  "0": "o",
  "1": "l",
  "|": "l",
};

// Dashes and hyphens that read as "-"; dots that read as ".".
const _DASHES = /[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d\u02d7\u2796]/gu;
const _DOTS = /[\u00b7\u2024\u2027\u30fb\uff0e\u0701\u0702]/gu;
// Invisible characters: they change nothing a reader sees, so they change no skeleton.
const _INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Z}\s]/gu;

/**
 * The confusable-folded form of a name (the model is Unicode TR39's skeleton): two names with
 * the same skeleton look alike to a reader, so they count as the same name for ownership.
 * Steps: NFKC, lower case, drop invisible and white-space characters, fold dashes and dots,
 * then map each look-alike letter through the table above.
 */
export function nameSkeleton(name: string): string {
  const folded = name.normalize("NFKC").toLowerCase().normalize("NFKC")
    .replace(_INVISIBLE, "")
    .replace(_DASHES, "-")
    .replace(_DOTS, ".");
  let skeleton = "";
  for (const char of folded.normalize("NFD")) skeleton += _CONFUSABLES[char] ?? char;
  return skeleton.normalize("NFC");
}

/** The name made safe as one path component (no separator, never `.` or `..`). */
export function safePathComponent(name: string): string {
  // encodeURIComponent leaves only [A-Za-z0-9-_.!~*'()]: no "/" or "\", and "%" is escaped.
  const encoded = encodeURIComponent(name);
  return /^\.*$/.test(encoded) ? encoded.replaceAll(".", "%2E") : encoded;
}
