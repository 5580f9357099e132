/** Table-driven tests of the Noise frames: every fixture is also fed split at every position. */
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, NoiseError, type NoiseErrorCode } from "../../lib/noise/mod.ts";

interface Fixture {
  name: string;
  input: Uint8Array;
  /** The frames decoded before any error. */
  expected: Uint8Array[];
  error?: NoiseErrorCode;
  maxLength?: number;
}

interface Decoded {
  frames: Uint8Array[];
  error?: NoiseErrorCode;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const filled = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);
const join = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

const FIXTURES: Fixture[] = [
  { name: "one frame", input: bytes(0, 3, 1, 2, 3), expected: [bytes(1, 2, 3)] },
  { name: "a frame of one byte", input: bytes(0, 1, 9), expected: [bytes(9)] },
  {
    name: "several frames in one chunk",
    input: bytes(0, 1, 7, 0, 2, 8, 9, 0, 3, 4, 5, 6),
    expected: [bytes(7), bytes(8, 9), bytes(4, 5, 6)],
  },
  {
    name: "a length above 255 (big-endian)",
    input: join(bytes(1, 2), filled(258, 0xab)),
    expected: [filled(258, 0xab)],
  },
  {
    name: "a frame of the largest length, 65535",
    input: join(bytes(0xff, 0xff), filled(65535, 0x5a), bytes(0, 1, 1)),
    expected: [filled(65535, 0x5a), bytes(1)],
  },
  {
    name: "a frame not complete yet",
    input: bytes(0, 2, 1, 2, 0, 5, 1, 2),
    expected: [bytes(1, 2)],
  },
  { name: "a lone header byte", input: bytes(0), expected: [] },
  {
    name: "a zero length after a good frame",
    input: bytes(0, 1, 1, 0, 0, 0, 1, 2),
    expected: [bytes(1)],
    error: "empty_frame",
  },
  {
    name: "a length over the decoder's limit",
    input: bytes(0, 2, 1, 2, 0, 5, 1, 2, 3, 4, 5),
    expected: [bytes(1, 2)],
    error: "frame_too_long",
    maxLength: 4,
  },
  {
    name: "a frame of exactly the decoder's limit",
    input: bytes(0, 4, 1, 2, 3, 4),
    expected: [bytes(1, 2, 3, 4)],
    maxLength: 4,
  },
];

/** Feeds `chunks` to a fresh decoder; checks the buffer bound and that nothing follows an error. */
function decodeAll(chunks: Uint8Array[], maxLength?: number): Decoded {
  const decoder = new FrameDecoder(maxLength);
  const frames: Uint8Array[] = [];
  let error: NoiseErrorCode | undefined;
  for (const chunk of chunks) {
    if (error !== undefined) {
      assert.deepEqual(decoder.push(chunk), [], "nothing is emitted after the error");
      continue;
    }
    try {
      // Copies, since a frame may be a view of the chunk.
      frames.push(...decoder.push(chunk).map((frame) => frame.slice()));
    } catch (thrown) {
      assert.ok(thrown instanceof NoiseError, `a NoiseError, not ${thrown}`);
      error = thrown.code;
      assert.ok(decoder.failed);
      assert.equal(decoder.bufferedBytes, 0);
    }
    assert.ok(decoder.bufferedBytes <= decoder.maxLength, "buffer stays within one frame");
  }
  return { frames, error };
}

/**
 * An error drops the frames decoded earlier in the same push (the stream is closed anyway), so
 * a split may return fewer of them: always a prefix, and always the same error.
 */
function assertDecoded(actual: Decoded, fixture: Fixture, exact: boolean, label = ""): void {
  assert.equal(actual.error, fixture.error, `error ${label}`);
  if (exact || fixture.error === undefined) {
    assert.deepEqual(actual.frames, fixture.expected, `frames ${label}`);
  } else {
    assert.deepEqual(
      actual.frames,
      fixture.expected.slice(0, actual.frames.length),
      `prefix ${label}`,
    );
  }
}

