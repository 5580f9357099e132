/**
 * The peer's side of the tracker session protocol (docs/protocol.md, "Tracker sessions"): one long-lived
 * connection carrying requests with ids, their replies and pushed events; heartbeats within
 * the window the tracker announces; and, while logged in, reconnection with backoff that
 * resumes with the stored token (a tracker restart costs a few seconds, not a login). A logout
 * while the tracker is away takes effect locally at once; the token is revoked (resumed, then
 * logged out) as soon as the tracker answers again.
 * The socket hides behind `Conn` and time behind `Clock`, so tests drive it by hand.
 */
import { Listeners } from "../../lib/listeners.ts";
import type { Clock, TimerId } from "../../lib/clock.ts";
import { isRecord } from "../../lib/codec.ts";
import { describeError, type ErrorCode, P2pError } from "../../lib/errors.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import type { Logger } from "../../lib/log.ts";
import type { Conn } from "../../lib/transport.ts";
import type { TokenStore } from "./token_store.ts";
import { backoffDelay, type BackoffPolicy, DEFAULT_BACKOFF } from "../../lib/backoff.ts";

/** What a login declares: the peer's identity and listening port (shown to room members). */
export interface DeclaredAddress {
  peerId: string;
  port: number;
}

/** Settings; times in milliseconds. */
export interface SessionClientOptions {
  /** The account name: the peer's `--name`. */
  username: string;
  /** Read at each login, since the port is known only once the node listens. */
  address: () => DeclaredAddress;
  /** A request without a reply this long fails (and the connection is dropped). */
  requestTimeoutMs?: number;
  /** Heartbeat window until the tracker announces its own. */
  heartbeatWindowMs?: number;
}

/** Collaborators. */
export interface SessionClientDeps {
  /** Opens a connection to the tracker. */
  connect: (signal: AbortSignal) => Promise<Conn>;
  tokens: TokenStore;
  clock: Clock;
  log: Logger;
  random?: () => number;
}

/** Where the login stands. */
export type SessionState = "logged_out" | "logged_in" | "reconnecting";

/** What the client reports to its owner. */
export type SessionClientEvent =
  /** A `SESSION_EVENT` pushed by the tracker (room and presence changes). */
  | { kind: "pushed"; event: string; fields: Record<string, unknown> }
  /** `how`: `resume` with the remembered token, `reconnect` after a lost session came back. */
  | { kind: "logged_in"; username: string; how: LoginHow }
  /** `reason`: the user logged out, the stored token was refused, or a logout elsewhere. */
  | { kind: "logged_out"; reason: "logout" | "bad_token" | "session_closed"; detail?: string }
  /** The session broke (or the remembered one could not resume): told once, until it is back. */
  | { kind: "reconnecting"; detail: string; delayMs: number };

/** How a login happened. */
export type LoginHow = "signup" | "login" | "resume" | "reconnect";

/** Defaults (the heartbeat window is replaced by the tracker's at login). */
export const SESSION_CLIENT_DEFAULTS = {
  requestTimeoutMs: 10_000,
  heartbeatWindowMs: 30_000,
} as const;

/**
 * Retries of the tracker session: the node's backoff, capped at 20 s rather than 120 s, so a
 * restarted tracker gets its sessions (and room presence) back quickly.
 */
export const SESSION_BACKOFF: BackoffPolicy = { ...DEFAULT_BACKOFF, maxMs: 20_000 };

/** Why `connect` may refuse a tracker that answered (see tracker_connection.ts). */
const _REFUSED_TRACKER: ReadonlySet<string> = new Set([
  "tracker_key_changed",
  "encryption_required",
  "unknown_command",
]);

interface _Pending {
  resolve: (fields: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  timer: TimerId;
}

/** One account's session with the tracker. */
export class SessionClient {
  readonly username: string;
  readonly #options: SessionClientOptions;
  readonly #deps: SessionClientDeps;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #listeners: Listeners<SessionClientEvent>;
  readonly #pending = new Map<number, _Pending>();
  readonly #abort = new AbortController();
  #token?: string;
  /** A token logged out of while the tracker was away: revoked at the next connection. */
  #revoke?: string;
  #state: SessionState = "logged_out";
  /** True from the loss of a logged-in session until it is back (then it "reconnected"). */
  #lost = false;
  /** The resume or revocation under way; a login waits for it (one login per connection). */
  #attempting?: Promise<void>;
  /** Connections logged in only to revoke a token. */
  readonly #revoking = new WeakSet<Conn>();
  #conn?: Conn;
  #opening?: Promise<Conn>;
  #reading?: Promise<void>;
  #nextId = 1;
  #heartbeatWindowMs: number;
  #heartbeatTimer?: TimerId;
  /** True while a password login or sign-up runs. */
  #authenticating = false;
  #reconnectTimer?: TimerId;
  #attempts = 0;
  #stopped = false;

