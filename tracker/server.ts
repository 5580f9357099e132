/**
 * The tracker's I/O edge: accepts TCP connections, frames and decodes the first line, answers
 * it with the pure Rendezvous handler and closes (one request per connection, as pyp2p clients
 * expect), or, when the first line is SESSION_HELLO, runs the Noise handshake with the tracker's
 * identity and hands the encrypted connection to the extension. Also owns the timers: idle
 * timeouts, handshake deadlines, the expiry sweep and the coalesced saves.
 */
import { concatBytes } from "../lib/bytes.ts";
import { decodeMessage } from "../lib/codec.ts";
import type { Clock, TimerId } from "../lib/clock.ts";
import {
  DEFAULT_RATE_LIMIT,
  DEFAULT_TRACKER_HOST,
  DEFAULT_TRACKER_PORT,
  FIRST_LINE_TIMEOUT_MS,
  TRACKER_IDLE_TIMEOUT_MS,
} from "../lib/constants.ts";
import { encodeLine, type Frame, LineDecoder } from "../lib/framing.ts";
import { loadOrCreateIdentity, type ProfileIdentity } from "../lib/identity_file.ts";
import type { Logger } from "../lib/log.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
  type KeyPair,
  NoiseError,
} from "../lib/noise/mod.ts";
import { shedLargest } from "../lib/output_budget.ts";
import { WorkSlices } from "../lib/work_slices.ts";
import { dirname, loadJsonFile, saveJsonFile } from "../lib/persist.ts";
import { type SecureUpgrade, upgradeConn } from "../lib/secure_conn.ts";
import {
  SESSION_HELLO,
  sessionHelloReplyLine,
  sessionPrologue,
  TRACKER_ID,
} from "../lib/secure_session.ts";
import { TokenBucket, type TokenRate } from "../lib/token_bucket.ts";
import { type Address, type Conn, listenTcp, TcpConn } from "../lib/transport.ts";
import { Admission } from "./admission.ts";
import type {
  SessionHandler,
  SessionLink,
  SessionRendezvousCommand,
  TrackerExtension,
} from "./extension.ts";
import { TrackerMetrics } from "./metrics.ts";
import { RateLimiter, type RateLimitSettings } from "./rate_limit.ts";
import { parseRegistrySnapshot, type PeerEntry, Registry } from "./registry.ts";
import {
  errorReply,
  FIRST_LINE_TIMEOUT,
  handleRendezvous,
  IDLE_TIMEOUT,
  LINE_TOO_LONG_REPLY,
  type NameCheck,
  type RendezvousContext,
  type Reply,
} from "./rendezvous.ts";

/** Default cap on simultaneously open connections. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Default cap on connections open from one address: half the total (many peers share one NAT
 * address, so one address may use a lot, never all), or the whole of a total up to 64.
 */
export function defaultMaxConnectionsPerIp(maxConnections: number): number {
  return Math.max(Math.floor(maxConnections / 2), Math.min(maxConnections, 64));
}

/** Default budget for output queued toward every session client that is not reading. */
export const DEFAULT_OUTPUT_BUDGET_BYTES = 32 * 1024 * 1024;

/** Name of the store file inside the data directory. */
export const REGISTRATIONS_FILE = "registrations.json";

// A reply the client does not read (a 1 MB DISCOVER to a stalled reader) must not hold a
// connection slot forever.
const WRITE_TIMEOUT_MS = 10_000;
const WRITE_DEADLINE_FROM_BYTES = 16 * 1024;
// A session client that stops reading is dropped rather than buffered without bound.
const MAX_SESSION_BACKLOG_BYTES = 4 * 1024 * 1024;
// Past this much unread output, a session's further requests are not read until it reads:
// TCP then slows the client down instead of the tracker queueing its answers.
const SESSION_READ_PAUSE_BYTES = 64 * 1024;
// Lines one session may have handled: a burst, then a steady rate far above what a person's
// client sends (a heartbeat every 10 s, a command now and then). A flood waits its turn.
const SESSION_LINE_RATE: TokenRate = { perSecond: 200, burst: 1000 };
// Lines of all sessions that have not logged in, together (besides each one's own rate): signing
// up, logging in and looking up keys take a few lines each, while 50 anonymous sessions flooding
// at their own rates held the loop long enough to make a normal client's DISCOVER p99 4-5x.
const ANONYMOUS_LINE_RATE: TokenRate = { perSecond: 1000, burst: 1000 };
const SWEEP_INTERVAL_MS = 5_000;
// As long as a session may stay without a login (LOGIN_DEADLINE_MS in accounts/service.ts).
const HANDSHAKE_TIMEOUT_MS = 30_000;
const NEWLINE = 0x0a;
const EMPTY = new Uint8Array(0);
const SAVE_DELAY_MS = 1_000;
// While the disk refuses writes, retries back off up to this delay instead of logging (and
// trying) every second.
const MAX_SAVE_RETRY_MS = 60_000;

