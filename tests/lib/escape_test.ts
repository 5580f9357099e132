import assert from "node:assert/strict";
import { escapeJsonText, escapeText, quoteValue } from "../../lib/escape.ts";
import { Logger } from "../../lib/log.ts";

Deno.test("escapeText() shows control characters visibly and keeps one line", () => {
  assert.equal(escapeText("a\x1b[2Jb\nc\x7f\u009bd\u202ee"), "a^[[2Jb^Jc^?\ufffdd\ufffde");
  assert.equal(escapeText("family 👨‍👩‍👧 ok"), "family 👨‍👩‍👧 ok");
});

Deno.test("quoteValue() leaves plain tokens bare and quotes the rest as JSON strings", () => {
  assert.equal(quoteValue("alice@default"), "alice@default");
  assert.equal(quoteValue("127.0.0.1:80"), "127.0.0.1:80");
  assert.equal(quoteValue("127.0.0.1:80", ":"), '"127.0.0.1:80"');
  const nasty = [
    "",
    "a b",
    'say "hi"',
    "k=v",
    "back\\slash",
    "alice@default: I changed my number",
    "esc\x1b[2J",
    "nul\x00",
    "line\nforged INFO",
    "zero\u200bwidth",
    "rtl\u202eevil",
    "ls\u2028ps\u2029",
    // Letters and marks drawn as nothing: each looks like plain "bob".
    "bob\u{E0100}",
    "bob\ufe0f",
    "\u3164bob",
  ];
  for (const value of nasty) {
    const token = quoteValue(value, ":");
    assert.ok(token.startsWith('"') && token.endsWith('"'), token);
    assert.equal(JSON.parse(token), value, "the token reads back as the value");
    // deno-lint-ignore no-control-regex -- looking for raw control bytes
    assert.ok(!/[\x00-\x1f\x7f\u200b\u202e\u2028\u2029\ufe0f\u3164]/u.test(token), token);
    assert.ok(!token.includes("\u{E0100}"), token);
  }
});

Deno.test("escapeJsonText() escapes what JSON.stringify leaves raw, and stays valid JSON", () => {
  const value = { text: "a\u202eb\u2028c\u0085d\u200be" };
  const escaped = escapeJsonText(JSON.stringify(value));
  assert.ok(!/[\u202e\u2028\u0085\u200b]/.test(escaped), escaped);
  assert.deepEqual(JSON.parse(escaped), value);
});

Deno.test("A log record holding network text stays one line without raw control bytes", () => {
  for (const format of ["human", "json"] as const) {
    const lines: string[] = [];
    const log = new Logger({ level: "debug", format, sink: (line) => lines.push(line) }, "Router");
    const forged = "x\n2026-01-01T00:00:00.000Z INFO  [Router] Connected peer=alice@default";
    log.info(`Hello from ${forged}\x1b[2J`, { peer: forged, name: "nul\x00", n: 3 });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes("\n"), lines[0]);
    // deno-lint-ignore no-control-regex -- looking for raw control bytes
    assert.ok(!/[\x00-\x1f\x7f]/.test(lines[0]), lines[0]);
    if (format === "json") assert.equal(JSON.parse(lines[0]).peer, forged);
    else assert.ok(lines[0].includes(`peer=${JSON.stringify(forged)}`), lines[0]);
  }
});
