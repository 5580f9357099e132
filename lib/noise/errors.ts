/** The one error class of the Noise layer, with stable codes for logs and for tests. */

/**
 * Stable codes: what went wrong, never how it was phrased. A channel that threw one of these is
 * failed for good and its connection should be closed.
 */
export type NoiseErrorCode =
  // a message or frame
  | "decrypt_failed"
  | "bad_message_length"
  | "frame_too_long"
  | "empty_frame"
  | "bad_key"
  // a transport message whose kind byte is unknown, or a record that does not fit
  | "bad_record"
  // the handshake payload of p2pchat (identity binding)
  | "bad_payload"
  | "bad_signature"
  // state: a call out of order
  | "handshake_complete"
  | "not_my_turn"
  | "not_established"
  | "failed"
  // a cipher that would reuse its reserved nonce 2^64-1
  | "nonce_exhausted"
  // the stream ended during the handshake: never thrown here, but by the I/O edge that feeds
  // a channel (lib/secure_conn.ts), so one union covers every handshake failure
  | "closed";

/** An error of the Noise layer; `code` is for programs, `message` for people. */
export class NoiseError extends Error {
  constructor(readonly code: NoiseErrorCode, message: string = code) {
    super(message);
    this.name = "NoiseError";
  }
}