/** Tracker settings; every field has a default. */
export interface TrackerOptions {
  /** Listen address (default 0.0.0.0). */
  host?: string;
  /** Listen port (default 8080; 0 picks a free port). */
  port?: number;
  /** The flag that sets `port`, named when it is in use (default "--port"). */
  portFlag?: string;
  /** Where `registrations.json` lives; undefined keeps registrations in memory only. */
  dataDir?: string;
  /** Per-IP connection limit; `false` switches it off (default 50 per 60 s, 60 s block). */
  rateLimit?: RateLimitSettings | false;
  /** Simultaneously open connections before new ones are refused (default 1024). */
  maxConnections?: number;
  /** Open connections from one address before its new ones are refused (default: half). */
  maxConnectionsPerIp?: number;
  /** Slots sessions may never take, kept for Rendezvous requests (default an eighth). */
  reservedForRequests?: number;
  /** Bytes queued toward all session clients before the largest backlog is shed (32 MiB). */
  outputBudgetBytes?: number;
  /** How long a connection may stay silent before its first line (default 1000 ms). */
  idleTimeoutMs?: number;
  /**
   * How long the first line may take in all (default 10 s): the idle timeout restarts with
   * every chunk, so without this a client sending a byte a second would hold a slot for hours.
   */
  firstLineTimeoutMs?: number;
  /** Period of the expiry sweep (default 5000 ms). */
  sweepIntervalMs?: number;
  /** Saves are coalesced: at most one per this delay after a change (default 1000 ms). */
  saveDelayMs?: number;
  /** How long a session's Noise handshake may take (default 30 s). */
  handshakeTimeoutMs?: number;
}

/** What the tracker needs from outside. */
export interface TrackerDeps {
  clock: Clock;
  log: Logger;
  /** Accounts/rooms service; started and stopped with the tracker. */
  extension?: TrackerExtension;
  /**
   * The tracker's identity. Default: `identity.json` in `dataDir`, created on first start; a
   * tracker without `dataDir` makes a new one each start.
   */
  identity?: ProfileIdentity;
}

/** Health summary for `GET /health`. */
export interface TrackerHealth {
  status: "ok";
  registrations: number;
  connectionsOpen: number;
  uptimeSeconds: number;
  /** The fingerprint of the tracker's identity key (null before `start()`). */
  fingerprint: string | null;
}

/** A running (or startable) tracker. */
export interface Tracker {
  /** Loads the store, starts the extension, listens; resolves to the bound address. */
  start(): Promise<Address>;
  /** Closes every socket and timer, flushes the store and stops the extension. */
  stop(): Promise<void>;
  /** Serves one accepted connection (the listener calls it; tests may pass an in-memory Conn). */
  serve(conn: Conn): Promise<void>;
  /** Live registrations, of one namespace or all. */
  registrations(namespace?: string): PeerEntry[];
  health(): TrackerHealth;
  /** Prometheus text, including the extension's lines. */
  metricsText(): string;
}

/** Creates a tracker; nothing happens until `start()`. */
export function createTracker(options: TrackerOptions, deps: TrackerDeps): Tracker {
  return new _Tracker(options, deps);
}

