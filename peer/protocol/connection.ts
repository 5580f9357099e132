/**
 * One peer connection as a state machine, free of sockets: it is fed lines and a clock, and
 * writes through a small `ConnectionIo`. It runs the handshake, keep-alive, SEND/ACK matching,
 * de-duplication, BYE, and the write discipline pyp2p peers need: toward a peer without the
 * p2pchat feature one message per write and at most one unacknowledged SEND; between p2pchat
 * peers, queued lines are batched (several writes of up to 64 lines) and SENDs are pipelined,
 * and with the p2pchat-batch feature SENDs and ACKs travel in SENDS and ACKS lines.
 */
import { decodeMessage } from "../../lib/codec.ts";
import type { Clock, TimerId } from "../../lib/clock.ts";
import { ACK_TIMEOUT_MS, MAX_LINE_BYTES, PING_INTERVAL_MS } from "../../lib/constants.ts";
import { PROLOGUE_PREFIX, type RemoteIdentity } from "../../lib/noise/mod.ts";
import { formatLine, utf8Length } from "../../lib/framing.ts";
import { Batch, MAX_BATCH_CHARS, MAX_BATCH_ITEMS } from "./batch.ts";
import type { Logger } from "../../lib/log.ts";
import type { SendResult } from "../api.ts";
import * as wire from "./messages.ts";
import { PendingSends } from "./pending_sends.ts";
import type { RecentIds } from "./recent_ids.ts";
import { SendIds } from "./send_ids.ts";

/** Handshake, then open, then closing (BYE under way or a refusal being written), then closed. */
export type ConnectionState = "handshake" | "open" | "closing" | "closed";

/** Why a connection ended; the node decides from it whether to reconnect. */
export type CloseReason =
  /** BYE / BYE_OK exchanged, in either direction. */
  | "bye"
  /** The transport ended without BYE (peer crashed or closed abruptly). */
  | "eof"
  /** Keep-alive: nothing arrived for too long. */
  | "stale"
  /** The outgoing queue went over its bound: the peer does not read. */
  | "backpressure"
  | "line_too_long"
  /** The first line on an accepted connection was not a HELLO with a string peer_id. */
  | "not_hello"
  | "handshake_timeout"
  /** The remote side sent HELLO_REJECT. */
  | "rejected"
  /** We refused the handshake (see `ConnectionHooks.admit`). */
  | "refused"
  /** A second HELLO on an open connection carried another peer_id. */
  | "peer_id_changed"
  /** The Noise handshake failed, or proved another peer_id than the HELLO claimed. */
  | "handshake_failed"
  /** An encrypted frame failed authentication (tampered, replayed, reordered or cut). */
  | "decrypt_failed"
  | "write_failed"
  /** Closed locally without BYE. */
  | "aborted";

/** Tunables; defaults follow the pyp2p family. */
export interface ConnectionSettings {
  /** Our `name@namespace`. */
  localPeerId: string;
  /** "outbound" when we dialled (we send HELLO), "inbound" when we accepted. */
  direction: "inbound" | "outbound";
  /** Outbound: the peer_id we meant to reach (from discovery). */
  expectedPeerId?: string;
  features?: readonly string[];
  pingIntervalMs?: number;
  ackTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** How long to wait for BYE_OK after our BYE. */
  byeTimeoutMs?: number;
  /** Bound on bytes queued for writing; going over it drops the connection as stale. */
  maxQueueBytes?: number;
}

/** Where a connection writes; a `Conn` fits. */
export interface ConnectionIo {
  /**
   * Writes `text` as UTF-8: says how many bytes that is, and settles when the transport took
   * them. The edge encodes, so an encrypted link can encode into reused memory.
   */
  writeText(text: string): TextWrite;
  /** Writes a record beside the stream (only on a channel that agreed on them). */
  writeRecord?(record: Uint8Array): Promise<void>;
  close(): void;
}

/** A write under way: its size in bytes, and its settling. */
export interface TextWrite {
  bytes: number;
  written: Promise<void>;
}

/** A message to show the user. */
export interface ReceivedMessage {
  kind: "direct" | "pub";
  msgId: string;
  from: string;
  to: string;
  text: string;
}

/**
 * Set once HELLO and HELLO_OK chose the Noise feature: the link runs the handshake with these
 * and calls `secured()` (the protocol stays free of I/O and of cryptography).
 */
export interface SecureRequest {
  /** The dialling side initiates. */
  initiator: boolean;
  /** PROLOGUE_PREFIX, then the HELLO and the HELLO_OK line as written, each with its "\n". */
  prologue: Uint8Array;
  /** Both listed `p2pchat-file-frames`: transport messages carry a kind byte (records). */
  records: boolean;
}

/** What the connection tells its owner. */
export interface ConnectionHooks {
  /**
   * The peer's identity is final (after HELLO/HELLO_OK in clear, after the Noise handshake when
   * encrypted): undefined accepts, a reason (sent to the peer) refuses. A promise holds the
   * connection in its handshake (lines that arrive meanwhile wait) until it settles.
   */
  admit(connection: PeerConnection): AdmitVerdict | Promise<AdmitVerdict>;
  /** The admitted connection is open: sends go through from now on. */
  opened?(connection: PeerConnection): void;
  /**
   * A message to show. A promise (the message is being stored) holds a SEND's ACK until it
   * settles, so an ACK means the message is kept: a crash before the store's commit leaves the
   * SEND unanswered, and the sender sends it again.
   */
  message(connection: PeerConnection, message: ReceivedMessage): void | Promise<unknown>;
  /**
   * Commits at once what `message` is storing; true when it is kept (its ACKs may go now). Asked
   * when a full ACKS line waits in the middle of a read, so that the sender has it while the
   * rest of the read is handled, as it would without a store.
   */
  keptNow?(connection: PeerConnection): boolean;
  /**
   * How a SEND made with a token ended: what it answers is what the SEND's promise gives (a
   * promise is waited for). Saves the caller a promise of its own per message.
   */
  settled?(token: object, result: SendResult): SendResult | Promise<SendResult>;
  /** The other side's RECEIPT for messages we sent (the `p2pchat-receipts` feature). */
  receipt?(connection: PeerConnection, msgIds: string[], status: wire.ReceiptStatus): void;
  /** A FILE_* line, only on an encrypted connection that agreed on `p2pchat-files`. */
  file?(connection: PeerConnection, kind: string, fields: Record<string, unknown>): void;
  /** A file data record (its untrusted body), only when `takesFileRecords`. */
  fileRecord?(connection: PeerConnection, body: Uint8Array): void;
  /** The outgoing queue fell below what `wantDrain(bytes)` asked: file chunks may go. */
  drained?(connection: PeerConnection): void;
  closed(connection: PeerConnection, reason: CloseReason, detail?: string): void;
}

