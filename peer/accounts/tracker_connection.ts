/**
 * Connections to the tracker's session protocol, always encrypted (lib/secure_session.ts), and
 * only to a tracker whose key we expect: the one named by `--tracker-key`, else the one
 * remembered on first use (known_trackers.json), as SSH does with known_hosts. A tracker that
 * proves another key gets nothing: no password, no token, no request.
 */
import { sameBytes } from "../../lib/bytes.ts";
import { P2pError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { fingerprint } from "../../lib/noise/mod.ts";
import { openSecureSession, type SessionIdentity } from "../../lib/secure_session.ts";
import { type Address, type Conn, dialTcp } from "../../lib/transport.ts";
import type { KeyPins } from "../identity/mod.ts";

/** What the connector needs. */
export interface TrackerConnectorOptions {
  address: Address;
  /** Our identity; `localId` is read at each connection (the node knows our peer_id). */
  who: () => SessionIdentity;
  pins: KeyPins;
  /** The fingerprint given by `--tracker-key`, if any. */
  expectedFingerprint?: string;
  now: () => number;
  log: Logger;
  /** Replaces `dialTcp` (tests). */
  dial?: (address: Address, signal: AbortSignal) => Promise<Conn>;
}

/** A `connect` for `SessionClient`: dial, SESSION_HELLO, handshake, tracker key check. */
export function trackerConnector(
  options: TrackerConnectorOptions,
): (signal: AbortSignal) => Promise<Conn> {
  const dial = options.dial ??
    ((to: Address, signal: AbortSignal) => dialTcp(to.hostname, to.port, { signal }));
  return async (signal) => {
    const raw = await dial(options.address, signal);
    const onAbort = () => raw.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const session = await openSecureSession(raw, options.who());
      _checkTrackerKey(session.trackerKey, options);
      return session.conn;
    } catch (error) {
      raw.close();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  };
}

/** Fingerprints compare without spaces and case, so a pasted one matches however grouped. */
export function sameFingerprint(a: string, b: string): boolean {
  const plain = (text: string) => text.replace(/\s+/g, "").toLowerCase();
  return plain(a) === plain(b);
}

function _checkTrackerKey(key: Uint8Array, options: TrackerConnectorOptions): void {
  const id = `${options.address.hostname}:${options.address.port}`;
  const shown = fingerprint(key);
  const pinned = options.pins.get(id);
  if (options.expectedFingerprint !== undefined) {
    if (!sameFingerprint(shown, options.expectedFingerprint)) {
      throw new P2pError(
        "tracker_key_changed",
        `The tracker at ${id} proved the key "${shown}", not "${options.expectedFingerprint}" ` +
          `given by --tracker-key; nothing was sent to it`,
      );
    }
    if (!pinned || !sameBytes(pinned.key, key)) options.pins.pin(id, key, options.now());
    return;
  }
  if (!pinned) {
    options.pins.pin(id, key, options.now());
    options.log.info("Remembered the tracker's key", { tracker: id, fingerprint: shown });
    return;
  }
  if (!sameBytes(pinned.key, key)) {
    throw new P2pError(
      "tracker_key_changed",
      `The tracker at ${id} now proves the key "${shown}", not "${fingerprint(pinned.key)}" ` +
        `remembered on first use; nothing was sent to it. If its key really changed (a ` +
        `reinstalled tracker: ask its operator), start with --tracker-key "${shown}"; ` +
        `otherwise someone may be intercepting the connection`,
    );
  }
}
