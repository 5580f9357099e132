/** CipherState of the Noise spec §5.1: a key and the 64-bit nonce counter that goes with it. */
import { KEY_BYTES, MAX_MESSAGE_BYTES, TAG_BYTES } from "./constants.ts";
import type { CipherFunctions, DecryptOptions, EncryptOptions } from "./crypto.ts";
import { NoiseError } from "./errors.ts";

const MAX_UINT32 = 0xffffffff;

/** Encrypts or decrypts with one key, each message under the next nonce. */
export class CipherState {
  #key: Uint8Array | undefined;
  // The nonce as two 32-bit halves: exact up to 2^64-1 with plain numbers.
  #high = 0;
  #low = 0;

  constructor(readonly cipher: CipherFunctions, key?: Uint8Array) {
    this.initializeKey(key);
  }

  /** InitializeKey(key): sets the key (undefined for "empty") and the nonce to 0. */
  initializeKey(key: Uint8Array | undefined): void {
    if (key !== undefined && key.length !== KEY_BYTES) {
      throw new RangeError(`Cipher key of ${key.length} bytes, not ${KEY_BYTES}`);
    }
    this.#key = key?.slice();
    this.#high = 0;
    this.#low = 0;
  }

  /** HasKey(): true once a key is set; without one, messages pass in clear. */
  hasKey(): boolean {
    return this.#key !== undefined;
  }

  /** The nonce the next message will use. */
  get nonce(): bigint {
    return (BigInt(this.#high) << 32n) | BigInt(this.#low);
  }

  /** SetNonce(n): for tests of the nonce limit and for callers that resume a stream. */
  setNonce(nonce: bigint): void {
    if (nonce < 0n || nonce > 0xffffffffffffffffn) {
      throw new RangeError(`Nonce ${nonce} out of range`);
    }
    this.#high = Number(nonce >> 32n);
    this.#low = Number(nonce & 0xffffffffn);
  }

  /**
   * EncryptWithAd(ad, plaintext): the plaintext itself while there is no key. `options` (see
   * `CipherFunctions.encrypt`) only once keyed.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array, options?: EncryptOptions): Uint8Array {
    if (this.#key === undefined) {
      if (options) throw new NoiseError("not_established", "No key to encrypt with options");
      return plaintext;
    }
    const length = plaintext.length + (options?.prefix === undefined ? 0 : 1);
    if (length + TAG_BYTES > MAX_MESSAGE_BYTES) {
      throw new NoiseError("bad_message_length", `Plaintext of ${length} bytes`);
    }
    this.#checkNonce();
    const ciphertext = this.cipher.encrypt(
      this.#key,
      this.#high,
      this.#low,
      ad,
      plaintext,
      options,
    );
    this.#increment();
    return ciphertext;
  }

  /**
   * DecryptWithAd(ad, ciphertext): throws `decrypt_failed` on a bad tag, leaving the nonce
   * where it was as the spec says (a replayed or reordered message fails for the same reason).
   * `options` as in `CipherFunctions.decrypt`.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array, options?: DecryptOptions): Uint8Array {
    if (this.#key === undefined) return ciphertext;
    if (ciphertext.length > MAX_MESSAGE_BYTES) {
      throw new NoiseError("bad_message_length", `Ciphertext of ${ciphertext.length} bytes`);
    }
    this.#checkNonce();
    const plaintext = this.cipher.decrypt(
      this.#key,
      this.#high,
      this.#low,
      ad,
      ciphertext,
      options,
    );
    this.#increment();
    return plaintext;
  }

  // Spec §5.1: 2^64-1 is reserved (for Rekey), so a message may never be sent under it.
  #checkNonce(): void {
    if (this.#high === MAX_UINT32 && this.#low === MAX_UINT32) {
      throw new NoiseError("nonce_exhausted", "Nonce 2^64-1 is reserved");
    }
  }

  #increment(): void {
    if (this.#low === MAX_UINT32) {
      this.#low = 0;
      this.#high++;
    } else {
      this.#low++;
    }
  }
}