/** What `admit` decides: undefined accepts, a reason refuses. */
export type AdmitVerdict = string | undefined;

/** Collaborators. */
export interface ConnectionDeps {
  clock: Clock;
  log: Logger;
  /**
   * Ids of messages already shown (shared by every connection of a node): a repeated SEND is
   * ACKed again and not shown again. Left out when the owner tells repeats itself (a message
   * store remembers every id it keeps).
   */
  seen?: RecentIds;
  newId?: () => string;
  /** The node's msg_ids for SENDs (shared, so a message keeps its id on another connection). */
  sendIds?: SendIds;
}

/** Counters for the bad input a connection skipped. */
export interface ConnectionStats {
  lines: number;
  malformed: number;
  ignored: number;
  duplicates: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
// Lines a peer may send while its admission is being decided (a key lookup); past that it is
// not waiting for our answer as the protocol says, and is dropped.
const MAX_HELD_LINES = 256;
const encoder = new TextEncoder();
const DEFAULT_BYE_TIMEOUT_MS = 1_000;
// Between p2pchat peers a write carries at most this many lines, and starts as soon as this
// many are queued, even in the middle of a read: the other side then works on the first lines
// while this side handles the rest, instead of the two taking turns on whole windows
// (measured: about +20% pipelined SEND throughput over one write per turn; 32 to 128 do alike).
const MAX_LINES_PER_WRITE = 64;
// Writes handed to the transport at once (it keeps them in order): bounds what the queue bound
// does not count.
const MAX_WRITES_IN_FLIGHT = 4;
/** File lines (about 30 KB each) per write, and writes of file lines or records under way. */
const FILE_LINES_PER_WRITE = 2;
const MAX_FILE_WRITES = 2;
/** 1 MiB: 32 full-size lines, or thousands of chat lines, queued toward one peer. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024;
// Outstanding PINGs remembered for RTT; older ones are simply never matched.
const MAX_OUTSTANDING_PINGS = 8;
// RTT smoothing gain, as TCP's SRTT (RFC 6298: alpha = 1/8).
const RTT_GAIN = 1 / 8;
// Toward a peer without a p2pchat feature the ACK waits this long: some pyp2p clients record a
// SEND as awaiting its ACK only after their write and a log line return, and drop an ACK that
// beats that as unknown (then report a timeout for a delivered message). They keep one SEND in
// flight, so the wait costs them nothing that matters.
export const PYP2P_ACK_DELAY_MS = 5;

/** A timer of `SharedTimers`. */
export interface SharedTimer {
  readonly due: number;
  readonly callback: () => void;
  done: boolean;
}

/**
 * Every connection timer on one clock, behind a single clock timer armed for the earliest: in
 * Deno a live timer costs about 2 KB of resident memory, an entry here tens of bytes, and
 * each idle connection keeps its keep-alive timer for good.
 */
export class SharedTimers {
  static #byClock = new WeakMap<Clock, SharedTimers>();
  readonly #clock: Clock;
  // Sorted by due time; finished entries are dropped when they reach the front.
  #queue: SharedTimer[] = [];
  #live = 0;
  #timer?: TimerId;
  #armedFor = Infinity;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The instance shared by every connection on `clock`. */
  static of(clock: Clock): SharedTimers {
    let timers = SharedTimers.#byClock.get(clock);
    if (!timers) {
      timers = new SharedTimers(clock);
      SharedTimers.#byClock.set(clock, timers);
    }
    return timers;
  }

  /** Number of timers not yet fired or cleared. */
  get pending(): number {
    return this.#live;
  }

