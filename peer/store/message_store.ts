/**
 * The store the node uses: batched writes over `MessageTables`, and the switch to memory when
 * the disk fails.
 *
 * Batching: the first write opens a transaction; it commits in a microtask, once the code that
 * wrote yields (see `CommitTiming`), so the lines of one read cost one commit, and
 * `committed()` tells the node when it may acknowledge.
 *
 * Fast writes: during a burst, a message that needs no lookup (see `claimIncoming` and
 * `claimOutgoing` in message_tables.ts) and its ACK are kept in `FastWrites` and appended to the
 * message log at the commit instead of touching the tables; any other read or write first moves
 * them into the tables (`#catchUp`), and so do pauses in the writes, in steps.
 *
 * Failure: a write or commit the disk refuses (full, read-only, I/O error) rolls back, the
 * committed database is copied into memory, the writes of the batch are replayed onto the copy
 * with the same ids, and the store goes on there: nothing acknowledged is lost while the peer
 * runs, `storage()` says history is no longer saved and `onProblem` is told.
 */
import { DatabaseSync } from "node:sqlite";
import { describeError } from "../../lib/errors.ts";
import type { TimerId } from "../../lib/clock.ts";
import type { ConversationSummary, MessagePage, MessageState, StorageStatus } from "../api.ts";
import type { StoredMessage } from "../api.ts";
import {
  CHECKPOINT_FORCE_WRITES,
  CHECKPOINT_IDLE_MS,
  CHECKPOINT_PAUSE_WRITES,
  COMMIT_DELAY_MS,
  INDEX_INTERVAL_MS,
  INDEX_STEP_ROWS,
  INGEST_STEP_MESSAGES,
  MAX_STAGED_TEXT,
  MEMORY_MAX_BYTES,
  MEMORY_PRUNE_STEPS,
  MERGE_STEP_ROWS,
  MERGE_STEP_TEXT,
  PRUNE_STEP_ROWS,
} from "./limits.ts";
import { MessageTables, type TableLimits } from "./message_tables.ts";
import { FastWrites, ingest } from "./fast_writes.ts";
import { LOG_MAX_ID, type LogRecord, type MessageLog } from "./message_log.ts";
import { migrate } from "./schema.ts";
import { storageFailure } from "./sqlite_errors.ts";
import type {
  ContactAddress,
  ContactRow,
  MessageStore,
  MessageStoreDeps,
  NewIncoming,
  NewOutgoing,
  PageOptions,
} from "./types.ts";
import { WalSync } from "./wal_sync.ts";

/**
 * When a batch commits. "asked" (the default): once the code that wrote it yields (a
 * microtask) if someone waits for it (`committed()`: the node before it acknowledges, a message
 * queued for later), else within `COMMIT_DELAY_MS`. "microtask": every batch once the code that
 * wrote it yields. "task": on a later turn of the event loop (`setTimeout(0)`).
 *
 * Measured (scripts/bench_store_engine.ts) on a burst of 50,000 lines off a socket: a microtask
 * commits once per read (~1,000 lines), while timers starve as long as reads keep completing
 * (4-12 commits for the whole burst: little could be acknowledged before it ended), which is
 * why a batch past its delay commits at the next write; a lone message is committed 0.09 ms
 * after its write with a microtask, 2.2 ms with a timer. A commit costs ~0.1 ms whatever it
 * holds (the pages it touches go to the WAL), so a sender committing each microtask of a burst
 * spent a fifth of its time there.
 */
export type CommitTiming = "asked" | "task" | "microtask";

/** For benchmarks and tests: when batches commit, and a word after each commit or WAL sync. */
export interface BatchHooks {
  commitTiming?: CommitTiming;
  onCommit?: () => void;
  onWalSynced?: () => void;
  /** Called before each append to the message log (a test throws to play a full disk). */
  beforeLogAppend?: () => void;
}

type _Write = (tables: MessageTables) => unknown;

// Upkeep (an index step, a checkpoint) waits while writes keep coming, but not more than this
// many times in a row, so that a steady trickle of messages still gets indexed.
const _MAX_UPKEEP_DEFERRALS = 8;
// Writes in one upkeep interval past which the message log's steps are not forced: one step per
// forced round could not keep up with them (a burst, a flood), and each would cost the burst
// milliseconds. The bounds on what the log holds move those in as they are reached, and the
// pause after them moves the rest.
const _FAST_STEP_KEEPS_UP = Math.floor(INGEST_STEP_MESSAGES / (_MAX_UPKEEP_DEFERRALS + 1));

