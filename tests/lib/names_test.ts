import assert from "node:assert/strict";
import { checkName, nameSkeleton, safePathComponent } from "../../lib/names.ts";

Deno.test("checkName() refuses names that would make peer ids ambiguous", () => {
  assert.equal(checkName("Name", "alice"), undefined);
  assert.match(checkName("Name", "")!, /must not be empty/);
  assert.match(checkName("Name", "a@b")!, /must not contain "@"/);
  assert.match(checkName("Name", "a b")!, /must not contain " "/);
  assert.match(checkName("Name", "#room")!, /must not contain "#"/);
  assert.match(checkName("Name", "x".repeat(65))!, /longer than 64/);
});

Deno.test("checkName() accepts letters and digits of any script, marks, - _ and .", () => {
  for (const name of ["Zoë", "日本語", "jo-ann_2.0", "Ωmega", "e\u0301cole", "ann-1f2e"]) {
    assert.equal(checkName("Name", name.normalize("NFC")), undefined, name);
  }
});

Deno.test("checkName() refuses control, format, bidi and invisible characters, shown escaped", () => {
  const cases: [string, string][] = [
    ["alice\u200b", "\\u200b"], // zero-width space
    ["ali\u00adce", "\\u00ad"], // soft hyphen
    ["ali\u202ece", "\\u202e"], // right-to-left override
    ["a\x00b", "\\u0000"], // NUL
    ["a\x1b[2Jb", "\\u001b"], // ESC
    ["alice ", '" "'], // trailing space
    ["al\nice", "\\n"],
    ["bob\ufe0f", "\\ufe0f"], // variation selector (a mark drawn as nothing)
    ["\u3164bob", "\\u3164"], // Hangul filler (a letter drawn as nothing)
  ];
  for (const [name, shown] of cases) {
    const problem = checkName("Username", name);
    assert.ok(problem?.includes(shown), `${JSON.stringify(name)}: ${problem}`);
    // The message itself holds no control or invisible character.
    // deno-lint-ignore no-control-regex -- looking for raw control bytes
    assert.ok(!/[\x00-\x1f\u200b\u00ad\u202e]/.test(problem!), problem);
  }
});

Deno.test("checkName() refuses path tricks and compatibility forms", () => {
  assert.match(checkName("Name", "../../../../../pwned")!, /must not contain "\/"/);
  assert.match(checkName("Name", "..")!, /must start with a letter or digit/);
  assert.match(checkName("Name", ".hidden")!, /must start with a letter or digit/);
  assert.match(checkName("Name", "ａｌｉｃｅ")!, /compatibility characters; write it as "alice"/);
});

Deno.test("nameSkeleton() folds every look-alike of a name onto the same form", () => {
  const alice = nameSkeleton("alice");
  const lookAlikes = [
    "аlice", // Cyrillic а
    "alicе", // Cyrillic е
    "ALICE",
    "Аlice", // Cyrillic capital А
    "alice\u200b", // zero-width space
    "alice ", // trailing space
    "ali\u00adce", // soft hyphen
    "ａｌｉｃｅ", // fullwidth
    "al\u2060ice", // word joiner
    "a1ice", // digit one
    "alιce", // Greek iota
    "\u202ealice", // bidi override
  ];
  for (const name of lookAlikes) assert.equal(nameSkeleton(name), alice, JSON.stringify(name));
  for (const other of ["alicia", "bob", "alce", "malice"]) {
    assert.notEqual(nameSkeleton(other), alice, other);
  }
});

Deno.test("safePathComponent() never yields a separator or a dot-only component", () => {
  assert.equal(safePathComponent("ann"), "ann");
  for (const name of ["../../../../../pwned", "..", ".", "a/b", "a\\b", "%2F"]) {
    const component = safePathComponent(name);
    assert.ok(!/[/\\]/.test(component), component);
    assert.ok(!/^\.*$/.test(component), component);
  }
  assert.notEqual(safePathComponent("a/b"), safePathComponent("a%2Fb"));
});
