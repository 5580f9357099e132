/**
 * A running peer: the TCP listener and dialer, the peer table, reconnection with backoff,
 * the duplicate-connection rule, and discovery through the tracker. Protocol details live in
 * `peer/protocol/`; this file decides which connections to open, keep and retry.
 */
import { Listeners } from "../../lib/listeners.ts";
import { type Clock, systemClock, type TimerId } from "../../lib/clock.ts";
import { ACK_TIMEOUT_MS, DEFAULT_TTL_SECONDS, PING_INTERVAL_MS } from "../../lib/constants.ts";
import type { Logger } from "../../lib/log.ts";
import { shedLargest } from "../../lib/output_budget.ts";
import { SlotCounter } from "../../lib/slot_counter.ts";
import { TokenBucket } from "../../lib/token_bucket.ts";
import { type Address, type Conn, dialTcp, listenTcp, TcpConn } from "../../lib/transport.ts";
import { base64 } from "../../lib/bytes.ts";
import { describeError } from "../../lib/errors.ts";
import {
  fingerprint,
  generateStaticKeyPair,
  type Identity,
  safetyNumber,
} from "../../lib/noise/mod.ts";
import type {
  ArrivedMessage,
  IdentityInfo,
  NodeEvent,
  NodeStatus,
  PeerInfo,
  PeerNode,
  PeerSecurity,
  PeerState,
  PublishResult,
  Scope,
  SecurityNotice,
  SendResult,
  StoredMessage,
  Verification,
} from "../api.ts";
import type { TrustPolicy, TrustVerdict } from "../identity/mod.ts";
import { backoffDelay } from "../../lib/backoff.ts";
import { LinkIo, type LinkSecurity, runLink } from "./link.ts";
import { findNameInUse } from "./name_check.ts";
import { inScope, survivingDirection } from "./peer_table.ts";
import {
  Discovery,
  type Registrar,
  type RendezvousClient,
  type RendezvousRecord,
  tcpRendezvousClient,
} from "../discovery/mod.ts";
import {
  type AdmitVerdict,
  type CloseReason,
  type ConnectionHooks,
  FEATURE_FILE_FRAMES,
  FEATURE_FILES,
  FEATURE_NOISE,
  FEATURE_READ,
  FEATURE_RECEIPTS,
  OUR_FEATURES,
  PeerConnection,
  type ReceiptStatus,
  RecentIds,
  SendIds,
  splitPeerId,
} from "../protocol/mod.ts";

/** How a received message travelled, as the inbox gets it beside the message. */
export interface ArrivalSecurity {
  encrypted: boolean;
  /** The sender's identity key fingerprint (encrypted connections). */
  fingerprint?: string;
}

/** Where received messages go before they are shown and ACKed: the message store. */
export interface Inbox {
  /**
   * Keeps a message; returns the stored message the `message` event carries, or "duplicate"
   * when it was kept before (it is ACKed again, not shown again).
   */
  accept(message: ArrivedMessage, security: ArrivalSecurity): StoredMessage | "duplicate";
  /** Settles once what `accept` kept is committed (or could not be: it stays in memory). */
  committed(): Promise<void>;
  /** Commits what `accept` kept, at once; throws when it could not (`committed()` rejects). */
  commitNow(): void;
  /** A RECEIPT from `from` for messages we sent. */
  receipt(from: string, msgIds: string[], status: ReceiptStatus): void;
  /**
   * How a message sent with `sendStored` ended, before its promise settles: that promise gives
   * what this answers.
   */
  settled(message: StoredMessage, result: SendResult): SendResult | Promise<SendResult>;
}

/** Where FILE_* lines from peers go (the files layer), and when it may send more. */
export interface FileWire {
  /** A FILE_* line from `from` (untrusted fields). */
  line(from: string, kind: string, fields: Record<string, unknown>): void;
  /** A file data record from `from` (untrusted bytes). */
  record(from: string, body: Uint8Array): void;
  /** The connection to `peerId` has room again after `fileChannel(...).wantDrain()`. */
  drained(peerId: string): void;
}

/** The open, encrypted connection to a peer that agreed on files. */
export interface FileChannel {
  /** Queues a FILE_* line; false when it could not (the connection closed or is full). */
  send(fields: Record<string, unknown>): boolean;
  /** True when file data goes in records (`sendRecord`) rather than FILE_CHUNK lines. */
  readonly records: boolean;
  /** Queues a file data record; false as for `send`, or when records were not agreed. */
  sendRecord(body: Uint8Array): boolean;
  /** Bytes queued toward the peer (past 1 MiB the connection is dropped). */
  queuedBytes(): number;
  /** One `FileWire.drained` call (in a later task) once fewer than `bytes` are queued. */
  wantDrain(bytes: number): void;
}

/** Node settings; times in milliseconds. */
export interface PeerNodeOptions {
  name: string;
  namespace: string;
  /** Listen address (default 0.0.0.0). */
  host?: string;
  /** Listen port (default 0: any free port). */
  port?: number;
  /** The Rendezvous tracker; without one, discovery is off and peers come from `addPeer()`. */
  tracker?: Address;
  ttlSeconds?: number;
  pingIntervalMs?: number;
  discoverIntervalMs?: number;
  ackTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Retries after a failed dial or a lost connection before a peer is marked failed. */
  maxReconnectAttempts?: number;
  /** After a peer's BYE, wait this long before dialling it again (its old socket lingers). */
  byeCooldownMs?: number;
  dialTimeoutMs?: number;
  /** Bound on bytes queued toward one peer. */
  maxQueueBytes?: number;
  /** Features listed in HELLO / HELLO_OK (default: all of ours; fewer to act as an older peer). */
  features?: readonly string[];
  /** Open connections (both directions) before new inbound ones are closed at once. */
  maxConnections?: number;
  /** Who registers our name, asked at each REGISTER (see `DiscoverySettings.registrar`). */
  registrar?: () => Registrar | undefined;
  /**
   * The first REGISTER waits for this (at most `REGISTER_WAIT_MS`): a remembered login resumes
   * first, so that an account's name is registered through its session, not refused.
   */
  registerAfter?: Promise<unknown>;
  /**
   * Our identity key and the trust policy for others' keys. With them, connections to p2pchat
   * peers are encrypted and keys are checked; without, the node speaks in clear (tests, benches).
   */
  identity?: { key: Identity & { fingerprint: string }; trust: TrustPolicy };
  /** Inbound connections still in their handshake, from one address and in all. */
  maxHandshakesPerIp?: number;
  maxHandshakes?: number;
  /**
   * Connections of peers we did not discover (ids nobody listed: made up, or not listed yet),
   * from one address and in all. Discovered peers never count against these.
   */
  maxUnknownPerIp?: number;
  maxUnknown?: number;
  /** Bytes queued toward all peers before the largest backlogs are shed (default 32 MiB). */
  outputBudgetBytes?: number;
  /** Received messages are kept here before they are shown and ACKed (default: shown only). */
  inbox?: Inbox;
  /** Send and ask for read receipts (default true; the feature is listed only when on). */
  readReceipts?: boolean;
  /** File transfers; without it the node does not list `p2pchat-files`. */
  files?: FileWire;
}

