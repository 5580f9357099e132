/**
 * The secure channel of a p2pchat connection, free of I/O: bytes in, frames and plaintext out.
 * Noise XX authenticates both static keys; the handshake payloads (messages 2 and 3) bind each
 * static key to an Ed25519 identity and an id. The caller writes the plaintext HELLO and
 * HELLO_OK first and passes them in the prologue, so the negotiation cannot be altered unseen.
 */
import type { CipherState } from "./cipher_state.ts";
import {
  FRAME_HEADER_BYTES,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  MAX_TRANSPORT_PAYLOAD_BYTES,
} from "./constants.ts";
import type { CipherName, EncryptOptions, KeyPair } from "./crypto.ts";
import { NoiseError } from "./errors.ts";
import { encodeFrame, FrameDecoder, frameInPlace } from "./frames.ts";
import { HandshakeState } from "./handshake_state.ts";
import type { Identity } from "./identity.ts";
import { decodeHandshakePayload, encodeHandshakePayload, type RemoteIdentity } from "./payload.ts";

/** What a secure channel starts from. */
export interface SecureChannelOptions {
  initiator: boolean;
  /** "p2pchat-noise-v1\n" + the HELLO line + the HELLO_OK line, as bytes; the same on both sides. */
  prologue: Uint8Array;
  /** Our X25519 static key pair, raw 32-byte keys. */
  staticKeyPair: KeyPair;
  /** Our Ed25519 identity, which signs the static key. */
  identity: Identity;
  /** The id we prove, such as the peer_id "alice@default" or "tracker". */
  localId: string;
  /** Default "ChaChaPoly". */
  cipher?: CipherName;
  /**
   * Each transport message starts with a kind byte (`RECORD_KIND_TEXT` or `RECORD_KIND_DATA`),
   * so opaque records can travel beside the byte stream (p2pchat-file-frames).
   */
  records?: boolean;
  /** A fixed ephemeral key pair: for tests only. */
  ephemeral?: KeyPair;
}

/** What one `push()` gives back. */
export interface PushResult {
  /** Frames to send now, in order (handshake replies). */
  write: Uint8Array[];
  /** Application data decrypted, in order. */
  plaintext: Uint8Array[];
  /**
   * Records decrypted (with `records`), each with how many `plaintext` entries came before
   * it, so that the reader can keep the order between the two.
   */
  records: { after: number; body: Uint8Array }[];
  /** Set by the push that completes the handshake. */
  established?: RemoteIdentity;
}

/** "handshaking" until both identities are proved, then "established"; "failed" is final. */
export type SecureChannelState = "handshaking" | "established" | "failed";

/** One side of a secure channel. */
export interface SecureChannel {
  /** Frames to write first: message 1 for the initiator, nothing for the responder. */
  start(): Uint8Array[];
  /** Feeds received bytes; throws a NoiseError (and fails the channel) on anything wrong. */
  push(chunk: Uint8Array): PushResult;
  /** Application data as frames of at most 65519 plaintext bytes each; only once established. */
  encrypt(plaintext: Uint8Array): Uint8Array[];
  /** One record as one frame (with `records`); at most `MAX_RECORD_BYTES`. */
  encryptRecord(body: Uint8Array): Uint8Array;
  readonly state: SecureChannelState;
  /** The remote identity, once established. */
  readonly remote?: RemoteIdentity;
  /** The handshake hash, once established: the same on both sides (channel binding). */
  readonly handshakeHash?: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const IN_PLACE = { inPlace: true };

/** Kind bytes of a transport message with `records`: stream bytes follow, or one record. */
export const RECORD_KIND_TEXT = 0;
export const RECORD_KIND_DATA = 1;
/** The longest record: a transport message's plaintext less its kind byte. */
export const MAX_RECORD_BYTES = MAX_TRANSPORT_PAYLOAD_BYTES - 1;

// How a transport message is encrypted into its frame, made once rather than per message.
const FRAME = { headroom: FRAME_HEADER_BYTES };
const TEXT_FRAME = { prefix: RECORD_KIND_TEXT, headroom: FRAME_HEADER_BYTES };
const DATA_FRAME = { prefix: RECORD_KIND_DATA, headroom: FRAME_HEADER_BYTES };

/** A secure channel over Noise_XX_25519_ChaChaPoly_SHA256 (or AESGCM), not yet started. */
export function createSecureChannel(options: SecureChannelOptions): SecureChannel {
  return new _SecureChannel(options);
}

class _SecureChannel implements SecureChannel {
  #state: SecureChannelState = "handshaking";
  #handshake: HandshakeState | undefined;
  #payload: Uint8Array;
  #decoder = new FrameDecoder();
  #send: CipherState | undefined;
  #receive: CipherState | undefined;
  #remote: RemoteIdentity | undefined;
  #pendingRemote: RemoteIdentity | undefined;
  #handshakeHash: Uint8Array | undefined;
  readonly #records: boolean;