const _RESOLVED = Promise.resolve();

// Fast writes stop well below the message log's bound on ids and seqs.
const _FAST_MAX_ID = LOG_MAX_ID / 2;

/** The `MessageStore` over one SQLite connection (a file, or memory). */
export class BatchedMessageStore implements MessageStore {
  #tables: MessageTables;
  #status: StorageStatus;
  readonly #deps: MessageStoreDeps;
  readonly #limits: TableLimits;
  readonly #hooks: BatchHooks;
  // A commit is due: a transaction is open (`#inBatch`), or fast writes wait for the log.
  #batchOpen = false;
  #inBatch = false;
  #log?: MessageLog;
  #fast?: FastWrites;
  #batchStartNextId = 0;
  #journal: _Write[] = [];
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #commitTimer?: ReturnType<typeof setTimeout>;
  #commitQueued = false;
  #batchStartedAt = 0;
  #batchWrites = 0;
  #batchDone?: Promise<void>;
  #upkeepTimer?: TimerId;
  #upkeepDeferrals = 0;
  // Set by a merge step that left rows staged: while the writes pause, the next comes at once.
  #upkeepSoon = false;
  #writesSinceUpkeepTimer = 0;
  #writesSinceCheckpoint = 0;
  #lastCommitAt = 0;
  #idleCheckpointTimer?: TimerId;
  #walSync?: WalSync;
  #closed = false;

  constructor(
    tables: MessageTables,
    status: StorageStatus,
    deps: MessageStoreDeps,
    limits: TableLimits,
    hooks: BatchHooks = {},
    log?: MessageLog,
  ) {
    this.#tables = tables;
    if (log) {
      this.#log = log;
      this.#fast = new FastWrites(tables.logMark + 1);
    }
    this.#status = status;
    this.#deps = deps;
    this.#limits = limits;
    this.#hooks = hooks;
    if (status.persistent && status.path) {
      this.#walSync = new WalSync(status.path, deps.log, hooks.onWalSynced);
    }
    this.#scheduleUpkeep();
  }

  addIncoming(message: NewIncoming): StoredMessage | undefined {
    const fast = this.#fastWrites();
    const claimed = fast && this.#tables.claimIncoming(message);
    if (fast && claimed) return this.#keptFast(fast, claimed);
    return this.#write((t) => t.addIncoming(message));
  }

  addOutgoing(message: NewOutgoing): StoredMessage {
    const fast = this.#fastWrites();
    const claimed = fast && this.#tables.claimOutgoing(message);
    const stored = fast && claimed
      ? this.#keptFast(fast, claimed)
      : this.#write((t) => t.addOutgoing(message));
    // Committed before the code that sent it yields, so before its ACK can come: a message
    // reported delivered is never one a crash takes back (nor is its id given again).
    this.#commitSoon();
    return stored;
  }

  setState(id: number, state: MessageState, reason?: string): StoredMessage | undefined {
    return this.#write((t) => t.setState(id, state, reason), this.#holdsFast(id));
  }

  delivered(message: StoredMessage): StoredMessage | undefined {
    if (this.#fast) {
      this.#checkOpen();
      if (this.#fast.deliver(message.id)) {
        this.#openBatch();
        this.#writesSinceUpkeepTimer++;
        // Nothing else of a message held there changes. (Copied field by field: a spread costs
        // more, and this runs for every ACK.)
        return {
          id: message.id,
          msgId: message.msgId,
          conversation: message.conversation,
          kind: message.kind,
          from: message.from,
          outgoing: true,
          text: message.text,
          at: message.at,
          state: "delivered",
          encrypted: message.encrypted,
        };
      }
    }
    return this.setState(message.id, "delivered");
  }