/** Collaborators; everything but `log` has a default. */
export interface PeerNodeDeps {
  log: Logger;
  clock?: Clock;
  random?: () => number;
  /** Replaces the TCP Rendezvous client (tests). */
  rendezvous?: RendezvousClient;
  /** Replaces `dialTcp` (tests). */
  dial?: (address: Address, signal: AbortSignal) => Promise<Conn>;
}

/** A node that can be started, plus what discovery and tests use directly. */
export interface StartablePeerNode extends PeerNode {
  /** Listens, starts discovery; resolves to the bound address. */
  start(): Promise<Address>;
  /** Adds (or updates) a peer at `address` and dials it, as discovery does for listed peers. */
  addPeer(name: string, namespace: string, address: Address): void;
  /** A fresh msg_id for a SEND (kept with the message in the outbox). */
  newMsgId(): string;
  /**
   * Sends a stored direct message over its conversation peer's open connection, under its
   * msg_id; the inbox's `settled` hears the outcome first (the store moves on without a promise
   * per message). Undefined (nothing sent) when that connection is not open.
   */
  sendStored(message: StoredMessage): Promise<SendResult> | undefined;
  /** SENDs written to `peerId`'s connection that have had no ACK yet (nor timed out). */
  unansweredSends(peerId: string): number;
  /** Sends a RECEIPT to a connected peer; false when it is not connected or did not agree. */
  sendReceipt(peerId: string, msgIds: readonly string[], status: ReceiptStatus): boolean;
  /** True when the peer's connection agreed on receipts (it ACKs PUBs with RECEIPT delivered). */
  takesReceipts(peerId: string): boolean;
  /** One row of the peer table (cheaper than `peers()` when one peer is wanted). */
  peerRow(peerId: string): PeerInfo | undefined;
  /**
   * Checks the key of the open connection to `peerId` against the tracker again, asked afresh
   * (it said the name was no account, and it may have signed up since); true when the
   * connection is bound to the account of its name. A key that is not the account's ends it.
   */
  recheckAccount(peerId: string): Promise<boolean>;
  /**
   * Whether the connection to `peerId` is encrypted; undefined when it is not connected. (The
   * messenger asks for every message it sends: `peerRow` would build a whole row.)
   */
  encryptedLink(peerId: string): boolean | undefined;
  /**
   * The connection to `peerId` for FILE_* lines, or why there is none: `not_connected`, or
   * `no_files` (a plain pyp2p peer, or a connection in clear).
   */
  fileChannel(peerId: string): FileChannel | "not_connected" | "no_files";
}

/** Defaults for the node (pyp2p values where the protocol sets them). */
export const NODE_DEFAULTS = {
  host: "0.0.0.0",
  port: 0,
  discoverIntervalMs: 15_000,
  maxReconnectAttempts: 10,
  byeCooldownMs: 1_000,
  dialTimeoutMs: 5_000,
  // An inbound connection must say HELLO soon: it holds a slot while it does not.
  handshakeTimeoutMs: 5_000,
  maxHandshakesPerIp: 16,
  maxHandshakes: 128,
  maxUnknownPerIp: 32,
  maxUnknown: 256,
  outputBudgetBytes: 32 * 1024 * 1024,
} as const;

/** How often the shared output budget is checked. */
const OUTPUT_BUDGET_CHECK_MS = 1_000;

/** Lines all peers nobody listed may have handled, together: a burst, then a steady rate. */
const STRANGER_LINE_RATE = { perSecond: 500, burst: 2_000 };
/**
 * Up to this many connections of unlisted peers are not throttled: one peer that dialled us
 * before our next DISCOVER lists it (or a pyp2p peer of another namespace) sends at full speed;
 * a crowd of them shares the rate above.
 */
const UNTHROTTLED_STRANGERS = 4;

interface _Entry {
  peerId: string;
  name: string;
  namespace: string;
  address?: Address;
  state: PeerState;
  /** The open connection in use. */
  connection?: PeerConnection;
  /** Our dial: true from connect until its handshake ends. */
  dialing: boolean;
  outbound?: PeerConnection;
  attempts: number;
  nextAttemptAt?: number;
  timer?: TimerId;
  lastSeenAt?: number;
  /** When the current connection passed its handshake. */
  connectedAt?: number;
  security?: PeerSecurity;
}

/** A redialled peer refused again for the same reason is not announced again for this long. */
const NOTICE_REPEAT_MS = 10 * 60_000;
const MAX_NOTICE_KEYS = 1_000;

/** Refusals from the other side that the user must hear about (they concern keys). */
const SECURITY_REFUSALS: ReadonlySet<string> = new Set([
  "key_mismatch",
  "key_changed",
  "encryption_required",
  "key_unchecked",
]);

/**
 * Refusals that redialling cannot change (only the other side's user can, and then they dial
 * us): the peer is marked failed instead of being redialled every discovery.
 */
const LASTING_REFUSALS: ReadonlySet<string> = new Set([
  "key_mismatch",
  "key_changed",
  "encryption_required",
]);

/** The longest the first REGISTER waits for `registerAfter`. */
const REGISTER_WAIT_MS = 5_000;

/** A connection that lasted this long resets the reconnection backoff when it is lost. */
const STABLE_CONNECTION_MS = 5_000;

/** Peers whose quit is remembered, at most (past it, all are forgotten at once). */
const MAX_BYES_KEPT = 10_000;

/**
 * The tracker counts what is left of a record in whole seconds (rounded down), so a record's
 * registration time, worked out from it, may be up to this much early: one made after a BYE
 * never looks older than the BYE by more.
 */
const REGISTERED_AT_SLACK_MS = 1_000;

/** Default cap on open peer connections. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** Creates a peer node; nothing listens until `start()`. */
export function createPeerNode(options: PeerNodeOptions, deps: PeerNodeDeps): StartablePeerNode {
  return new _PeerNode(options, deps);
}

