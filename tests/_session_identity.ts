/** Test helper: a client identity for encrypted tracker sessions (what a peer profile holds). */
import {
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
} from "../lib/noise/mod.ts";
import { openSecureSession, type SessionIdentity } from "../lib/secure_session.ts";
import type { Conn } from "../lib/transport.ts";

/** A fresh Ed25519 identity and X25519 static key proving `localId`. */
export function newSessionIdentity(localId = "tester@default"): SessionIdentity {
  return {
    identity: identityFromPrivateKey(generateIdentityKeyPair().privateKey),
    staticKeyPair: generateStaticKeyPair(),
    localId,
  };
}

/** Opens an encrypted session over `conn`; closes `conn` when the opening fails. */
export async function secureSession(conn: Conn, who: SessionIdentity) {
  try {
    return await openSecureSession(conn, who);
  } catch (error) {
    conn.close();
    throw error;
  }
}
