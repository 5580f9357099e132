/**
 * Noise Protocol (spec revision 34) for p2pchat, free of I/O: the handshake and transport
 * state machines checked against the cacophony vectors, the frames that carry them on a
 * stream, and the secure channel that binds a handshake to Ed25519 identities.
 */
export { CipherState } from "./cipher_state.ts";
export {
  MAX_HANDSHAKE_PAYLOAD_BYTES,
  MAX_ID_CHARS,
  MAX_MESSAGE_BYTES,
  MAX_TRANSPORT_PAYLOAD_BYTES,
  PROLOGUE_PREFIX,
} from "./constants.ts";
export {
  AES_GCM,
  CHACHA_POLY,
  type CipherFunctions,
  type CipherName,
  generateKeyPair as generateStaticKeyPair,
  type KeyPair,
  keyPairFromPrivateKey,
} from "./crypto.ts";
export { NoiseError, type NoiseErrorCode } from "./errors.ts";
export { encodeFrame, FrameDecoder } from "./frames.ts";
export { type HandshakeOptions, HandshakeState, type TransportCiphers } from "./handshake_state.ts";
export {
  fingerprint,
  generateIdentityKeyPair,
  type Identity,
  identityFromPrivateKey,
  type IdentityKeyPair,
  safetyNumber,
  signWith,
  verifyIdentitySignature,
} from "./identity.ts";
export {
  type HandshakePattern,
  parseProtocolName,
  PATTERNS,
  type ProtocolName,
  type Token,
} from "./patterns.ts";
export type { RemoteIdentity } from "./payload.ts";
export {
  createSecureChannel,
  MAX_RECORD_BYTES,
  type PushResult,
  type SecureChannel,
  type SecureChannelOptions,
  type SecureChannelState,
} from "./secure_channel.ts";
export { SymmetricState } from "./symmetric_state.ts";