class _PeerNode implements StartablePeerNode {
  readonly peerId: string;
  readonly #options: PeerNodeOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #serverLog: Logger;
  readonly #dialLog: Logger;
  readonly #dial: (address: Address, signal: AbortSignal) => Promise<Conn>;
  readonly #rendezvous?: RendezvousClient;
  #discovery?: Discovery;
  readonly #peers = new Map<string, _Entry>();
  readonly #connections = new Set<PeerConnection>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #listeners: Listeners<NodeEvent>;
  // Without an inbox, what tells a repeated SEND (the inbox's store remembers every id).
  readonly #seen?: RecentIds;
  readonly #sendIds = new SendIds();
  readonly #cooldownUntil = new Map<string, number>();
  /** When listed peers said BYE to quit (a BYE without reason, or "quit"), until they are back. */
  readonly #byeAt = new Map<string, number>();
  readonly #abort = new AbortController();
  readonly #hooks: ConnectionHooks;
  readonly #features: readonly string[];
  readonly #security?: LinkSecurity;
  // When each security notice was last shown, so a redialled impostor is not a flood.
  readonly #noticeShownAt = new Map<string, number>();
  /** Inbound connections in their handshake, and admitted ones of undiscovered peers. */
  readonly #handshakes: SlotCounter;
  readonly #unknown: SlotCounter;
  /** The fair-share slot an inbound connection holds, with its address. */
  readonly #slots = new Map<PeerConnection, { ip: string; kind: "handshake" | "unknown" }>();
  /** The rate all unknown peers' lines share, so a flood of them costs a bounded CPU share. */
  readonly #strangerLines = new TokenBucket(STRANGER_LINE_RATE, Date.now());
  #budgetTimer?: TimerId;
  #listener?: Deno.TcpListener;
  #acceptLoop?: Promise<void>;
  #listen: Address = { hostname: "", port: 0 };
  #startedAt = 0;
  #stopping?: Promise<void>;