class _Tracker implements Tracker {
  readonly #clock: Clock;
  // Sessions' lines are handled in slices of the event loop, so a flood waits its turn.
  readonly #slices = new WorkSlices();
  readonly #anonymousLines: TokenBucket;
  readonly #anonymousWaiters: { session: _Session; resolve: () => void }[] = [];
  #anonymousTimer?: TimerId;
  readonly #log: Logger;
  readonly #extension?: TrackerExtension;
  readonly #host: string;
  readonly #port: number;
  readonly #portFlag: string;
  readonly #file?: string;
  readonly #dataDir?: string;
  readonly #limiter?: RateLimiter;
  readonly #admission: Admission;
  readonly #outputBudgetBytes: number;
  readonly #sessions = new Set<_Session>();
  #sessionBacklog = 0;
  readonly #idleTimeoutMs: number;
  readonly #firstLineTimeoutMs: number;
  readonly #sweepIntervalMs: number;
  readonly #saveDelayMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #metrics = new TrackerMetrics();
  readonly #conns = new Set<Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #registry = new Registry();
  #identity?: ProfileIdentity;
  readonly #staticKeyPair: KeyPair;
  #listener?: Deno.TcpListener;
  #acceptLoop?: Promise<void>;
  #sweepTimer?: TimerId;
  #saveTimer?: TimerId;
  #saving?: Promise<void>;
  #dirty = false;
  #saveFailures = 0;
  #startedAt = 0;
  #stopping = false;