  constructor(options: SessionClientOptions, deps: SessionClientDeps) {
    this.username = options.username;
    this.#options = options;
    this.#deps = deps;
    this.#log = deps.log.child("Session");
    this.#listeners = new Listeners(this.#log, "Session listener");
    this.#random = deps.random ?? Math.random;
    this.#heartbeatWindowMs = options.heartbeatWindowMs ??
      SESSION_CLIENT_DEFAULTS.heartbeatWindowMs;
  }

  /** The stored token (proves our name in REGISTER), if any. */
  get token(): string | undefined {
    return this.#token;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The window the tracker announced (a heartbeat goes out every third of it). */
  get heartbeatWindowMs(): number {
    return this.#heartbeatWindowMs;
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: (event: SessionClientEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Loads the remembered token (call before the first REGISTER, so it carries it). */
  async loadToken(): Promise<string | undefined> {
    this.#token = await this.#deps.tokens.load();
    return this.#token;
  }

  /**
   * Logs in again with the remembered token. A refused token is forgotten (`logged_out` with
   * `bad_token`); an unreachable tracker is retried with backoff. False when no token.
   */
  async resume(): Promise<boolean> {
    if (this.#token === undefined || this.#state === "logged_in") return false;
    this.#state = "reconnecting";
    try {
      return await this.#attemptNow(() => this.#resumeOnce());
    } catch (error) {
      if (this.#wantsTracker()) this.#scheduleReconnect(describeError(error));
      throw error;
    }
  }

  /**
   * Tries at once when a retry is waiting for its backoff: discovery found the tracker
   * reachable again, so the session need not wait up to 20 s more.
   */
  retryNow(): void {
    if (this.#reconnectTimer === undefined || this.#attempting || this.#authenticating) return;
    this.#cancelReconnect();
    void this.#retry();
  }

  /** Creates the account (named after this peer) and logs in; the token is remembered. */
  signup(password: string): Promise<void> {
    return this.#authenticate("SESSION_SIGNUP", password, "signup");
  }

  /**
   * Logs in with a password; the token is remembered. `replaceKey` makes this profile's
   * identity key the account's (after a move to a new profile): contacts are told it changed.
   */
  login(password: string, options: { replaceKey?: boolean } = {}): Promise<void> {
    return this.#authenticate("SESSION_LOGIN", password, "login", options.replaceKey === true);
  }

  /**
   * Forgets the token and revokes it at the tracker. Without a tracker connection the logout
   * is local at once (`revoked: false`) and the revocation follows when the tracker answers
   * (lost if the peer stops first: the token then lives until it expires).
   */
  async logout(): Promise<{ revoked: boolean }> {
    const token = this.#token;
    if (token === undefined) throw new P2pError("not_logged_in", "Not logged in");
    const conn = this.#state === "logged_in" ? this.#conn : undefined;
    // Marked first: the tracker closes the connection right after its reply, and a resume
    // under way must see that its result is no longer wanted.
    this.#state = "logged_out";
    this.#token = undefined;
    this.#lost = false;
    this.#revoke = token;
    let revoked = false;
    try {
      if (conn) revoked = await this.#revokeOn(conn, token).then(() => true, () => false);
      await this.#deps.tokens.remove();
    } finally {
      // Even when the token file could not be removed, the tracker must still hear of it.
      if (!revoked && this.#reconnectTimer === undefined && !this.#attempting) {
        this.#scheduleReconnect("the logout is not yet known to the tracker");
      }
      this.#listeners.emit({ kind: "logged_out", reason: "logout" });
    }
    return { revoked };
  }

  /** Sends one request and resolves with the OK reply's fields; an ERROR reply throws its code. */
  async request(
    type: string,
    fields: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const conn = this.#conn;
    // A connection that only resumes to revoke a token is no session to use.
    if (!conn || conn.closed || this.#state !== "logged_in") {
      throw new P2pError(
        "not_logged_in",
        this.#state === "reconnecting"
          ? "The tracker connection is down; reconnecting"
          : "Not logged in: /login (or /signup) first",
      );
    }
    return await this.#send(conn, type, fields);
  }

  /** Closes the connection and cancels every timer; pending requests fail. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#cancelReconnect();
    this.#stopHeartbeat();
    this.#closeConn();
    await this.#opening?.catch(() => {});
    await this.#reading;
  }

  async #authenticate(
    type: "SESSION_SIGNUP" | "SESSION_LOGIN",
    password: string,
    how: "signup" | "login",
    replaceKey = false,
  ): Promise<void> {
    if (this.#authenticating) {
      throw new P2pError("busy", "A login or sign-up is already under way");
    }
    // Retries stay out of the way meanwhile: a RESUME must not race the password on the same
    // connection.
    this.#authenticating = true;
    try {
      await this.#authenticateNow(type, password, how, replaceKey);
    } finally {
      this.#authenticating = false;
    }
  }

  async #authenticateNow(
    type: "SESSION_SIGNUP" | "SESSION_LOGIN",
    password: string,
    how: "signup" | "login",
    replaceKey: boolean,
  ): Promise<void> {
    this.#cancelReconnect();
    // A resume under way may log us in: wait for it rather than log in twice.
    await this.#attempting;
    this.#cancelReconnect();
    if (this.#state === "logged_in") {
      throw new P2pError("already_logged_in", `Already logged in as "${this.username}"`);
    }
    try {
      // An old token to revoke goes first: its RESUME and LOGOUT use a connection of their own.
      if (this.#revoke !== undefined) await this.#attemptNow(() => this.#revokeOnce());
      const conn = await this.#connection();
      const reply = await this.#send(conn, type, {
        username: this.username,
        password,
        ...this.#declared(),
        ...(replaceKey ? { replace_key: true } : {}),
      });
      const token = reply.token;
      if (typeof token !== "string" || token === "") {
        throw new P2pError("bad_reply", `The tracker's ${type} reply carries no token`);
      }
      this.#token = token;
      await this.#deps.tokens.save(token);
      this.#loggedIn(conn, reply, how);
    } catch (error) {
      // A remembered login (or a revocation) still waits for the tracker.
      if (this.#wantsTracker()) this.#scheduleReconnect(describeError(error));
      throw error;
    }
  }

  // True when logged in again; false when the result came after a logout and was dropped.
  async #resumeOnce(): Promise<boolean> {
    const token = this.#token;
    const conn = await this.#connection();
    let reply: Record<string, unknown>;
    try {
      reply = await this.#send(conn, "SESSION_RESUME", { token, ...this.#declared() });
    } catch (error) {
      if (error instanceof P2pError && error.code === "bad_token" && this.#token === token) {
        await this.#forget("bad_token", error.message);
      }
      throw error;
    }
    if (this.#state !== "reconnecting" || this.#token !== token) {
      // Logged out while the reply was on its way: this login is unwanted, and it is exactly
      // the connection the pending revocation needs.
      if (token !== undefined && token === this.#revoke) await this.#revokeOn(conn, token);
      else conn.close();
      return false;
    }
    this.#loggedIn(conn, reply, this.#lost ? "reconnect" : "resume");
    return true;
  }

  // Revokes a token logged out of while the tracker was away: resume with it, then log out.
  async #revokeOnce(): Promise<void> {
    const token = this.#revoke;
    if (token === undefined) return;
    const conn = await this.#connection();
    this.#revoking.add(conn);
    try {
      // Without peer_id and port: this login is not meant to be dialled.
      await this.#send(conn, "SESSION_RESUME", { token });
    } catch (error) {
      if (!(error instanceof P2pError && error.code === "bad_token")) throw error;
      // Expired or revoked already: nothing left to do.
      if (this.#revoke === token) this.#revoke = undefined;
      this.#attempts = 0;
      conn.close();
      return;
    }
    await this.#revokeOn(conn, token);
  }

  // Sends SESSION_LOGOUT on a connection logged in with `token`; the tracker then closes it.
  async #revokeOn(conn: Conn, token: string): Promise<void> {
    this.#revoking.add(conn);
    try {
      await this.#send(conn, "SESSION_LOGOUT", {});
    } finally {
      conn.close();
    }
    if (this.#revoke === token) this.#revoke = undefined;
    this.#attempts = 0;
    this.#log.debug("Token revoked at the tracker");
  }

  async #forget(reason: "bad_token" | "session_closed", detail: string): Promise<void> {
    this.#token = undefined;
    this.#state = "logged_out";
    this.#closeConn();
    await this.#deps.tokens.remove();
    this.#listeners.emit({ kind: "logged_out", reason, detail });
  }

  #loggedIn(conn: Conn, reply: Record<string, unknown>, how: LoginHow) {
    const window = reply.heartbeat_window_ms;
    if (typeof window === "number" && Number.isFinite(window) && window > 0) {
      this.#heartbeatWindowMs = window;
    }
    this.#state = "logged_in";
    this.#attempts = 0;
    this.#lost = false;
    this.#startHeartbeat(conn);
    this.#log.info(`Logged in as "${this.username}"`, { how });
    this.#listeners.emit({ kind: "logged_in", username: this.username, how });
  }

  #declared(): Record<string, unknown> {
    const { peerId, port } = this.#options.address();
    return port > 0 ? { peer_id: peerId, port } : { peer_id: peerId };
  }

  // The open connection, or a new one (several callers share one dial).
  #connection(): Promise<Conn> {
    if (this.#stopped) return Promise.reject(new P2pError("closed", "The peer is stopping"));
    if (this.#conn && !this.#conn.closed) return Promise.resolve(this.#conn);
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  async #open(): Promise<Conn> {
    const timeout = this.#options.requestTimeoutMs ?? SESSION_CLIENT_DEFAULTS.requestTimeoutMs;
    let conn: Conn;
    try {
      conn = await this.#deps.connect(
        AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeout)]),
      );
    } catch (error) {
      // A tracker that answered but is not to be trusted is not "unreachable": say why.
      if (error instanceof P2pError && _REFUSED_TRACKER.has(error.code)) throw error;
      throw new P2pError(
        "tracker_unreachable",
        `The tracker is unreachable (${describeError(error)})`,
      );
    }
    if (this.#stopped) {
      conn.close();
      throw new P2pError("closed", "The peer is stopping");
    }
    this.#conn = conn;
    this.#reading = this.#read(conn);
    return conn;
  }

  async #read(conn: Conn): Promise<void> {
    const decoder = new LineDecoder();
    try {
      for await (const chunk of conn.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind === "error") {
            this.#log.warn("The tracker sent a line over the limit; closing the session");
            conn.close();
            break;
          }
          this.#receive(conn, frame.text);
        }
        if (conn.closed) break;
      }
    } catch (error) {
      this.#log.debug("Session connection failed", { error: describeError(error) });
    } finally {
      conn.close();
      this.#connectionEnded(conn);
    }
  }

  #receive(conn: Conn, line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      message = undefined;
    }
    if (!isRecord(message)) {
      this.#log.warn("Ignoring a tracker line that is not a JSON object", { line });
      return;
    }
    if (message.type === "SESSION_EVENT" && typeof message.event === "string") {
      // Pushes on a connection that only revokes a token are not ours to show.
      if (!this.#revoking.has(conn)) this.#pushed(message.event, message);
      return;
    }
    if (message.type !== "SESSION_REPLY") {
      // A plain pyp2p tracker answers "Unknown command" without a type, then closes.
      const reason = typeof message.message === "string" ? message.message : line;
      this.#failAll(
        new P2pError("unknown_command", `The tracker does not offer accounts (${reason})`),
      );
      return;
    }
    const pending = typeof message.id === "number" ? this.#pending.get(message.id) : undefined;
    if (!pending) return; // a late reply to a request that timed out
    this.#pending.delete(message.id as number);
    this.#deps.clock.clearTimeout(pending.timer);
    if (message.status === "OK") pending.resolve(message);
    else {
      const code = typeof message.code === "string" ? message.code : "bad_reply";
      const text = typeof message.message === "string" ? message.message : code;
      pending.reject(new P2pError(code as ErrorCode, text));
    }
  }

  #pushed(event: string, fields: Record<string, unknown>): void {
    if (event === "session_closed") {
      // A logout elsewhere revoked our token: it is useless now.
      const detail = typeof fields.reason === "string" ? fields.reason : "The token was revoked";
      void this.#forget("session_closed", detail)
        .catch((error) => this.#log.error("Could not forget the token", { error: String(error) }));
      return;
    }
    this.#listeners.emit({ kind: "pushed", event, fields });
  }

  #send(conn: Conn, type: string, fields: Record<string, unknown>) {
    const id = this.#nextId++;
    const timeout = this.#options.requestTimeoutMs ?? SESSION_CLIENT_DEFAULTS.requestTimeoutMs;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = this.#deps.clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(new P2pError("timeout", `The tracker did not answer ${type} in ${timeout} ms`));
        // A tracker that stops answering is treated as gone: the reconnect logic takes over.
        conn.close();
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer });
      conn.write(encodeLine({ type, id, ...fields })).catch((error) => {
        this.#failAll(
          new P2pError("tracker_unreachable", `Lost the tracker (${describeError(error)})`),
        );
        conn.close();
      });
    });
  }

  #failAll(error: P2pError): void {
    for (const [id, pending] of this.#pending) {
      this.#deps.clock.clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(error);
    }
  }

  #connectionEnded(conn: Conn): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    this.#stopHeartbeat();
    this.#failAll(new P2pError("tracker_unreachable", "The tracker connection closed"));
    if (this.#stopped || this.#state !== "logged_in") return;
    this.#state = "reconnecting";
    this.#lost = true;
    this.#scheduleReconnect("the tracker connection closed");
  }

  // A remembered login to resume, or a token to revoke.
  #wantsTracker(): boolean {
    return !this.#stopped && (this.#state === "reconnecting" || this.#revoke !== undefined);
  }

  // The user hears of a lost session once (the event); each retry is only a debug line.
  #scheduleReconnect(detail: string): void {
    if (this.#stopped || this.#reconnectTimer !== undefined) return;
    this.#attempts++;
    const delayMs = backoffDelay(this.#attempts, this.#random, SESSION_BACKOFF);
    if (this.#attempts === 1 && this.#state === "reconnecting") {
      this.#log.info("Tracker session lost; resuming in the background", { detail, delayMs });
      this.#listeners.emit({ kind: "reconnecting", detail, delayMs });
    } else {
      this.#log.debug("Tracker still unreachable; retrying", { detail, delayMs });
    }
    this.#reconnectTimer = this.#deps.clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#retry();
    }, delayMs);
  }

  // One retry: resume the session, or revoke a token; failures schedule the next one.
  async #retry(): Promise<void> {
    // A login in progress reschedules retries itself if it fails.
    if (this.#authenticating) return;
    try {
      if (this.#state === "reconnecting") await this.#attemptNow(() => this.#resumeOnce());
      else if (this.#revoke !== undefined) await this.#attemptNow(() => this.#revokeOnce());
    } catch (error) {
      if (this.#wantsTracker()) this.#scheduleReconnect(describeError(error));
    }
  }

  #attemptNow<T>(task: () => Promise<T>): Promise<T> {
    const running = task();
    const settled = running.then(() => {}, () => {});
    this.#attempting = settled;
    void settled.then(() => {
      if (this.#attempting === settled) this.#attempting = undefined;
    });
    return running;
  }

  #cancelReconnect(): void {
    if (this.#reconnectTimer !== undefined) this.#deps.clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  // Any line counts as life; a heartbeat every third of the window leaves room for two losses.
  #startHeartbeat(conn: Conn): void {
    this.#stopHeartbeat();
    const beat = () => {
      this.#heartbeatTimer = this.#deps.clock.setTimeout(() => {
        if (this.#conn !== conn || conn.closed) return;
        this.#send(conn, "SESSION_HEARTBEAT", {}).catch(() => {});
        beat();
      }, Math.max(1, Math.floor(this.#heartbeatWindowMs / 3)));
    };
    beat();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) this.#deps.clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #closeConn(): void {
    const conn = this.#conn;
    this.#stopHeartbeat();
    conn?.close();
  }
}