  /** Calls `callback` once, after `delayMs`. */
  setTimeout(callback: () => void, delayMs: number): SharedTimer {
    const entry = { due: this.#clock.now() + Math.max(0, delayMs), callback, done: false };
    // Connections share their intervals, so entries nearly always arrive in due order.
    let at = this.#queue.length;
    while (at > 0 && this.#queue[at - 1].due > entry.due) at--;
    this.#queue.splice(at, 0, entry);
    this.#live++;
    if (entry.due < this.#armedFor) this.#arm();
    return entry;
  }

  /** Cancels a timer; harmless once it fired or was cleared. */
  clearTimeout(entry: SharedTimer): void {
    if (entry.done) return;
    entry.done = true;
    if (--this.#live > 0) return;
    this.#queue = [];
    this.#disarm();
  }

  #arm(): void {
    this.#disarm();
    while (this.#queue.length > 0 && this.#queue[0].done) this.#queue.shift();
    const next = this.#queue[0];
    if (!next) return;
    this.#armedFor = next.due;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), next.due - this.#clock.now());
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    while (this.#queue.length > 0 && this.#queue[0].due <= now) {
      const entry = this.#queue.shift()!;
      if (entry.done) continue;
      entry.done = true;
      this.#live--;
      entry.callback();
    }
    if (this.#live === 0) this.#queue = [];
    else if (this.#timer === undefined) this.#arm();
  }
}

interface PendingSend {
  msgId: string;
  startedAt: number;
  resolve: (result: SendResult | Promise<SendResult>) => void;
  /** Given to `ConnectionHooks.settled` with the result (see `send`). */
  token?: object;
}

/** The msg_ids of SENDs to ACK and PUBs to confirm once the store kept them. */
interface _Gated {
  acks: string[];
  pubs: string[];
}

/** One connection's protocol state. */
export class PeerConnection {
  readonly direction: "inbound" | "outbound";
  readonly expectedPeerId?: string;
  readonly stats: ConnectionStats = { lines: 0, malformed: 0, ignored: 0, duplicates: 0 };
  #state: ConnectionState = "handshake";
  #peerId?: string;
  #features: string[] = [];
  #pipelining = false;
  #batching = false;
  #rtt?: { lastMs: number; smoothedMs: number };
  #helloSentAt?: number;
  /** The RTT so far is HELLO to HELLO_OK (it includes the peer's handshake work): replaced, not
   * smoothed, by the first PONG. */
  #rttProvisional = false;
  #lastSeenAt: number;
  // The HELLO line as written (with its "\n"), kept for the Noise prologue.
  #helloLine = "";
  #secureRequest?: SecureRequest;
  #remote?: RemoteIdentity;
  // Lines received while `admit` decides; undefined when not deciding.
  #held?: string[];

  readonly #settings: Required<Omit<ConnectionSettings, "expectedPeerId">>;
  readonly #io: ConnectionIo;
  readonly #hooks: ConnectionHooks;
  readonly #clock: Clock;
  readonly #timers: SharedTimers;
  readonly #log: Logger;
  readonly #keepAliveLog: Logger;
  readonly #seen?: RecentIds;
  readonly #newId: () => string;

  // Lines (with their "\n") are queued as text and encoded when written: a batch then costs
  // one encoder call.
  #out: string[] = [];
  #waitingSends: { msgId: string; line: string }[] = [];
  // With the batch feature: SENDs to write and ACKs to answer (see `#batchUp`).
  #sendsDue = new Batch<wire.SendsEntry>();
  #acksDue = new Batch<string>();
  #queuedBytes = 0;
  /** FILE_* lines and file records, sent only when `#out` is empty (see `fileLine`). */
  #fileOut: (string | Uint8Array)[] = [];
  #drainBelow?: number;
  #writes = 0;
  #inFlight?: string;
  readonly #sendIds: SendIds;
  // Unanswered SENDs by number in `#sendIds`, in call order; a SEND again under an id of an
  // earlier run (from the outbox) gets a negative number, found through `#foreignIds`.
  // These maps (and `#pings`) are made when first needed: an idle connection is one of
  // thousands, and its three empty maps took about 0.5 KB of heap (measured).
  #pending?: PendingSends<PendingSend>;
  #foreignIds?: Map<string, number>;
  #nextForeign = -1;
  // Answers waiting for the store to keep their messages: one promise (one commit) for many.
  #keptGate?: Promise<unknown>;
  #gated: _Gated = { acks: [], pubs: [] };
  #pings?: Map<string, number>;
  #finishAfterFlush?: { reason: CloseReason; detail?: string };
  #byeSent = false;
  #handshakeTimer?: SharedTimer;
  #keepAliveTimer?: SharedTimer;
  #byeTimer?: SharedTimer;
  // One timer for all ACK deadlines: pending SENDs are kept in call order, which is deadline
  // order, so only the oldest needs a timer (a timer per SEND costs more than the SEND).
  #ackTimer?: SharedTimer;
  // ACKs toward a plain pyp2p peer, waiting PYP2P_ACK_DELAY_MS (see there).
  #delayedAcks: string[] = [];
  #delayedAckTimer?: SharedTimer;
  #done = Promise.withResolvers<void>();
  #flushQueued = false;
  readonly #flush = () => this.flush();

  constructor(
    settings: ConnectionSettings,
    io: ConnectionIo,
    hooks: ConnectionHooks,
    deps: ConnectionDeps,
  ) {
    this.direction = settings.direction;
    this.expectedPeerId = settings.expectedPeerId;
    this.#settings = {
      localPeerId: settings.localPeerId,
      direction: settings.direction,
      features: settings.features ?? wire.OUR_FEATURES,
      pingIntervalMs: settings.pingIntervalMs ?? PING_INTERVAL_MS,
      ackTimeoutMs: settings.ackTimeoutMs ?? ACK_TIMEOUT_MS,
      handshakeTimeoutMs: settings.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      byeTimeoutMs: settings.byeTimeoutMs ?? DEFAULT_BYE_TIMEOUT_MS,
      maxQueueBytes: settings.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    };
    this.#io = io;
    this.#hooks = hooks;
    this.#clock = deps.clock;
    this.#timers = SharedTimers.of(deps.clock);
    this.#log = deps.log.child("Router");
    this.#keepAliveLog = deps.log.child("KeepAlive");
    this.#seen = deps.seen;
    this.#newId = deps.newId ?? (() => crypto.randomUUID());
    this.#sendIds = deps.sendIds ?? new SendIds();
    this.#lastSeenAt = deps.clock.now();
  }

  get state(): ConnectionState {
    return this.#state;
  }
  /** The remote `name@namespace`, once its HELLO (or HELLO_OK) arrived. */
  get peerId(): string | undefined {
    return this.#peerId;
  }
  /** Features both sides listed. */
  get features(): string[] {
    return this.#features;
  }
  /** Our own `name@namespace`. */
  get localPeerId(): string {
    return this.#settings.localPeerId;
  }
  /** Set when the connection waits for the link to run the Noise handshake. */
  get secureRequest(): SecureRequest | undefined {
    return this.#remote ? undefined : this.#secureRequest;
  }
  /** The identity the Noise handshake proved; undefined on a plaintext connection. */
  get remoteIdentity(): RemoteIdentity | undefined {
    return this.#remote;
  }
  /** True when every line after HELLO_OK travels in encrypted frames. */
  get encrypted(): boolean {
    return this.#secureRequest !== undefined;
  }
  /** True when both sides are p2pchat peers: batched writes and several SENDs in flight. */
  get pipelining(): boolean {
    return this.#pipelining;
  }
  get rtt(): { lastMs: number; smoothedMs: number } | undefined {
    return this.#rtt;
  }
  get lastSeenAt(): number {
    return this.#lastSeenAt;
  }
  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }
  /** Resolves once the connection is closed. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** Starts the handshake: the dialling side sends HELLO, the accepting side waits for one. */
  start(): void {
    this.#handshakeTimer = this.#timers.setTimeout(
      () => this.#finish("handshake_timeout"),
      this.#settings.handshakeTimeoutMs,
    );
    if (this.direction === "outbound") {
      this.#helloSentAt = this.#clock.now();
      this.#helloLine = formatLine(wire.hello(this.#settings.localPeerId, this.#settings.features));
      this.#enqueueLine(this.#helloLine);
    }
  }

  /** Feeds one received line (without its newline). */
  receiveLine(text: string): void {
    if (this.#state === "closed") return;
    if (this.#held) {
      if (this.#held.length >= MAX_HELD_LINES) return this.#finish("backpressure", "held lines");
      this.#held.push(text);
      return;
    }
    // Read once per line: the dispatch below uses it as "now" too.
    this.#lastSeenAt = this.#clock.now();
    this.stats.lines++;
    if (this.#state !== "handshake") {
      const own = wire.readOwnLine(text);
      if (own) return this.#dispatch(own);
    }
    const awaitingHello = this.#state === "handshake" && this.direction === "inbound";
    const decoded = decodeMessage(text);
    if (!decoded.ok) {
      this.stats.malformed++;
      this.#log.debug("Skipped a malformed line", { peer: this.#peerId, code: decoded.code });
      if (awaitingHello) this.#finish("not_hello", decoded.code);
      return;
    }
    const read = wire.readPeerMessage(decoded.message);
    if (!read.ok) {
      if (awaitingHello) return this.#finish("not_hello", decoded.message.type);
      this.stats.ignored++;
      this.#log.debug("Ignored a message", { peer: this.#peerId, type: decoded.message.type });
      return;
    }
    if (this.#state === "handshake") this.#handshake(read.message, text);
    else this.#dispatch(read.message);
  }

  /**
   * A read was handled: writes what its lines queued now, rather than in a microtask after the
   * next read was already asked for (that costs the replies a few microseconds each).
   */
  flush(): void {
    if (!this.#flushQueued) return;
    this.#flushQueued = false;
    this.#pump();
  }

  /** The line decoder hit a line over the limit: only this connection is closed. */
  receiveTooLong(): void {
    this.#finish("line_too_long");
  }

  /** The transport ended (EOF or error). */
  ended(): void {
    const pending = this.#finishAfterFlush;
    this.#finish(pending?.reason ?? (this.#byeSent ? "bye" : "eof"), pending?.detail);
  }

  /**
   * Sends a direct message (under `givenId` when it has one already: a message from the outbox);
   * resolves on its ACK, on timeout, or when the connection closes. With a `token`, the result
   * goes through `ConnectionHooks.settled` first. The ACK's deadline runs from `startedAt` (a
   * stored message's time, read just before: a clock read costs more than the rest of a SEND).
   */
  send(
    text: string,
    givenId?: string,
    token?: object,
    startedAt = this.#clock.now(),
  ): Promise<SendResult> {
    const [seq, msgId] = givenId === undefined
      ? this.#newSend()
      : [this.#sendIds.seqOf(givenId) ?? this.#foreignSeq(givenId), givenId];
    if (this.#state !== "open" || !this.#peerId) {
      return Promise.resolve(this.#outcome(token, { ok: false, msgId, reason: "closed" }));
    }
    const { promise, resolve } = Promise.withResolvers<SendResult>();
    // The timeout runs from the call (or the stored message's time), so a SEND queued behind
    // another still resolves in time.
    (this.#pending ??= new PendingSends()).set(seq, {
      msgId,
      startedAt,
      resolve,
      token,
    });
    if (this.#ackTimer === undefined) this.#armAckTimer();
    if (this.#batching) {
      this.#batchUp(this.#sendsDue, { msgId, payload: text }, msgId.length + text.length);
      return promise;
    }
    const line = wire.sendLine(msgId, this.#settings.localPeerId, this.#peerId, text);
    if (this.#pipelining) {
      this.#enqueueLine(line);
    } else {
      this.#waitingSends.push({ msgId, line });
      this.#queuedBytes += utf8Length(line);
      if (this.#checkBound()) this.#pump();
    }
    return promise;
  }

  /** SENDs that have had no ACK yet, nor timed out. */
  get unansweredSends(): number {
    return this.#pending?.size ?? 0;
  }

  #newSend(): [number, string] {
    const seq = this.#sendIds.next();
    return [seq, this.#sendIds.idOf(seq)];
  }

  #foreignSeq(msgId: string): number {
    const seq = this.#nextForeign--;
    (this.#foreignIds ??= new Map()).set(msgId, seq);
    return seq;
  }

  /**
   * Queues a RECEIPT for messages of the other side; false when the feature (for `read`, the
   * read-receipt feature too) was not agreed, or the connection is not open.
   */
  /**
   * True when FILE_* lines may go both ways: the feature agreed between p2pchat peers (their
   * writes are pipelined), the connection encrypted.
   */
  get takesFiles(): boolean {
    return this.encrypted && this.#pipelining && this.#features.includes(wire.FEATURE_FILES);
  }

  /** True when file data travels in records (both listed `p2pchat-file-frames`). */
  get takesFileRecords(): boolean {
    return this.takesFiles && this.#secureRequest!.records;
  }

  /**
   * Queues a FILE_* line (`fields` holds its `type`) behind every other line: chat goes first,
   * and file lines go out only when nothing else waits. False when the connection is not open,
   * does not take files, or the line would pass the queue bound (which drops the connection).
   */
  fileLine(fields: Record<string, unknown>): boolean {
    if (this.#state !== "open" || !this.takesFiles) return false;
    const line = formatLine(fields);
    return this.#queueFile(line, utf8Length(line));
  }

  /** Queues a file data record, as `fileLine` a line; false when records were not agreed. */
  fileRecord(body: Uint8Array): boolean {
    if (this.#state !== "open" || !this.takesFileRecords) return false;
    return this.#queueFile(body, body.length);
  }

  #queueFile(item: string | Uint8Array, bytes: number): boolean {
    this.#fileOut.push(item);
    this.#queuedBytes += bytes;
    if (!this.#checkBound()) return false;
    this.#flushSoon();
    return true;
  }

  /** A record the peer sent (the link hands it over in order with the lines). */
  receivedRecord(body: Uint8Array): void {
    if (this.#state !== "open" || !this.takesFileRecords) {
      this.stats.ignored++;
      return;
    }
    this.#lastSeenAt = this.#clock.now();
    this.#hooks.fileRecord?.(this, body);
  }

  /** Asks for one `drained` call, in a later task, once fewer than `bytes` are queued. */
  wantDrain(bytes: number): void {
    this.#drainBelow = bytes;
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#drainBelow === undefined || this.#state !== "open") return;
    if (this.#queuedBytes >= this.#drainBelow) return;
    this.#drainBelow = undefined;
    queueMicrotask(() => this.#hooks.drained?.(this));
  }

  receipt(msgIds: readonly string[], status: wire.ReceiptStatus): boolean {
    if (this.#state !== "open" || !this.#features.includes(wire.FEATURE_RECEIPTS)) return false;
    if (status === "read" && !this.#features.includes(wire.FEATURE_READ)) return false;
    for (let at = 0; at < msgIds.length; at += wire.MAX_RECEIPT_IDS) {
      const ids = msgIds.slice(at, at + wire.MAX_RECEIPT_IDS);
      if (!this.#enqueueLine(wire.receiptLine(ids, status))) return false;
    }
    return true;
  }

  /** Queues a PUB; false when the connection is not open or just overflowed. */
  publish(msgId: string, dst: string, text: string): boolean {
    if (this.#state !== "open" || !this.#peerId) return false;
    return this.#enqueue(wire.pub(msgId, this.#settings.localPeerId, dst, text));
  }

  /** Says BYE and resolves when BYE_OK arrived, the peer closed, or after the BYE timeout. */
  bye(reason: string): Promise<void> {
    if (this.#state === "handshake") {
      this.#finish("aborted", reason);
    } else if (this.#state === "open") {
      this.#byeSent = true;
      this.#state = "closing";
      this.#enqueue(
        wire.bye(this.#newId(), this.#settings.localPeerId, this.#peerId ?? "", reason),
      );
      this.#byeTimer = this.#timers.setTimeout(
        () => this.#finish("bye"),
        this.#settings.byeTimeoutMs,
      );
    }
    return this.done;
  }

  /** Closes at once, without BYE. */
  close(reason: CloseReason = "aborted", detail?: string): void {
    this.#finish(reason, detail);
  }

  #handshake(message: wire.PeerMessage, text: string): void {
    if (this.#secureRequest) {
      // Between HELLO_OK and the Noise handshake nothing may come in clear.
      return this.#finish("handshake_failed", `a ${message.type} line in clear`);
    }
    if (this.direction === "inbound") {
      if (message.type !== "HELLO") return this.#finish("not_hello", message.type);
      this.#identify(message.peerId, message.features);
      this.#helloLine = text + "\n";
      if (this.#secureRequest === undefined && this.#wantsNoise()) {
        // HELLO_OK goes out in clear now; the admission waits for the identity the handshake proves.
        const okLine = this.#helloOkLine();
        this.#enqueueLine(okLine);
        this.#pump();
        this.#secureRequest = {
          initiator: false,
          prologue: _prologue(this.#helloLine, okLine),
          records: this.#features.includes(wire.FEATURE_FILE_FRAMES),
        };
        return;
      }
      return this.#decide(
        () => {
          this.#enqueueLine(this.#helloOkLine());
          this.#open();
        },
        (refusal) => {
          this.#enqueue(wire.helloReject(this.#settings.localPeerId, refusal));
          this.#finishAfterWrite("refused", refusal);
        },
      );
    }
    if (message.type === "HELLO_REJECT") return this.#finish("rejected", message.reason);
    if (message.type !== "HELLO_OK") {
      // Nothing but HELLO_OK/HELLO_REJECT is expected yet; skip rather than fail.
      this.stats.ignored++;
      return;
    }
    this.#identify(message.peerId ?? this.expectedPeerId ?? "", message.features);
    if (this.#helloSentAt !== undefined) {
      this.#sampleRtt(this.#lastSeenAt - this.#helloSentAt);
      this.#rttProvisional = true;
    }
    if (this.#wantsNoise()) {
      this.#secureRequest = {
        initiator: true,
        prologue: _prologue(this.#helloLine, text + "\n"),
        records: this.#features.includes(wire.FEATURE_FILE_FRAMES),
      };
      return;
    }
    this.#decide(() => this.#open(), (refusal) => this.#refuseOpen(refusal));
  }

  /**
   * The link finished the Noise handshake: `remote` proved its identity key and the peer_id it
   * signed, which must be the one its HELLO or HELLO_OK claimed.
   */
  secured(remote: RemoteIdentity): void {
    if (this.#state !== "handshake" || !this.#secureRequest || this.#remote) return;
    if (remote.id !== this.#peerId) {
      return this.#finish("handshake_failed", `the handshake proved "${remote.id}"`);
    }
    this.#remote = remote;
    this.#decide(() => this.#open(), (refusal) => this.#refuseOpen(refusal));
  }

  // Runs `admit`; lines that arrive while a promise is pending wait in #held.
  #decide(accept: () => void, refuse: (reason: string) => void): void {
    const verdict = this.#hooks.admit(this);
    if (!(verdict instanceof Promise)) return verdict ? refuse(verdict) : accept();
    this.#held = [];
    verdict.then(
      (reason) => {
        const held = this.#held ?? [];
        this.#held = undefined;
        if (this.#state !== "handshake") return; // closed (or timed out) meanwhile
        if (reason) return refuse(reason);
        accept();
        for (const line of held) this.receiveLine(line);
        this.flush();
      },
      (error) => this.#finish("refused", String(error)),
    );
  }

  // A refusal once HELLO_OK was exchanged: said with BYE, so the peer knows why.
  #refuseOpen(refusal: string): void {
    this.#state = "open"; // so BYE can be written
    this.#clearHandshakeTimer();
    void this.bye(refusal);
  }

  #helloOkLine(): string {
    return formatLine(wire.helloOk(this.#settings.localPeerId, this.#settings.features));
  }

  #wantsNoise(): boolean {
    return this.#features.includes(wire.FEATURE_NOISE);
  }

  #identify(peerId: string, features: string[]): void {
    this.#peerId = peerId;
    this.#features = wire.negotiateFeatures(this.#settings.features, features);
    this.#pipelining = this.#features.includes(wire.FEATURE_P2PCHAT);
    this.#batching = this.#pipelining && this.#features.includes(wire.FEATURE_BATCH);
  }

  #open(): void {
    this.#state = "open";
    this.#clearHandshakeTimer();
    this.#armKeepAlive();
    // The round trip is known from the start, not after a PING interval: the dialler timed
    // HELLO to HELLO_OK; a p2pchat accepter PINGs at once (a plain pyp2p dialler is sent
    // nothing unasked, see #keepAlive).
    if (this.direction === "inbound" && this.#pipelining) this.#ping();
    this.#pump();
    this.#hooks.opened?.(this);
  }

  #dispatch(message: wire.PeerMessage): void {
    const now = this.#lastSeenAt;
    switch (message.type) {
      case "HELLO":
        // A second HELLO: pyp2p clients resend it; answer again if it is the same identity.
        if (message.peerId === this.#peerId) {
          this.#enqueue(wire.helloOk(this.#settings.localPeerId, this.#settings.features));
        } else {
          this.#log.warn("Peer changed its peer_id mid-connection; closing", {
            peer: this.#peerId,
            claimed: message.peerId,
          });
          this.#enqueue(wire.helloReject(this.#settings.localPeerId, "peer_id_changed"));
          this.#finishAfterWrite("peer_id_changed", message.peerId);
        }
        return;
      case "HELLO_OK":
        this.stats.ignored++;
        return;
      case "HELLO_REJECT":
        // Seen from pyp2p peers refusing a second connection: HELLO_OK then HELLO_REJECT.
        return this.#finish("rejected", message.reason);
      case "PING":
        this.#enqueueLine(wire.pongLine(message.msgId ?? this.#newId(), now));
        return;
      case "PONG": {
        const sentAt = message.msgId === undefined ? undefined : this.#pings?.get(message.msgId);
        if (sentAt === undefined) return;
        this.#pings?.delete(message.msgId!);
        this.#sampleRtt(now - sentAt);
        return;
      }
      case "SEND":
        return this.#ackWhenKept(message.msgId, this.#deliver("direct", message), now);
      case "PUB": {
        const kept = this.#deliver("pub", message);
        // A PUB is never ACKed; a p2pchat peer hears that it was kept from a RECEIPT.
        if (kept && message.msgId !== undefined && this.#features.includes(wire.FEATURE_RECEIPTS)) {
          this.#whenKept(kept, message.msgId, true);
        }
        return;
      }
      case "ACK":
        if (message.msgId === undefined) return;
        return this.#settleAck(message.msgId, now);
      // Batches are accepted from any peer, as liberal reading goes; we send them only to peers
      // that listed the batch feature.
      case "ACKS":
        this.stats.ignored += message.skipped;
        for (const msgId of message.msgIds) this.#settleAck(msgId, now);
        return;
      case "SENDS":
        this.stats.ignored += message.skipped;
        for (const { msgId, payload } of message.msgs) {
          // An ACK can overflow the queue bound and close the connection: show no more then.
          if (this.#state === "closed") return;
          this.#ackWhenKept(
            msgId,
            this.#deliver("direct", { msgId, dst: message.dst, payload }),
            now,
          );
        }
        return;
      case "RECEIPT":
        this.stats.ignored += message.skipped;
        // Only from a peer that agreed on receipts; anything else is a stranger's noise.
        if (!this.#features.includes(wire.FEATURE_RECEIPTS)) {
          this.stats.ignored++;
          return;
        }
        if (message.status === undefined || message.msgIds.length === 0) return;
        return this.#hooks.receipt?.(this, message.msgIds, message.status);
      case "BYE":
        this.#enqueue(
          wire.byeOk(message.msgId ?? this.#newId(), this.#settings.localPeerId, this.#peerId!),
        );
        return this.#finishAfterWrite("bye", message.reason);
      case "BYE_OK":
        if (this.#byeSent) this.#finish("bye");
        return;
      case "FILE":
        if (!this.takesFiles) {
          this.stats.ignored++;
          return;
        }
        return this.#hooks.file?.(this, message.kind, message.fields);
    }
  }

  #deliver(
    kind: "direct" | "pub",
    message: { msgId?: string; dst?: string; payload: string },
  ): void | Promise<unknown> {
    const from = this.#peerId!;
    // Keyed by sender too, so one peer cannot suppress another's messages by reusing ids.
    if (message.msgId !== undefined && this.#seen?.add(from, message.msgId) === false) {
      this.stats.duplicates++;
      // The first copy may wait for its commit still (in this same read): so does this ACK.
      return this.#keptGate;
    }
    return this.#hooks.message(this, {
      kind,
      msgId: message.msgId ?? "",
      from,
      to: message.dst ?? (kind === "pub" ? "*" : this.#settings.localPeerId),
      text: message.payload,
    });
  }

  // ACKs a SEND now, or once `kept` (the store's commit) settles.
  #ackWhenKept(msgId: string | undefined, kept: void | Promise<unknown>, now: number): void {
    if (msgId === undefined) return;
    if (kept === undefined) this.#ack(msgId, now);
    else this.#whenKept(kept, msgId, false);
  }

  // Answers once `kept` settles: an ACK for a SEND, a RECEIPT for a PUB. What one commit kept
  // waits on one callback, so a batch of SENDs still gets one ACKS line.
  #whenKept(kept: Promise<unknown>, msgId: string, pub: boolean): void {
    if (kept !== this.#keptGate) {
      this.#keptGate = kept;
      const gated: _Gated = this.#gated = { acks: [], pubs: [] };
      const release = () => {
        if (this.#keptGate === kept) this.#keptGate = undefined;
        if (this.#answerKept(gated)) this.flush();
      };
      // A store that failed keeps the message in memory (it is shown): it is still ACKed.
      kept.then(release, release);
    }
    const gated = this.#gated;
    (pub ? gated.pubs : gated.acks).push(msgId);
    if (gated.acks.length >= MAX_BATCH_ITEMS && this.#hooks.keptNow?.(this)) {
      this.#keptGate = undefined;
      this.#answerKept(gated);
    }
  }

  // Sends what `gated` holds, once (a commit's promise may settle after it was answered); false
  // when the connection no longer answers.
  #answerKept(gated: _Gated): boolean {
    if (this.#state !== "open" && this.#state !== "closing") return false;
    const { acks, pubs } = gated;
    gated.acks = [];
    gated.pubs = [];
    const at = this.#clock.now();
    for (const id of acks) this.#ack(id, at);
    if (pubs.length > 0) this.receipt(pubs, "delivered");
    return true;
  }

  #ack(msgId: string, now: number): void {
    // A SEND within the line limit may carry an id so long that its ACK would not be: such an
    // id cannot be answered (we never write a line over the limit).
    if (
      msgId.length > MAX_BATCH_CHARS && utf8Length(wire.ackLine(msgId, now)) > MAX_LINE_BYTES + 1
    ) {
      this.#log.warn("A msg_id too long to ACK; not answered", {
        peer: this.#peerId,
        chars: msgId.length,
      });
      return;
    }
    if (this.#batching) this.#batchUp(this.#acksDue, msgId, msgId.length);
    else if (this.#pipelining) this.#enqueueLine(wire.ackLine(msgId, now));
    else {
      this.#delayedAcks.push(msgId);
      this.#delayedAckTimer ??= this.#timers.setTimeout(
        () => this.#sendDelayedAcks(),
        PYP2P_ACK_DELAY_MS,
      );
    }
  }

  #sendDelayedAcks(): void {
    this.#delayedAckTimer = undefined;
    const ids = this.#delayedAcks;
    this.#delayedAcks = [];
    const now = this.#clock.now();
    for (const msgId of ids) this.#enqueueLine(wire.ackLine(msgId, now));
  }

  // With the batch feature, SENDs and ACKs wait in batches that go out as SENDS and ACKS lines
  // once the current task is done (with the others it queued: the SENDs of promises settled
  // together, the ACKs of one read), or as soon as a batch is full, so that the other side
  // starts on it while this side goes on.
  #batchUp<T>(batch: Batch<T>, item: T, chars: number): void {
    if (!batch.fits(chars) && !this.#queueBatches()) return;
    batch.add(item, chars);
    if (batch.full) this.#pump();
    else this.#flushSoon();
  }

  // Turns the batches into lines at the end of the queue (one item makes a plain ACK or SEND);
  // false as `#push`.
  #queueBatches(): boolean {
    if (this.#acksDue.size > 0) {
      const ids = this.#acksDue.take();
      const now = this.#clock.now();
      if (!this.#push(ids.length === 1 ? wire.ackLine(ids[0], now) : wire.acksLine(ids, now))) {
        return false;
      }
    }
    if (this.#sendsDue.size > 0) {
      const entries = this.#sendsDue.take();
      const [src, dst] = [this.#settings.localPeerId, this.#peerId!];
      const line = entries.length === 1
        ? wire.sendLine(entries[0].msgId, src, dst, entries[0].payload)
        : wire.sendsLine(src, dst, entries);
      if (!this.#push(line)) return false;
    }
    return true;
  }

  #settleAck(msgId: string, now: number): void {
    const seq = this.#sendIds.seqOf(msgId) ?? this.#foreignIds?.get(msgId);
    const pending = seq === undefined ? undefined : this.#pending?.get(seq);
    if (!pending) {
      this.#log.debug("ACK for an unknown or expired msg_id", { peer: this.#peerId, msgId });
      return;
    }
    this.#settle(seq!, pending, { ok: true, msgId, roundTripMs: now - pending.startedAt });
  }

  #settle(seq: number, pending: PendingSend, result: SendResult): void {
    const msgId = pending.msgId;
    this.#pending?.delete(seq);
    // An earlier run's id sent twice: the other send may have removed it already.
    if (seq < 0) this.#foreignIds?.delete(msgId);
    if (!result.ok && result.reason === "timeout") {
      this.#log.warn("No ACK in time", { peer: this.#peerId, msgId });
    }
    pending.resolve(this.#outcome(pending.token, result));
    // Only a plain peer's SENDs wait their turn; a pipelined SEND is already written.
    if (!this.#pipelining) this.#releaseSend(msgId);
  }

  // What a SEND's promise gives: `result`, through the `settled` hook when it has a token.
  #outcome(token: object | undefined, result: SendResult): SendResult | Promise<SendResult> {
    if (token === undefined) return result;
    try {
      return this.#hooks.settled!(token, result);
    } catch (error) {
      // The sender hears of it; the connection goes on.
      return Promise.reject(error);
    }
  }

  // A plain peer's SEND was answered or gave up: the next waiting one may go.
  #releaseSend(msgId: string): void {
    if (this.#inFlight === msgId) this.#inFlight = undefined;
    const waiting = this.#waitingSends.findIndex((item) => item.msgId === msgId);
    if (waiting !== -1) {
      this.#queuedBytes -= utf8Length(this.#waitingSends[waiting].line);
      this.#waitingSends.splice(waiting, 1);
    }
    this.#pump();
  }

  #armAckTimer(): void {
    const oldest = this.#pending?.oldest();
    if (!oldest) return;
    const due = oldest.startedAt + this.#settings.ackTimeoutMs - this.#clock.now();
    this.#ackTimer = this.#timers.setTimeout(() => this.#expireSends(), due);
  }

  #expireSends(): void {
    this.#ackTimer = undefined;
    const deadline = this.#clock.now() - this.#settings.ackTimeoutMs;
    for (const [seq, pending] of this.#pending?.entries() ?? []) {
      if (pending.startedAt > deadline) break;
      this.#settle(seq, pending, { ok: false, msgId: pending.msgId, reason: "timeout" });
    }
    if (this.#state !== "closed") this.#armAckTimer();
  }

  #sampleRtt(sample: number): void {
    const smoothed = this.#rtt === undefined || this.#rttProvisional
      ? sample
      : this.#rtt.smoothedMs + RTT_GAIN * (sample - this.#rtt.smoothedMs);
    this.#rtt = { lastMs: sample, smoothedMs: Math.round(smoothed * 100) / 100 };
    this.#rttProvisional = false;
  }

  #armKeepAlive(): void {
    this.#keepAliveTimer = this.#timers.setTimeout(
      () => this.#keepAlive(),
      this.#settings.pingIntervalMs,
    );
  }

  // Dialled connections (and p2pchat ones) PING every interval and are stale after two
  // silent intervals. On accepted plain connections the dialler is expected to PING: after
  // two silent intervals we probe once, and give up after a third.
  #keepAlive(): void {
    if (this.#state !== "open") return;
    const interval = this.#settings.pingIntervalMs;
    const silent = this.#clock.now() - this.#lastSeenAt;
    const pinging = this.direction === "outbound" || this.#pipelining;
    const staleAfter = pinging ? 2 * interval : 3 * interval;
    if (silent >= staleAfter) {
      this.#keepAliveLog.warn("Peer silent too long; dropping the connection as stale", {
        peer: this.#peerId,
        silentMs: silent,
      });
      return this.#finish("stale");
    }
    if (pinging || silent >= 2 * interval) this.#ping();
    this.#armKeepAlive();
  }

  #ping(): void {
    const msgId = this.#newId();
    const now = this.#clock.now();
    const pings = this.#pings ??= new Map();
    pings.set(msgId, now);
    if (pings.size > MAX_OUTSTANDING_PINGS) pings.delete(pings.keys().next().value!);
    this.#enqueue(wire.ping(msgId, now));
  }

  #enqueue(message: unknown): boolean {
    return this.#enqueueLine(formatLine(message));
  }

