/**
 * The peer's side of the tracker session protocol (docs/protocol.md, "Tracker sessions"): one long-lived
 * connection carrying requests with ids, their replies and pushed events; heartbeats within
 * the window the tracker announces; and, while logged in, reconnection with backoff that
 * resumes with the stored token (a tracker restart costs a few seconds, not a login).
 * The socket hides behind `Conn` and time behind `Clock`, so tests drive it by hand.
 */
import type { Clock, TimerId } from "../lib/clock.ts";
import { isRecord } from "../lib/codec.ts";
import { describeError, type ErrorCode, P2pError } from "../lib/errors.ts";
import { encodeLine, LineDecoder } from "../lib/framing.ts";
import type { Logger } from "../lib/log.ts";
import type { Conn } from "../lib/transport.ts";
import type { TokenStore } from "./accounts_token.ts";
import { backoffDelay } from "./backoff.ts";

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
  | { kind: "logged_in"; username: string; how: "signup" | "login" | "resume" }
  /** `reason`: the user logged out, the stored token was refused, or a logout elsewhere. */
  | { kind: "logged_out"; reason: "logout" | "bad_token" | "session_closed"; detail?: string }
  /** The connection of a logged-in session broke; a resume is scheduled. */
  | { kind: "reconnecting"; detail: string; delayMs: number };

/** Defaults (the heartbeat window is replaced by the tracker's at login). */
export const SESSION_CLIENT_DEFAULTS = {
  requestTimeoutMs: 10_000,
  heartbeatWindowMs: 30_000,
} as const;

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
  readonly #listeners = new Set<(event: SessionClientEvent) => void>();
  readonly #pending = new Map<number, _Pending>();
  readonly #abort = new AbortController();
  #token?: string;
  #state: SessionState = "logged_out";
  #conn?: Conn;
  #opening?: Promise<Conn>;
  #reading?: Promise<void>;
  #nextId = 1;
  #heartbeatWindowMs: number;
  #heartbeatTimer?: TimerId;
  #reconnectTimer?: TimerId;
  #attempts = 0;
  #stopped = false;

  constructor(options: SessionClientOptions, deps: SessionClientDeps) {
    this.username = options.username;
    this.#options = options;
    this.#deps = deps;
    this.#log = deps.log.child("Session");
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
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
      await this.#resumeOnce();
      return true;
    } catch (error) {
      if (this.#state === "reconnecting") this.#scheduleReconnect(describeError(error));
      throw error;
    }
  }

  /** Creates the account (named after this peer) and logs in; the token is remembered. */
  signup(password: string): Promise<void> {
    return this.#authenticate("SESSION_SIGNUP", password, "signup");
  }

  /** Logs in with a password; the token is remembered. */
  login(password: string): Promise<void> {
    return this.#authenticate("SESSION_LOGIN", password, "login");
  }

  /** Revokes the token at the tracker and forgets it (also when the tracker is unreachable). */
  async logout(): Promise<void> {
    if (this.#token === undefined) throw new P2pError("not_logged_in", "Not logged in");
    this.#cancelReconnect();
    const wasOnline = this.#state === "logged_in";
    // Marked first: the tracker closes the connection right after its reply.
    this.#state = "logged_out";
    try {
      if (wasOnline) await this.request("SESSION_LOGOUT");
    } finally {
      this.#token = undefined;
      await this.#deps.tokens.remove();
      this.#closeConn();
      this.#emit({ kind: "logged_out", reason: "logout" });
    }
  }

  /** Sends one request and resolves with the OK reply's fields; an ERROR reply throws its code. */
  async request(
    type: string,
    fields: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const conn = this.#conn;
    if (!conn || conn.closed) {
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
  ): Promise<void> {
    if (this.#state === "logged_in") {
      throw new P2pError("already_logged_in", `Already logged in as "${this.username}"`);
    }
    this.#cancelReconnect();
    const conn = await this.#connection();
    const reply = await this.#send(conn, type, {
      username: this.username,
      password,
      ...this.#declared(),
    });
    const token = reply.token;
    if (typeof token !== "string" || token === "") {
      throw new P2pError("bad_reply", `The tracker's ${type} reply carries no token`);
    }
    this.#token = token;
    await this.#deps.tokens.save(token);
    this.#loggedIn(conn, reply, how);
  }

  async #resumeOnce(): Promise<void> {
    const conn = await this.#connection();
    let reply: Record<string, unknown>;
    try {
      reply = await this.#send(conn, "SESSION_RESUME", { token: this.#token, ...this.#declared() });
    } catch (error) {
      if (error instanceof P2pError && error.code === "bad_token") {
        await this.#forget("bad_token", error.message);
      }
      throw error;
    }
    this.#loggedIn(conn, reply, "resume");
  }

  async #forget(reason: "bad_token" | "session_closed", detail: string): Promise<void> {
    this.#token = undefined;
    this.#state = "logged_out";
    this.#closeConn();
    await this.#deps.tokens.remove();
    this.#emit({ kind: "logged_out", reason, detail });
  }

  #loggedIn(conn: Conn, reply: Record<string, unknown>, how: "signup" | "login" | "resume") {
    const window = reply.heartbeat_window_ms;
    if (typeof window === "number" && Number.isFinite(window) && window > 0) {
      this.#heartbeatWindowMs = window;
    }
    this.#state = "logged_in";
    this.#attempts = 0;
    this.#startHeartbeat(conn);
    this.#log.info(`Logged in as "${this.username}"`, { how });
    this.#emit({ kind: "logged_in", username: this.username, how });
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
          this.#receive(frame.text);
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

  #receive(line: string): void {
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
      this.#pushed(message.event, message);
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
    this.#emit({ kind: "pushed", event, fields });
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
    this.#scheduleReconnect("the tracker connection closed");
  }

  #scheduleReconnect(detail: string): void {
    if (this.#stopped || this.#reconnectTimer !== undefined) return;
    this.#attempts++;
    const delayMs = backoffDelay(this.#attempts, this.#random);
    this.#log.warn("Tracker session lost; resuming with backoff", { detail, delayMs });
    this.#emit({ kind: "reconnecting", detail, delayMs });
    this.#reconnectTimer = this.#deps.clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== "reconnecting") return;
      this.#resumeOnce().catch((error) => {
        if (this.#state === "reconnecting") this.#scheduleReconnect(describeError(error));
      });
    }, delayMs);
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

  #emit(event: SessionClientEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#log.error("Session listener failed", { error: String(error) });
      }
    }
  }
}
