/**
 * How a tracker session connection becomes encrypted (docs/protocol.md, "Encrypted sessions"):
 * the client's first line is SESSION_HELLO, the tracker answers it in clear, and both run the
 * Noise XX handshake over the two lines as prologue. The tracker's side lives in
 * tracker/server.ts; the client's is `openSecureSession`.
 */
import { isRecord } from "./codec.ts";
import { P2pError } from "./errors.ts";
import { formatLine, LineDecoder } from "./framing.ts";
import { type Identity, type KeyPair, PROLOGUE_PREFIX } from "./noise/mod.ts";
import { type SecureConn, upgradeConn } from "./secure_conn.ts";
import type { Conn } from "./transport.ts";

/** The first line of an encrypted session. */
export const SESSION_HELLO = "SESSION_HELLO";
/** The feature both lines list. */
export const SESSION_NOISE_FEATURE = "p2pchat-noise";
/** The id the tracker proves in its handshake payload. */
export const TRACKER_ID = "tracker";

/** The client's SESSION_HELLO line, with its newline. */
export function sessionHelloLine(): string {
  return formatLine({ type: SESSION_HELLO, id: 0, version: 1, features: [SESSION_NOISE_FEATURE] });
}

/** The tracker's answer to it, with its newline. */
export function sessionHelloReplyLine(id: unknown): string {
  return formatLine({
    type: "SESSION_REPLY",
    id: typeof id === "number" || typeof id === "string" ? id : null,
    status: "OK",
    version: 1,
    features: [SESSION_NOISE_FEATURE],
  });
}

/** PROLOGUE_PREFIX, then both lines as written. */
export function sessionPrologue(helloLine: string, replyLine: string): Uint8Array {
  return new TextEncoder().encode(PROLOGUE_PREFIX + helloLine + replyLine);
}

/** What the client proves: its identity, this run's static key and its peer_id. */
export interface SessionIdentity {
  identity: Identity;
  staticKeyPair: KeyPair;
  /** Our peer_id, signed in the handshake payload. */
  localId: string;
}

/** An encrypted session, and the tracker's identity key the handshake proved. */
export interface SecureSession {
  conn: SecureConn;
  trackerKey: Uint8Array;
}

/**
 * Client side: says SESSION_HELLO over `conn`, reads the answer, and runs the handshake as
 * initiator. A tracker that does not answer OK is refused (`unknown_command` for one without
 * accounts, `encryption_required` for an older p2pchat tracker), and nothing secret is sent.
 * The caller closes `conn` on failure and bounds the wait (closing `conn` ends it).
 */
export async function openSecureSession(conn: Conn, who: SessionIdentity): Promise<SecureSession> {
  const reader = conn.chunks()[Symbol.asyncIterator]();
  const helloLine = sessionHelloLine();
  await conn.write(new TextEncoder().encode(helloLine));
  const decoder = new LineDecoder();
  for (;;) {
    const next = await reader.next();
    if (next.done) throw new P2pError("closed", "The tracker closed the connection");
    const chunk = next.value;
    const newline = chunk.indexOf(0x0a);
    const [frame] = decoder.push(newline === -1 ? chunk : chunk.subarray(0, newline + 1));
    if (!frame) continue;
    if (frame.kind === "error") throw new P2pError("bad_reply", "The tracker's answer is too long");
    _checkReply(frame.text);
    const { conn: secure, remote } = await upgradeConn(conn, reader, {
      initiator: true,
      prologue: sessionPrologue(helloLine, frame.text + "\n"),
      identity: who.identity,
      staticKeyPair: who.staticKeyPair,
      localId: who.localId,
      leftover: chunk.slice(newline + 1),
    });
    if (remote.id !== TRACKER_ID) {
      throw new P2pError("bad_reply", `The tracker proved the id "${remote.id}"`);
    }
    return { conn: secure, trackerKey: remote.identityKey };
  }
}

function _checkReply(text: string): void {
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    reply = undefined;
  }
  if (!isRecord(reply)) throw new P2pError("bad_reply", "The tracker's answer is not JSON");
  if (reply.type !== "SESSION_REPLY") {
    // A plain pyp2p tracker answers "Unknown command" without a type (others may answer
    // anything). But an ERROR with another message (a rate limit, no free slot) is a busy
    // tracker, not one without accounts: taking it for one would stop the key checks.
    if (reply.status === "ERROR" && reply.message !== "Unknown command") {
      const message = typeof reply.message === "string" ? reply.message : text;
      throw new P2pError("busy", `The tracker refused the session (${message})`);
    }
    throw new P2pError("unknown_command", "The tracker does not offer accounts");
  }
  const features = Array.isArray(reply.features) ? reply.features : [];
  if (reply.status !== "OK" || !features.includes(SESSION_NOISE_FEATURE)) {
    throw new P2pError(
      "encryption_required",
      "The tracker does not offer encrypted sessions (an older p2pchat tracker?); no password " +
        "or token is sent to it in clear",
    );
  }
}