  constructor(options: TrackerOptions, deps: TrackerDeps) {
    this.#clock = deps.clock;
    this.#anonymousLines = new TokenBucket(ANONYMOUS_LINE_RATE, this.#clock.now());
    this.#log = deps.log.child("tracker");
    this.#extension = deps.extension;
    this.#host = options.host ?? DEFAULT_TRACKER_HOST;
    this.#port = options.port ?? DEFAULT_TRACKER_PORT;
    this.#portFlag = options.portFlag ?? "--port";
    this.#file = options.dataDir === undefined
      ? undefined
      : `${options.dataDir}/${REGISTRATIONS_FILE}`;
    const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.#limiter = rateLimit === false ? undefined : new RateLimiter(rateLimit);
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#admission = new Admission({
      maxConnections,
      maxPerIp: Math.min(
        options.maxConnectionsPerIp ?? defaultMaxConnectionsPerIp(maxConnections),
        maxConnections,
      ),
      reservedForRequests: options.reservedForRequests ??
        Math.max(1, Math.floor(maxConnections / 8)),
    });
    this.#outputBudgetBytes = options.outputBudgetBytes ?? DEFAULT_OUTPUT_BUDGET_BYTES;
    this.#extension?.onNameOwned((covers) => {
      // Anonymous listings of a name that just became owned would keep it for up to a day.
      const removed = this.#registry.removeNames(covers);
      if (removed === 0) return;
      this.#log.info("Anonymous listings of a newly owned name removed", { count: removed });
      this.#markDirty();
    });
    this.#idleTimeoutMs = options.idleTimeoutMs ?? TRACKER_IDLE_TIMEOUT_MS;
    this.#firstLineTimeoutMs = options.firstLineTimeoutMs ?? FIRST_LINE_TIMEOUT_MS;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    this.#saveDelayMs = options.saveDelayMs ?? SAVE_DELAY_MS;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#dataDir = options.dataDir;
    // Without a data directory the identity lasts as long as this tracker; with one it is
    // loaded (or created) by start().
    this.#identity = deps.identity ??
      (this.#dataDir === undefined ? _ephemeralIdentity() : undefined);
    // A fresh static key per tracker: the identity key signs it in every handshake.
    this.#staticKeyPair = generateStaticKeyPair();
  }

  async start(): Promise<Address> {
    this.#startedAt = this.#clock.now();
    // Bind first: a port in use fails at once, before a large store is loaded for nothing.
    this.#listener = listenTcp(this.#host, this.#port, {
      what: "the tracker",
      flag: this.#portFlag,
    });
    try {
      this.#identity ??= await loadOrCreateIdentity(this.#dataDir!, this.#log);
      if (this.#file !== undefined) await this.#load(this.#file);
      await this.#extension?.start();
    } catch (error) {
      this.#listener.close();
      throw error;
    }
    this.#scheduleSweep();
    const addr = this.#listener.addr;
    this.#acceptLoop = this.#accept(this.#listener);
    this.#log.info("Rendezvous service started", {
      address: `${addr.hostname}:${addr.port}`,
      registrations: this.#registry.size,
      rateLimit: this.#limiter ? this.#limiter.settings : "off",
      fingerprint: this.#identity.fingerprint,
    });
    return { hostname: addr.hostname, port: addr.port };
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    await this.#acceptLoop;
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    for (const conn of this.#conns) conn.close();
    // Every waiter's session is closed now: each goes at once, without waiting for the timer.
    if (this.#anonymousTimer !== undefined) this.#clock.clearTimeout(this.#anonymousTimer);
    this.#anonymousTimer = undefined;
    this.#serveAnonymous();
    await Promise.all(this.#tasks);
    if (this.#saveTimer !== undefined) this.#clock.clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    await this.#saving;
    if (this.#dirty) await this.#save();
    await this.#extension?.stop();
    this.#log.info("Rendezvous service stopped");
  }

  registrations(namespace?: string): PeerEntry[] {
    return this.#registry.discover(namespace, this.#clock.now());
  }

  health(): TrackerHealth {
    const now = this.#clock.now();
    return {
      status: "ok",
      registrations: this.#registry.discover(undefined, now).length,
      connectionsOpen: this.#metrics.connectionsOpen,
      uptimeSeconds: Math.floor((now - this.#startedAt) / 1000),
      fingerprint: this.#identity?.fingerprint ?? null,
    };
  }

  metricsText(): string {
    this.#registry.prune(this.#clock.now());
    return this.#metrics.render(
      { activeRegistrations: this.#registry.size },
      this.#extension?.metrics() ?? [],
    );
  }

  serve(conn: Conn): Promise<void> {
    const task = this.#admit(conn).catch((error) => {
      this.#log.error("Connection handler failed", { error: String(error) });
    }).finally(() => {
      conn.close();
      this.#tasks.delete(task);
    });
    this.#tasks.add(task);
    return task;
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (!this.#stopping) {
      let socket: Deno.TcpConn;
      try {
        socket = await listener.accept();
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and similar: keep serving once some close.
        this.#log.warn("Accept failed", { error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (this.#stopping) {
        socket.close();
        return;
      }
      this.serve(new TcpConn(socket));
    }
  }

  async #admit(conn: Conn): Promise<void> {
    this.#metrics.connectionsTotal++;
    const ip = conn.remote.hostname;
    if (this.#limiter) {
      const decision = this.#limiter.check(ip, this.#clock.now());
      if (!decision.allowed) {
        this.#metrics.rejected.rate_limit++;
        if (decision.newlyBlocked) {
          this.#metrics.rateLimitBlocks++;
          this.#log.warn("Rate limit: blocking IP", { ip, seconds: decision.retryAfterSeconds });
        }
        await this.#reply(conn, {
          ...errorReply(decision.message),
          retry_after: decision.retryAfterSeconds,
        });
        return;
      }
    }
    const refusal = this.#admission.admit(ip);
    if (refusal) {
      this.#metrics.rejected[refusal.reason]++;
      this.#log.debug("Connection refused", { ip, reason: refusal.reason });
      await this.#reply(conn, errorReply(refusal.message));
      return;
    }
    this.#conns.add(conn);
    this.#metrics.connectionsOpen++;
    try {
      await this.#handle(conn, ip);
    } finally {
      this.#metrics.connectionsOpen--;
      this.#conns.delete(conn);
      this.#admission.release(ip);
    }
  }

  async #handle(conn: Conn, ip: string): Promise<void> {
    const reader = conn.chunks()[Symbol.asyncIterator]();
    const first = await this.#firstLine(conn, reader);
    if (!first) return;
    if (first.frame.kind === "error") {
      this.#metrics.countRequest("INVALID", "ERROR");
      await this.#reply(conn, LINE_TOO_LONG_REPLY);
      return;
    }
    const result = decodeMessage(first.frame.text);
    if (result.ok && this.#extension?.opensSession(result.message.type)) {
      await this.#openSession(conn, reader, first.frame.text, result.message, first.leftover);
      return;
    }
    await this.#answer(conn, ip, result);
  }

  /**
   * The first line, and the bytes read past it (the start of a handshake); undefined when the
   * connection ended or timed out first. Chunks are cut at the first newline, so nothing after
   * it is read as text.
   */
  async #firstLine(
    conn: Conn,
    reader: AsyncIterator<Uint8Array>,
  ): Promise<{ frame: Frame; leftover: Uint8Array } | undefined> {
    const decoder = new LineDecoder();
    const state: _Timers = {};
    const timeOut = (message: string) => {
      this.#clearTimers(state);
      this.#metrics.idleTimeouts++;
      this.#reply(conn, errorReply(message)).finally(() => conn.close());
    };
    const onIdle = () => timeOut(IDLE_TIMEOUT);
    state.idleTimer = this.#clock.setTimeout(onIdle, this.#idleTimeoutMs);
    state.deadlineTimer = this.#clock.setTimeout(
      () => timeOut(FIRST_LINE_TIMEOUT),
      this.#firstLineTimeoutMs,
    );
    try {
      for (;;) {
        const next = await reader.next();
        if (next.done) break;
        const chunk = next.value;
        const newline = chunk.indexOf(NEWLINE);
        const [frame] = decoder.push(newline === -1 ? chunk : chunk.subarray(0, newline + 1));
        if (frame) {
          // A copy: the reader reuses its buffer for the next chunk.
          return { frame, leftover: newline === -1 ? EMPTY : chunk.slice(newline + 1) };
        }
        // Silence is measured between chunks, as the reference's socket timeout does.
        if (state.idleTimer !== undefined) {
          this.#clock.clearTimeout(state.idleTimer);
          state.idleTimer = this.#clock.setTimeout(onIdle, this.#idleTimeoutMs);
        }
      }
      // A client that wrote its request without a newline and half-closed still gets a reply.
      if (conn.closed) return undefined;
      const [frame] = decoder.end();
      return frame ? { frame, leftover: EMPTY } : undefined;
    } finally {
      this.#clearTimers(state);
    }
  }

  /**
   * A session: SESSION_HELLO is answered in clear, then the Noise handshake runs (the tracker
   * responds) and every further line travels in encrypted frames. Any other session command
   * as a first line is refused, so no password or token is ever read in clear.
   */
  async #openSession(
    conn: Conn,
    reader: AsyncIterator<Uint8Array>,
    helloLine: string,
    hello: { type: string; fields: Record<string, unknown> },
    leftover: Uint8Array,
  ): Promise<void> {
    const id = hello.fields.id;
    if (hello.type !== SESSION_HELLO) {
      await this.#reply(conn, {
        type: "SESSION_REPLY",
        id: typeof id === "string" || typeof id === "number" ? id : null,
        status: "ERROR",
        code: "encryption_required",
        message: "Sessions are encrypted: open the connection with SESSION_HELLO " +
          "(docs/protocol.md, Encrypted session opening)",
      });
      return;
    }
    // Sessions are long-lived: they never take the slots kept for one-shot requests.
    const refusal = this.#admission.openSession();
    if (refusal) {
      this.#metrics.rejected.sessions++;
      await this.#reply(conn, errorReply(refusal.message));
      return;
    }
    const upgrade = await this.#handshake(conn, reader, helloLine, id, leftover);
    if (!upgrade) return this.#admission.closeSession();
    const secure = upgrade.conn;
    const session = new _Session(
      secure,
      this.#log,
      upgrade.remote,
      (command, fields, checkName) => this.#rendezvousFor(conn, command, fields, checkName),
      (bytes) => this.#queued(bytes),
      new TokenBucket(SESSION_LINE_RATE, this.#clock.now()),
    );
    this.#sessions.add(session);
    session.handler = this.#extension!.openSession(session);
    this.#metrics.sessionsOpen++;
    try {
      const decoder = new LineDecoder();
      for await (const chunk of secure.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind === "error") {
            await session.flushed();
            await this.#reply(secure, LINE_TOO_LONG_REPLY);
            return;
          }
          await this.#lineTurn(session);
          const turn = this.#slices.turn();
          if (turn) await turn;
          // Closed meanwhile (shed, or the client left): the rest of the read is not handled.
          if (session.conn.closed) return;
          session.handler.receive(decodeMessage(frame.text));
          // Checked per line: one read may hold thousands of requests.
          await session.backlogUnder(SESSION_READ_PAUSE_BYTES);
        }
      }
    } catch (error) {
      if (!(error instanceof NoiseError)) throw error;
      // A frame that fails authentication ends only this session, and nothing of it is read.
      this.#log.warn("Closing an encrypted session", {
        ip: conn.remote.hostname,
        code: error.code,
      });
    } finally {
      this.#metrics.sessionsOpen--;
      this.#admission.closeSession();
      this.#sessions.delete(session);
      session.drop();
      session.handler.closed();
    }
  }

  // Waits until the session may have one more line handled: its own rate and burst, and for a
  // session that has not logged in, the rate all those share.
  async #lineTurn(session: _Session): Promise<void> {
    await this.#tokenFrom(session.lines, session);
    if (!session.handler.loggedIn) await this.#anonymousTurn(session);
  }

  // The shared rate serves its waiters in order, from one timer: each polling it on a timer of
  // its own cost a timer a millisecond per waiting session, and left the order to chance.
  #anonymousTurn(session: _Session): Promise<void> {
    if (this.#anonymousWaiters.length === 0 && this.#anonymousLines.take(this.#clock.now()) === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#anonymousWaiters.push({ session, resolve });
      this.#serveAnonymous();
    });
  }

  #serveAnonymous(): void {
    if (this.#anonymousTimer !== undefined) return;
    while (this.#anonymousWaiters.length > 0) {
      const next = this.#anonymousWaiters[0];
      // A closed session goes at once, without a token: its loop ends.
      const waitMs = next.session.conn.closed ? 0 : this.#anonymousLines.take(this.#clock.now());
      if (waitMs > 0) {
        this.#anonymousTimer = this.#clock.setTimeout(() => {
          this.#anonymousTimer = undefined;
          this.#serveAnonymous();
        }, waitMs);
        return;
      }
      this.#anonymousWaiters.shift();
      next.resolve();
    }
  }

  async #tokenFrom(bucket: TokenBucket, session: _Session): Promise<void> {
    for (;;) {
      const waitMs = bucket.take(this.#clock.now());
      if (waitMs === 0 || session.conn.closed) return;
      await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, waitMs));
    }
  }

  // Keeps the total of output queued toward session clients; past the budget, the clients
  // holding the most unread output are closed first.
  #queued(bytes: number): void {
    this.#sessionBacklog += bytes;
    if (bytes <= 0) return;
    const shed = shedLargest(
      this.#sessions,
      (session) => session.backlog,
      this.#sessionBacklog,
      this.#outputBudgetBytes,
    );
    for (const session of shed) {
      this.#metrics.shedForOutput++;
      this.#log.warn("Session client is not reading and holds the most output; closing it", {
        ip: session.remoteIp,
        queuedBytes: session.backlog,
      });
      this.#sessions.delete(session);
      session.drop();
      session.conn.close();
    }
  }

  /** Answers SESSION_HELLO and runs the handshake; undefined (logged) when it fails. */
  async #handshake(
    conn: Conn,
    reader: AsyncIterator<Uint8Array>,
    helloLine: string,
    id: unknown,
    leftover: Uint8Array,
  ): Promise<SecureUpgrade | undefined> {
    const replyLine = sessionHelloReplyLine(id);
    const deadline = this.#clock.setTimeout(() => conn.close(), this.#handshakeTimeoutMs);
    try {
      await conn.write(new TextEncoder().encode(replyLine));
      const upgrade = await upgradeConn(conn, reader, {
        initiator: false,
        prologue: sessionPrologue(helloLine + "\n", replyLine),
        identity: this.#identity!,
        staticKeyPair: this.#staticKeyPair,
        localId: TRACKER_ID,
        leftover,
      });
      this.#metrics.handshakes.ok++;
      return upgrade;
    } catch (error) {
      this.#metrics.handshakes.failed++;
      // The client's fault (bad bytes, gone, too slow) ends its connection; anything else is ours.
      if (!(error instanceof NoiseError) && !conn.closed) throw error;
      this.#log.info("Session handshake failed; connection closed", {
        ip: conn.remote.hostname,
        reason: error instanceof NoiseError ? error.code : "closed",
      });
      return undefined;
    } finally {
      this.#clock.clearTimeout(deadline);
    }
  }

  /** A REGISTER or UNREGISTER on behalf of a session, for the address it connected from. */
  #rendezvousFor(
    conn: Conn,
    command: SessionRendezvousCommand,
    fields: Record<string, unknown>,
    checkName: NameCheck,
  ): Reply {
    return this.#run({ ok: true, message: { type: command, fields } }, {
      registry: this.#registry,
      ip: conn.remote.hostname,
      now: this.#clock.now(),
      checkRegister: checkName,
      checkUnregister: checkName,
    });
  }

  #clearTimers(state: _Timers): void {
    if (state.idleTimer !== undefined) this.#clock.clearTimeout(state.idleTimer);
    if (state.deadlineTimer !== undefined) this.#clock.clearTimeout(state.deadlineTimer);
    state.idleTimer = state.deadlineTimer = undefined;
  }

  async #answer(conn: Conn, ip: string, result: ReturnType<typeof decodeMessage>): Promise<void> {
    const extension = this.#extension;
    const reply = this.#run(result, {
      registry: this.#registry,
      ip,
      now: this.#clock.now(),
      checkRegister: extension && ((name) => extension.checkRegister(name)),
      checkUnregister: extension && ((name) => extension.checkUnregister(name)),
    });
    await this.#reply(conn, reply);
  }

  /** Runs one Rendezvous request against the registry, counting it and scheduling a save. */
  #run(result: ReturnType<typeof decodeMessage>, context: RendezvousContext): Reply {
    const outcome = handleRendezvous(result, context);
    this.#metrics.countRequest(outcome.command, outcome.reply.status);
    if (outcome.changed) this.#markDirty();
    return outcome.reply;
  }

  /** Writes one reply line, giving up (closing) if the client does not take a large one in time. */
  async #reply(conn: Conn, reply: Record<string, unknown>): Promise<void> {
    const bytes = encodeLine(reply);
    // A small reply always fits the empty send buffer of a fresh connection, so only large
    // ones (DISCOVER of a big namespace) can stall and need the deadline timer.
    const timer = bytes.length > WRITE_DEADLINE_FROM_BYTES
      ? this.#clock.setTimeout(() => conn.close(), WRITE_TIMEOUT_MS)
      : undefined;
    try {
      await conn.write(bytes);
    } catch {
      // The client left: nothing more to do for it.
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
  }

  #scheduleSweep(): void {
    this.#sweepTimer = this.#clock.setTimeout(() => {
      const now = this.#clock.now();
      const removed = this.#registry.prune(now);
      this.#limiter?.prune(now);
      if (removed > 0) {
        this.#log.debug("Expired registrations removed", { count: removed });
        this.#markDirty();
      }
      if (!this.#stopping) this.#scheduleSweep();
    }, this.#sweepIntervalMs);
  }

  async #load(file: string): Promise<void> {
    await Deno.mkdir(dirname(file), { recursive: true });
    const outcome = await loadJsonFile(file, parseRegistrySnapshot, this.#log);
    if (outcome.kind === "loaded") {
      this.#registry = Registry.fromSnapshot(outcome.value, this.#clock.now());
      this.#log.info("Registrations loaded", { file, count: this.#registry.size });
    } else if (outcome.kind === "quarantined") {
      this.#log.warn("Starting with no registrations; the corrupt file was kept aside", {
        movedTo: outcome.movedTo,
      });
    }
  }

  #markDirty(): void {
    if (this.#file === undefined) return;
    this.#dirty = true;
    if (this.#saveTimer !== undefined || this.#stopping) return;
    this.#saveTimer = this.#clock.setTimeout(() => {
      this.#saveTimer = undefined;
      // A save already running picks up this change when it finishes (see #save).
      if (!this.#saving) this.#save();
    }, this.#saveRetryDelay());
  }

  // The coalescing delay, doubled for each save that failed in a row.
  #saveRetryDelay(): number {
    return Math.min(this.#saveDelayMs * 2 ** this.#saveFailures, MAX_SAVE_RETRY_MS);
  }

  #save(): Promise<void> {
    const file = this.#file!;
    this.#dirty = false;
    const snapshot = this.#registry.snapshot();
    this.#saving = saveJsonFile(file, snapshot).then(() => {
      this.#saveFailures = 0;
    }, (error) => {
      this.#dirty = true;
      this.#saveFailures++;
      this.#log.error("Saving registrations failed; will retry", {
        file,
        error: String(error),
        retryInMs: this.#saveRetryDelay(),
      });
    }).finally(() => {
      this.#saving = undefined;
      if (this.#dirty && !this.#stopping) {
        this.#dirty = false;
        this.#markDirty();
      }
    });
    return this.#saving;
  }
}

