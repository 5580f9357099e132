/**
 * HandshakeState of the Noise spec §5.3: a generic token engine that writes and reads the
 * messages of any pattern in patterns.ts. Pure: keys come in, bytes come out, and the only
 * randomness (the ephemeral key) can be fixed by the caller.
 */
import { concatBytes } from "../bytes.ts";
import type { CipherState } from "./cipher_state.ts";
import { DH_BYTES, MAX_MESSAGE_BYTES, TAG_BYTES } from "./constants.ts";
import { cipherFunctions, dh, generateKeyPair, type KeyPair } from "./crypto.ts";
import { NoiseError } from "./errors.ts";
import { type HandshakePattern, parseProtocolName, type Token } from "./patterns.ts";
import { SymmetricState } from "./symmetric_state.ts";

/** What a handshake starts from; which keys are needed depends on the pattern. */
export interface HandshakeOptions {
  /** For example "Noise_XX_25519_ChaChaPoly_SHA256". */
  protocolName: string;
  initiator: boolean;
  /** Bound into the handshake hash: both sides must pass the same bytes. */
  prologue?: Uint8Array;
  /** s: our static key pair. */
  staticKeyPair?: KeyPair;
  /** e: a fixed ephemeral key pair (test vectors); otherwise one is generated when needed. */
  ephemeralKeyPair?: KeyPair;
  /** rs: the remote static key, for patterns where it is known in advance (XK, IK). */
  remoteStaticKey?: Uint8Array;
  /** re: the remote ephemeral key, for patterns with an ephemeral pre-message. */
  remoteEphemeralKey?: Uint8Array;
}

/** The transport ciphers a completed handshake gives, oriented for this side. */
export interface TransportCiphers {
  send: CipherState;
  receive: CipherState;
}

const EMPTY = new Uint8Array(0);

/** Runs one side of a handshake, message by message. */
export class HandshakeState {
  readonly initiator: boolean;
  readonly pattern: HandshakePattern;
  #symmetric: SymmetricState;
  #s: KeyPair | undefined;
  #e: KeyPair | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  #index = 0;
  #failed = false;
  #ciphers: TransportCiphers | undefined;

  /** Initialize(): mixes the prologue and the pre-message keys into the hash. */
  constructor(options: HandshakeOptions) {
    const { pattern, cipher } = parseProtocolName(options.protocolName);
    this.pattern = pattern;
    this.initiator = options.initiator;
    this.#s = _checkKeyPair("static", options.staticKeyPair);
    this.#e = _checkKeyPair("ephemeral", options.ephemeralKeyPair);
    this.#rs = _checkPublicKey("remote static", options.remoteStaticKey);
    this.#re = _checkPublicKey("remote ephemeral", options.remoteEphemeralKey);
    this.#checkKeysFor(pattern);

    this.#symmetric = new SymmetricState(options.protocolName, cipherFunctions(cipher));
    this.#symmetric.mixHash(options.prologue ?? EMPTY);
    // The initiator's pre-message keys are hashed first, whichever side we are.
    const local = (token: "e" | "s") => (token === "e" ? this.#e : this.#s)!.publicKey;
    const remote = (token: "e" | "s") => (token === "e" ? this.#re : this.#rs)!;
    for (const token of pattern.initiatorPreMessage) {
      this.#symmetric.mixHash(this.initiator ? local(token) : remote(token));
    }
    for (const token of pattern.responderPreMessage) {
      this.#symmetric.mixHash(this.initiator ? remote(token) : local(token));
    }
  }

  /** True once the last message was written or read: `split()` may be called. */
  get complete(): boolean {
    return this.#index === this.pattern.messages.length;
  }

  /** True when the next call should be `writeMessage()`. */
  get isMyTurn(): boolean {
    return !this.complete && (this.#index % 2 === 0) === this.initiator;
  }

  /** True after a message failed to read or write: the handshake cannot go on. */
  get failed(): boolean {
    return this.#failed;
  }

  /** The index of the next message to write or read. */
  get messageIndex(): number {
    return this.#index;
  }

  /** h: the handshake hash, which both sides share once complete (channel binding). */
  get handshakeHash(): Uint8Array {
    return this.#symmetric.handshakeHash;
  }

  /** rs: the remote static key, once known. */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.#rs?.slice();
  }

  /** WriteMessage(payload): the next message of the pattern, payload encrypted when it can be. */
  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    this.#checkTurn(true);
    return this.#guard(() => {
      const parts: Uint8Array[] = [];
      for (const token of this.pattern.messages[this.#index]) {
        if (token === "e") {
          this.#e ??= generateKeyPair();
          parts.push(this.#e.publicKey);
          this.#symmetric.mixHash(this.#e.publicKey);
        } else if (token === "s") {
          parts.push(this.#symmetric.encryptAndHash(this.#s!.publicKey));
        } else {
          this.#mixDh(token);
        }
      }
      parts.push(this.#symmetric.encryptAndHash(payload));
      const message = concatBytes(parts);
      if (message.length > MAX_MESSAGE_BYTES) {
        throw new NoiseError("bad_message_length", `Handshake message of ${message.length} bytes`);
      }
      this.#advance();
      return message;
    });
  }

  /** ReadMessage(message): the payload, or a thrown NoiseError that fails the handshake. */
  readMessage(message: Uint8Array): Uint8Array {
    this.#checkTurn(false);
    return this.#guard(() => {
      if (message.length > MAX_MESSAGE_BYTES) {
        throw new NoiseError("bad_message_length", `Handshake message of ${message.length} bytes`);
      }
      let offset = 0;
      const take = (length: number): Uint8Array => {
        if (message.length - offset < length) {
          throw new NoiseError(
            "bad_message_length",
            `Handshake message of ${message.length} bytes`,
          );
        }
        offset += length;
        return message.subarray(offset - length, offset);
      };
      for (const token of this.pattern.messages[this.#index]) {
        if (token === "e") {
          this.#re = take(DH_BYTES).slice();
          this.#symmetric.mixHash(this.#re);
        } else if (token === "s") {
          const length = DH_BYTES + (this.#symmetric.cipherState.hasKey() ? TAG_BYTES : 0);
          this.#rs = this.#symmetric.decryptAndHash(take(length)).slice();
        } else {
          this.#mixDh(token);
        }
      }
      const encrypted = this.#symmetric.cipherState.hasKey();
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset));
      this.#advance();
      // Without a key the payload is a view of the caller's message: hand out a copy.
      return encrypted ? payload : payload.slice();
    });
  }

  /** Split(): the transport ciphers, once the handshake is complete. */
  split(): TransportCiphers {
    if (this.#failed) throw new NoiseError("failed", "The handshake failed");
    if (this.#ciphers === undefined) {
      throw new NoiseError("not_established", "The handshake is not complete");
    }
    return this.#ciphers;
  }

  // es means DH(e of the initiator, s of the responder): each side picks its own half.
  #mixDh(token: Exclude<Token, "e" | "s">): void {
    const [mine, theirs] = this.initiator
      ? { ee: ["e", "e"], es: ["e", "s"], se: ["s", "e"], ss: ["s", "s"] }[token]
      : { ee: ["e", "e"], es: ["s", "e"], se: ["e", "s"], ss: ["s", "s"] }[token];
    const keyPair = mine === "e" ? this.#e : this.#s;
    const remote = theirs === "e" ? this.#re : this.#rs;
    if (keyPair === undefined || remote === undefined) {
      // Only a pattern table mistake gets here: the constructor checked our keys.
      throw new TypeError(`Token "${token}" without its keys`);
    }
    this.#symmetric.mixKey(dh(keyPair, remote));
  }

  #advance(): void {
    this.#index++;
    if (this.complete) {
      const [first, second] = this.#symmetric.split();
      this.#ciphers = this.initiator
        ? { send: first, receive: second }
        : { send: second, receive: first };
    }
  }