  #enqueueLine(line: string): boolean {
    if (this.#state === "closed") return false;
    // Batched SENDs and ACKs go first, as they would have as lines of their own.
    if (!this.#queueBatches()) return false;
    if (!this.#push(line)) return false;
    if (!this.#pipelining || this.#out.length >= MAX_LINES_PER_WRITE) this.#pump();
    else this.#flushSoon();
    return true;
  }

  // Between p2pchat peers, lines queued by one task (the replies to a read, the SENDs of
  // promises settled together) go out together once it is done, in one microtask.
  #flushSoon(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  }

  // Appends a line to the queue; false (and the connection dropped) when over the bound.
  #push(line: string): boolean {
    this.#out.push(line);
    this.#queuedBytes += utf8Length(line);
    return this.#checkBound();
  }

  // A peer that lets this much pile up is not reading: drop it rather than buffer without bound.
  #checkBound(): boolean {
    if (this.#queuedBytes <= this.#settings.maxQueueBytes) return true;
    this.#log.warn("Outgoing queue full; dropping the connection", {
      peer: this.#peerId,
      queuedBytes: this.#queuedBytes,
    });
    this.#finish("backpressure");
    return false;
  }

  #pump(): void {
    if (this.#state === "closed") return;
    if (this.#pipelining) {
      if (!this.#queueBatches()) return;
      while (this.#out.length > 0 && this.#writes < MAX_WRITES_IN_FLIGHT) {
        const lines = this.#out.length > MAX_LINES_PER_WRITE
          ? this.#out.splice(0, MAX_LINES_PER_WRITE)
          : this.#out.splice(0);
        this.#writeText(lines.join(""));
      }
      // File lines a few at a time, and with fewer writes under way: a chat line queued next
      // waits behind little.
      while (
        this.#out.length === 0 && this.#fileOut.length > 0 && this.#writes < MAX_FILE_WRITES
      ) {
        this.#writeFileItems();
      }
    } else if (this.#writes === 0) {
      if (this.#inFlight === undefined && this.#state === "open") {
        const next = this.#waitingSends.shift();
        if (next) {
          this.#inFlight = next.msgId;
          this.#out.push(next.line);
        }
      }
      // Plain pyp2p peers may keep only the first line of a read: one message per write.
      if (this.#out.length > 0) this.#writeText(this.#out.shift()!);
    }
    if (this.#finishAfterFlush && this.#writes === 0 && this.#out.length === 0) {
      this.#finish(this.#finishAfterFlush.reason, this.#finishAfterFlush.detail);
    }
  }

  // The next file lines (a few, in one write), or the next record (alone: its frame is
  // written as it is, where joining two would copy 120 KB).
  #writeFileItems(): void {
    const head = this.#fileOut[0];
    if (head instanceof Uint8Array) {
      this.#fileOut.shift();
      return this.#write(head.length, this.#io.writeRecord!(head));
    }
    let count = 1;
    while (
      count < FILE_LINES_PER_WRITE && count < this.#fileOut.length &&
      typeof this.#fileOut[count] === "string"
    ) count++;
    this.#writeText((this.#fileOut.splice(0, count) as string[]).join(""));
  }

  #writeText(text: string): void {
    const { bytes, written } = this.#io.writeText(text);
    this.#write(bytes, written);
  }

