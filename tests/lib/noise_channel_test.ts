/**
 * The secure channel with real bytes and no sockets: two channels drive each other, and
 * hostile peers built from the bare HandshakeState send what an honest channel never would.
 */
import assert from "node:assert/strict";
import {
  createSecureChannel,
  encodeFrame,
  fingerprint,
  generateIdentityKeyPair,
  generateStaticKeyPair,
  HandshakeState,
  identityFromPrivateKey,
  type IdentityKeyPair,
  type KeyPair,
  MAX_TRANSPORT_PAYLOAD_BYTES,
  NoiseError,
  PROLOGUE_PREFIX,
  safetyNumber,
  type SecureChannel,
  type SecureChannelOptions,
  signWith,
  verifyIdentitySignature,
} from "../../lib/noise/mod.ts";

const encoder = new TextEncoder();
const PROLOGUE = encoder.encode(
  PROLOGUE_PREFIX +
    '{"type":"HELLO","peer_id":"alice@default","version":"1.0"}\n' +
    '{"type":"HELLO_OK","peer_id":"bob@default","version":"1.0"}\n',
);
const XX = "Noise_XX_25519_ChaChaPoly_SHA256";

interface Side {
  channel: SecureChannel;
  id: string;
  identity: IdentityKeyPair;
  staticKeyPair: KeyPair;
}

// Keys are made once: the tests that loop make hundreds of channels.
const KEYS = new Map<string, { identity: IdentityKeyPair; staticKeyPair: KeyPair }>();

function side(id: string, initiator: boolean, options: Partial<SecureChannelOptions> = {}): Side {
  if (!KEYS.has(id)) {
    KEYS.set(id, { identity: generateIdentityKeyPair(), staticKeyPair: generateStaticKeyPair() });
  }
  const { identity, staticKeyPair } = KEYS.get(id)!;
  const channel = createSecureChannel({
    initiator,
    prologue: PROLOGUE,
    staticKeyPair,
    identity: identityFromPrivateKey(identity.privateKey),
    localId: id,
    ...options,
  });
  return { channel, id, identity, staticKeyPair };
}

function pair(options: Partial<SecureChannelOptions> = {}): [Side, Side] {
  return [side("alice@default", true, options), side("bob@default", false, options)];
}

/**
 * Delivers each side's frames to the other until both are quiet; `tamper` may change the
 * frame of each handshake message (numbered in sending order). Returns what was thrown.
 */
