/** Wire limits and defaults shared by the tracker and the peer, with where each comes from. */

/** Program version printed by `--version`. */
export const VERSION = "0.1.0";

/** Peer protocol version sent in HELLO (pyp2p peers send "1.0"). */
export const PROTOCOL_VERSION = "1.0";

/** pyp2p framing: a line longer than this many bytes (newline excluded) is an error. */
export const MAX_LINE_BYTES = 32768;

/** pyp2p REGISTER: `ttl` defaults to 7200 s and is clamped into 1..86400. */
export const DEFAULT_TTL_SECONDS = 7200;
export const MIN_TTL_SECONDS = 1;
export const MAX_TTL_SECONDS = 86400;

/** pyp2p REGISTER: `name` and `namespace` are 1..64 characters. */
export const MAX_NAME_CHARS = 64;

/** pyp2p tracker: a connection silent for about a second is closed. */
export const TRACKER_IDLE_TIMEOUT_MS = 1000;

/** Ours: the first request line must be complete within 10 s in all, however it trickles in. */
export const FIRST_LINE_TIMEOUT_MS = 10_000;

/** pyp2p tracker abuse protection: 50 connections per 60 s per IP, then a 60 s block. */
export const DEFAULT_RATE_LIMIT = { max: 50, windowSeconds: 60, blockSeconds: 60 } as const;

/** Default tracker address (the pyp2p reference listens on 0.0.0.0:8080). */
export const DEFAULT_TRACKER_HOST = "0.0.0.0";
export const DEFAULT_TRACKER_PORT = 8080;

/** Peer protocol: keep-alive PING period and SEND delivery timeout. */
export const PING_INTERVAL_MS = 30_000;
export const ACK_TIMEOUT_MS = 5_000;

/** Peer protocol: every message carries `"ttl":1`, never decremented (no relaying). */
export const MESSAGE_TTL = 1;