/** An identity kept in memory only: a tracker without a data directory. */
function _ephemeralIdentity(): ProfileIdentity {
  const identity = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  return { ...identity, fingerprint: fingerprint(identity.publicKey), path: "" };
}

/** The timers of a connection waiting for its first line. */
interface _Timers {
  idleTimer?: TimerId;
  deadlineTimer?: TimerId;
}

/** The `SessionLink` given to the extension: ordered writes, close after the last one. */
class _Session implements SessionLink {
  handler!: SessionHandler;
  readonly remoteIp: string;
  readonly remotePort: number;
  readonly identityKey: Uint8Array;
  readonly remoteId: string;
  #last: Promise<void> = Promise.resolve();
  #backlog = 0;
  #waiting: Uint8Array[] = [];
  #writing = false;

  constructor(
    readonly conn: Conn,
    readonly log: Logger,
    remote: { identityKey: Uint8Array; id: string },
    readonly rendezvous: SessionLink["rendezvous"],
    /** Told of every change of this session's queued bytes (the server's shared budget). */
    readonly queued: (bytes: number) => void,
    /** The rate at which its lines are handled. */
    readonly lines: TokenBucket,
  ) {
    this.remoteIp = conn.remote.hostname;
    this.remotePort = conn.remote.port;
    this.identityKey = remote.identityKey;
    this.remoteId = remote.id;
  }

