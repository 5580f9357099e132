/** Sizes and limits of the Noise layer, with where each one comes from. */

/** Noise spec §3: no Noise message, handshake or transport, is longer than 65535 bytes. */
export const MAX_MESSAGE_BYTES = 65535;

/** Noise spec §4 for 25519 and SHA256: DHLEN and HASHLEN; cipher keys are 32 bytes too. */
export const DH_BYTES = 32;
export const HASH_BYTES = 32;
export const KEY_BYTES = 32;

/** ChaChaPoly and AESGCM append a 16-byte authentication tag. */
export const TAG_BYTES = 16;

/** The most application data one transport message carries: the message limit less the tag. */
export const MAX_TRANSPORT_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - TAG_BYTES;

/** Frames: a 2-byte big-endian length before each Noise message, as libp2p noise frames them. */
export const FRAME_HEADER_BYTES = 2;

/** Ours: the identity payload of handshake messages 2 and 3 stays small (JSON, ~200 bytes). */
export const MAX_HANDSHAKE_PAYLOAD_BYTES = 1024;

/** Ours: the `id` in a handshake payload is 1..200 characters (code points). */
export const MAX_ID_CHARS = 200;

/**
 * The largest XX handshake message: message 2 carries e (32), s encrypted (32 + 16) and the
 * payload encrypted (1024 + 16). Anything longer is refused before it is decrypted.
 */
export const MAX_HANDSHAKE_MESSAGE_BYTES = DH_BYTES + DH_BYTES + TAG_BYTES +
  MAX_HANDSHAKE_PAYLOAD_BYTES + TAG_BYTES;

/** Ours: the first line of every prologue, before the HELLO and HELLO_OK lines it binds. */
export const PROLOGUE_PREFIX = "p2pchat-noise-v1\n";

/** Ours: the text before the static key in what the identity key signs (after libp2p noise). */
export const STATIC_KEY_SIGNATURE_PREFIX = "p2pchat-noise-static-key:";

/** Ours: the label that starts the hash of a safety number, so it means nothing else. */
export const SAFETY_NUMBER_LABEL = "p2pchat-safety-number-v1";
