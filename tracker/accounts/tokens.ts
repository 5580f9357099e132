/** Session tokens: 256 random bits shown to the client once; only their SHA-256 is kept. */
import { createHash } from "node:crypto";

const TOKEN_BYTES = 32;

/** A fresh token, base64url without padding (43 characters). */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Hex SHA-256 of a token. Synchronous on purpose: the REGISTER name check runs inside the
 * Rendezvous request path, which has no await.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
