/**
 * The tracker's directory of account keys, as the trust policy asks it (peer/identity): "is
 * `alice` an account, and what is its identity key?". Asked with SESSION_KEYS over the logged-in
 * session, or over a short encrypted session of its own when we are not logged in (anyone may
 * ask). Answers are kept a while; pushed `key_changed` events update them at once.
 */
import { bytesFromBase64 } from "../../lib/bytes.ts";
import type { Clock } from "../../lib/clock.ts";
import { isRecord } from "../../lib/codec.ts";
import { describeError, type ErrorCode, P2pError } from "../../lib/errors.ts";
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
  /** A tracker without accounts: nothing to ask (see NO_ACCOUNTS_PAUSE_MS for how long). */
  unknown: 5_000,
  /** No answer from a tracker with accounts: ask again soon, not on every connection. */
  unavailable: 5_000,
} as const;

/**
 * Sessions of its own (when not logged in) opened at most this many a minute: each costs the
 * tracker a connection, and trackers limit connections per address. Past it, strangers wait.
 * A session is kept for KEYS_SESSION_MS and carries every lookup meanwhile.
 */
export const MAX_KEY_SESSIONS_PER_MINUTE = 10;
/** Under the tracker's 30 s deadline for sessions that do not log in. */
export const KEYS_SESSION_MS = 20_000;

/**
 * A tracker without accounts (plain pyp2p) is not asked again for this long: each question costs
 * it a connection, and pyp2p trackers limit connections per address.
 */
export const NO_ACCOUNTS_PAUSE_MS = 10 * 60_000;

// Answers kept at most (strangers' made-up names would otherwise pile up).
const MAX_CACHED_NAMES = 10_000;

/** A lookup waits this long for the tracker, then counts as no answer. */
export const KEY_LOOKUP_TIMEOUT_MS = 3_000;

const KEY_BYTES = 32;
const UNKNOWN: AccountKey = { kind: "unknown" };
const UNAVAILABLE: AccountKey = { kind: "unavailable" };

/** Account keys from the tracker, with a cache. */
export class KeyDirectory implements AccountKeys {
  readonly #client: Pick<SessionClient, "state" | "request">;
  readonly #connect: (signal: AbortSignal) => Promise<Conn>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #cache = new Map<string, { answer: AccountKey; until: number }>();
  readonly #asking = new Map<string, Promise<AccountKey>>();
  readonly #offersAccounts: () => boolean;
  // Until then every name gets `#pausedAnswer` without asking (tracker away, or no accounts).
  #pausedUntil = 0;
  #pausedAnswer = UNAVAILABLE;
  // When the recent sessions of its own were opened, and the one in use.
  #opened: number[] = [];
  #session?: _KeysSession;

  /**
   * `offersAccounts` tells whether this tracker is known to have accounts (its key is
   * remembered): then a refusal never counts as "a tracker without accounts".
   */
  constructor(
    client: Pick<SessionClient, "state" | "request">,
    connect: (signal: AbortSignal) => Promise<Conn>,
    deps: { clock: Clock; log: Logger; offersAccounts?: () => boolean },
  ) {
    this.#client = client;
    this.#connect = connect;
    this.#clock = deps.clock;
    this.#log = deps.log.child("Keys");
    this.#offersAccounts = deps.offersAccounts ?? (() => false);
  }

  cached(username: string): AccountKey | undefined {
    if (this.#clock.now() < this.#pausedUntil) return this.#pausedAnswer;
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
    // Strangers' names come and go: expired answers are dropped before the map grows large.
    if (this.#cache.size >= MAX_CACHED_NAMES) {
      const now = this.#clock.now();
      for (const [name, entry] of this.#cache) if (entry.until <= now) this.#cache.delete(name);
      if (this.#cache.size >= MAX_CACHED_NAMES) this.#cache.clear();
    }
    this.#cache.set(_fold(username), {
      answer,
      until: this.#clock.now() + KEY_CACHE_MS[answer.kind],
    });
  }

  async #ask(username: string): Promise<AccountKey> {
    const signal = AbortSignal.timeout(KEY_LOOKUP_TIMEOUT_MS);
    try {
      let reply: Record<string, unknown>;
      if (this.#client.state === "logged_in") {
        reply = await this.#client.request("SESSION_KEYS", { usernames: [username] });
      } else {
        reply = await this.#askAlone(username, signal);
      }
      const keys = isRecord(reply.keys) ? reply.keys : {};
      const value = keys[username];
      if (value === null) return { kind: "none" };
      const key = bytesFromBase64(value);
      return key?.length === KEY_BYTES ? { kind: "account", key } : UNAVAILABLE;
    } catch (error) {
      this.#log.debug("Key lookup failed", { username, error: describeError(error) });
      return this.#failed(error);
    }
  }

