/** Table-driven tests of the newline framing: every fixture is also fed split at every position. */
import assert from "node:assert/strict";
import { encodeLine, type Frame, LineDecoder, utf8Length } from "../../lib/framing.ts";

const encoder = new TextEncoder();

interface Fixture {
  name: string;
  input: Uint8Array;
  expected: Frame[];
  limit?: number;
}

function lines(...texts: string[]): Frame[] {
  return texts.map((text) => ({ kind: "line", text }));
}

const TOO_LONG: Frame = { kind: "error", code: "line_too_long", limit: 32768 };

const FIXTURES: Fixture[] = [
  {
    name: "one line",
    input: encoder.encode('{"type":"DISCOVER"}\n'),
    expected: lines('{"type":"DISCOVER"}'),
  },
  {
    name: "several lines in one chunk",
    input: encoder.encode("a\nbb\nccc\n"),
    expected: lines("a", "bb", "ccc"),
  },
  { name: "CRLF endings", input: encoder.encode("a\r\nb\r\n"), expected: lines("a", "b") },
  { name: "an empty line", input: encoder.encode("\n"), expected: lines("") },
  {
    name: "a line without its newline yet",
    input: encoder.encode("a\npartial"),
    expected: lines("a"),
  },
  {
    name: "multi-byte UTF-8",
    input: encoder.encode("héllo ✓ 😀\n"),
    expected: lines("héllo ✓ 😀"),
  },
  {
    name: "a line of exactly 32768 bytes",
    input: encoder.encode("x".repeat(32768) + "\n"),
    expected: lines("x".repeat(32768)),
  },
  {
    name: "a line of exactly 32768 bytes ending in CRLF",
    input: encoder.encode("x".repeat(32768) + "\r\n"),
    expected: lines("x".repeat(32768)),
  },
  {
    name: "a line of 32769 bytes",
    input: encoder.encode("x".repeat(32769) + "\n"),
    expected: [TOO_LONG],
  },
  {
    name: "a long line after a good one, then more",
    input: encoder.encode("ok\n" + "y".repeat(40000) + "\nafter\n"),
    expected: [...lines("ok"), TOO_LONG],
  },
  {
    name: "an endless line with no newline",
    input: encoder.encode("z".repeat(33000)),
    expected: [TOO_LONG],
  },
  {
    name: "a small limit",
    input: encoder.encode("abcd\nabcde\nabc\n"),
    expected: [...lines("abcd"), { kind: "error", code: "line_too_long", limit: 4 }],
    limit: 4,
  },
];

/** Feeds `chunks` to a fresh decoder; checks the buffer bound and that nothing follows an error. */
function decodeAll(chunks: Uint8Array[], limit?: number): Frame[] {
  const decoder = new LineDecoder(limit);
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    const wasFailed = decoder.failed;
    const out = decoder.push(chunk);
    if (wasFailed) assert.deepEqual(out, [], "nothing is emitted after the error");
    frames.push(...out);
    assert.ok(decoder.bufferedBytes <= decoder.limit + 1, "buffer stays within the limit");
  }
  return frames;
}

for (const fixture of FIXTURES) {
  Deno.test(`LineDecoder.push() decodes ${fixture.name} in one chunk`, () => {
    assert.deepEqual(decodeAll([fixture.input], fixture.limit), fixture.expected);
  });

  Deno.test(`LineDecoder.push() decodes ${fixture.name} split at every position`, () => {
    // Large fixtures are split at a sample of positions around the interesting boundaries.
    const positions = fixture.input.length <= 64
      ? Array.from({ length: fixture.input.length + 1 }, (_, i) => i)
      : [0, 1, 2, 3, 4, 32766, 32767, 32768, 32769, 32770, fixture.input.length - 1]
        .filter((i) => i <= fixture.input.length);
    for (const at of positions) {
      const chunks = [fixture.input.subarray(0, at), fixture.input.subarray(at)];
      assert.deepEqual(decodeAll(chunks, fixture.limit), fixture.expected, `split at ${at}`);
    }
  });

  // Byte-at-a-time feeding copies the pending buffer each time: only for the small fixtures.
  if (fixture.input.length <= 64) {
    Deno.test(`LineDecoder.push() decodes ${fixture.name} one byte at a time`, () => {
      const chunks = Array.from(fixture.input, (byte) => Uint8Array.of(byte));
      assert.deepEqual(decodeAll(chunks, fixture.limit), fixture.expected);
    });
  }
}

Deno.test("LineDecoder.push() keeps a UTF-8 character split across chunks intact", () => {
  const bytes = encoder.encode("€😀\n");
  for (let at = 1; at < bytes.length - 1; at++) {
    const decoder = new LineDecoder();
    assert.deepEqual(decoder.push(bytes.subarray(0, at)), []);
    assert.deepEqual(decoder.push(bytes.subarray(at)), lines("€😀"));
  }
});

Deno.test("LineDecoder.push() does not buffer more than the limit from an endless sender", () => {
  const decoder = new LineDecoder();
  const chunk = new Uint8Array(4096).fill(0x61);
  let frames: Frame[] = [];
  for (let i = 0; i < 100; i++) {
    frames.push(...decoder.push(chunk));
    assert.ok(decoder.bufferedBytes <= 32769);
  }
  assert.deepEqual(frames, [TOO_LONG]);
  assert.equal(decoder.bufferedBytes, 0);
  frames = decoder.push(encoder.encode("\nfine\n"));
  assert.deepEqual(frames, []);
});

Deno.test("LineDecoder.end() returns a last line that had no newline, once", () => {
  const decoder = new LineDecoder(8);
  assert.deepEqual(decoder.push(encoder.encode("one\ntwo\r")), [{ kind: "line", text: "one" }]);
  assert.deepEqual(decoder.end(), [{ kind: "line", text: "two" }]);
  assert.deepEqual(decoder.end(), []);
});

Deno.test("LineDecoder.end() reports a pending line over the limit instead of returning it", () => {
  const decoder = new LineDecoder(4);
  assert.deepEqual(decoder.push(encoder.encode("12345")), []);
  assert.deepEqual(decoder.end(), [{ kind: "error", code: "line_too_long", limit: 4 }]);
});

Deno.test("encodeLine() writes compact JSON on one line ending in a newline", () => {
  const bytes = encodeLine({ type: "REGISTER", name: "a\nb", port: 1 });
  const text = new TextDecoder().decode(bytes);
  assert.equal(text, '{"type":"REGISTER","name":"a\\nb","port":1}\n');
  assert.deepEqual(new LineDecoder().push(bytes), lines(text.slice(0, -1)));
});

Deno.test("utf8Length() counts the bytes TextEncoder writes, short and long texts alike", () => {
  const texts = [
    "",
    "ascii",
    "é ü",
    "€ 中文",
    "😀 astral",
    "\ud800 lone \udc00",
    "x".repeat(40_000),
  ];
  texts.push("é😀".repeat(20_000)); // longer than any line: measured without the scratch buffer
  for (const text of texts) assert.equal(utf8Length(text), encoder.encode(text).length);
});
