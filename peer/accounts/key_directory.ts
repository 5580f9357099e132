/**
 * The tracker's directory of account keys, as the trust policy asks it (peer/identity): "is
 * `alice` an account, and what is its identity key?". Asked with SESSION_KEYS over the logged-in
 * session, or over a short encrypted session of its own when we are not logged in (anyone may
 * ask). Answers are kept a while; pushed `key_changed` events update them at once.
 */
import { bytesFromBase64 } from "../../lib/bytes.ts";
import type { Clock } from "../../lib/clock.ts";
import { isRecord } from "../../lib/codec.ts";
import { describeError, P2pError } from "../../lib/errors.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import type { Logger } from "../../lib/log.ts";
import type { Conn } from "../../lib/transport.ts";
import type { AccountKey, AccountKeys } from "../identity/mod.ts";
import type { SessionClient } from "./session_client.ts";

/** How long answers are kept, by kind. */
export const KEY_CACHE_MS = {
  /** An account's key changes rarely, and a change is pushed to logged-in peers at once. */
  account: 10 * 60_000,
  /** A free name may be signed up any time. */
  none: 30_000,
  /** No answer: ask again soon, but not on every connection while the tracker is away. */
  unknown: 5_000,
} as const;

/**
 * A tracker without accounts (plain pyp2p) is not asked again for this long: each question costs
 * it a connection, and pyp2p trackers limit connections per address.
 */
export const NO_ACCOUNTS_PAUSE_MS = 10 * 60_000;

/** A lookup waits this long for the tracker, then counts as no answer. */
export const KEY_LOOKUP_TIMEOUT_MS = 3_000;

const KEY_BYTES = 32;
const UNKNOWN: AccountKey = { kind: "unknown" };

/** Account keys from the tracker, with a cache. */
export class KeyDirectory implements AccountKeys {
  readonly #client: Pick<SessionClient, "state" | "request">;
  readonly #connect: (signal: AbortSignal) => Promise<Conn>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #cache = new Map<string, { answer: AccountKey; until: number }>();
  readonly #asking = new Map<string, Promise<AccountKey>>();
  // Until then every name is "unknown" without asking (tracker away, or without accounts).
  #pausedUntil = 0;

  constructor(
    client: Pick<SessionClient, "state" | "request">,
    connect: (signal: AbortSignal) => Promise<Conn>,
    deps: { clock: Clock; log: Logger },
  ) {
    this.#client = client;
    this.#connect = connect;
    this.#clock = deps.clock;
    this.#log = deps.log.child("Keys");
  }

  cached(username: string): AccountKey | undefined {
    if (this.#clock.now() < this.#pausedUntil) return UNKNOWN;
    const entry = this.#cache.get(_fold(username));
    return entry && entry.until > this.#clock.now() ? entry.answer : undefined;
  }

  lookup(username: string): Promise<AccountKey> {
    const key = _fold(username);
    const asking = this.#asking.get(key);
    if (asking) return asking;
    const lookup = this.#ask(username).then((answer) => {
      this.#remember(username, answer);
      return answer;
    }).finally(() => this.#asking.delete(key));
    this.#asking.set(key, lookup);
    return lookup;
  }

  /** What the tracker told us otherwise (a pushed `key_changed`, a member list). */
  learn(username: string, identityKey: unknown): void {
    const key = bytesFromBase64(identityKey);
    if (key?.length === KEY_BYTES) this.#remember(username, { kind: "account", key });
  }

  #remember(username: string, answer: AccountKey): void {
    this.#cache.set(_fold(username), {
      answer,
      until: this.#clock.now() + KEY_CACHE_MS[answer.kind],
    });
  }

  async #ask(username: string): Promise<AccountKey> {
    const signal = AbortSignal.timeout(KEY_LOOKUP_TIMEOUT_MS);
    try {
      const reply = this.#client.state === "logged_in"
        ? await this.#client.request("SESSION_KEYS", { usernames: [username] })
        : await this.#askOnce(username, signal);
      const keys = isRecord(reply.keys) ? reply.keys : {};
      const value = keys[username];
      if (value === null) return { kind: "none" };
      const key = bytesFromBase64(value);
      return key?.length === KEY_BYTES ? { kind: "account", key } : UNKNOWN;
    } catch (error) {
      this.#log.debug("Key lookup failed", { username, error: describeError(error) });
      // A failed dial is no P2pError: the tracker is away.
      const code = error instanceof P2pError ? error.code : "tracker_unreachable";
      const pauseMs = code === "unknown_command"
        ? NO_ACCOUNTS_PAUSE_MS
        : code === "tracker_unreachable" || code === "tracker_key_changed"
        ? KEY_CACHE_MS.unknown
        : 0;
      this.#pausedUntil = Math.max(this.#pausedUntil, this.#clock.now() + pauseMs);
      return UNKNOWN;
    }
  }

  // One request on a session of its own, closed right after the reply.
  async #askOnce(username: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const conn = await this.#connect(signal);
    const onAbort = () => conn.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await conn.write(encodeLine({ type: "SESSION_KEYS", id: 1, usernames: [username] }));
      const decoder = new LineDecoder();
      for await (const chunk of conn.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind !== "line") throw new Error("The tracker's reply is too long");
          const reply = JSON.parse(frame.text);
          if (isRecord(reply) && reply.type === "SESSION_REPLY" && reply.id === 1) {
            if (reply.status !== "OK") throw new Error(String(reply.code));
            return reply;
          }
        }
      }
      throw new Error("The tracker closed the connection");
    } finally {
      signal.removeEventListener("abort", onAbort);
      conn.close();
    }
  }
}

// Account names are compared ignoring case, as the tracker does.
function _fold(username: string): string {
  return username.toLowerCase();
}
