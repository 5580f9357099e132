/**
 * The Noise core against the cacophony vectors (as snow publishes them), read from
 * shared/test-vectors at test time: every handshake and transport message byte for byte.
 */
import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import {
  AES_GCM,
  CHACHA_POLY,
  CipherState,
  HandshakeState,
  keyPairFromPrivateKey,
  NoiseError,
  type TransportCiphers,
} from "../../lib/noise/mod.ts";

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const FILES = ["noise-25519-chachapoly-sha256.json", "noise-25519-aesgcm-sha256.json"];
const VECTORS: Vector[] = FILES.flatMap((file) => {
  const url = new URL(`../../../shared/test-vectors/${file}`, import.meta.url);
  let text: string;
  try {
    text = Deno.readTextFileSync(url);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      `The Noise test vectors are not at ${url.pathname}: these tests need the shared folder ` +
        "beside the clone (../shared/test-vectors/, as CI has it; see the README)",
    );
  }
  return JSON.parse(text).vectors as Vector[];
});

const hex = (text: string): Uint8Array => Uint8Array.fromHex(text);
const toHex = (bytes: Uint8Array): string => bytes.toHex();

/** Both sides of a vector's handshake, with its fixed keys; `prologue` overrides the responder's. */
function handshakes(
  vector: Vector,
  responderPrologue?: Uint8Array,
): [HandshakeState, HandshakeState] {
  const keyPair = (key: string | undefined) =>
    key === undefined ? undefined : keyPairFromPrivateKey(hex(key));
  const remote = (key: string | undefined) => key === undefined ? undefined : hex(key);
  const initiator = new HandshakeState({
    protocolName: vector.protocol_name,
    initiator: true,
    prologue: hex(vector.init_prologue),
    staticKeyPair: keyPair(vector.init_static),
    ephemeralKeyPair: keyPair(vector.init_ephemeral),
    remoteStaticKey: remote(vector.init_remote_static),
  });
  const responder = new HandshakeState({
    protocolName: vector.protocol_name,
    initiator: false,
    prologue: responderPrologue ?? hex(vector.resp_prologue),
    staticKeyPair: keyPair(vector.resp_static),
    ephemeralKeyPair: keyPair(vector.resp_ephemeral),
    remoteStaticKey: remote(vector.resp_remote_static),
  });
  return [initiator, responder];
}

/**
 * Runs the handshake part of a vector, flipping one bit of message `tamper.message` at
 * `tamper.byte` if asked; returns the error that stopped it, or undefined.
 */