function positions(length: number): number[] {
  if (length <= 64) return Array.from({ length: length + 1 }, (_, i) => i);
  // Large fixtures: the boundaries around the headers and the ends.
  return [0, 1, 2, 3, 4, 100, 65535, 65536, 65537, 65538, length - 2, length - 1, length]
    .filter((i) => i <= length);
}

for (const fixture of FIXTURES) {
  Deno.test(`FrameDecoder.push() decodes ${fixture.name} in one chunk`, () => {
    assertDecoded(decodeAll([fixture.input], fixture.maxLength), fixture, false);
  });

  Deno.test(`FrameDecoder.push() decodes ${fixture.name} split at every position`, () => {
    for (const at of positions(fixture.input.length)) {
      const chunks = [fixture.input.subarray(0, at), fixture.input.subarray(at)];
      assertDecoded(decodeAll(chunks, fixture.maxLength), fixture, false, `split at ${at}`);
    }
  });

  if (fixture.input.length <= 64) {
    Deno.test(`FrameDecoder.push() decodes ${fixture.name} one byte at a time`, () => {
      // Each frame completes in its own push here, so even an error fixture gives them all.
      const chunks = Array.from(fixture.input, (byte) => Uint8Array.of(byte));
      assertDecoded(decodeAll(chunks, fixture.maxLength), fixture, true);
    });
  }

  if (fixture.error === undefined) {
    Deno.test(`encodeFrame() writes the frames of ${fixture.name} back`, () => {
      const encoded = join(...fixture.expected.map(encodeFrame));
      assert.deepEqual(encoded, fixture.input.subarray(0, encoded.length));
    });
  }
}

Deno.test("encodeFrame() refuses a body over 65535 bytes and an empty one", () => {
  assert.throws(() => encodeFrame(new Uint8Array(65536)), { code: "frame_too_long" });
  assert.throws(() => encodeFrame(new Uint8Array(0)), { code: "empty_frame" });
  assert.deepEqual(encodeFrame(new Uint8Array(65535)).subarray(0, 2), bytes(0xff, 0xff));
});

Deno.test("FrameDecoder refuses a limit outside 1..65535", () => {
  for (const limit of [0, 65536, 1.5]) assert.throws(() => new FrameDecoder(limit), RangeError);
});

Deno.test("FrameDecoder.push() holds one partial frame at most however the bytes trickle in", () => {
  const decoder = new FrameDecoder();
  const frame = encodeFrame(filled(65535, 1));
  let frames: Uint8Array[] = [];
  for (let at = 0; at < frame.length; at += 4096) {
    frames = frames.concat(decoder.push(frame.subarray(at, at + 4096)));
    assert.ok(decoder.bufferedBytes <= 65535);
  }
  assert.equal(frames.length, 1);
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("FrameDecoder.push() keeps large frames apart while it reuses their buffers", () => {
  // Frames of 20,000 bytes in reads of 7,000: most span reads, and a push often completes one
  // frame while it starts the next.
  const sent = Array.from({ length: 12 }, (_, i) => filled(20_000, i + 1));
  const stream = join(...sent.map(encodeFrame));
  const decoder = new FrameDecoder();
  const received: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += 7000) {
    // Checked before the next push, as the decoder asks.
    for (const frame of decoder.push(stream.subarray(at, at + 7000))) {
      assert.deepEqual(frame, sent[received.length], `frame ${received.length}`);
      received.push(frame);
    }
  }
  assert.equal(received.length, sent.length);
});

Deno.test("FrameDecoder.push() lets go of its large buffers after a read with no large frame", () => {
  const decoder = new FrameDecoder();
  const [a, b, c] = [1, 2, 3].map((value) => encodeFrame(filled(40_000, value)));
  decoder.push(a.subarray(0, 30_000));
  const [first] = decoder.push(a.subarray(30_000));
  // Only a small frame in this read: a stream of large ones later starts in buffers of its own.
  assert.deepEqual(decoder.push(encodeFrame(bytes(5))), [bytes(5)]);
  decoder.push(b.subarray(0, 30_000));
  decoder.push(join(b.subarray(30_000), c.subarray(0, 30_000)));
  const [third] = decoder.push(c.subarray(30_000));
  assert.deepEqual(third, filled(40_000, 3));
  assert.notEqual(third.buffer, first.buffer);
});
