/** SymmetricState of the Noise spec §5.2: the chaining key, the handshake hash and a cipher. */
import { CipherState } from "./cipher_state.ts";
import { type CipherFunctions, hkdf, sha256 } from "./crypto.ts";
import { HASH_BYTES } from "./constants.ts";

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** Mixes keys and handshake data into the running hash and chaining key. */
export class SymmetricState {
  readonly cipherState: CipherState;
  #chainingKey: Uint8Array;
  #hash: Uint8Array;

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: string, readonly cipher: CipherFunctions) {
    const name = encoder.encode(protocolName);
    // Names up to HASHLEN bytes are used as they are, zero-padded; longer ones are hashed.
    if (name.length <= HASH_BYTES) {
      this.#hash = new Uint8Array(HASH_BYTES);
      this.#hash.set(name);
    } else {
      this.#hash = sha256(name);
    }
    this.#chainingKey = this.#hash;
    this.cipherState = new CipherState(cipher);
  }

  /** h: the handshake hash so far (a copy). */
  get handshakeHash(): Uint8Array {
    return this.#hash.slice();
  }

  /** MixKey(input_key_material). */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, key] = hkdf(this.#chainingKey, inputKeyMaterial, 2);
    this.#chainingKey = chainingKey;
    this.cipherState.initializeKey(key);
  }

  /** MixHash(data). */
  mixHash(data: Uint8Array): void {
    this.#hash = sha256(this.#hash, data);
  }

  /** MixKeyAndHash(input_key_material): for psk tokens, which no pattern here uses yet. */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, hashInput, key] = hkdf(this.#chainingKey, inputKeyMaterial, 3);
    this.#chainingKey = chainingKey;
    this.mixHash(hashInput);
    this.cipherState.initializeKey(key);
  }

  /** EncryptAndHash(plaintext): the hash so far is the associated data. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipherState.encryptWithAd(this.#hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** DecryptAndHash(ciphertext). */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipherState.decryptWithAd(this.#hash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): the two transport ciphers, initiator-to-responder first. */
  split(): [CipherState, CipherState] {
    const [first, second] = hkdf(this.#chainingKey, EMPTY, 2);
    return [new CipherState(this.cipher, first), new CipherState(this.cipher, second)];
  }
}