  constructor(options: SecureChannelOptions) {
    this.#records = options.records ?? false;
    this.#handshake = new HandshakeState({
      protocolName: `Noise_XX_25519_${options.cipher ?? "ChaChaPoly"}_SHA256`,
      initiator: options.initiator,
      prologue: options.prologue,
      staticKeyPair: options.staticKeyPair,
      ephemeralKeyPair: options.ephemeral,
    });
    // Signed once here: the signature covers only the id and the static key.
    this.#payload = encodeHandshakePayload(
      options.identity,
      options.localId,
      options.staticKeyPair.publicKey,
    );
  }

  get state(): SecureChannelState {
    return this.#state;
  }

  get remote(): RemoteIdentity | undefined {
    return this.#remote;
  }

  get handshakeHash(): Uint8Array | undefined {
    return this.#handshakeHash?.slice();
  }

  start(): Uint8Array[] {
    const handshake = this.#activeHandshake();
    if (!handshake.initiator) return [];
    return this.#guard(() => [encodeFrame(handshake.writeMessage(EMPTY))]);
  }

  push(chunk: Uint8Array): PushResult {
    // Nothing is returned after a failure, whatever arrives.
    if (this.#state === "failed") return { write: [], plaintext: [], records: [] };
    return this.#guard(() => {
      const result: PushResult = { write: [], plaintext: [], records: [] };
      for (const frame of this.#decoder.push(chunk)) {
        if (this.#state === "handshaking") {
          // The peer may send transport frames right behind its last handshake message: once
          // established, the rest of this loop decrypts them.
          this.#readHandshakeFrame(frame, result);
        } else {
          // The frame is ours (a view of the read, or the decoder's) and read only here.
          const message = this.#receive!.decryptWithAd(EMPTY, frame, IN_PLACE);
          this.#received(message, message.buffer === frame.buffer, result);
        }
      }
      return result;
    });
  }

  encrypt(plaintext: Uint8Array): Uint8Array[] {
    this.#checkEstablished();
    return this.#guard(() => {
      const frames: Uint8Array[] = [];
      const step = this.#records ? MAX_RECORD_BYTES : MAX_TRANSPORT_PAYLOAD_BYTES;
      for (let at = 0; at < plaintext.length; at += step) {
        const options = this.#records ? TEXT_FRAME : FRAME;
        frames.push(this.#encryptFrame(plaintext.subarray(at, at + step), options));
      }
      return frames;
    });
  }

  encryptRecord(body: Uint8Array): Uint8Array {
    this.#checkEstablished();
    if (!this.#records) throw new NoiseError("bad_record", "Records were not agreed");
    if (body.length === 0 || body.length > MAX_RECORD_BYTES) {
      throw new NoiseError("bad_record", `Record of ${body.length} bytes`);
    }
    return this.#guard(() => this.#encryptFrame(body, DATA_FRAME));
  }

  // Encrypted straight into its frame: a 64 KiB message is not copied once more.
  #encryptFrame(plaintext: Uint8Array, options: EncryptOptions): Uint8Array {
    return frameInPlace(this.#send!.encryptWithAd(EMPTY, plaintext, options));
  }

  #checkEstablished(): void {
    if (this.#state === "established") return;
    throw new NoiseError(
      this.#state === "failed" ? "failed" : "not_established",
      `Cannot encrypt while the channel is ${this.#state}`,
    );
  }

  // A decrypted transport message: stream bytes, or (with records) what its kind byte says.
  // `inRead`: it lies in memory the next read reuses, which stream bytes may (they are taken
  // before the next read) but a record may not (its file write outlasts the read).
  #received(message: Uint8Array, inRead: boolean, result: PushResult): void {
    if (!this.#records) {
      result.plaintext.push(message);
      return;
    }
    const kind = message[0];
    if (kind === RECORD_KIND_TEXT && message.length > 1) {
      result.plaintext.push(message.subarray(1));
    } else if (kind === RECORD_KIND_DATA && message.length > 1) {
      const body = inRead ? message.slice(1) : message.subarray(1);
      result.records.push({ after: result.plaintext.length, body });
    } else {
      throw new NoiseError(
        "bad_record",
        `Transport message of kind ${kind}, ${message.length} bytes`,
      );
    }
  }

  #readHandshakeFrame(frame: Uint8Array, result: PushResult): void {
    const handshake = this.#activeHandshake();
    if (frame.length > MAX_HANDSHAKE_MESSAGE_BYTES) {
      throw new NoiseError("frame_too_long", `Handshake message of ${frame.length} bytes`);
    }
    const index = handshake.messageIndex;
    const payload = handshake.readMessage(frame);
    if (index === 0) {
      // Message 1 travels before any key: it carries nothing, so nothing is sent in clear.
      if (payload.length > 0) {
        throw new NoiseError("bad_payload", "Handshake message 1 has a payload");
      }
    } else {
      // XX: the remote static key is known and authenticated once message 2 or 3 is read.
      this.#pendingRemote = decodeHandshakePayload(payload, handshake.remoteStaticKey!);
    }
    if (handshake.isMyTurn) result.write.push(encodeFrame(handshake.writeMessage(this.#payload)));
    if (handshake.complete) {
      const { send, receive } = handshake.split();
      this.#send = send;
      this.#receive = receive;
      this.#handshakeHash = handshake.handshakeHash;
      this.#remote = this.#pendingRemote;
      this.#handshake = undefined;
      this.#state = "established";
      result.established = this.#remote;
    }
  }

  #activeHandshake(): HandshakeState {
    if (this.#state === "failed") throw new NoiseError("failed", "The channel failed");
    if (this.#handshake === undefined) {
      throw new NoiseError("handshake_complete", "The handshake is complete");
    }
    return this.#handshake;
  }

  // Any error ends the channel for good: its keys are dropped and nothing is returned again.
  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      this.#state = "failed";
      this.#handshake = undefined;
      this.#send = undefined;
      this.#receive = undefined;
      throw error;
    }
  }
}
