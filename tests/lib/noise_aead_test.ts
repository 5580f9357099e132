/**
 * ChaChaPoly takes two roads: libsodium for short messages, node:crypto for long ones. Whatever
 * the size, the bytes must be those of RFC 8439 (here OpenSSL's, used directly), and a forged
 * message must fail on either road.
 */
import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { AES_GCM, CHACHA_POLY } from "../../lib/noise/mod.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
// Around the switch from one road to the other (2048 bytes), and the limits of a Noise message.
const SIZES = [0, 1, 145, 2047, 2048, 2049, 4800, 65519];
const ADS = [0, 32, 64, 65].map((length) => Uint8Array.from({ length }, (_, i) => i ^ 0x5a));

function message(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + length) & 0xff);
}

// What OpenSSL gives for the Noise nonce (4 zero bytes, then the counter little-endian).
function reference(high: number, low: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const iv = new Uint8Array(12);
  const view = new DataView(iv.buffer);
  view.setUint32(4, low, true);
  view.setUint32(8, high, true);
  // (Typed as GCM: the typings know setAAD without options only for the GCM names.)
  const cipher = createCipheriv("chacha20-poly1305" as "aes-256-gcm", KEY, iv, {
    authTagLength: 16,
  });
  cipher.setAAD(ad);
  const body = cipher.update(plaintext);
  cipher.final();
  return new Uint8Array([...body, ...cipher.getAuthTag()]);
}

Deno.test("ChaChaPoly gives the RFC 8439 bytes at every size and decrypts them back", () => {
  for (const size of SIZES) {
    for (const ad of ADS) {
      const plaintext = message(size);
      const ciphertext = CHACHA_POLY.encrypt(KEY, 3, 0xfffffffe, ad, plaintext);
      assert.deepEqual(ciphertext, reference(3, 0xfffffffe, ad, plaintext), `${size}/${ad.length}`);
      assert.deepEqual(CHACHA_POLY.decrypt(KEY, 3, 0xfffffffe, ad, ciphertext), plaintext);
    }
  }
});

Deno.test("a prefix byte encrypts as if it led the plaintext, on both roads and both ciphers", () => {
  for (const cipher of [CHACHA_POLY, AES_GCM]) {
    for (const size of [0, 1, 2046, 2047, 2048, 61464, 65518]) {
      const plaintext = message(size);
      const led = new Uint8Array([7, ...plaintext]);
      const ciphertext = cipher.encrypt(KEY, 0, 5, ADS[1], plaintext, { prefix: 7 });
      assert.deepEqual(
        ciphertext,
        cipher.encrypt(KEY, 0, 5, ADS[1], led),
        `${cipher.name} ${size}`,
      );
      assert.deepEqual(cipher.decrypt(KEY, 0, 5, ADS[1], ciphertext), led);
    }
  }
});

Deno.test("headroom leaves zero bytes ahead of the same ciphertext, on both roads and ciphers", () => {
  for (const cipher of [CHACHA_POLY, AES_GCM]) {
    for (const size of [0, 1, 2047, 2048, 61464]) {
      const plaintext = message(size);
      for (const prefix of [undefined, 1]) {
        const framed = cipher.encrypt(KEY, 1, 2, ADS[1], plaintext, { prefix, headroom: 2 });
        assert.deepEqual(framed.subarray(0, 2), new Uint8Array(2), `${cipher.name} ${size}`);
        assert.deepEqual(
          framed.subarray(2),
          cipher.encrypt(KEY, 1, 2, ADS[1], plaintext, { prefix }),
          `${cipher.name} ${size} ${prefix}`,
        );
      }
    }
  }
});

Deno.test("ChaChaPoly refuses a flipped byte, another nonce or other data at every size", () => {
  for (const size of SIZES) {
    const ad = ADS[1];
    const ciphertext = CHACHA_POLY.encrypt(KEY, 0, 9, ad, message(size));
    for (const at of [0, Math.floor(ciphertext.length / 2), ciphertext.length - 1]) {
      const forged = ciphertext.slice();
      forged[at] ^= 0x01;
      assert.throws(() => CHACHA_POLY.decrypt(KEY, 0, 9, ad, forged), { code: "decrypt_failed" });
    }
    assert.throws(() => CHACHA_POLY.decrypt(KEY, 0, 10, ad, ciphertext), {
      code: "decrypt_failed",
    });
    assert.throws(() => CHACHA_POLY.decrypt(KEY, 0, 9, ADS[2], ciphertext), {
      code: "decrypt_failed",
    });
    // The genuine message still opens after the forgeries: nothing was left half-done.
    assert.deepEqual(CHACHA_POLY.decrypt(KEY, 0, 9, ad, ciphertext), message(size));
  }
});

Deno.test("in place, a message opens into its own memory; a forged one is left as it was", () => {
  for (const size of SIZES) {
    const ad = ADS[1];
    const ciphertext = CHACHA_POLY.encrypt(KEY, 0, 11, ad, message(size));
    const forged = ciphertext.slice();
    forged[0] ^= 0x01;
    const before = forged.slice();
    assert.throws(() => CHACHA_POLY.decrypt(KEY, 0, 11, ad, forged, { inPlace: true }), {
      code: "decrypt_failed",
    });
    assert.deepEqual(forged, before, `a forged message of ${size} bytes was changed`);
    const plaintext = CHACHA_POLY.decrypt(KEY, 0, 11, ad, ciphertext, { inPlace: true });
    assert.deepEqual(plaintext, message(size));
    // Either road may take the option; the short one (libsodium) does, with no new array.
    if (size > 0 && size <= 2048) assert.equal(plaintext.buffer, ciphertext.buffer);
  }
});

Deno.test("sealed messages kept side by side never share bytes", () => {
  // Short messages are cut from shared slabs: hundreds of them span several slabs.
  const sealed = Array.from({ length: 600 }, (_, i) => {
    const ciphertext = CHACHA_POLY.encrypt(KEY, 0, i, ADS[0], message(i % 200), { headroom: 2 });
    assert.deepEqual(ciphertext.subarray(0, 2), Uint8Array.of(0, 0), "headroom not zero");
    ciphertext[0] = 0xee; // as a frame header is written into the headroom
    return ciphertext;
  });
  sealed.forEach((ciphertext, i) => {
    const body = ciphertext.subarray(2);
    assert.deepEqual(body, reference(0, i, ADS[0], message(i % 200)), `message ${i}`);
  });
});
