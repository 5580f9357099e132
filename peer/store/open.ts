/**
 * Opening the store: the file's lock, its schema version, and what to do when it cannot be
 * used. Another peer on the profile stops start-up (`store_in_use`); a damaged file is moved
 * aside and replaced by a new one; a newer schema, a read-only or full disk leave the file
 * alone and run from memory, saying so in `storage()`. The message log beside the file
 * (message_log.ts) is read at start and what it holds moved into the tables; a damaged log is
 * moved aside too, after its sound records are moved in.
 */
import { DatabaseSync } from "node:sqlite";
import { describeError, P2pError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { dirname } from "../../lib/persist.ts";
import type { StorageStatus } from "../api.ts";
import {
  BUSY_TIMEOUT_MS,
  DEFAULT_MAX_LOG_BYTES,
  DEFAULT_MAX_MESSAGES,
  DEFAULT_MAX_QUEUED,
  DEFAULT_MAX_QUEUED_PER_CONVERSATION,
  DEFAULT_MAX_STAGED,
  DEFAULT_RETENTION_DAYS,
  WAL_SIZE_LIMIT_BYTES,
} from "./limits.ts";
import { BatchedMessageStore, type BatchHooks, copyToMemory } from "./message_store.ts";
import { MessageTables, type TableLimits } from "./message_tables.ts";
import { migrate, SCHEMA_VERSION, schemaVersion } from "./schema.ts";
import { checkSchema, SchemaMismatch } from "./schema_check.ts";
import { storageFailure } from "./sqlite_errors.ts";
import { DamagedStagedRows } from "./staged_rows.ts";
import { type LogRecord, MessageLog, readLog, runOf } from "./message_log.ts";
import type { MessageStore, MessageStoreDeps, MessageStoreOptions } from "./types.ts";

/** For tests and benchmarks: reach the connection, choose the commit timing. */
export interface OpenHooks extends BatchHooks {
  /** Called with the file's connection once its PRAGMAs are set, before any write. */
  onConnection?: (db: DatabaseSync) => void;
}

const _DAY_MS = 24 * 60 * 60 * 1000;

/** Opens (or creates) the message store at `options.path`; see docs/message-store.md. */
export function openMessageStore(
  options: MessageStoreOptions,
  deps: MessageStoreDeps,
  hooks: OpenHooks = {},
): MessageStore {
  const limits = _limits(options);
  const make = (db: DatabaseSync, status: StorageStatus) =>
    new BatchedMessageStore(new MessageTables(db, limits), status, deps, limits, hooks);
  if (options.path === ":memory:") return make(_memoryDatabase(), { persistent: false });
  const path = options.path;
  const inMemory = (problem: string, movedAside?: string, readable = false) => {
    deps.log.error(problem, { file: path });
    const status: StorageStatus = { persistent: false, path, problem };
    if (movedAside !== undefined) status.movedAside = movedAside;
    return make((readable && _readableCopy(path)) || _memoryDatabase(), status);
  };

  const newer = (version: number) =>
    inMemory(
      `The message store "${path}" was written by a newer p2pchat (schema ${version}; ` +
        `this one knows ${SCHEMA_VERSION}): history is not being saved`,
    );
  const found = _inspect(path);
  if (found.kind === "newer") return newer(found.version);
  let movedAside: string | undefined;
  if (found.kind === "damaged") movedAside = _moveAside(path, found.reason, deps);
  if (found.kind === "unusable") return inMemory(_unusable(path, found.reason), undefined, true);
  if (found.kind === "not_plain") {
    return inMemory(_unusable(path, "it is not a plain file (a link, a folder or a device)"));
  }

  for (let attempt = 0;; attempt++) {
    let db: DatabaseSync | undefined;
    try {
      db = _openFile(path);
      hooks.onConnection?.(db);
      // The header said otherwise, but a newer program's migration may sit in its WAL.
      const version = schemaVersion(db);
      if (version > SCHEMA_VERSION) {
        db.close();
        return newer(version);
      }
      migrate(db);
      checkSchema(db);
      // A write at every start takes the exclusive lock now and proves the disk takes writes.
      db.exec("BEGIN IMMEDIATE");
      db.prepare("UPDATE meta SET value = ? WHERE key = 'opened_at'").run(deps.clock.now());
      db.exec("COMMIT");
      const status: StorageStatus = { persistent: true, path };
      if (movedAside !== undefined) status.movedAside = movedAside;
      const tables = new MessageTables(db, limits);
      const recovered = _readLogInto(path, tables, status, deps, limits);
      const log = MessageLog.open(`${path}${LOG_SUFFIX}`, recovered.keepBytes);
      const store = new BatchedMessageStore(tables, status, deps, limits, hooks, log);
      store.recover(recovered.records);
      return store;
    } catch (error) {
      _closeQuietly(db);
      const failure = error instanceof SchemaMismatch || error instanceof DamagedStagedRows
        ? "damaged"
        : storageFailure(error);
      if (failure === "locked") throw _inUse(path);
      if (failure === "damaged" && attempt === 0 && movedAside === undefined) {
        movedAside = _moveAside(path, describeError(error), deps);
        continue;
      }
      if (failure === undefined && !(error instanceof _FileError)) throw error;
      return inMemory(_unusable(path, describeError(error)), movedAside, movedAside === undefined);
    }
  }
}

function _limits(options: MessageStoreOptions): TableLimits {
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  return {
    retentionMs: retentionDays * _DAY_MS,
    maxMessages: options.maxMessages ?? DEFAULT_MAX_MESSAGES,
    maxQueued: options.maxQueued ?? DEFAULT_MAX_QUEUED,
    maxQueuedPerConversation: options.maxQueuedPerConversation ??
      DEFAULT_MAX_QUEUED_PER_CONVERSATION,
    maxStaged: options.maxStaged ?? DEFAULT_MAX_STAGED,
    maxLogBytes: options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES,
  };
}

type _Found =
  | { kind: "missing" | "current" }
  | { kind: "newer"; version: number }
  /** A link, a folder, a FIFO or a device: never opened, even to read. */
  | { kind: "not_plain" }
  | { kind: "damaged" | "unusable"; reason: string };

/**
 * Looks at an existing file's header without opening it as a database: opening can change a
 * file (replaying and deleting a WAL on close), and a newer program's file must stay as it is.
 * The header holds the "SQLite format 3" magic and, at offset 60, `user_version`.
 */
function _inspect(path: string): _Found {
  const header = new Uint8Array(100);
  let length = 0;
  try {
    // Only a plain file (or none): a link could make us write outside the profile, and
    // opening a FIFO would wait forever.
    const info = Deno.lstatSync(path);
    if (!info.isFile) return { kind: "not_plain" };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return { kind: "unusable", reason: describeError(error) };
    }
  }
  try {
    const file = Deno.openSync(path, { read: true });
    try {
      for (let n: number | null = 0; n !== null && length < header.length; length += n) {
        n = file.readSync(header.subarray(length));
        if (n === null) break;
      }
    } finally {
      file.close();
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "missing" };
    return { kind: "unusable", reason: describeError(error) };
  }
  if (length === 0) return { kind: "missing" };
  if (length < header.length || _SQLITE_MAGIC.some((byte, i) => header[i] !== byte)) {
    return { kind: "damaged", reason: "file is not a database" };
  }
  const version = new DataView(header.buffer).getUint32(60);
  return version > SCHEMA_VERSION ? { kind: "newer", version } : { kind: "current" };
}