  // What a failed lookup means. Only a tracker that never offered accounts may be "unknown"
  // (trust on first use); a tracker with accounts that does not answer now is "unavailable",
  // and strangers then wait, so that nobody can pass as an account by making lookups fail.
  #failed(error: unknown): AccountKey {
    // A failed dial is no P2pError: the tracker is away.
    const code = error instanceof P2pError ? error.code : "tracker_unreachable";
    const now = this.#clock.now();
    // The tracker refused this one name (not a valid username: no account can have it).
    if (code === "bad_request") return { kind: "none" };
    const pauseMs = code === "unknown_command"
      ? NO_ACCOUNTS_PAUSE_MS
      : code === "tracker_unreachable" || code === "tracker_key_changed"
      ? KEY_CACHE_MS.unavailable
      : 0;
    // Never having reached a tracker with accounts, remembered keys are all there is.
    const answer = this.#offersAccounts() ? UNAVAILABLE : UNKNOWN;
    if (pauseMs > 0) {
      this.#pausedAnswer = answer;
      this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
    }
    return answer;
  }

  // A lookup on the session of its own, opened when there is none younger than
  // KEYS_SESSION_MS (so that many lookups cost the tracker one connection).
  async #askAlone(username: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const request = { type: "SESSION_KEYS", usernames: [username] };
    const kept = this.#session;
    if (kept && !kept.closed && this.#clock.now() - kept.openedAt <= KEYS_SESSION_MS) {
      try {
        return await kept.ask(request, signal);
      } catch (error) {
        // An answer stands; a broken session (the tracker ended it meanwhile) is asked again
        // once, on a new one.
        if (error instanceof P2pError && error.code !== "closed") throw error;
      }
    }
    kept?.close();
    const now = this.#clock.now();
    this.#opened = this.#opened.filter((at) => now - at < 60_000);
    if (this.#opened.length >= MAX_KEY_SESSIONS_PER_MINUTE) {
      throw new P2pError("busy", "Too many key sessions this minute");
    }
    this.#opened.push(now);
    const session = this.#session = new _KeysSession(await this.#connect(signal), now);
    return await session.ask(request, signal);
  }

  /** Closes the session of its own, if one is open. */
  close(): void {
    this.#session?.close();
  }
}

/** A session to the tracker used for lookups only: requests in order, each with its id. */
class _KeysSession {
  readonly #conn: Conn;
  readonly #lines: AsyncIterator<string>;
  #nextId = 1;
  #turn: Promise<unknown> = Promise.resolve();

  constructor(conn: Conn, readonly openedAt: number) {
    this.#conn = conn;
    this.#lines = _lines(conn);
  }

  get closed(): boolean {
    return this.#conn.closed;
  }

  /** One request; the answer, or a P2pError (closing the session when it fails). */
  ask(request: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    const asked = this.#turn.then(() => this.#askNow(request, signal));
    this.#turn = asked.catch(() => {});
    return asked;
  }

  close(): void {
    this.#conn.close();
  }

  async #askNow(request: Record<string, unknown>, signal: AbortSignal) {
    const id = this.#nextId++;
    const onAbort = () => this.#conn.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#conn.write(encodeLine({ ...request, id }));
      for (;;) {
        const next = await this.#lines.next();
        if (next.done) throw new P2pError("closed", "The tracker closed the key session");
        const reply = JSON.parse(next.value);
        if (!isRecord(reply) || reply.type !== "SESSION_REPLY" || reply.id !== id) continue;
        if (reply.status === "OK") return reply;
        throw new P2pError(reply.code as ErrorCode, String(reply.message ?? reply.code));
      }
    } catch (error) {
      this.#conn.close();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

async function* _lines(conn: Conn): AsyncGenerator<string> {
  const decoder = new LineDecoder();
  for await (const chunk of conn.chunks()) {
    for (const frame of decoder.push(chunk)) {
      if (frame.kind !== "line") throw new P2pError("bad_reply", "The tracker's reply is too long");
      yield frame.text;
    }
  }
}

// Account names are compared ignoring case, as the tracker does.
function _fold(username: string): string {
  return username.toLowerCase();
}
