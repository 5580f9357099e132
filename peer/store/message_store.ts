/**
 * The store the node uses: batched writes over `MessageTables`, and the switch to memory when
 * the disk fails.
 *
 * Batching: the first write of a task opens a transaction; it commits once the task is over
 * (a `setTimeout(0)`, measured against a microtask in scripts/bench_store_engine.ts), so a burst
 * of messages costs one commit, and `committed()` tells the node when it may acknowledge.
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
import { INDEX_INTERVAL_MS, INDEX_STEP_ROWS } from "./limits.ts";
import { MessageTables, type TableLimits } from "./message_tables.ts";
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

/** When a batch commits: after the task (`setTimeout(0)`), or after the current microtasks. */
export type CommitTiming = "task" | "microtask";

type _Write = (tables: MessageTables) => unknown;

// An index step waits while writes keep coming, but not more than this many times in a row,
// so that a steady trickle of messages still gets indexed.
const _MAX_INDEX_DEFERRALS = 8;

/** The `MessageStore` over one SQLite connection (a file, or memory). */
export class BatchedMessageStore implements MessageStore {
  #tables: MessageTables;
  #status: StorageStatus;
  readonly #deps: MessageStoreDeps;
  readonly #limits: TableLimits;
  readonly #timing: CommitTiming;
  #inBatch = false;
  #batchStartNextId = 0;
  #journal: _Write[] = [];
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #commitTimer?: ReturnType<typeof setTimeout>;
  #commitQueued = false;
  #indexTimer?: TimerId;
  #indexDeferrals = 0;
  #writesSinceIndexTimer = 0;
  #closed = false;

  constructor(
    tables: MessageTables,
    status: StorageStatus,
    deps: MessageStoreDeps,
    limits: TableLimits,
    timing: CommitTiming = "task",
  ) {
    this.#tables = tables;
    this.#status = status;
    this.#deps = deps;
    this.#limits = limits;
    this.#timing = timing;
    this.#scheduleIndexing();
  }

  addIncoming(message: NewIncoming): StoredMessage | undefined {
    return this.#write((t) => t.addIncoming(message));
  }

  addOutgoing(message: NewOutgoing): StoredMessage {
    return this.#write((t) => t.addOutgoing(message));
  }

  setState(id: number, state: MessageState, reason?: string): StoredMessage | undefined {
    return this.#write((t) => t.setState(id, state, reason));
  }

  setEncrypted(id: number, encrypted: boolean): void {
    this.#write((t) => t.setEncrypted(id, encrypted));
  }

  receipt(conversation: string, msgIds: string[], state: "delivered" | "read"): StoredMessage[] {
    const ids = [...msgIds];
    return this.#write((t) => t.receipt(conversation, ids, state));
  }

  queuedFor(conversation: string): StoredMessage[] {
    return this.#read((t) => t.queuedFor(conversation));
  }

  pendingFor(peerId: string): StoredMessage[] {
    return this.#read((t) => t.pendingFor(peerId));
  }

  memberReached(id: number, peerId: string): StoredMessage | undefined {
    return this.#write((t) => t.memberReached(id, peerId));
  }

  expire(now: number, queuedMaxAgeMs: number): StoredMessage[] {
    return this.#write((t) => t.expire(now, queuedMaxAgeMs));
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

  cancel(id: number): StoredMessage | undefined {
    return this.#write((t) => t.cancel(id));
  }

  contactRows(): ContactRow[] {
    return this.#read((t) => t.contacts.rows());
  }

  addContact(peerId: string, at: number): { peerId: string; addedAt: number } {
    return this.#write((t) => t.contacts.add(peerId, at));
  }

  removeContact(peerId: string): boolean {
    return this.#write((t) => t.contacts.remove(peerId));
  }

  isContact(peerId: string): boolean {
    return this.#tables.contacts.has(peerId);
  }

  seen(peerId: string, at: number, address?: ContactAddress): void {
    if (!this.#tables.contacts.has(peerId)) return;
    const copy = address && { hostname: address.hostname, port: address.port };
    this.#write((t) => t.contacts.seen(peerId, at, copy));
  }

  storage(): StorageStatus {
    return { ...this.#status };
  }

  committed(): Promise<void> {
    if (!this.#inBatch) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  flush(): void {
    this.#commit();
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#commit();
    } finally {
      this.#closed = true;
      if (this.#indexTimer !== undefined) this.#deps.clock.clearTimeout(this.#indexTimer);
      this.#indexTimer = undefined;
      this.#tables.db.close();
    }
  }

  #write<T>(write: (tables: MessageTables) => T): T {
    this.#checkOpen();
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
    this.#writesSinceIndexTimer++;
    return result;
  }

  #read<T>(read: (tables: MessageTables) => T): T {
    this.#checkOpen();
    try {
      return read(this.#tables);
    } catch (error) {
      if (!this.#mayFallBack(error)) throw error;
      this.#fallBack(error);
      return read(this.#tables);
    }
  }

  #begin(): void {
    if (this.#inBatch) return;
    this.#tables.db.exec("BEGIN");
    this.#inBatch = true;
    this.#batchStartNextId = this.#tables.nextId;
    if (this.#timing === "microtask") {
      this.#commitQueued = true;
      queueMicrotask(() => {
        if (this.#commitQueued) this.#commitInBackground();
      });
    } else {
      this.#commitTimer = setTimeout(() => this.#commitInBackground(), 0);
    }
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
    if (this.#commitTimer !== undefined) clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#commitQueued = false;
    if (!this.#inBatch) return this.#settle();
    try {
      try {
        this.#tables.beforeCommit();
        this.#tables.db.exec("COMMIT");
      } catch (error) {
        // Whatever stopped the commit, the batch goes on in memory rather than being lost.
        if (!this.#status.persistent) throw error;
        this.#fallBack(error);
        this.#tables.beforeCommit();
        this.#tables.db.exec("COMMIT");
      }
    } catch (error) {
      this.#inBatch = false;
      this.#journal = [];
      this.#settle(error);
      throw error;
    }
    this.#inBatch = false;
    this.#journal = [];
    this.#settle();
    this.#scheduleIndexing();
  }

  #settle(error?: unknown): void {
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
    if (!this.#inBatch) return;
    this.#tables.db.exec("BEGIN");
    for (const write of this.#journal) {
      try {
        write(this.#tables);
      } catch (replayError) {
        this.#deps.log.error(`Replaying a write in memory failed: ${describeError(replayError)}`);
      }
    }
  }

  // Search indexing waits for a pause in the writes (see search_index.ts).
  #scheduleIndexing(): void {
    if (this.#closed || this.#indexTimer !== undefined || !this.#tables.indexLags) return;
    this.#writesSinceIndexTimer = 0;
    this.#indexTimer = this.#deps.clock.setTimeout(() => this.#indexStep(), INDEX_INTERVAL_MS);
  }

  #indexStep(): void {
    this.#indexTimer = undefined;
    if (this.#closed) return;
    if (this.#writesSinceIndexTimer > 0 && this.#indexDeferrals < _MAX_INDEX_DEFERRALS) {
      this.#indexDeferrals++;
      this.#scheduleIndexing();
      return;
    }
    this.#indexDeferrals = 0;
    try {
      this.#write((t) => t.search.step(INDEX_STEP_ROWS));
    } catch (error) {
      this.#deps.log.error(`Indexing messages for search failed: ${describeError(error)}`);
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