function drive(
  initiator: SecureChannel,
  responder: SecureChannel,
  tamper?: (index: number, frame: Uint8Array) => Uint8Array,
): unknown {
  const queue = initiator.start().map((frame) => ({ to: responder, frame }));
  try {
    for (let index = 0; queue.length > 0; index++) {
      const { to, frame } = queue.shift()!;
      const result = to.push(tamper ? tamper(index, frame) : frame);
      const other = to === initiator ? responder : initiator;
      queue.push(...result.write.map((frame) => ({ to: other, frame })));
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

function connected(options: Partial<SecureChannelOptions> = {}): [Side, Side] {
  const [a, b] = pair(options);
  assert.equal(drive(a.channel, b.channel), undefined);
  assert.equal(a.channel.state, "established");
  assert.equal(b.channel.state, "established");
  return [a, b];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Pushes `bytes` in chunks of `size`; returns the plaintext they carried, joined. */
function receive(channel: SecureChannel, bytes: Uint8Array, size: number): Uint8Array {
  const plaintext: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    const result = channel.push(bytes.subarray(at, at + size));
    assert.deepEqual(result.write, []);
    plaintext.push(...result.plaintext);
  }
  return concat(plaintext);
}

function assertFails(action: () => unknown, code: string, channel: SecureChannel): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof NoiseError, `a NoiseError, not ${thrown}`);
  assert.equal(thrown.code, code);
  assert.equal(channel.state, "failed");
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

// --- Establishment and data

for (const cipher of ["ChaChaPoly", "AESGCM"] as const) {
  Deno.test(`createSecureChannel() establishes ${cipher} both ways and exchanges 100 KB`, () => {
    const [a, b] = connected({ cipher });
    assert.deepEqual(a.channel.handshakeHash, b.channel.handshakeHash);
    assert.equal(a.channel.handshakeHash!.length, 32);
    for (const [from, to] of [[a, b], [b, a]]) {
      const data = randomBytes(100_000);
      const frames = from.channel.encrypt(data);
      assert.equal(frames.length, 2, "split at 65519-byte bodies");
      assert.equal(frames[0].length, 2 + MAX_TRANSPORT_PAYLOAD_BYTES + 16);
      // Arbitrary chunk boundaries, unrelated to frames.
      assert.deepEqual(receive(to.channel, concat(frames), 1000), data);
      const small = encoder.encode("hello");
      assert.deepEqual(receive(to.channel, concat(from.channel.encrypt(small)), 3), small);
    }
  });
}

Deno.test("an established channel exposes the remote identity key, id and static key", () => {
  const [a, b] = pair();
  let established: unknown[] = [];
  const start = a.channel.start();
  const step2 = b.channel.push(concat(start));
  assert.equal(step2.established, undefined);
  assert.equal(b.channel.state, "handshaking");
  const step3 = a.channel.push(concat(step2.write));
  established = [step3.established];
  const final = b.channel.push(concat(step3.write));
  established.push(final.established);
  assert.deepEqual(established, [a.channel.remote, b.channel.remote]);
  assert.deepEqual(a.channel.remote, {
    identityKey: b.identity.publicKey,
    id: "bob@default",
    staticKey: b.staticKeyPair.publicKey,
  });
  assert.deepEqual(b.channel.remote, {
    identityKey: a.identity.publicKey,
    id: "alice@default",
    staticKey: a.staticKeyPair.publicKey,
  });
});

Deno.test("SecureChannel.push() decrypts transport frames sent in the chunk of message 3", () => {
  const [a, b] = pair();
  const step2 = b.channel.push(concat(a.channel.start()));
  const step3 = a.channel.push(concat(step2.write));
  assert.equal(a.channel.state, "established");
  const first = encoder.encode("first");
  const second = encoder.encode("second");
  const chunk = concat([...step3.write, ...a.channel.encrypt(first), ...a.channel.encrypt(second)]);
  const result = b.channel.push(chunk);
  assert.equal(result.established?.id, "alice@default");
  assert.deepEqual(result.plaintext, [first, second]);
});

Deno.test("SecureChannel handshake frames may arrive one byte at a time", () => {
  const [a, b] = pair();
  const bytewise = (channel: SecureChannel, frames: Uint8Array[]) =>
    Array.from(concat(frames)).flatMap((byte) => channel.push(Uint8Array.of(byte)).write);
  const step3 = bytewise(a.channel, bytewise(b.channel, a.channel.start()));
  bytewise(b.channel, step3);
  assert.equal(b.channel.state, "established");
  assert.equal(b.channel.remote?.id, "alice@default");
});

Deno.test("SecureChannel.encrypt() refuses before establishment and sends nothing for no data", () => {
  const [a, b] = pair();
  assert.throws(() => a.channel.encrypt(Uint8Array.of(1)), { code: "not_established" });
  assert.equal(a.channel.state, "handshaking");
  assert.deepEqual(b.channel.start(), []);
  assert.equal(drive(a.channel, b.channel), undefined);
  assert.deepEqual(a.channel.encrypt(new Uint8Array(0)), []);
});

Deno.test("SecureChannel.start() on the initiator twice fails the channel", () => {
  const [a] = pair();
  a.channel.start();
  assertFails(() => a.channel.start(), "not_my_turn", a.channel);
});

Deno.test("an initiator that receives before it starts fails with not_my_turn", () => {
  const [a, b] = pair();
  const [other] = pair();
  b.channel.start();
  const frames = b.channel.push(concat(other.channel.start())).write;
  assertFails(() => a.channel.push(concat(frames)), "not_my_turn", a.channel);
});

// --- Handshake failures

Deno.test("a prologue that differs on one side fails the handshake", () => {
  const a = side("alice@default", true);
  const prologue = PROLOGUE.slice();
  prologue[prologue.length - 2] ^= 0x01;
  const b = side("bob@default", false, { prologue });
  const error = drive(a.channel, b.channel);
  assert.ok(error instanceof NoiseError);
  assert.equal(error.code, "decrypt_failed");
  assert.equal(a.channel.state, "failed");
  assert.notEqual(b.channel.state, "established");
});

Deno.test("a flipped bit anywhere in a handshake message fails cleanly", () => {
  const [a0, b0] = pair();
  const lengths: number[] = [];
  drive(a0.channel, b0.channel, (index, frame) => {
    lengths[index] = frame.length;
    return frame;
  });
  assert.equal(lengths.length, 3);
  for (let message = 0; message < 3; message++) {
    // The 2 length bytes aside (a longer length only waits for more bytes): every body byte.
    for (let at = 2; at < lengths[message]; at++) {
      for (const bit of [0x01, 0x80]) {
        const [a, b] = pair();
        const error = drive(a.channel, b.channel, (index, frame) => {
          if (index !== message) return frame;
          const copy = frame.slice();
          copy[at] ^= bit;
          return copy;
        });
        const where = `message ${message + 1}, byte ${at}, bit ${bit}`;
        assert.ok(error instanceof NoiseError, `${where}: ${error}`);
        assert.ok(
          a.channel.state === "failed" || b.channel.state === "failed",
          `${where}: a side failed`,
        );
        // Bytes of message 1 are sent in clear: the initiator finds out when message 2 fails.
        assert.notEqual(b.channel.state, "established", where);
        if (message < 2) assert.notEqual(a.channel.state, "established", where);
      }
    }
  }
});

Deno.test("a handshake frame with an oversize length field fails with frame_too_long", () => {
  const [, b] = pair();
  const frame = new Uint8Array(2 + 65535);
  frame[0] = 0xff;
  frame[1] = 0xff;
  assert.deepEqual(b.channel.push(frame.subarray(0, 1000)).write, []);
  assertFails(() => b.channel.push(frame.subarray(1000)), "frame_too_long", b.channel);
});

Deno.test("a handshake frame shorter than its message fails with bad_message_length", () => {
  const [a, b] = pair();
  const [frame] = a.channel.start();
  assertFails(
    () => b.channel.push(encodeFrame(frame.subarray(2, 20))),
    "bad_message_length",
    b.channel,
  );
});

Deno.test("an empty frame fails with empty_frame", () => {
  const [, b] = pair();
  assertFails(() => b.channel.push(Uint8Array.of(0, 0)), "empty_frame", b.channel);
});

// --- Hostile payloads

type Payload = (fields: { staticKey: Uint8Array; identity: IdentityKeyPair }) => Uint8Array;

const MALLORY = { identity: generateIdentityKeyPair(), staticKeyPair: generateStaticKeyPair() };

function signed(id: string, staticKey: Uint8Array, identity: IdentityKeyPair): string {
  const data = concat([encoder.encode(`p2pchat-noise-static-key:${id}\n`), staticKey]);
  return signWith(identity.privateKey, data).toBase64();
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

const honest = (id: string): Payload => ({ staticKey, identity }) =>
  json({
    identity_key: identity.publicKey.toBase64(),
    signature: signed(id, staticKey, identity),
    id,
  });

/** A responder that writes message 2 with `payload`; returns what the honest initiator threw. */
function fromHostileResponder(payload: Payload): { error: unknown; channel: SecureChannel } {
  const a = side("alice@default", true);
  const hostile = new HandshakeState({
    protocolName: XX,
    initiator: false,
    prologue: PROLOGUE,
    staticKeyPair: MALLORY.staticKeyPair,
  });
  hostile.readMessage(a.channel.start()[0].subarray(2));
  const message = hostile.writeMessage(
    payload({ staticKey: MALLORY.staticKeyPair.publicKey, identity: MALLORY.identity }),
  );
  try {
    a.channel.push(encodeFrame(message));
  } catch (error) {
    return { error, channel: a.channel };
  }
  return { error: undefined, channel: a.channel };
}

/** An initiator that writes message 3 with `payload`; returns what the honest responder threw. */
function fromHostileInitiator(
  payload: Payload,
  firstPayload = new Uint8Array(0),
): { error: unknown; channel: SecureChannel } {
  const b = side("bob@default", false);
  const hostile = new HandshakeState({
    protocolName: XX,
    initiator: true,
    prologue: PROLOGUE,
    staticKeyPair: MALLORY.staticKeyPair,
  });
  try {
    const reply = b.channel.push(encodeFrame(hostile.writeMessage(firstPayload)));
    hostile.readMessage(reply.write[0].subarray(2));
    const message = hostile.writeMessage(
      payload({ staticKey: MALLORY.staticKeyPair.publicKey, identity: MALLORY.identity }),
    );
    b.channel.push(encodeFrame(message));
  } catch (error) {
    return { error, channel: b.channel };
  }
  return { error: undefined, channel: b.channel };
}

const OTHER_STATIC = generateStaticKeyPair().publicKey;

const HOSTILE_PAYLOADS: { name: string; payload: Payload; code?: string }[] = [
  { name: "an honest payload", payload: honest("mallory@default") },
  {
    name: "extra fields, ignored",
    payload: (keys) => {
      const fields = JSON.parse(new TextDecoder().decode(honest("mallory@default")(keys)));
      return json({ ...fields, future: [1, 2, 3] });
    },
  },
  {
    name: "a signature for another static key",
    payload: ({ identity }) =>
      json({
        identity_key: identity.publicKey.toBase64(),
        signature: signed("mallory@default", OTHER_STATIC, identity),
        id: "mallory@default",
      }),
    code: "bad_signature",
  },
  {
    name: "a signature for another id",
    payload: ({ staticKey, identity }) =>
      json({
        identity_key: identity.publicKey.toBase64(),
        signature: signed("mallory@default", staticKey, identity),
        id: "alice@default",
      }),
    code: "bad_signature",
  },
  {
    name: "a signature by another identity key",
    payload: ({ staticKey }) =>
      json({
        identity_key: MALLORY.identity.publicKey.toBase64(),
        signature: signed("mallory@default", staticKey, generateIdentityKeyPair()),
        id: "mallory@default",
      }),
    code: "bad_signature",
  },
  { name: "no payload", payload: () => new Uint8Array(0), code: "bad_payload" },
  { name: "text that is not JSON", payload: () => encoder.encode("hello"), code: "bad_payload" },
  { name: "invalid UTF-8", payload: () => Uint8Array.of(0x22, 0xff, 0x22), code: "bad_payload" },
  { name: "a JSON array", payload: () => json([]), code: "bad_payload" },
  { name: "JSON null", payload: () => json(null), code: "bad_payload" },
  {
    name: "a missing signature",
    payload: ({ identity }) => json({ identity_key: identity.publicKey.toBase64(), id: "m" }),
    code: "bad_payload",
  },
  {
    name: "a numeric id",
    payload: (keys) => {
      const fields = JSON.parse(new TextDecoder().decode(honest("7")(keys)));
      return json({ ...fields, id: 7 });
    },
    code: "bad_payload",
  },
  { name: "an empty id", payload: honest(""), code: "bad_payload" },
  { name: "an id of 201 characters", payload: honest("é".repeat(201)), code: "bad_payload" },
  { name: "an id of 200 characters", payload: honest("😀".repeat(200)) },
  {
    name: "an identity key of 31 bytes",
    payload: ({ staticKey, identity }) =>
      json({
        identity_key: identity.publicKey.subarray(1).toBase64(),
        signature: signed("m", staticKey, identity),
        id: "m",
      }),
    code: "bad_payload",
  },
  {
    name: "base64 with white space",
    payload: ({ staticKey, identity }) =>
      json({
        identity_key: identity.publicKey.toBase64(),
        signature: " " + signed("m", staticKey, identity),
        id: "m",
      }),
    code: "bad_payload",
  },
  {
    name: "base64 without padding",
    payload: ({ staticKey, identity }) =>
      json({
        identity_key: identity.publicKey.toBase64({ omitPadding: true }),
        signature: signed("m", staticKey, identity),
        id: "m",
      }),
    code: "bad_payload",
  },
  {
    name: "a payload of 1025 bytes",
    payload: (keys) => {
      const fields = JSON.parse(new TextDecoder().decode(honest("m")(keys)));
      const base = JSON.stringify({ ...fields, pad: "" }).length;
      return json({ ...fields, pad: "x".repeat(1025 - base) });
    },
    code: "bad_payload",
  },
];

for (const { name, payload, code } of HOSTILE_PAYLOADS) {
  const outcome = code === undefined ? "is accepted" : `fails with ${code}`;
  Deno.test(`a handshake payload with ${name} ${outcome} in message 3`, () => {
    const { error, channel } = fromHostileInitiator(payload);
    if (code === undefined) {
      assert.equal(error, undefined);
      assert.equal(channel.remote?.id.length !== 0, true);
      assert.deepEqual(channel.remote?.staticKey, MALLORY.staticKeyPair.publicKey);
      return;
    }
    assert.ok(error instanceof NoiseError, `a NoiseError, not ${error}`);
    assert.equal(error.code, code);
    assert.equal(channel.state, "failed");
    assert.equal(channel.remote, undefined);
  });
}

for (const { name, payload, code } of HOSTILE_PAYLOADS) {
  if (name === "a payload of 1025 bytes") continue; // message 2 is over its frame limit first
  const outcome = code === undefined ? "is accepted" : `fails with ${code}`;
  Deno.test(`a handshake payload with ${name} ${outcome} in message 2`, () => {
    const { error, channel } = fromHostileResponder(payload);
    if (code === undefined) {
      assert.equal(error, undefined);
      assert.equal(channel.state, "established");
      return;
    }
    assert.ok(error instanceof NoiseError, `a NoiseError, not ${error}`);
    assert.equal(error.code, code);
    assert.equal(channel.state, "failed");
  });
}

Deno.test("a handshake message 2 over 1120 bytes fails with frame_too_long", () => {
  const { error, channel } = fromHostileResponder(() => new Uint8Array(1025));
  assert.ok(error instanceof NoiseError);
  assert.equal(error.code, "frame_too_long");
  assert.equal(channel.state, "failed");
});

Deno.test("a handshake message 1 with a payload fails with bad_payload", () => {
  const { error, channel } = fromHostileInitiator(honest("m"), Uint8Array.of(1));
  assert.ok(error instanceof NoiseError);
  assert.equal(error.code, "bad_payload");
  assert.equal(channel.state, "failed");
});

// --- Transport failures

interface TransportCase {
  name: string;
  /** Given three frames from the sender, what reaches the receiver. */
  deliver: (frames: Uint8Array[]) => Uint8Array[];
  code: string;
}

const TRANSPORT_CASES: TransportCase[] = [
  { name: "a replayed frame", deliver: ([f1]) => [f1, f1], code: "decrypt_failed" },
  { name: "reordered frames", deliver: ([f1, f2]) => [f2, f1], code: "decrypt_failed" },
  { name: "a dropped frame", deliver: ([f1, , f3]) => [f1, f3], code: "decrypt_failed" },
  {
    name: "a frame cut short and reframed",
    deliver: ([f1]) => [encodeFrame(f1.subarray(2, f1.length - 1))],
    code: "decrypt_failed",
  },
  {
    name: "a frame shorter than a tag",
    deliver: ([f1]) => [encodeFrame(f1.subarray(2, 17))],
    code: "bad_message_length",
  },
  {
    name: "a frame whose length field is one short",
    deliver: ([f1, f2]) => {
      const cut = f1.slice();
      cut[1] -= 1;
      return [concat([cut, f2])];
    },
    code: "decrypt_failed",
  },
  {
    name: "a flipped tag bit",
    deliver: ([f1]) => {
      const bad = f1.slice();
      bad[bad.length - 1] ^= 0x80;
      return [bad];
    },
    code: "decrypt_failed",
  },
  {
    name: "a frame of the largest length with garbage",
    deliver: () => [concat([Uint8Array.of(0xff, 0xff), new Uint8Array(65535)])],
    code: "decrypt_failed",
  },
  { name: "an empty frame", deliver: () => [Uint8Array.of(0, 0)], code: "empty_frame" },
];

for (const { name, deliver, code } of TRANSPORT_CASES) {
  Deno.test(`SecureChannel.push() fails on ${name}, then returns nothing`, () => {
    const [a, b] = connected();
    const sent = ["one", "two", "three"].flatMap((text) => a.channel.encrypt(encoder.encode(text)));
    let thrown: unknown;
    for (const chunk of deliver(sent)) {
      try {
        const result = b.channel.push(chunk);
        if (thrown !== undefined) {
          assert.deepEqual(result, { write: [], plaintext: [], records: [] });
        }
      } catch (error) {
        assert.equal(thrown, undefined, "one failure, then silence");
        thrown = error;
      }
    }
    assert.ok(thrown instanceof NoiseError, `a NoiseError, not ${thrown}`);
    assert.equal(thrown.code, code);
    assert.equal(b.channel.state, "failed");
    assert.equal(b.channel.remote?.id, "alice@default");
    // Valid frames after the failure give nothing, and nothing can be sent.
    assert.deepEqual(b.channel.push(concat(a.channel.encrypt(encoder.encode("later")))), {
      write: [],
      plaintext: [],
      records: [],
    });
    assert.throws(() => b.channel.encrypt(Uint8Array.of(1)), { code: "failed" });
  });
}

Deno.test("SecureChannel.push() returns nothing of a chunk that ends in a bad frame", () => {
  const [a, b] = connected();
  const good = a.channel.encrypt(encoder.encode("good"));
  const bad = a.channel.encrypt(encoder.encode("bad"))[0].slice();
  bad[5] ^= 1;
  assertFails(() => b.channel.push(concat([...good, bad])), "decrypt_failed", b.channel);
});

// --- Records (p2pchat-file-frames)

Deno.test("with records, stream bytes and records come out in the order they were sent", () => {
  const [a, b] = connected({ records: true });
  const big = randomBytes(70_000); // a write longer than one message is cut in two
  const frames = [
    ...a.channel.encrypt(encoder.encode("line one\n")),
    a.channel.encryptRecord(Uint8Array.of(1, 2, 3)),
    a.channel.encryptRecord(Uint8Array.of(4)),
    ...a.channel.encrypt(big),
  ];
  const result = b.channel.push(concat(frames));
  assert.equal(result.plaintext.length, 3);
  assert.deepEqual(result.plaintext[0], encoder.encode("line one\n"));
  assert.deepEqual(concat(result.plaintext.slice(1)), big);
  assert.deepEqual(result.records, [
    { after: 1, body: Uint8Array.of(1, 2, 3) },
    { after: 1, body: Uint8Array.of(4) },
  ]);
  // The largest record fits one message; one byte more is refused before anything is sent.
  assert.equal(a.channel.encryptRecord(new Uint8Array(65_518)).length, 2 + 65_535);
  assert.throws(() => a.channel.encryptRecord(new Uint8Array(65_519)), { code: "bad_record" });
  assert.throws(() => a.channel.encryptRecord(new Uint8Array(0)), { code: "bad_record" });
  assert.equal(a.channel.state, "established");
});

Deno.test("without records, encryptRecord() is refused and stream bytes carry no kind byte", () => {
  const [a, b] = connected();
  assert.throws(() => a.channel.encryptRecord(Uint8Array.of(1)), { code: "bad_record" });
  const result = b.channel.push(concat(a.channel.encrypt(Uint8Array.of(0, 1))));
  assert.deepEqual(result.plaintext, [Uint8Array.of(0, 1)]);
});

Deno.test("with records, an unknown kind byte or a kind byte alone fails the channel", () => {
  const messages = [Uint8Array.of(2, 65), Uint8Array.of(0), Uint8Array.of(1), Uint8Array.of(0xff)];
  for (const message of messages) {
    // A sender made without records writes the bytes as they are, kind byte included.
    const a = side("alice@default", true);
    const b = side("bob@default", false, { records: true });
    assert.equal(drive(a.channel, b.channel), undefined);
    assertFails(() => b.channel.push(concat(a.channel.encrypt(message))), "bad_record", b.channel);
  }
});

// --- Identity helpers

Deno.test("signWith() and verifyIdentitySignature() agree, and a changed byte fails", () => {
  const keys = generateIdentityKeyPair();
  assert.equal(keys.publicKey.length, 32);
  assert.equal(keys.privateKey.length, 32);
  assert.deepEqual(identityFromPrivateKey(keys.privateKey).publicKey, keys.publicKey);
  const data = encoder.encode("data");
  const signature = signWith(keys.privateKey, data);
  assert.equal(signature.length, 64);
  assert.deepEqual(identityFromPrivateKey(keys.privateKey).sign(data), signature);
  assert.ok(verifyIdentitySignature(keys.publicKey, data, signature));
  assert.ok(!verifyIdentitySignature(keys.publicKey, encoder.encode("datA"), signature));
  assert.ok(!verifyIdentitySignature(keys.publicKey, data, signature.subarray(1)));
  assert.ok(!verifyIdentitySignature(new Uint8Array(32).fill(0xff), data, signature));
  assert.throws(() => signWith(new Uint8Array(31), data), RangeError);
});

Deno.test("fingerprint() is 8 groups of 4 base32 letters of the key's SHA-256", () => {
  // Independently computed (Python hashlib and base64.b32encode).
  assert.equal(fingerprint(new Uint8Array(32)), "mzuh vlpy mk6x o3ep ygfy 5h4o eaej ofef");
  assert.match(fingerprint(generateIdentityKeyPair().publicKey), /^([a-z2-7]{4} ){7}[a-z2-7]{4}$/);
});

Deno.test("safetyNumber() is the same on both sides: 12 groups of 5 digits", () => {
  const one = new Uint8Array(32).fill(1);
  const two = new Uint8Array(32).fill(2);
  // Independently computed (Python hashlib).
  const expected = "82244 20920 72225 66738 84316 83273 36850 54810 43661 49385 64436 13607";
  assert.equal(safetyNumber(one, two), expected);
  assert.equal(safetyNumber(two, one), expected);
  const [a, b] = connected();
  const mine = safetyNumber(a.identity.publicKey, a.channel.remote!.identityKey);
  const theirs = safetyNumber(b.identity.publicKey, b.channel.remote!.identityKey);
  assert.equal(mine, theirs);
  assert.match(mine, /^(\d{5} ){11}\d{5}$/);
  assert.notEqual(safetyNumber(one, b.identity.publicKey), mine);
});