const _SQLITE_MAGIC = new TextEncoder().encode("SQLite format 3\0");

function _openFile(path: string): DatabaseSync {
  try {
    Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Private messages: the file is the owner's alone (SQLite gives -wal the same mode).
    Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    // Not every such error has a class of its own (a read-only file system does not).
    throw new _FileError(describeError(error));
  }
  const db = new DatabaseSync(path);
  try {
    // Exclusive before WAL: the WAL index then lives in this process, and a second peer on
    // the profile finds the file locked instead of sharing it.
    db.exec(`PRAGMA locking_mode = EXCLUSIVE; PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const { journal_mode } = db.prepare("PRAGMA journal_mode = WAL").get() as {
      journal_mode: string;
    };
    if (journal_mode !== "wal") {
      throw new Error(`unable to open database file in WAL mode (got "${journal_mode}")`);
    }
    // Checkpoints wait for pauses in the writes (message_store.ts), not for a commit.
    db.exec(
      `PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES};
       PRAGMA wal_autocheckpoint = 0;`,
    );
    return db;
  } catch (error) {
    _closeQuietly(db);
    throw error;
  }
}

/**
 * A copy in memory of a database that can be read but not written (a read-only disk, a full
 * one), so that history and the outbox stay in view; undefined when it cannot be read either.
 */
function _readableCopy(path: string): DatabaseSync | undefined {
  // On a read-only file system SQLite cannot make the WAL index; `immutable` reads the file
  // as it is (without a WAL left by a crash: its last commits are not shown then).
  const immutable = new URL("file:///");
  immutable.pathname = path;
  immutable.search = "?immutable=1";
  for (const source of [path, immutable]) {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(source, { readOnly: true });
      if (schemaVersion(db) > SCHEMA_VERSION) return undefined;
      const memory = copyToMemory(db);
      migrate(memory);
      return memory;
    } catch {
      // Try the next way, or start empty.
    } finally {
      _closeQuietly(db);
    }
  }
  return undefined;
}

function _memoryDatabase(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  migrate(db);
  return db;
}

/** The message log is the database's path with this after it. */
export const LOG_SUFFIX = "-msglog";
// Room for the records of one commit beyond what `maxLogBytes` lets the log reach.
const _LOG_SLACK_BYTES = 64 * 1024 * 1024;

/**
 * What the message log at start holds that the tables do not, and how much of the file to keep
 * (a record cut by a crash was never acknowledged: it goes). A log that is damaged, or that does
 * not fit the tables (ids they hold already), is moved aside; of a damaged one, the sound
 * records are moved in.
 */
function _readLogInto(
  path: string,
  tables: MessageTables,
  status: StorageStatus,
  deps: MessageStoreDeps,
  limits: TableLimits,
): { records: LogRecord[]; keepBytes: number } {
  const logPath = `${path}${LOG_SUFFIX}`;
  // The most it holds: past `maxLogBytes`, the next write empties it (one commit's records).
  const maxBytes = 4 * limits.maxLogBytes + _LOG_SLACK_BYTES;
  let read: ReturnType<typeof readLog>;
  try {
    read = readLog(logPath, maxBytes);
  } catch (error) {
    throw new _FileError(`the message log cannot be read: ${describeError(error)}`);
  }
  if (read.tornBytes > 0) {
    deps.log.warn(
      `The message log ended in a record cut short (${read.tornBytes} bytes, by a crash or a ` +
        "full disk; its messages were not saved): dropped",
      { file: logPath },
    );
  }
  const mark = tables.logMark;
  const records: LogRecord[] = [];
  for (const record of read.records) {
    // Messages of ours are sent as one of our peer ids: one sent as anyone else is damage.
    if ("out" in record && !tables.isOwnSender(record.out.from)) {
      read.damage ??= `messages sent as ${record.out.from}, not one of our peer ids`;
    } else if (record.seq > mark) records.push(record);
  }
  const firstId = records.map((record) => runOf(record)?.first).find((id) => id !== undefined);
  const taken = firstId !== undefined && firstId <= tables.highestStoredId();
  const damage = taken ? `its message ${firstId} is stored already` : read.damage;
  if (damage === undefined) return { records, keepBytes: read.completeBytes };
  const movedTo = _asideName(logPath, deps);
  try {
    Deno.renameSync(logPath, movedTo);
  } catch (error) {
    throw new _FileError(`the message log cannot be moved aside: ${describeError(error)}`);
  }
  deps.log.error(
    `The message log "${logPath}" is damaged (${damage}); kept aside as "${movedTo}"` +
      (taken ? "" : ", after moving in the messages of its sound lines"),
    { file: logPath, movedTo },
  );
  status.logMovedAside = movedTo;
  return { records: taken ? [] : records, keepBytes: 0 };
}

/**
 * Renames a damaged file (and its -wal, -shm and message log) to `FILE.corrupt-STAMP`; returns
 * the name.
 */
function _moveAside(path: string, reason: string, deps: MessageStoreDeps): string {
  const movedTo = _asideName(path, deps);
  Deno.renameSync(path, movedTo);
  for (const suffix of ["-wal", "-shm", LOG_SUFFIX]) {
    try {
      Deno.renameSync(path + suffix, movedTo + suffix);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  deps.log.error(
    `The message store "${path}" is damaged (${reason}); kept aside as "${movedTo}", ` +
      "history starts anew",
    { file: path, movedTo },
  );
  return movedTo;
}

function _inUse(path: string): P2pError {
  return new P2pError(
    "store_in_use",
    `Another p2pchat peer is running on the profile "${dirname(path)}" ("${path}" is ` +
      `locked); stop it, or start this one with another --name (or --data-dir)`,
  );
}

/**
 * Holds the profile for as long as this peer runs, whether or not it keeps history: a second
 * peer on it (same key, same name) would take messages meant for this one. Throws
 * `store_in_use` when another process holds it; a folder that cannot be written (a read-only
 * disk) cannot be shared for writing either, so it is not held then.
 */
export function lockProfile(dataDir: string, log: Logger): { release(): void } {
  const path = `${dataDir}/profile.lock`;
  let db: DatabaseSync | undefined;
  try {
    db = _openFile(path);
    // A write takes the exclusive lock, which locking_mode=EXCLUSIVE keeps until close.
    db.exec("CREATE TABLE IF NOT EXISTS held (since INTEGER); DELETE FROM held");
    db.prepare("INSERT INTO held VALUES (?)").run(Date.now());
  } catch (error) {
    _closeQuietly(db);
    if (storageFailure(error) === "locked") throw _inUse(path);
    log.warn(`Could not lock the profile: ${describeError(error)}`, { file: path });
    return { release() {} };
  }
  return { release: () => _closeQuietly(db) };
}

function _unusable(path: string, reason: string): string {
  return `The message store "${path}" cannot be written (${reason}); history is not being ` +
    "saved (the chat keeps working)";
}

// The folder or the file could not be made or opened for writing.
class _FileError extends Error {}

function _closeQuietly(db: DatabaseSync | undefined): void {
  try {
    if (db?.isOpen) db.close();
  } catch {
    // Nothing more to release.
  }
}

// The name a damaged file is kept under: `FILE.corrupt-<ISO time>` (no ":" for other systems).
function _asideName(path: string, deps: MessageStoreDeps): string {
  return `${path}.corrupt-${new Date(deps.clock.now()).toISOString().replaceAll(":", "-")}`;
}
