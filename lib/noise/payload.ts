/**
 * The handshake payload that binds a Noise static key to a p2pchat identity, after the libp2p
 * noise spec: the identity key (Ed25519) signs the static key, so a peer that proves it holds
 * the static key (the handshake does) is the holder of the identity key. UTF-8 JSON:
 * `{"identity_key":"<base64>","signature":"<base64>","id":"<id>"}`, the signature over
 * "p2pchat-noise-static-key:" + id + "\n" followed by the 32-byte static public key.
 */
import { charLength } from "../codec.ts";
import {
  MAX_HANDSHAKE_PAYLOAD_BYTES,
  MAX_ID_CHARS,
  STATIC_KEY_SIGNATURE_PREFIX,
} from "./constants.ts";
import { NoiseError } from "./errors.ts";
import { type Identity, verifyIdentitySignature } from "./identity.ts";

/** Who is at the other end, as the handshake proved it. */
export interface RemoteIdentity {
  /** The remote's Ed25519 identity key, raw 32 bytes. */
  readonly identityKey: Uint8Array;
  /** The id the remote claims and signed, such as "alice@default" or "tracker". */
  readonly id: string;
  /** The remote's X25519 static key that the handshake authenticated. */
  readonly staticKey: Uint8Array;
}

const IDENTITY_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** The bytes the identity key signs: the id is included so it cannot be swapped. */
export function staticKeySignatureData(id: string, staticKey: Uint8Array): Uint8Array {
  const prefix = encoder.encode(`${STATIC_KEY_SIGNATURE_PREFIX}${id}\n`);
  const data = new Uint8Array(prefix.length + staticKey.length);
  data.set(prefix);
  data.set(staticKey, prefix.length);
  return data;
}

/** Our payload; a RangeError if the id or the result is outside the limits. */
export function encodeHandshakePayload(
  identity: Identity,
  id: string,
  staticKey: Uint8Array,
): Uint8Array {
  if (!_isValidId(id)) throw new RangeError(`Id "${id}" is not 1..${MAX_ID_CHARS} characters`);
  if (identity.publicKey.length !== IDENTITY_KEY_BYTES) {
    throw new RangeError(`Identity key of ${identity.publicKey.length} bytes, not 32`);
  }
  const signature = identity.sign(staticKeySignatureData(id, staticKey));
  if (signature.length !== SIGNATURE_BYTES) {
    throw new RangeError(`Identity signature of ${signature.length} bytes, not 64`);
  }
  const payload = encoder.encode(JSON.stringify({
    identity_key: identity.publicKey.toBase64(),
    signature: signature.toBase64(),
    id,
  }));
  if (payload.length > MAX_HANDSHAKE_PAYLOAD_BYTES) {
    throw new RangeError(`Handshake payload of ${payload.length} bytes for id "${id}"`);
  }
  return payload;
}

/**
 * Checks the remote's payload against the static key the handshake authenticated; throws
 * `bad_payload` for anything malformed and `bad_signature` for a signature that does not hold.
 */
export function decodeHandshakePayload(payload: Uint8Array, staticKey: Uint8Array): RemoteIdentity {
  if (payload.length > MAX_HANDSHAKE_PAYLOAD_BYTES) {
    throw new NoiseError("bad_payload", `Handshake payload of ${payload.length} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(strictDecoder.decode(payload));
  } catch {
    throw new NoiseError("bad_payload", "Handshake payload is not UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new NoiseError("bad_payload", "Handshake payload is not a JSON object");
  }
  // Fields beyond these three are ignored, so a later version may add some.
  const fields = value as Record<string, unknown>;
  const identityKey = _base64Field(fields, "identity_key", IDENTITY_KEY_BYTES);
  const signature = _base64Field(fields, "signature", SIGNATURE_BYTES);
  const id = fields.id;
  if (!_isValidId(id)) {
    throw new NoiseError(
      "bad_payload",
      `Handshake payload id is not 1..${MAX_ID_CHARS} characters`,
    );
  }
  if (!verifyIdentitySignature(identityKey, staticKeySignatureData(id, staticKey), signature)) {
    throw new NoiseError(
      "bad_signature",
      `Identity signature of "${id}" does not match its static key`,
    );
  }
  return { identityKey, id, staticKey: staticKey.slice() };
}

function _isValidId(id: unknown): id is string {
  return typeof id === "string" && id.length > 0 && charLength(id) <= MAX_ID_CHARS;
}

// Canonical base64 only (padding, no white space): one value has one spelling.
function _base64Field(fields: Record<string, unknown>, name: string, length: number): Uint8Array {
  const text = fields[name];
  if (typeof text === "string") {
    let bytes: Uint8Array | undefined;
    try {
      bytes = Uint8Array.fromBase64(text);
    } catch {
      bytes = undefined;
    }
    if (bytes !== undefined && bytes.length === length && bytes.toBase64() === text) return bytes;
  }
  throw new NoiseError(
    "bad_payload",
    `Handshake payload field "${name}" is not ${length} bytes of base64`,
  );
}
