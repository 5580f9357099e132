/** Tests of the message codec and the pyp2p-style field conversions. */
import assert from "node:assert/strict";
import {
  charLength,
  decodeMessage,
  isSafeText,
  isWireName,
  toInteger,
  toPort,
} from "../../lib/codec.ts";

Deno.test("decodeMessage() upper-cases the type and keeps every field", () => {
  assert.deepEqual(decodeMessage('{"type":"register","name":"a","extra":[1]}'), {
    ok: true,
    message: { type: "REGISTER", fields: { type: "register", name: "a", extra: [1] } },
  });
});

Deno.test("decodeMessage() reports each kind of bad line with its code", () => {
  const cases: [string, string][] = [
    ["", "empty_line"],
    ["  \t ", "empty_line"],
    ["{", "invalid_json"],
    ["REGISTER", "invalid_json"],
    ["[]", "not_an_object"],
    ["null", "not_an_object"],
    ["42", "not_an_object"],
    ["{}", "missing_type"],
    ['{"type":1}', "missing_type"],
    ['{"type":null}', "missing_type"],
  ];
  for (const [line, code] of cases) {
    assert.deepEqual(decodeMessage(line), { ok: false, code }, `for ${JSON.stringify(line)}`);
  }
});

Deno.test("toInteger() converts like Python int() for JSON values", () => {
  const cases: [unknown, number | undefined][] = [
    [42, 42],
    [-7, -7],
    [4.9, 4],
    [-4.9, -4],
    [true, 1],
    [false, 0],
    ["42", 42],
    [" 42 ", 42],
    ["+7", 7],
    ["-3", -3],
    ["1_000", 1000],
    ["4.5", undefined],
    ["", undefined],
    ["abc", undefined],
    ["1__0", undefined],
    ["_1", undefined],
    [null, undefined],
    [undefined, undefined],
    [[1], undefined],
    [{}, undefined],
    [Infinity, undefined],
    ["99999999999999999999", 1e20],
  ];
  for (const [value, expected] of cases) {
    assert.equal(toInteger(value), expected, `for ${JSON.stringify(value)}`);
  }
});

Deno.test("toPort() accepts 1..65535 only", () => {
  assert.equal(toPort("8080"), 8080);
  assert.equal(toPort(1), 1);
  assert.equal(toPort(65535), 65535);
  assert.equal(toPort(0), undefined);
  assert.equal(toPort(65536), undefined);
  assert.equal(toPort("x"), undefined);
});

Deno.test("isWireName() accepts 1..64 characters counted as code points", () => {
  assert.equal(isWireName("a"), true);
  assert.equal(isWireName("x".repeat(64)), true);
  assert.equal(isWireName("😀".repeat(64)), true);
  assert.equal(isWireName("x".repeat(65)), false);
  assert.equal(isWireName(""), false);
  assert.equal(isWireName(5), false);
  assert.equal(isWireName(null), false);
  assert.equal(isWireName("has space@and#"), true);
  assert.equal(charLength("😀é"), 2);
});

Deno.test("isSafeText() refuses controls, lone surrogates and what shows nothing, keeps emoji", () => {
  for (const text of ["bob", "zoë", "日本", "a-b_c.d", "❤️", "👍🏽", "👩‍💻"]) {
    assert.equal(isSafeText(text), true, JSON.stringify(text));
  }
  const unsafe = [
    "a\u0000b", // SQLite reads text up to a NUL
    "a\u001b[2J", // terminal escapes
    "a\u007f",
    "a\u0085", // C1
    "a\ud800", // lone surrogates: stored as U+FFFD
    "\udc00a",
    "a\u2028b",
    "\u202ebob", // bidirectional controls
    "bob\u200b", // zero-width space, word joiner, BOM, soft hyphen
    "bob\u2060",
    "\ufeffbob",
    "b\u00adob",
  ];
  for (const text of unsafe) assert.equal(isSafeText(text), false, JSON.stringify(text));
  assert.equal(isWireName("bob\u200b"), false);
});