function runHandshake(
  vector: Vector,
  options: { tamper?: { message: number; byte: number }; responderPrologue?: Uint8Array } = {},
): unknown {
  const [initiator, responder] = handshakes(vector, options.responderPrologue);
  try {
    for (let i = 0; !initiator.complete; i++) {
      const [writer, reader] = i % 2 === 0 ? [initiator, responder] : [responder, initiator];
      const message = writer.writeMessage(hex(vector.messages[i].payload));
      if (options.tamper?.message === i) message[options.tamper.byte] ^= 0x01;
      reader.readMessage(message);
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

for (const vector of VECTORS) {
  Deno.test(`HandshakeState reproduces ${vector.protocol_name} byte for byte`, () => {
    const [initiator, responder] = handshakes(vector);
    let index = 0;
    for (; !initiator.complete; index++) {
      // Messages alternate, the initiator first.
      const [writer, reader] = index % 2 === 0 ? [initiator, responder] : [responder, initiator];
      assert.ok(writer.isMyTurn && !reader.isMyTurn, `turn of message ${index}`);
      const { payload, ciphertext } = vector.messages[index];
      assert.equal(
        toHex(writer.writeMessage(hex(payload))),
        ciphertext,
        `handshake message ${index}`,
      );
      assert.equal(toHex(reader.readMessage(hex(ciphertext))), payload, `payload ${index}`);
    }
    assert.equal(index, initiator.pattern.messages.length);
    assert.ok(responder.complete);
    assert.equal(toHex(initiator.handshakeHash), vector.handshake_hash);
    assert.equal(toHex(responder.handshakeHash), vector.handshake_hash);

    // After Split the messages go on alternating by index (cacophony layout; none of these
    // patterns is one-way), each direction with its own cipher and nonce.
    const sides: [TransportCiphers, TransportCiphers] = [initiator.split(), responder.split()];
    assert.ok(vector.messages.length > index, "the vector has transport messages");
    for (; index < vector.messages.length; index++) {
      const [sender, receiver] = index % 2 === 0 ? sides : [sides[1], sides[0]];
      const { payload, ciphertext } = vector.messages[index];
      const empty = new Uint8Array(0);
      assert.equal(
        toHex(sender.send.encryptWithAd(empty, hex(payload))),
        ciphertext,
        `transport ${index}`,
      );
      assert.equal(toHex(receiver.receive.decryptWithAd(empty, hex(ciphertext))), payload);
    }
  });

  Deno.test(`HandshakeState fails ${vector.protocol_name} when any handshake byte is flipped`, () => {
    const [initiator] = handshakes(vector);
    const count = initiator.pattern.messages.length;
    for (let message = 0; message < count; message++) {
      const length = vector.messages[message].ciphertext.length / 2;
      for (let byte = 0; byte < length; byte++) {
        // Bytes of a message sent before any key (an ephemeral key, a clear payload) are
        // caught by the next read of the other side, whose hash no longer matches: the
        // handshake never completes.
        const error = runHandshake(vector, { tamper: { message, byte } });
        assert.ok(error instanceof NoiseError, `message ${message} byte ${byte}: ${error}`);
        assert.ok(["decrypt_failed", "bad_key"].includes(error.code), error.code);
      }
    }
  });

  Deno.test(`HandshakeState fails ${vector.protocol_name} when the prologues differ`, () => {
    assert.equal(runHandshake(vector), undefined);
    const prologue = hex(vector.resp_prologue);
    prologue[0] ^= 0x20;
    const error = runHandshake(vector, { responderPrologue: prologue });
    assert.ok(error instanceof NoiseError);
    assert.equal(error.code, "decrypt_failed");
  });
}

Deno.test("the vector files cover every pattern with both ciphers", () => {
  const names = VECTORS.map((vector) => vector.protocol_name).sort();
  const expected = ["NN", "XN", "XK", "IK", "XX"].flatMap((pattern) =>
    ["AESGCM", "ChaChaPoly"].map((cipher) => `Noise_${pattern}_25519_${cipher}_SHA256`)
  );
  assert.deepEqual(names, expected.sort());
});

Deno.test("HandshakeState refuses messages out of turn and after completion", () => {
  const vector = VECTORS.find((v) => v.protocol_name === "Noise_NN_25519_ChaChaPoly_SHA256")!;
  const [initiator, responder] = handshakes(vector);
  assert.throws(() => responder.writeMessage(), { code: "not_my_turn" });
  assert.throws(() => initiator.readMessage(new Uint8Array(48)), { code: "not_my_turn" });
  assert.throws(() => initiator.split(), { code: "not_established" });
  responder.readMessage(initiator.writeMessage());
  initiator.readMessage(responder.writeMessage());
  assert.throws(() => initiator.writeMessage(), { code: "handshake_complete" });
  assert.throws(() => responder.readMessage(new Uint8Array(48)), { code: "handshake_complete" });
});

Deno.test("HandshakeState.readMessage() refuses a short message and stays failed", () => {
  const vector = VECTORS.find((v) => v.protocol_name === "Noise_XX_25519_ChaChaPoly_SHA256")!;
  const [initiator, responder] = handshakes(vector);
  assert.throws(() => responder.readMessage(initiator.writeMessage().subarray(0, 31)), {
    code: "bad_message_length",
  });
  assert.ok(responder.failed);
  assert.throws(() => responder.writeMessage(), { code: "failed" });
});

Deno.test("HandshakeState refuses a remote ephemeral key of low order", () => {
  const vector = VECTORS.find((v) => v.protocol_name === "Noise_XX_25519_ChaChaPoly_SHA256")!;
  const [, responder] = handshakes(vector);
  responder.readMessage(new Uint8Array(32)); // the all-zero point: e is read in clear
  assert.throws(() => responder.writeMessage(), { code: "bad_key" });
});

Deno.test("CipherState places the nonce as each cipher says, and refuses nonce 2^64-1", () => {
  const key = new Uint8Array(32).fill(7);
  const ad = Uint8Array.of(1, 2, 3);
  const plaintext = new TextEncoder().encode("nonce layout");
  const nonce = 0x0102030405060708n;
  const cases = [
    { cipher: CHACHA_POLY, algorithm: "chacha20-poly1305", iv: "000000000807060504030201" },
    { cipher: AES_GCM, algorithm: "aes-256-gcm", iv: "000000000102030405060708" },
  ] as const;
  for (const { cipher, algorithm, iv } of cases) {
    const state = new CipherState(cipher, key);
    state.setNonce(nonce);
    const reference = createCipheriv(algorithm as "aes-256-gcm", key, hex(iv), {
      authTagLength: 16,
    });
    reference.setAAD(ad);
    const body = reference.update(plaintext);
    reference.final();
    const expected = toHex(body) + toHex(reference.getAuthTag());
    assert.equal(toHex(state.encryptWithAd(ad, plaintext)), expected, cipher.name);
    assert.equal(state.nonce, nonce + 1n);

    state.setNonce(0xfffffffffffffffen);
    const last = state.encryptWithAd(ad, plaintext);
    assert.throws(() => state.encryptWithAd(ad, plaintext), { code: "nonce_exhausted" });
    const receiver = new CipherState(cipher, key);
    receiver.setNonce(0xfffffffffffffffen);
    assert.deepEqual(receiver.decryptWithAd(ad, last), plaintext);
    assert.throws(() => receiver.decryptWithAd(ad, last), { code: "nonce_exhausted" });
  }
});

Deno.test("CipherState.decryptWithAd() keeps its nonce when a tag does not match", () => {
  const key = new Uint8Array(32).fill(9);
  const sender = new CipherState(CHACHA_POLY, key);
  const receiver = new CipherState(CHACHA_POLY, key);
  const ad = new Uint8Array(0);
  const ciphertext = sender.encryptWithAd(ad, Uint8Array.of(1, 2, 3));
  const forged = ciphertext.slice();
  forged[0] ^= 1;
  assert.throws(() => receiver.decryptWithAd(ad, forged), { code: "decrypt_failed" });
  assert.equal(receiver.nonce, 0n);
  assert.throws(() => receiver.decryptWithAd(ad, ciphertext.subarray(0, 15)), {
    code: "bad_message_length",
  });
  assert.deepEqual(receiver.decryptWithAd(ad, ciphertext), Uint8Array.of(1, 2, 3));
});