  /** Bytes handed to the connection and not yet written. */
  get backlog(): number {
    return this.#backlog;
  }

  send(message: Record<string, unknown>): void {
    if (this.conn.closed) return;
    const bytes = encodeLine(message);
    if (this.#backlog + bytes.length > MAX_SESSION_BACKLOG_BYTES) {
      this.log.warn("Session client is not reading; closing it", { ip: this.remoteIp });
      this.conn.close();
      return;
    }
    this.#backlog += bytes.length;
    this.queued(bytes.length);
    // Lines wait in one list and go out in one write once the previous write is done: a client
    // that does not read then costs its bytes, not a pending write per line.
    this.#waiting.push(bytes);
    if (this.#waiting.length === 1 && !this.#writing) this.#last = this.#writeWaiting();
  }

  /** Resolves once the backlog is under `bytes` (or the connection is gone). */
  async backlogUnder(bytes: number): Promise<void> {
    while (this.#backlog >= bytes && !this.conn.closed) await this.#last;
  }

  /** Takes this session's backlog out of the shared total (it is closing). */
  drop(): void {
    this.queued(-this.#backlog);
    this.#backlog = 0;
    this.#waiting = [];
  }

  async #writeWaiting(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#waiting.length > 0) {
        const lines = this.#waiting;
        this.#waiting = [];
        const bytes = concatBytes(lines);
        try {
          await this.conn.write(bytes);
        } catch {
          // The client left: closing ends the session, and nothing more of what it sent is
          // read (a flood that stops leaves megabytes unread in the socket).
          this.conn.close();
        }
        if (this.#backlog === 0) continue; // dropped meanwhile
        this.#backlog -= bytes.length;
        this.queued(-bytes.length);
      }
    } finally {
      this.#writing = false;
    }
  }

  close(): void {
    this.#last.then(() => this.conn.close());
  }

  /** Resolves once every queued message has been written (or failed). */
  flushed(): Promise<void> {
    return this.#last;
  }
}