  #checkTurn(writing: boolean): void {
    if (this.#failed) throw new NoiseError("failed", "The handshake failed");
    if (this.complete) throw new NoiseError("handshake_complete", "The handshake is complete");
    if (this.isMyTurn !== writing) {
      throw new NoiseError(
        "not_my_turn",
        `Message ${this.#index} is not ours to ${writing ? "write" : "read"}`,
      );
    }
  }

  // Any failure leaves the hash half-mixed: the handshake is over.
  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  #checkKeysFor(pattern: HandshakePattern): void {
    const mine = this.initiator ? 0 : 1;
    const needs = (side: number, token: "s" | "e") =>
      pattern.messages.some((tokens, i) => i % 2 === side && tokens.includes(token));
    const preMine = this.initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage;
    const preTheirs = this.initiator ? pattern.responderPreMessage : pattern.initiatorPreMessage;
    if ((needs(mine, "s") || preMine.includes("s")) && this.#s === undefined) {
      throw new TypeError(`Pattern ${pattern.name} needs our static key pair`);
    }
    if (preMine.includes("e") && this.#e === undefined) {
      throw new TypeError(`Pattern ${pattern.name} needs our ephemeral key pair`);
    }
    if (preTheirs.includes("s") && this.#rs === undefined) {
      throw new TypeError(`Pattern ${pattern.name} needs the remote static key`);
    }
    if (preTheirs.includes("e") && this.#re === undefined) {
      throw new TypeError(`Pattern ${pattern.name} needs the remote ephemeral key`);
    }
  }
}

function _checkKeyPair(what: string, keyPair: KeyPair | undefined): KeyPair | undefined {
  if (keyPair === undefined) return undefined;
  _checkPublicKey(what, keyPair.publicKey);
  if (keyPair.privateKey.length !== DH_BYTES) {
    throw new RangeError(`The ${what} private key has ${keyPair.privateKey.length} bytes, not 32`);
  }
  return { publicKey: keyPair.publicKey.slice(), privateKey: keyPair.privateKey.slice() };
}

function _checkPublicKey(what: string, key: Uint8Array | undefined): Uint8Array | undefined {
  if (key !== undefined && key.length !== DH_BYTES) {
    throw new RangeError(`The ${what} public key has ${key.length} bytes, not 32`);
  }
  return key?.slice();
}
