/**
 * ChaCha20-Poly1305 (RFC 8439) for short messages, on libsodium's WebAssembly build. A chat line
 * is short, and through node:crypto each message pays for a new cipher object (a Node stream
 * in Deno): measured here 4-8 µs for a 145-byte SEND against 1.6 µs in one call to libsodium,
 * four times per round trip. OpenSSL is faster from a few KB on, so node:crypto keeps those
 * (crypto.ts chooses). Both compute the same bytes; the Noise vectors check both.
 */
import libsodium from "libsodium";
import { KEY_BYTES, TAG_BYTES } from "./constants.ts";
import { NoiseError } from "./errors.ts";

/**
 * The longest plaintext sealed here; longer ones go through node:crypto. Measured: the two are
 * even at 2-3 KB, and with frames of batched lines (about 5 KB) libsodium cut pipelined
 * throughput by a quarter.
 */
export const SODIUM_MAX_PLAINTEXT_BYTES = 2048;
/** The longest associated data taken here (the handshake hash is 32 bytes). */
export const SODIUM_MAX_AD_BYTES = 64;

const NONCE_BYTES = 12;

// The raw libsodium module: C functions over one linear memory; 64-bit lengths are passed as
// two 32-bit halves (low, high).
interface Sodium {
  ready: Promise<unknown>;
  HEAPU8: Uint8Array;
  _sodium_init(): number;
  _malloc(bytes: number): number;
  _crypto_aead_chacha20poly1305_ietf_encrypt(
    c: number,
    clenP: number,
    m: number,
    mlenLow: number,
    mlenHigh: number,
    ad: number,
    adlenLow: number,
    adlenHigh: number,
    nsec: number,
    npub: number,
    k: number,
  ): number;
  _crypto_aead_chacha20poly1305_ietf_decrypt(
    m: number,
    mlenP: number,
    nsec: number,
    c: number,
    clenLow: number,
    clenHigh: number,
    ad: number,
    adlenLow: number,
    adlenHigh: number,
    npub: number,
    k: number,
  ): number;
}

const sodium = libsodium as unknown as Sodium;
await sodium.ready;
if (sodium._sodium_init() < 0) throw new Error("libsodium could not start");

// One scratch area for every call (calls are synchronous): key, nonce, associated data, input
// and output. Never freed, so the memory never grows and its views stay valid.
const KEY = sodium._malloc(KEY_BYTES);
const NONCE = sodium._malloc(NONCE_BYTES);
const AD = sodium._malloc(SODIUM_MAX_AD_BYTES);
const INPUT = sodium._malloc(SODIUM_MAX_PLAINTEXT_BYTES + TAG_BYTES);
const OUTPUT = sodium._malloc(SODIUM_MAX_PLAINTEXT_BYTES + TAG_BYTES);

/** True when `sodiumSeal`/`sodiumOpen` take a message of `plaintextLength` bytes with `ad`. */
export function sodiumFits(plaintextLength: number, ad: Uint8Array): boolean {
  return plaintextLength <= SODIUM_MAX_PLAINTEXT_BYTES && ad.length <= SODIUM_MAX_AD_BYTES;
}

/**
 * Encrypts under the ChaChaPoly nonce of the Noise spec (4 zero bytes, counter little-endian).
 * `prefix` and `headroom` as in `CipherFunctions.encrypt`: the prefix byte is put in front in
 * the module's memory, as each new array costs about a microsecond here.
 */
export function sodiumSeal(
  key: Uint8Array,
  high: number,
  low: number,
  ad: Uint8Array,
  plaintext: Uint8Array,
  prefix?: number,
  headroom = 0,
): Uint8Array {
  const lead = prefix === undefined ? 0 : 1;
  const length = lead + plaintext.length;
  const heap = _load(key, high, low, ad, plaintext, lead);
  if (lead) heap[INPUT] = prefix!;
  sodium._crypto_aead_chacha20poly1305_ietf_encrypt(
    OUTPUT,
    0,
    INPUT,
    length,
    0,
    AD,
    ad.length,
    0,
    0,
    NONCE,
    KEY,
  );
  const ciphertext = _cut(headroom + length + TAG_BYTES);
  ciphertext.set(heap.subarray(OUTPUT, OUTPUT + length + TAG_BYTES), headroom);
  _wipe(heap, INPUT, length);
  return ciphertext;
}

/**
 * Decrypts; throws `decrypt_failed` when the tag does not match. libsodium checks the tag
 * before it decrypts, so a forged message leaves no plaintext behind. `inPlace`: the plaintext
 * is written over the ciphertext and returned as a view of it, rather than in a new array.
 */
export function sodiumOpen(
  key: Uint8Array,
  high: number,
  low: number,
  ad: Uint8Array,
  ciphertext: Uint8Array,
  inPlace = false,
): Uint8Array {
  const heap = _load(key, high, low, ad, ciphertext);
  const failed = sodium._crypto_aead_chacha20poly1305_ietf_decrypt(
    OUTPUT,
    0,
    0,
    INPUT,
    ciphertext.length,
    0,
    AD,
    ad.length,
    0,
    NONCE,
    KEY,
  );
  const length = ciphertext.length - TAG_BYTES;
  let plaintext: Uint8Array | undefined;
  if (!failed && inPlace) {
    plaintext = ciphertext.subarray(0, length);
    plaintext.set(heap.subarray(OUTPUT, OUTPUT + length));
  } else if (!failed) {
    plaintext = heap.slice(OUTPUT, OUTPUT + length);
  }
  _wipe(heap, OUTPUT, ciphertext.length);
  if (!plaintext) throw new NoiseError("decrypt_failed", "Authentication tag does not match");
  return plaintext;
}

// Sealed messages are cut from shared slabs: a new array costs 1-2 µs here (each ArrayBuffer is
// allocated outside V8's heap), a view of a slab a few hundredths. A slab is freed once no message
// cut from it is held; a sealed message is written and dropped, so that is soon.
const SLAB_BYTES = 8 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

// `length` fresh zero bytes (never handed out before), from the current slab or a new one.
function _cut(length: number): Uint8Array {
  if (slabUsed + length > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  slabUsed += length;
  return slab.subarray(slabUsed - length, slabUsed);
}

// Copies the key, nonce, associated data and input (at INPUT + `at`) into the module's memory.
function _load(
  key: Uint8Array,
  high: number,
  low: number,
  ad: Uint8Array,
  input: Uint8Array,
  at = 0,
): Uint8Array {
  const heap = sodium.HEAPU8;
  heap.set(key, KEY);
  heap.fill(0, NONCE, NONCE + 4);
  _littleEndian(heap, NONCE + 4, low);
  _littleEndian(heap, NONCE + 8, high);
  heap.set(ad, AD);
  heap.set(input, INPUT + at);
  return heap;
}

// Nothing secret stays in the module's memory between calls: the key and the plaintext (input of
// a seal, output of an open) are zeroed; ciphertext is no secret.
function _wipe(heap: Uint8Array, plaintext: number, length: number): void {
  heap.fill(0, KEY, KEY + KEY_BYTES);
  heap.fill(0, plaintext, plaintext + length);
}

function _littleEndian(heap: Uint8Array, at: number, value: number): void {
  heap[at] = value & 0xff;
  heap[at + 1] = (value >>> 8) & 0xff;
  heap[at + 2] = (value >>> 16) & 0xff;
  heap[at + 3] = value >>> 24;
}