  #write(length: number, writing: Promise<void>): void {
    this.#writes++;
    // Bytes count against the bound until the kernel took them, so several writes in flight
    // cannot hold more than the bound between them.
    const settled = () => {
      this.#writes--;
      if (this.#state !== "closed") this.#queuedBytes -= length;
    };
    writing.then(
      () => {
        settled();
        this.#pump();
        this.#checkDrained();
      },
      (error) => {
        settled();
        this.#finish("write_failed", String(error));
      },
    );
  }

  #finishAfterWrite(reason: CloseReason, detail?: string): void {
    this.#state = "closing";
    this.#finishAfterFlush = { reason, detail };
    this.#clearHandshakeTimer();
    // A peer that stops reading must not keep us "closing" (and our shutdown waiting) for ever.
    this.#byeTimer ??= this.#timers.setTimeout(
      () => this.#finish(reason, detail),
      this.#settings.byeTimeoutMs,
    );
    this.#pump();
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== undefined) this.#timers.clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
  }

  #finish(reason: CloseReason, detail?: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#clearHandshakeTimer();
    if (this.#keepAliveTimer !== undefined) this.#timers.clearTimeout(this.#keepAliveTimer);
    if (this.#byeTimer !== undefined) this.#timers.clearTimeout(this.#byeTimer);
    if (this.#ackTimer !== undefined) this.#timers.clearTimeout(this.#ackTimer);
    if (this.#delayedAckTimer !== undefined) this.#timers.clearTimeout(this.#delayedAckTimer);
    this.#delayedAcks = [];
    this.#out = [];
    this.#fileOut = [];
    this.#sendsDue.take();
    this.#acksDue.take();
    this.#waitingSends = [];
    this.#queuedBytes = 0;
    for (const [, pending] of this.#pending?.entries() ?? []) {
      pending.resolve(
        this.#outcome(pending.token, { ok: false, msgId: pending.msgId, reason: "closed" }),
      );
    }
    this.#pending = this.#foreignIds = this.#pings = undefined;
    this.#io.close();
    this.#log.debug("Connection closed", { peer: this.#peerId, reason, detail });
    this.#hooks.closed(this, reason, detail);
    this.#done.resolve();
  }
}

function _prologue(helloLine: string, helloOkLine: string): Uint8Array {
  return encoder.encode(PROLOGUE_PREFIX + helloLine + helloOkLine);
}