  /**
   * Moves what the message log held at start (and the tables not: see open.ts) into the
   * tables, and empties the log.
   */
  recover(records: readonly LogRecord[]): void {
    if (records.length > 0) {
      this.#write((t) => ingest(t, records, true));
      this.#fast = new FastWrites(records[records.length - 1].seq + 1);
    } else if (!this.#log?.holdsRecords) return;
    // Emptied even when nothing was moved in: what it held was in the tables already.
    this.#openBatch();
    this.#commit();
  }

  setEncrypted(id: number, encrypted: boolean): void {
    this.#write((t) => t.setEncrypted(id, encrypted), this.#holdsFast(id));
  }

  receipt(conversation: string, msgIds: string[], state: "delivered" | "read"): StoredMessage[] {
    const ids = [...msgIds];
    return this.#write((t) => t.receipt(conversation, ids, state));
  }

  requeueUnacknowledged(): number {
    return this.#write((t) => t.requeueUnacknowledged());
  }

  queuedFor(conversation: string): StoredMessage[] {
    return this.#read((t) => t.queuedFor(conversation));
  }

  pendingFor(peerId: string): StoredMessage[] {
    return this.#read((t) => t.pendingFor(peerId));
  }

  memberReached(id: number, peerId: string): StoredMessage | undefined {
    return this.#write((t) => t.memberReached(id, peerId), this.#holdsFast(id));
  }

  expire(now: number, queuedMaxAgeMs: number, sending?: { has(id: number): boolean }) {
    return this.#write((t) => t.expire(now, queuedMaxAgeMs, sending));
  }

  setUnconfirmed(id: number): StoredMessage | undefined {
    return this.#write((t) => t.setUnconfirmed(id), this.#holdsFast(id));
  }

  prune(now: number): number {
    return this.#write((t) => t.prune(now));
  }

  byId(id: number): StoredMessage | undefined {
    return this.#read((t) => t.byId(id));
  }

  conversations(): ConversationSummary[] {
    return this.#read((t) => t.conversations());
  }

  page(conversation: string, options?: PageOptions): MessagePage {
    return this.#read((t) => t.page(conversation, options));
  }

  markRead(conversation: string, upTo?: number): StoredMessage[] {
    return this.#write((t) => t.markRead(conversation, upTo));
  }

  search(text: string, limit?: number): StoredMessage[] {
    return this.#read((t) => t.searchText(text, limit));
  }

  queued(): StoredMessage[] {
    return this.#read((t) => t.queued());
  }

  waiting(): StoredMessage[] {
    return this.#read((t) => t.waiting());
  }

  cancel(id: number): StoredMessage | undefined {
    return this.#write((t) => t.cancel(id), this.#holdsFast(id));
  }

  forget(conversation: string): number | undefined {
    return this.#write((t) => t.forget(conversation));
  }

  contactRows(): ContactRow[] {
    return this.#read((t) => t.contacts.rows(), false);
  }

  addContact(peerId: string, at: number): { peerId: string; addedAt: number } {
    return this.#write((t) => t.contacts.add(peerId, at), false);
  }

  removeContact(peerId: string): boolean {
    return this.#write((t) => t.contacts.remove(peerId), false);
  }

  lastOpened(): string | undefined {
    return this.#read((t) => t.lastOpened());
  }

  setLastOpened(conversation: string): boolean {
    return this.#write((t) => t.setLastOpened(conversation));
  }

  holdReceipts(peerId: string, msgIds: readonly string[]): void {
    const ids = [...msgIds];
    this.#write((t) => t.receiptsDue.hold(peerId, ids), false);
  }

  takeReceipts(peerId: string): string[] {
    // Asked at every connection: most owe nothing, and need no write.
    const owed = this.#read((t) => t.receiptsDue.of(peerId), false);
    if (owed.length > 0) this.#write((t) => t.receiptsDue.drop(peerId), false);
    return owed;
  }

  isContact(peerId: string): boolean {
    return this.#tables.contacts.has(peerId);
  }

  seen(peerId: string, at: number, address?: ContactAddress): void {
    if (!this.#tables.contacts.has(peerId)) return;
    const copy = address && { hostname: address.hostname, port: address.port };
    this.#write((t) => t.contacts.seen(peerId, at, copy), false);
  }

  storage(): StorageStatus {
    return { ...this.#status };
  }

  committed(): Promise<void> {
    if (!this.#batchOpen) return _RESOLVED;
    this.#commitSoon();
    // One promise per batch: the node ACKs all it kept in one go (one ACKS line per commit).
    if (!this.#batchDone) {
      const done = Promise.withResolvers<void>();
      this.#waiters.push(done);
      this.#batchDone = done.promise;
    }
    return this.#batchDone;
  }

  flush(): void {
    this.#commit();
  }

  settle(): void {
    this.#catchUp();
    if (this.#tables.stagedCount > 0) this.#write((t) => t.mergeAll());
    this.#commit();
    if (this.#writesSinceCheckpoint >= CHECKPOINT_PAUSE_WRITES) this.#checkpoint();
  }

  close(): void {
    if (this.#closed) return;
    try {
      // The file is left with every message in its table (other tools read it so).
      this.settle();
    } finally {
      this.#closed = true;
      clearTimeout(this.#commitTimer);
      this.#commitTimer = undefined;
      for (const timer of [this.#upkeepTimer, this.#idleCheckpointTimer]) {
        if (timer !== undefined) this.#deps.clock.clearTimeout(timer);
      }
      this.#upkeepTimer = this.#idleCheckpointTimer = undefined;
      this.#tables.db.close();
      this.#walSync?.close();
      this.#log?.close();
    }
  }

  // The fast writes, when a message may be one now (a claim of `MessageTables`, in memory, no
  // table touched, kept there until it is moved in); else undefined: the usual way.
  #fastWrites(): FastWrites | undefined {
    const fast = this.#fast;
    if (fast === undefined) return undefined;
    this.#checkOpen();
    // A log that never empties (writes that never pause) is emptied: all of it moves in now, and
    // the commit that holds it empties the file.
    if (this.#log!.size >= this.#limits.maxLogBytes) this.#catchUp();
    // Held in memory until a pause: past the staged rows' bounds, the oldest are moved in. (A
    // log that cannot be read back sends the store to memory, where there are no fast writes.)
    while (
      this.#fast === fast &&
      (fast.size >= this.#limits.maxStaged || fast.textLength >= MAX_STAGED_TEXT)
    ) this.#ingest(INGEST_STEP_MESSAGES);
    if (this.#fast !== fast) return undefined;
    // Far from where the log's ids and seqs stop (the rest takes the usual way).
    if (this.#tables.nextId >= _FAST_MAX_ID || fast.nextSeq >= _FAST_MAX_ID) return undefined;
    return fast;
  }

  #keptFast(fast: FastWrites, claimed: StoredMessage): StoredMessage {
    fast.add(claimed);
    this.#openBatch();
    this.#writesSinceUpkeepTimer++;
    return claimed;
  }

  // Moves every fast write into the tables, in order: before a read of messages, and before a
  // write that could concern them or takes an id (ids are handed out in order, so that a
  // batch replayed in memory after a failure gets the same ones: see #fallBack).
  #catchUp(): void {
    if (this.#fast && !this.#fast.isEmpty) this.#ingest(Infinity);
  }

  // True when message `id` may be a fast write not moved in yet.
  #holdsFast(id: number): boolean {
    return this.#fast !== undefined && !this.#fast.isEmpty && id >= this.#fast.firstId;
  }

  #ingest(maxMessages: number): void {
    let records: LogRecord[];
    try {
      records = this.#fast!.take(maxMessages, (place) => this.#log!.read(place));
    } catch (error) {
      // The log cannot be read back (the disk failed): the store goes on in memory, and what
      // the log holds waits in it for the next start.
      return this.#fallBack(error);
    }
    this.#write((t) => ingest(t, records), false);
  }

  #write<T>(write: (tables: MessageTables) => T, catchUp = true): T {
    this.#checkOpen();
    if (catchUp) this.#catchUp();
    this.#begin();
    let result: T;
    try {
      result = write(this.#tables);
    } catch (error) {
      if (!this.#mayFallBack(error)) throw error;
      this.#fallBack(error);
      result = write(this.#tables);
    }
    this.#journal.push(write);
    this.#writesSinceUpkeepTimer++;
    return result;
  }

  #read<T>(read: (tables: MessageTables) => T, catchUp = true): T {
    this.#checkOpen();
    if (catchUp) this.#catchUp();
    try {
      return read(this.#tables);
    } catch (error) {
      if (!this.#mayFallBack(error)) throw error;
      this.#fallBack(error);
      return read(this.#tables);
    }
  }

  // Opens a transaction for a write of the tables.
  #begin(): void {
    this.#openBatch();
    if (this.#inBatch) return;
    this.#tables.db.exec("BEGIN");
    this.#inBatch = true;
    this.#batchStartNextId = this.#tables.nextId;
  }

  // Makes sure a commit comes for a write (of the tables, or a fast one).
  #openBatch(): void {
    if (this.#batchOpen) {
      // Timers starve while reads keep completing: a batch past its time commits now. (The
      // clock is read every few writes: a burst makes hundreds a millisecond.)
      if (
        !this.#commitQueued && (++this.#batchWrites & 15) === 0 &&
        performance.now() - this.#batchStartedAt >= COMMIT_DELAY_MS
      ) this.#commitSoon();
      return;
    }
    this.#batchOpen = true;
    // Monotonic: a wall clock stepped back (NTP) must not hold a batch back for the step.
    this.#batchStartedAt = performance.now();
    const timing = this.#hooks.commitTiming ?? "asked";
    if (timing === "microtask") return this.#commitSoon();
    // One timer serves batch after batch (a burst opens one per read, and a timer each cost
    // more than the rest of a batch's bookkeeping): it commits the batch open when it fires, or
    // waits until that batch is due.
    if (this.#commitTimer === undefined) this.#armCommitTimer(this.#batchDelay);
  }

  get #batchDelay(): number {
    return this.#hooks.commitTiming === "task" ? 0 : COMMIT_DELAY_MS;
  }

  #armCommitTimer(delay: number): void {
    this.#commitTimer = setTimeout(() => {
      this.#commitTimer = undefined;
      if (!this.#batchOpen) return;
      const left = this.#batchDelay - (performance.now() - this.#batchStartedAt);
      if (left > 0) this.#armCommitTimer(left);
      else this.#commitInBackground();
    }, delay);
  }

  // Commits once the code running now yields.
  #commitSoon(): void {
    if (this.#commitQueued) return;
    this.#commitQueued = true;
    queueMicrotask(() => {
      if (this.#commitQueued) this.#commitInBackground();
    });
  }

  #commitInBackground(): void {
    try {
      this.#commit();
    } catch (error) {
      // Nothing above a timer can handle it; the waiters of committed() hear of it.
      this.#deps.log.error(`The message store failed to commit: ${describeError(error)}`);
    }
  }

  #commit(): void {
    this.#commitQueued = false;
    if (!this.#batchOpen) return this.#settle();
    this.#batchOpen = false;
    try {
      this.#commitTables();
      // Every record in the file is in the tables (committed): it starts again empty, before
      // this batch's records go in.
      if (this.#log?.holdsRecords && !this.#fast!.holdsWritten) this.#clearLog();
      this.#appendLog();
      // The log failed: the store went on in memory, with this batch's fast writes to commit.
      this.#commitTables();
    } catch (error) {
      // Even memory refused (out of memory): this batch is lost, the store stays usable.
      try {
        if (this.#tables.db.isTransaction) this.#tables.db.exec("ROLLBACK");
      } catch {
        // Nothing more to undo.
      }
      this.#inBatch = false;
      this.#journal = [];
      this.#settle(error);
      throw error;
    }
    this.#lastCommitAt = this.#deps.clock.now();
    this.#hooks.onCommit?.();
    this.#settle();
    if (!this.#status.persistent) this.#boundMemory();
    if (this.#writesSinceCheckpoint >= CHECKPOINT_FORCE_WRITES) this.#checkpoint();
    this.#scheduleUpkeep();
  }

  #commitTables(): void {
    if (!this.#inBatch) return;
    try {
      this.#writesSinceCheckpoint += this.#tables.beforeCommit();
      this.#tables.db.exec("COMMIT");
    } catch (error) {
      // Whatever stopped the commit, the batch goes on in memory rather than being lost.
      if (!this.#status.persistent) throw error;
      this.#fallBack(error);
      this.#tables.beforeCommit();
      this.#tables.db.exec("COMMIT");
    }
    this.#inBatch = false;
    this.#journal = [];
  }

  // The fast writes of this batch go to the log before the batch counts as committed.
  #appendLog(): void {
    if (!this.#fast?.hasUnwritten) return;
    const records = this.#fast.unwritten();
    try {
      this.#hooks.beforeLogAppend?.();
      this.#fast.wrote(this.#log!.append(records));
    } catch (error) {
      this.#fallBack(error);
    }
  }

  #clearLog(): void {
    try {
      this.#log!.clear();
    } catch (error) {
      // Its records are marked as moved in (`log_seq`): the next start skips them.
      this.#deps.log.warn(`Emptying the message log failed: ${describeError(error)}`);
    }
  }

  // History in memory must not grow with what peers send: the oldest goes past the bound.
  #boundMemory(): void {
    const now = this.#deps.clock.now();
    for (let step = 0; step < MEMORY_PRUNE_STEPS; step++) {
      if (this.#tables.usedBytes <= MEMORY_MAX_BYTES) return;
      if (this.#write((t) => t.prune(now, PRUNE_STEP_ROWS)) === 0) return;
    }
  }

  #settle(error?: unknown): void {
    this.#batchDone = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) error ? waiter.reject(error) : waiter.resolve();
  }

  #mayFallBack(error: unknown): boolean {
    return this.#status.persistent && storageFailure(error) !== undefined;
  }

  /** Goes on in memory: a copy of what was committed, plus the writes of the open batch. */
  #fallBack(error: unknown): void {
    const disk = this.#tables;
    const { path, movedAside } = this.#status;
    const reason = describeError(error);
    try {
      if (disk.db.isTransaction) disk.db.exec("ROLLBACK");
    } catch {
      // A failed commit may already have rolled back; the copy below reads what is committed.
    }
    let memory: DatabaseSync;
    try {
      memory = copyToMemory(disk.db);
    } catch (copyError) {
      this.#deps.log.error(
        `Could not copy the message history into memory (${describeError(copyError)}); ` +
          "earlier messages are not shown until the next start",
        { file: path },
      );
      memory = new DatabaseSync(":memory:");
      migrate(memory);
    }
    try {
      disk.db.close();
    } catch {
      // Closing a connection to a failing disk may fail too; it holds nothing we need.
    }
    this.#walSync?.close();
    this.#walSync = undefined;
    // Fast writes not moved in yet go into the copy after the batch: they are newer.
    let fastWrites: LogRecord[] = [];
    try {
      fastWrites = this.#fast?.take(Infinity, (place) => this.#log!.read(place)) ?? [];
    } catch (readError) {
      // They stay in the log file, which the next start reads.
      this.#deps.log.error(
        `Reading the message log back failed (${describeError(readError)}); its last ` +
          "messages are not shown until the next start",
      );
    }
    this.#fast = undefined;
    this.#log?.close();
    this.#log = undefined;
    this.#tables = new MessageTables(memory, this.#limits);
    this.#tables.raiseNextId(this.#batchStartNextId);
    this.#status = {
      persistent: false,
      path,
      problem: `Writing the message store "${path}" failed (${reason}); history is not being ` +
        "saved from now on (the chat keeps working)",
    };
    if (movedAside !== undefined) this.#status.movedAside = movedAside;
    this.#deps.log.error(this.#status.problem!, { file: path });
    const status = this.storage();
    const onProblem = this.#deps.onProblem;
    if (onProblem) queueMicrotask(() => onProblem(status));
    if (!this.#inBatch && fastWrites.length === 0) return;
    this.#tables.db.exec("BEGIN");
    this.#inBatch = true;
    const writes = [...this.#journal, (tables: MessageTables) => ingest(tables, fastWrites)];
    for (const write of writes) {
      try {
        write(this.#tables);
      } catch (replayError) {
        this.#deps.log.error(`Replaying a write in memory failed: ${describeError(replayError)}`);
      }
    }
  }

  // Merging staged rows, indexing and checkpoints wait for a pause in the writes (see
  // staged_rows.ts, search_index.ts, limits.ts).
  #scheduleUpkeep(): void {
    if (this.#closed || this.#upkeepTimer !== undefined) return;
    if (
      this.#tables.stagedCount === 0 && !this.#tables.indexLags && !this.#checkpointDue &&
      (this.#fast?.isEmpty ?? true)
    ) return;
    this.#writesSinceUpkeepTimer = 0;
    const delay = this.#upkeepSoon ? 0 : INDEX_INTERVAL_MS;
    this.#upkeepSoon = false;
    this.#upkeepTimer = this.#deps.clock.setTimeout(() => this.#upkeep(), delay);
  }

  #upkeep(): void {
    this.#upkeepTimer = undefined;
    if (this.#closed) return;
    if (this.#writesSinceUpkeepTimer > 0 && this.#upkeepDeferrals < _MAX_UPKEEP_DEFERRALS) {
      this.#upkeepDeferrals++;
      this.#scheduleUpkeep();
      return;
    }
    // Forced past its deferrals: writes are still coming, the next step waits its turn.
    const quiet = this.#writesSinceUpkeepTimer === 0;
    this.#upkeepDeferrals = 0;
    if (this.#fast && !this.#fast.isEmpty) {
      if (this.#writesSinceUpkeepTimer > _FAST_STEP_KEEPS_UP) return this.#scheduleUpkeep();
      try {
        this.#upkeepSoon = quiet;
        this.#ingest(INGEST_STEP_MESSAGES);
      } catch (error) {
        this.#deps.log.error(`Moving logged messages in failed: ${describeError(error)}`);
      }
      if (!this.#fast?.isEmpty) return;
    }
    if (this.#tables.stagedCount > 0) {
      try {
        this.#upkeepSoon = quiet;
        this.#write((t) => t.mergeStep(MERGE_STEP_ROWS, MERGE_STEP_TEXT));
      } catch (error) {
        this.#deps.log.error(`Moving staged messages failed: ${describeError(error)}`);
      }
      if (this.#tables.stagedCount > 0) return;
    }
    if (!this.#tables.indexLags) {
      this.#paused();
      return;
    }
    try {
      this.#write((t) => t.search.step(INDEX_STEP_ROWS));
    } catch (error) {
      this.#deps.log.error(`Indexing messages for search failed: ${describeError(error)}`);
    }
  }

  // The writes paused with nothing left to move or index. A checkpoint runs its fsyncs on the
  // event loop, and those can take hundreds of ms while the disk is busy (a large file coming
  // in): a few writes are made durable by a WAL fsync in the background instead, and copied
  // into the database file once the store has been quiet a while.
  #paused(): void {
    if (!this.#checkpointDue) return;
    if (this.#writesSinceCheckpoint >= CHECKPOINT_PAUSE_WRITES) return this.#checkpoint();
    this.#walSync?.request();
    this.#checkpointWhenQuiet();
  }

  #checkpointWhenQuiet(): void {
    if (this.#idleCheckpointTimer !== undefined) return;
    const quietFor = this.#deps.clock.now() - this.#lastCommitAt;
    this.#idleCheckpointTimer = this.#deps.clock.setTimeout(() => {
      this.#idleCheckpointTimer = undefined;
      if (this.#closed) return;
      if (this.#deps.clock.now() - this.#lastCommitAt >= CHECKPOINT_IDLE_MS) this.#checkpoint();
      else this.#checkpointWhenQuiet();
    }, Math.max(0, CHECKPOINT_IDLE_MS - quietFor));
  }

  get #checkpointDue(): boolean {
    return this.#status.persistent && this.#writesSinceCheckpoint > 0;
  }

  /** Copies the WAL into the database file (and fsyncs it): what SQLite would do in a commit. */
  #checkpoint(): void {
    if (!this.#checkpointDue) return;
    this.#writesSinceCheckpoint = 0;
    if (this.#inBatch) this.#commit();
    try {
      this.#tables.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (error) {
      // The commits are safe in the WAL (synced now, as a pause would); the next checkpoint
      // tries again.
      this.#walSync?.request();
      this.#deps.log.warn(`Checkpointing the message store failed: ${describeError(error)}`);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("The message store is closed");
  }
}

/** A copy in memory of what `db` has committed. */
export function copyToMemory(db: DatabaseSync): DatabaseSync {
  const bytes = db.serialize();
  // Bytes 18 and 19 of the header say "WAL"; a database in memory cannot be one.
  bytes[18] = 1;
  bytes[19] = 1;
  const memory = new DatabaseSync(":memory:");
  memory.deserialize(bytes);
  return memory;
}