  constructor(options: PeerNodeOptions, deps: PeerNodeDeps) {
    this.#options = options;
    if (!options.inbox) this.#seen = new RecentIds();
    this.peerId = `${options.name}@${options.namespace}`;
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#log = deps.log;
    this.#listeners = new Listeners(this.#log, "Event listener");
    const identity = options.identity;
    // A fresh static key each run; the identity key signs it in every handshake.
    this.#security = identity && { identity: identity.key, staticKeyPair: generateStaticKeyPair() };
    this.#features = (options.features ?? OUR_FEATURES).filter((feature) =>
      (identity !== undefined || feature !== FEATURE_NOISE) &&
      (options.readReceipts !== false || feature !== FEATURE_READ) &&
      (options.files !== undefined ||
        (feature !== FEATURE_FILES && feature !== FEATURE_FILE_FRAMES))
    );
    this.#serverLog = deps.log.child("PeerServer");
    this.#dialLog = deps.log.child("Dialer");
    this.#dial = deps.dial ??
      ((address, signal) => dialTcp(address.hostname, address.port, { signal }));
    this.#rendezvous = deps.rendezvous ??
      (options.tracker ? tcpRendezvousClient(options.tracker) : undefined);
    this.#handshakes = new SlotCounter(
      options.maxHandshakes ?? NODE_DEFAULTS.maxHandshakes,
      options.maxHandshakesPerIp ?? NODE_DEFAULTS.maxHandshakesPerIp,
    );
    this.#unknown = new SlotCounter(
      options.maxUnknown ?? NODE_DEFAULTS.maxUnknown,
      options.maxUnknownPerIp ?? NODE_DEFAULTS.maxUnknownPerIp,
    );
    this.#hooks = {
      admit: (connection) => this.#admitFairly(connection),
      message: (connection, m) => this.#received(connection, m),
      keptNow: () => this.#keptNow(),
      settled: (message, result) =>
        this.#options.inbox?.settled(message as StoredMessage, result) ?? result,
      receipt: (connection, msgIds, status) =>
        this.#options.inbox?.receipt(connection.peerId!, msgIds, status),
      opened: (connection) => this.#opened(connection),
      closed: (connection, reason, detail) => this.#closed(connection, reason, detail),
      file: (connection, kind, fields) =>
        this.#options.files?.line(connection.peerId!, kind, fields),
      fileRecord: (connection, body) => this.#options.files?.record(connection.peerId!, body),
      drained: (connection) => this.#options.files?.drained(connection.peerId!),
    };
  }

  start(): Promise<Address> {
    try {
      return Promise.resolve(this.#startNow());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #startNow(): Address {
    const listener = listenTcp(
      this.#options.host ?? NODE_DEFAULTS.host,
      this.#options.port ?? NODE_DEFAULTS.port,
      { what: "peers", flag: "--port" },
    );
    this.#listener = listener;
    this.#listen = { hostname: listener.addr.hostname, port: listener.addr.port };
    this.#startedAt = this.#clock.now();
    this.#acceptLoop = this.#accept(listener);
    this.#scheduleBudgetCheck();
    this.#serverLog.info(`Listening on ${this.#listen.hostname}:${this.#listen.port}`, {
      peer: this.peerId,
    });
    if (this.#rendezvous) {
      const options = this.#options;
      this.#discovery = new Discovery(
        {
          name: options.name,
          namespace: options.namespace,
          port: this.#listen.port,
          ttlSeconds: options.ttlSeconds ?? DEFAULT_TTL_SECONDS,
          discoverIntervalMs: options.discoverIntervalMs ?? NODE_DEFAULTS.discoverIntervalMs,
          registrar: options.registrar,
        },
        { client: this.#rendezvous, clock: this.#clock, log: this.#log, random: this.#random },
        {
          peersFound: (records) => this.#learn(records),
          trackerChanged: (reachable, detail) =>
            this.#listeners.emit({ type: "tracker", reachable, detail, at: this.#clock.now() }),
          registerRefused: (refused, detail) =>
            this.#listeners.emit({
              type: "tracker",
              reachable: true,
              detail,
              refused,
              at: this.#clock.now(),
            }),
        },
      );
      this.#track(this.#startDiscovery(this.#discovery, this.#rendezvous));
    }
    return this.#listen;
  }

  // Before our first REGISTER (which replaces a record of our name from the same address), look
  // for a live peer that already uses our name: every other peer would refuse us as a duplicate.
  async #startDiscovery(discovery: Discovery, rendezvous: RendezvousClient): Promise<void> {
    let records: RendezvousRecord[] = [];
    try {
      records = await rendezvous.discover();
    } catch {
      // Discovery itself reports and retries an unreachable tracker.
    }
    await this.#settledOrLate(this.#options.registerAfter, REGISTER_WAIT_MS);
    if (this.#stopping) return;
    this.#track(discovery.start());
    const us = { name: this.#options.name, namespace: this.#options.namespace };
    const address = await findNameInUse({ ...us, port: this.#listen.port }, records, this.#dial);
    if (address === undefined || this.#stopping) return;
    // Info, not warn: the event is the user's notice; the log only records it.
    this.#dialLog.info("Another live peer already uses our name", {
      peer: this.peerId,
      address: `${address.hostname}:${address.port}`,
    });
    this.#listeners.emit({
      type: "name_in_use",
      peerId: this.peerId,
      address,
      at: this.#clock.now(),
    });
  }

  status(): NodeStatus {
    const discovery = this.#discovery?.status();
    let connected = 0;
    for (const entry of this.#peers.values()) if (entry.state === "connected") connected++;
    return {
      peerId: this.peerId,
      name: this.#options.name,
      namespace: this.#options.namespace,
      listen: this.#listen,
      publicIp: discovery?.publicIp,
      tracker: {
        address: this.#options.tracker ?? { hostname: "", port: 0 },
        reachable: discovery?.reachable ?? false,
        lastRegisterAt: discovery?.lastRegisterAt,
        lastDiscoverAt: discovery?.lastDiscoverAt,
        lastError: discovery?.lastError,
      },
      peers: { known: this.#peers.size, connected },
      startedAt: this.#startedAt,
    };
  }

  peers(scope: Scope = "*"): PeerInfo[] {
    const rows: PeerInfo[] = [];
    for (const entry of this.#peers.values()) {
      if (inScope(scope, entry.namespace)) rows.push(_row(entry));
    }
    return rows.sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0);
  }

  peerRow(peerId: string): PeerInfo | undefined {
    const entry = this.#peers.get(peerId);
    return entry && _row(entry);
  }

  encryptedLink(peerId: string): boolean | undefined {
    const entry = this.#peers.get(peerId);
    return entry?.state === "connected" ? entry.security?.encrypted ?? false : undefined;
  }

  // Keeps the message in the inbox (when there is one), then shows it; the promise returned
  // holds a SEND's ACK until the inbox committed it.
  #received(
    connection: PeerConnection,
    m: { kind: "direct" | "pub"; msgId: string; from: string; to: string; text: string },
  ): Promise<void> | undefined {
    // Fields copied one by one: a spread costs more, once per received message.
    const event: NodeEvent & { type: "message" } = {
      type: "message",
      kind: m.kind,
      msgId: m.msgId,
      from: m.from,
      to: m.to,
      text: m.text,
      at: this.#clock.now(),
      stored: undefined,
    };
    const inbox = this.#options.inbox;
    if (inbox) {
      const key = connection.remoteIdentity?.identityKey;
      let kept: StoredMessage | "duplicate";
      try {
        kept = inbox.accept(event, {
          encrypted: connection.encrypted,
          fingerprint: key && this.#fingerprintOf(key),
        });
      } catch (error) {
        // Nothing a peer sends may stop this one: a message the store refused (a bug) is shown
        // from memory and ACKed, as when the disk fails.
        this.#log.child("Router").error("Could not store a received message", {
          peer: m.from,
          error: describeError(error),
        });
        this.#listeners.emit(event);
        return undefined;
      }
      const committed = inbox.committed();
      if (kept === "duplicate") return committed;
      event.stored = kept;
      // Shown once on disk: after a crash before the commit the sender sends it again, and it
      // would be shown twice.
      if (this.#listeners.size > 0) this.#showWhen(committed, event);
      return committed;
    }
    this.#listeners.emit(event);
  }

  // Commits what the inbox holds now; false when that failed (the commit's promise says so,
  // and what waits on it goes on from there).
  #keptNow(): boolean {
    try {
      this.#options.inbox?.commitNow();
      return true;
    } catch (error) {
      this.#log.child("Router").error("Could not store received messages", {
        error: describeError(error),
      });
      return false;
    }
  }

  // Messages kept by one commit, shown in order once it settles: one callback per commit.
  #shownGate?: Promise<void>;
  #toShow: NodeEvent[] = [];
  #showWhen(committed: Promise<void>, event: NodeEvent): void {
    if (committed !== this.#shownGate) {
      this.#shownGate = committed;
      const events: NodeEvent[] = this.#toShow = [];
      const show = () => {
        if (this.#shownGate === committed) this.#shownGate = undefined;
        for (const shown of events) this.#listeners.emit(shown);
      };
      // A store that failed keeps the message in memory: it is shown all the same. One step
      // later than the connection's ACK for the same commit, so that a RECEIPT a listener
      // sends at once (read on sight) follows the ACK on the wire.
      committed.then(undefined, () => {}).then(show);
    }
    this.#toShow.push(event);
  }

  // One fingerprint per key, computed once: it is asked for every received message.
  #fingerprints = new WeakMap<Uint8Array, string>();
  #fingerprintOf(key: Uint8Array): string {
    let value = this.#fingerprints.get(key);
    if (value === undefined) this.#fingerprints.set(key, value = fingerprint(key));
    return value;
  }

  newMsgId(): string {
    return this.#sendIds.idOf(this.#sendIds.next());
  }

  sendReceipt(peerId: string, msgIds: readonly string[], status: ReceiptStatus): boolean {
    return this.#peers.get(peerId)?.connection?.receipt(msgIds, status) ?? false;
  }

  async recheckAccount(peerId: string): Promise<boolean> {
    const entry = this.#peers.get(peerId);
    const connection = entry?.connection;
    const key = connection?.remoteIdentity?.identityKey;
    const trust = this.#options.identity?.trust;
    if (!entry?.security || connection?.state !== "open" || !key || !trust) return false;
    if (entry.security.accountBound) return true;
    const verdict = await trust.recheck(peerId, key);
    if (entry.connection !== connection || connection.state !== "open") return false;
    if (verdict.notice) this.#notify(verdict.notice);
    if (!verdict.ok) {
      // The name is an account now, with another key: whoever held the name is not its owner.
      void connection.bye(verdict.reason);
      return false;
    }
    if (!verdict.accountBound) return false;
    entry.security = { ...entry.security, trust: verdict.trust, accountBound: true };
    return true;
  }

  fileChannel(peerId: string): FileChannel | "not_connected" | "no_files" {
    const connection = this.#peers.get(peerId)?.connection;
    if (connection?.state !== "open") return "not_connected";
    if (!connection.takesFiles) return "no_files";
    return {
      send: (fields) => connection.fileLine(fields),
      records: connection.takesFileRecords,
      sendRecord: (body) => connection.fileRecord(body),
      queuedBytes: () => connection.queuedBytes,
      wantDrain: (bytes) => connection.wantDrain(bytes),
    };
  }

  takesReceipts(peerId: string): boolean {
    return this.#peers.get(peerId)?.connection?.features.includes(FEATURE_RECEIPTS) ?? false;
  }

  send(peerId: string, text: string, msgId?: string): Promise<SendResult> {
    // The common case stays free of an extra async step: it is on the hot path.
    const connection = this.#peers.get(peerId)?.connection;
    return connection?.state === "open"
      ? connection.send(text, msgId)
      : this.#sendWhenConnected(peerId, text, msgId);
  }

  sendStored(message: StoredMessage): Promise<SendResult> | undefined {
    const connection = this.#peers.get(message.conversation)?.connection;
    if (connection?.state !== "open") return undefined;
    // Its deadline runs from its time, taken as it was stored (a clock read costs).
    return connection.send(message.text, message.msgId, message, message.at);
  }

  unansweredSends(peerId: string): number {
    return this.#peers.get(peerId)?.connection?.unansweredSends ?? 0;
  }

  async #sendWhenConnected(peerId: string, text: string, msgId?: string): Promise<SendResult> {
    const discovery = this.#discovery;
    if (!this.#peers.has(peerId) && discovery && !this.#stopping) {
      // Not in our table: the tracker may list it since our last DISCOVER. Once it answered,
      // a peer it does not list is unknown now, not after the delivery timeout.
      await discovery.discoverNow();
      // Only a tracker that answered just now can say so: one that is away lists nothing.
      const answered = discovery.status();
      if (!this.#peers.has(peerId) && answered.reachable && answered.lastDiscoverAt !== undefined) {
        return { ok: false, reason: "unknown_peer" };
      }
    }
    const waiting = this.#peers.get(peerId);
    if (waiting?.state !== "failed" && !this.#stopping) {
      // Just started, or the peer is being dialled or redialled: give discovery and the dial
      // the delivery timeout to connect rather than failing at once.
      const timeoutMs = this.#options.ackTimeoutMs ?? ACK_TIMEOUT_MS;
      await this.#whenConnected(
        peerId,
        AbortSignal.any([
          AbortSignal.timeout(timeoutMs),
          this.#abort.signal,
        ]),
      );
    }
    const entry = this.#peers.get(peerId);
    if (!entry) {
      // Only a tracker that answers can say a peer is unknown; while it is away, nobody is listed.
      const away = discovery !== undefined && !discovery.status().reachable;
      return { ok: false, reason: away ? "not_connected" : "unknown_peer" };
    }
    if (entry.connection?.state !== "open") return { ok: false, reason: "not_connected" };
    return entry.connection.send(text, msgId);
  }

  publish(scope: Scope, text: string, alsoTo: readonly string[] = []): Promise<PublishResult> {
    const msgId = crypto.randomUUID();
    const peers: string[] = [];
    const extra = new Set(alsoTo);
    for (const entry of this.#peers.values()) {
      if (!entry.connection || !(inScope(scope, entry.namespace) || extra.has(entry.peerId))) {
        continue;
      }
      // A peer whose queue overflows is dropped by its connection and not counted as reached.
      if (entry.connection.publish(msgId, scope, text)) peers.push(entry.peerId);
    }
    return Promise.resolve(this.#reached(msgId, peers));
  }

  publishTo(
    peerIds: readonly string[],
    dst: Scope,
    text: string,
    msgId: string = crypto.randomUUID(),
  ): Promise<PublishResult> {
    const peers: string[] = [];
    for (const peerId of new Set(peerIds)) {
      if (this.#peers.get(peerId)?.connection?.publish(msgId, dst, text)) peers.push(peerId);
    }
    return Promise.resolve(this.#reached(msgId, peers));
  }

  #reached(msgId: string, peers: string[]): PublishResult {
    let encrypted = 0;
    for (const peerId of peers) if (this.#peers.get(peerId)?.connection?.encrypted) encrypted++;
    return { msgId, reached: peers.length, peers, encrypted };
  }

  identity(): IdentityInfo | undefined {
    const key = this.#options.identity?.key;
    return key && { publicKey: base64(key.publicKey), fingerprint: key.fingerprint };
  }

  verification(peerId: string): Verification | undefined {
    const identity = this.#options.identity;
    const pinned = identity?.trust.pinned(peerId);
    if (!identity || !pinned) return undefined;
    return {
      peerId,
      fingerprint: fingerprint(pinned.key),
      safetyNumber: safetyNumber(identity.key.publicKey, pinned.key),
      verified: pinned.verified,
    };
  }

  forgetKey(peerId: string): boolean {
    const forgotten = this.#options.identity?.trust.forget(peerId) ?? false;
    // A peer refused for its key is worth a new dial now that the next key will be accepted.
    if (forgotten) this.reconnect(peerId);
    return forgotten;
  }

  setVerified(peerId: string, verified: boolean): boolean {
    const trust = this.#options.identity?.trust;
    if (!trust?.setVerified(peerId, verified)) return false;
    const security = this.#peers.get(peerId)?.security;
    if (security?.encrypted) security.trust = verified ? "verified" : "unverified";
    return true;
  }

  connectPeer(peerId: string, address: Address, signal: AbortSignal): Promise<boolean> {
    if (this.#peers.get(peerId)?.connection?.state === "open") return Promise.resolve(true);
    const connected = this.#whenConnected(peerId, signal);
    if (!signal.aborted) {
      const { name, namespace } = splitPeerId(peerId);
      this.addPeer(name, namespace, address);
      // A peer that failed earlier gets a fresh chance: the caller wants it now.
      if (this.#peers.get(peerId)?.state === "failed") this.reconnect(peerId);
    }
    return connected;
  }

  /** Resolves true once `peerId` is connected, false if the signal aborts first. */
  #whenConnected(peerId: string, signal: AbortSignal): Promise<boolean> {
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const done = (connected: boolean) => {
      unsubscribe();
      signal.removeEventListener("abort", onAbort);
      resolve(connected);
    };
    const onAbort = () => done(false);
    const unsubscribe = this.subscribe((event) => {
      if (event.type === "peer" && event.peerId === peerId && event.state === "connected") {
        done(true);
      }
    });
    signal.addEventListener("abort", onAbort);
    if (signal.aborted) done(false);
    return promise;
  }

  registerNow(): void {
    this.#discovery?.registerNow();
  }

  reconnect(peerId?: string): number {
    let count = 0;
    for (const entry of this.#peers.values()) {
      if (peerId !== undefined && entry.peerId !== peerId) continue;
      if (entry.connection || entry.dialing || !entry.address) continue;
      entry.attempts = 0;
      this.#cancelRetry(entry);
      void this.#connect(entry);
      count++;
    }
    return count;
  }

  subscribe(listener: (event: NodeEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  addPeer(name: string, namespace: string, address: Address): void {
    const peerId = `${name}@${namespace}`;
    if (peerId === this.peerId || this.#stopping) return;
    let entry = this.#peers.get(peerId);
    if (!entry) {
      entry = {
        peerId,
        name,
        namespace,
        address,
        state: "connecting",
        dialing: false,
        attempts: 0,
      };
      this.#peers.set(peerId, entry);
      this.#emitPeer(entry, "connecting", "discovered");
    } else if (
      entry.address?.hostname !== address.hostname || entry.address?.port !== address.port
    ) {
      // Listed now: a connection it opened as a stranger stops counting (and being throttled).
      if (entry.connection && entry.address === undefined) this.#releaseSlot(entry.connection);
      entry.address = address;
      // A new address is a new chance: a failed peer is retried from scratch.
      if (entry.state === "failed") entry.attempts = 0;
    } else if (entry.state === "failed" || entry.timer !== undefined) {
      return; // failed stays failed; a pending retry keeps its schedule
    }
    if (entry.connection || entry.dialing) return;
    const wait = (this.#cooldownUntil.get(peerId) ?? 0) - this.#clock.now();
    if (wait > 0) this.#scheduleRetry(entry, wait);
    else void this.#connect(entry);
  }

  // Resolves when `promise` settles (either way), after `timeoutMs`, or at stop.
  #settledOrLate(promise: Promise<unknown> | undefined, timeoutMs: number): Promise<void> {
    if (promise === undefined) return Promise.resolve();
    const { promise: done, resolve } = Promise.withResolvers<void>();
    const timer = this.#clock.setTimeout(resolve, timeoutMs);
    this.#abort.signal.addEventListener("abort", () => resolve(), { once: true });
    promise.then(() => resolve(), () => resolve());
    return done.finally(() => this.#clock.clearTimeout(timer));
  }

  stop(reason = "quit"): Promise<void> {
    this.#stopping ??= this.#shutdown(reason);
    return this.#stopping;
  }

  async #shutdown(reason: string): Promise<void> {
    const discovery = this.#discovery?.stop();
    for (const entry of this.#peers.values()) this.#cancelRetry(entry);
    if (this.#budgetTimer !== undefined) this.#clock.clearTimeout(this.#budgetTimer);
    this.#abort.abort();
    this.#listener?.close();
    await Promise.all([
      ...[...this.#connections].map((connection) => connection.bye(reason)),
      discovery?.then(() => this.#discovery?.unregister()),
    ]);
    for (const connection of this.#connections) connection.close();
    await this.#acceptLoop;
    await Promise.all(this.#tasks);
    this.#serverLog.info("Stopped", { peer: this.peerId });
  }

  #learn(records: RendezvousRecord[]): void {
    const now = this.#clock.now();
    for (const record of records) {
      const peerId = `${record.name}@${record.namespace}`;
      const byeAt = this.#byeAt.get(peerId);
      if (byeAt !== undefined) {
        // Registered before the peer said BYE: its UNREGISTER was lost (the tracker was down,
        // and kept the record across its restart). Dialling it would fail until it expires.
        const registeredAt = _registeredAt(record, now);
        if (registeredAt !== undefined && registeredAt < byeAt - REGISTERED_AT_SLACK_MS) continue;
        this.#byeAt.delete(peerId);
      }
      this.addPeer(record.name, record.namespace, { hostname: record.ip, port: record.port });
    }
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let socket: Deno.TcpConn;
      try {
        socket = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#stopping) {
        socket.close();
        continue;
      }
      if (this.#connections.size >= (this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
        // Anyone can connect; without a cap, idle sockets would exhaust memory and descriptors.
        this.#serverLog.warn("Too many connections; refusing a new one", {
          limit: this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
        });
        socket.close();
        continue;
      }
      const conn = new TcpConn(socket);
      const ip = conn.remote.hostname;
      // Before HELLO nobody is known: each address gets a share of the handshake slots.
      if (this.#handshakes.take(ip) !== undefined) {
        this.#serverLog.debug("Too many handshakes; refusing a connection", { from: ip });
        conn.close();
        continue;
      }
      this.#serverLog.debug("Accepted a connection", {
        from: `${conn.remote.hostname}:${conn.remote.port}`,
      });
      this.#slots.set(this.#attach(conn, "inbound"), { ip, kind: "handshake" });
    }
  }

  async #connect(entry: _Entry): Promise<void> {
    if (this.#stopping || entry.connection || entry.dialing || !entry.address) return;
    this.#cancelRetry(entry);
    entry.dialing = true;
    if (entry.state !== "stale") this.#setState(entry, "connecting");
    const { hostname, port } = entry.address;
    this.#dialLog.debug("Dialling", { peer: entry.peerId, address: `${hostname}:${port}` });
    const signal = AbortSignal.any([
      this.#abort.signal,
      AbortSignal.timeout(this.#options.dialTimeoutMs ?? NODE_DEFAULTS.dialTimeoutMs),
    ]);
    let conn: Conn;
    const task = this.#dial(entry.address, signal);
    this.#track(task.then(() => {}, () => {}));
    try {
      conn = await task;
    } catch (error) {
      entry.dialing = false;
      if (this.#stopping) return;
      return this.#dialFailed(entry, error instanceof Error ? error.message : String(error));
    }
    // Meanwhile the peer may have dialled us, left, or we may be stopping. A connection it
    // dialled gives way to ours when our dial is the one to keep: the same rule as when both
    // handshakes overlap, so timing never decides which connection survives.
    const keepOurs = survivingDirection(this.peerId, entry.peerId) === "outbound";
    if (
      this.#stopping || (entry.connection && !keepOurs) || this.#peers.get(entry.peerId) !== entry
    ) {
      entry.dialing = false;
      conn.close();
      return;
    }
    entry.outbound = this.#attach(conn, "outbound", entry.peerId);
  }

  #attach(conn: Conn, direction: "inbound" | "outbound", expectedPeerId?: string): PeerConnection {
    const options = this.#options;
    const io = new LinkIo(conn);
    const connection = new PeerConnection(
      {
        localPeerId: this.peerId,
        direction,
        expectedPeerId,
        pingIntervalMs: options.pingIntervalMs,
        ackTimeoutMs: options.ackTimeoutMs,
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? NODE_DEFAULTS.handshakeTimeoutMs,
        maxQueueBytes: options.maxQueueBytes,
        features: this.#features,
      },
      io,
      this.#hooks,
      { clock: this.#clock, log: this.#log, seen: this.#seen, sendIds: this.#sendIds },
    );
    this.#connections.add(connection);
    connection.start();
    this.#track(
      runLink(conn, connection, io, {
        log: this.#log,
        security: this.#security,
        throttled: () => this.#throttled(connection),
        lines: this.#strangerLines,
      }),
    );
    return connection;
  }

  // Moves an inbound connection from its handshake slot to an unknown-peer slot when nobody
  // listed its peer_id, so made-up ids share a bounded room and never crowd out known peers.
  #admitFairly(connection: PeerConnection): AdmitVerdict | Promise<AdmitVerdict> {
    const slot = this.#slots.get(connection);
    if (slot?.kind === "handshake") {
      this.#handshakes.give(slot.ip);
      this.#slots.delete(connection);
      if (this.#peers.get(connection.peerId!)?.address === undefined) {
        if (this.#unknown.take(slot.ip) !== undefined) return "busy";
        this.#slots.set(connection, { ip: slot.ip, kind: "unknown" });
      }
    }
    const verdict = this.#admit(connection);
    const settle = (refusal: AdmitVerdict) => {
      if (refusal) this.#releaseSlot(connection);
      return refusal;
    };
    return verdict instanceof Promise ? verdict.then(settle) : settle(verdict);
  }

  // A stranger's connection is paced while many are open; once discovery lists its peer it is
  // not (however the listing reached the table, and whichever connection of the pair was kept).
  #throttled(connection: PeerConnection): boolean {
    if (this.#slots.get(connection)?.kind !== "unknown") return false;
    if (this.#peers.get(connection.peerId!)?.address !== undefined) {
      this.#releaseSlot(connection);
      return false;
    }
    return this.#unknown.total > UNTHROTTLED_STRANGERS;
  }

  #releaseSlot(connection: PeerConnection): void {
    const slot = this.#slots.get(connection);
    if (!slot) return;
    this.#slots.delete(connection);
    (slot.kind === "handshake" ? this.#handshakes : this.#unknown).give(slot.ip);
  }

  // Sheds the connections holding the most unread output while the total is over the budget.
  #scheduleBudgetCheck(): void {
    this.#budgetTimer = this.#clock.setTimeout(() => {
      let total = 0;
      for (const connection of this.#connections) total += connection.queuedBytes;
      const budget = this.#options.outputBudgetBytes ?? NODE_DEFAULTS.outputBudgetBytes;
      const sizeOf = (connection: PeerConnection) => connection.queuedBytes;
      for (const connection of shedLargest(this.#connections, sizeOf, total, budget)) {
        this.#serverLog.warn("Peer is not reading and holds the most output; dropping it", {
          peer: connection.peerId,
          queuedBytes: connection.queuedBytes,
        });
        connection.close("backpressure", "output budget");
      }
      if (!this.#stopping) this.#scheduleBudgetCheck();
    }, OUTPUT_BUDGET_CHECK_MS);
  }

  // Decides whether a completed handshake is kept; the returned reason goes to the peer.
  #admit(connection: PeerConnection): AdmitVerdict | Promise<AdmitVerdict> {
    const peerId = connection.peerId!;
    if (peerId === this.peerId) return "self";
    if (connection.direction === "outbound" && peerId !== connection.expectedPeerId) {
      this.#dialLog.warn("Dialled peer answered with another peer_id", {
        expected: connection.expectedPeerId,
        got: peerId,
      });
      return "unexpected_peer_id";
    }
    const trust = this.#options.identity?.trust;
    if (!trust) return this.#place(connection);
    const key = connection.remoteIdentity?.identityKey;
    const verdict = trust.check(peerId, key);
    return verdict instanceof Promise
      ? verdict.then((settled) => this.#settle(connection, settled))
      : this.#settle(connection, verdict);
  }

  // Applies the trust policy's verdict; the user hears about refusals and key changes.
  #settle(connection: PeerConnection, verdict: TrustVerdict): AdmitVerdict {
    const told = verdict.notice !== undefined && this.#notify(verdict.notice);
    if (connection.state === "closed") return "closed";
    if (!verdict.ok) {
      // The user reads the notice; the log keeps it at info when told, else at debug.
      const log = this.#log.child("Router");
      log[told ? "info" : "debug"]("Refused a peer's key", {
        peer: connection.peerId,
        reason: verdict.reason,
      });
      return verdict.reason;
    }
    const key = connection.remoteIdentity?.identityKey;
    return this.#place(connection, {
      encrypted: connection.encrypted,
      trust: verdict.trust,
      accountBound: verdict.accountBound,
      fingerprint: key && fingerprint(key),
    });
  }

  // Each kind of notice about a peer is shown again only after NOTICE_REPEAT_MS.
  #notify(notice: SecurityNotice): boolean {
    const key = `${notice.kind} ${notice.peerId}`;
    const now = this.#clock.now();
    if (now - (this.#noticeShownAt.get(key) ?? -Infinity) < NOTICE_REPEAT_MS) return false;
    if (this.#noticeShownAt.size >= MAX_NOTICE_KEYS) {
      // Made-up peer ids must not grow the map: forget what no longer holds a notice back.
      for (const [old, at] of this.#noticeShownAt) {
        if (now - at >= NOTICE_REPEAT_MS) this.#noticeShownAt.delete(old);
      }
    }
    this.#noticeShownAt.set(key, now);
    this.#listeners.emit({ type: "security", notice, at: now });
    return true;
  }

  // The duplicate-connection rule, then the connection takes its place in the peer table.
  #place(connection: PeerConnection, security?: PeerSecurity): AdmitVerdict {
    const peerId = connection.peerId!;
    const survivor = survivingDirection(this.peerId, peerId);
    let entry = this.#peers.get(peerId);
    const current = entry?.connection;
    if (current && current !== connection) {
      if (current.direction === connection.direction) {
        // The same peer_id dialled again while its connection looks alive: keep the live one,
        // as pyp2p peers do, so whoever claims the id cannot evict the real peer. A connection
        // silent for a whole ping interval is probably half-dead (the peer restarted): replace it.
        const silentMs = this.#clock.now() - current.lastSeenAt;
        if (
          current.state === "open" && silentMs < (this.#options.pingIntervalMs ?? PING_INTERVAL_MS)
        ) {
          return "duplicate_connection";
        }
      } else if (survivor !== connection.direction) {
        return "duplicate_connection";
      }
    }
    const ownDial = entry?.outbound;
    if (connection.direction === "inbound" && ownDial?.state === "handshake") {
      if (survivor === "outbound") return "duplicate_connection";
    }
    if (!entry) {
      const { name, namespace } = splitPeerId(peerId);
      entry = { peerId, name, namespace, state: "connecting", dialing: false, attempts: 0 };
      this.#peers.set(peerId, entry);
    }
    entry.connection = connection;
    entry.security = security ?? { encrypted: false, trust: "unencrypted", accountBound: false };
    if (connection.direction === "outbound") {
      entry.outbound = undefined;
      entry.dialing = false;
    }
    // Attempts are forgiven only once the connection proves stable (see #lost): a pyp2p peer
    // that answers HELLO_OK and then HELLO_REJECT must not be redialled forever.
    entry.connectedAt = this.#clock.now();
    this.#cancelRetry(entry);
    this.#cooldownUntil.delete(peerId);
    this.#byeAt.delete(peerId);
    // Only now close the losers, so their close hooks see the new connection in place.
    if (current && current !== connection) void current.bye("duplicate_connection");
    if (connection.direction === "inbound" && ownDial?.state === "handshake") {
      ownDial.close("aborted", "duplicate_connection");
    }
    return undefined;
  }

  // Told once the admitted connection is open: only now can a send go through it, so only now
  // is the peer "connected" (an admission may settle a few tasks before the open).
  #opened(connection: PeerConnection): void {
    const entry = this.#peers.get(connection.peerId!);
    if (entry?.connection !== connection || connection.state !== "open") return;
    this.#setState(entry, "connected", connection.direction);
    this.#log.child("Router").info("Connected", {
      peer: entry.peerId,
      direction: connection.direction,
      features: connection.features.join(","),
      encrypted: connection.encrypted,
    });
  }

  #closed(connection: PeerConnection, reason: CloseReason, detail?: string): void {
    this.#connections.delete(connection);
    this.#releaseSlot(connection);
    const peerId = connection.peerId ?? connection.expectedPeerId;
    if ((reason === "rejected" || reason === "bye") && SECURITY_REFUSALS.has(detail ?? "")) {
      this.#notify({ kind: "refused", peerId: peerId ?? "", reason: detail! });
    }
    const entry = peerId === undefined ? undefined : this.#peers.get(peerId);
    if (!entry || this.#stopping) return;
    entry.lastSeenAt = connection.lastSeenAt;
    if (entry.outbound === connection) {
      entry.outbound = undefined;
      entry.dialing = false;
    }
    if (entry.connection === connection) {
      entry.connection = undefined;
      return this.#lost(entry, reason, detail);
    }
    if (entry.connection) return; // a duplicate that lost, or a refused second connection
    if (connection.direction !== "outbound") return;
    if (LASTING_REFUSALS.has(detail ?? "")) return this.#refusedForGood(entry, detail!);
    this.#dialFailed(entry, detail ? `${reason}: ${detail}` : reason);
  }

  // Kept as failed, with its address, so discovery does not dial it again; an inbound
  // connection from it is still welcome.
  #refusedForGood(entry: _Entry, reason: string): void {
    this.#cancelRetry(entry);
    entry.nextAttemptAt = undefined;
    this.#setState(entry, "failed", reason);
  }

  #lost(entry: _Entry, reason: CloseReason, detail?: string): void {
    if (reason === "bye" && detail === "duplicate_connection") {
      // The peer keeps another connection to us, which is arriving: give it a moment.
      this.#setState(entry, "connecting", detail);
      if (entry.address) this.#scheduleRetry(entry, this.#byeCooldown());
      return;
    }
    if (reason === "bye" && entry.address && LASTING_REFUSALS.has(detail ?? "")) {
      return this.#refusedForGood(entry, detail!);
    }
    if (reason === "bye") {
      this.#cooldownUntil.set(entry.peerId, this.#clock.now() + this.#byeCooldown());
      // A peer that quit (not one refusing us for now, and not a stranger nobody listed).
      if (entry.address && (detail === undefined || detail === "quit")) {
        if (this.#byeAt.size >= MAX_BYES_KEPT) this.#byeAt.clear();
        this.#byeAt.set(entry.peerId, this.#clock.now());
      }
      this.#peers.delete(entry.peerId);
      this.#cancelRetry(entry);
      this.#emitPeer(entry, "gone", detail ?? "bye");
      return;
    }
    if (!entry.address) {
      // Known only from its own dial: there is no address to redial, and keeping it would let
      // anyone grow our table with made-up ids. The next DISCOVER that lists it adds it back.
      this.#peers.delete(entry.peerId);
      this.#emitPeer(entry, "gone", reason);
      return;
    }
    if (this.#clock.now() - (entry.connectedAt ?? 0) >= STABLE_CONNECTION_MS) entry.attempts = 0;
    this.#setState(entry, "stale", reason);
    this.#dialFailed(entry, reason);
  }

  #dialFailed(entry: _Entry, reason: string): void {
    entry.attempts++;
    const max = this.#options.maxReconnectAttempts ?? NODE_DEFAULTS.maxReconnectAttempts;
    if (entry.attempts > max) {
      this.#dialLog.warn("Giving up on peer", { peer: entry.peerId, attempts: entry.attempts });
      entry.nextAttemptAt = undefined;
      this.#setState(entry, "failed", reason);
      return;
    }
    const delay = backoffDelay(entry.attempts, this.#random);
    this.#dialLog.debug("Dial failed; retrying", { peer: entry.peerId, reason, delayMs: delay });
    this.#scheduleRetry(entry, delay);
  }

  #scheduleRetry(entry: _Entry, delayMs: number): void {
    this.#cancelRetry(entry);
    entry.nextAttemptAt = this.#clock.now() + delayMs;
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined;
      entry.nextAttemptAt = undefined;
      void this.#connect(entry);
    }, delayMs);
  }

  #cancelRetry(entry: _Entry): void {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.nextAttemptAt = undefined;
  }

  #byeCooldown(): number {
    return this.#options.byeCooldownMs ?? NODE_DEFAULTS.byeCooldownMs;
  }

  #setState(entry: _Entry, state: PeerState, reason?: string): void {
    if (entry.state === state) return;
    entry.state = state;
    this.#emitPeer(entry, state, reason);
  }

  #emitPeer(entry: _Entry, state: PeerState | "gone", reason?: string): void {
    this.#listeners.emit({
      type: "peer",
      peerId: entry.peerId,
      state,
      reason,
      at: this.#clock.now(),
    });
  }

  #track(task: Promise<unknown>): void {
    const settled = task.then(() => {}, () => {});
    this.#tasks.add(settled);
    settled.finally(() => this.#tasks.delete(settled));
  }
}

function _row(entry: _Entry): PeerInfo {
  const connection = entry.connection;
  return {
    peerId: entry.peerId,
    name: entry.name,
    namespace: entry.namespace,
    address: entry.address,
    state: entry.state,
    direction: connection?.direction,
    features: connection?.features ?? [],
    rtt: connection?.rtt,
    reconnectAttempts: entry.state === "connected" ? 0 : entry.attempts,
    nextAttemptAt: entry.nextAttemptAt,
    lastSeenAt: connection?.lastSeenAt ?? entry.lastSeenAt,
    security: entry.security,
  };
}

// When the tracker took the record, by our clock: its lifetime minus what is left of it;
// undefined when the tracker does not say (a pyp2p tracker may not).
function _registeredAt(record: RendezvousRecord, now: number): number | undefined {
  if (record.ttl === undefined || record.expiresIn === undefined) return undefined;
  return now - (record.ttl - record.expiresIn) * 1000;
}
