/**
 * New messages on their way into the `messages` table. Through node:sqlite a row costs 5-8 us
 * to insert with its indexes (binding its values is most of it), more than the rest of a
 * message's trip, so a burst would run at a fraction of its speed. Instead a commit saves the
 * rows it added or changed as one row of `staged` (a JSON array), about 1 us a message, and
 * keeps them in memory; `merge()` moves the oldest into `messages` (when the writes pause, or
 * past the caps: see limits.ts). `merged_upto` (in `meta`) is the
 * highest id moved: a staged copy of a lower id is outdated (the table holds it, or pruned it).
 *
 * Rows are added in id order, so the oldest staged row has the lowest id.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { OUTGOING, QUEUED } from "./rows.ts";
import type { MessageRow } from "./rows.ts";

/** A staged message: the row as reads see it, with the integers the table stores. */
export interface StagedRow extends MessageRow {
  conversationId: number;
  senderId: number;
  fingerprintId: number | null;
}

/** One staged row as saved: the `messages` columns in `_INSERT_COLUMNS` order. */
type _Saved = [
  id: number,
  conversation: number,
  sender: number,
  flags: number,
  state: number,
  at: number,
  msgId: string,
  text: string,
  fingerprint: number | null,
  reason: string | null,
  pending: string | null,
];

// The columns of a `messages` insert, in the order of a saved row.
const _INSERT_COLUMNS =
  "id, conversation, sender, flags, state, at, msg_id, text, fingerprint, reason, pending";

// Rows per INSERT statement when merging: binding is paid per call, so fewer calls cost less.
const _ROWS_PER_INSERT = 64;

/** Saved staged rows that do not hold together: the file is damaged. */
export class DamagedStagedRows extends Error {}

/** Names the integers of a saved row, to rebuild it at open. */
export interface StagedNames {
  conversation(id: number): string | undefined;
  peer(id: number): string | undefined;
  fingerprint(id: number): string | undefined;
}

/** The staged rows of one connection. */
export class StagedRows {
  // In id order from `#head` (those before it are merged): ids are handed out in order, and
  // nearly always without gaps, so a row is found by its offset (a Map costs more per row).
  #rows: StagedRow[] = [];
  #head = 0;
  // Rows added or changed since the last save.
  readonly #unsaved = new Set<StagedRow>();
  // The msg_ids of incoming rows, by sender, for the duplicate check (nested rather than one
  // joined key: a msg_id string keeps its hash, a new joined string is hashed every time).
  readonly #incoming = new Map<number, Set<string>>();
  // Outgoing rows by msg_id, for receipts.
  readonly #outgoing = new Map<string, StagedRow[]>();
  // Rows that were in the outbox (queued, or waiting for room members) while staged; a reader
  // checks that they still are.
  readonly #outbox = new Set<StagedRow>();
  #textLength = 0;
  // The saved batches in order, with the highest id each holds: a batch goes once every row
  // up to it is merged (deleted by its key: `last_id` has no index to find them by).
  readonly #batches: { batch: number; lastId: number }[] = [];
  #mergedUpto: number;
  readonly #save: StatementSync;
  readonly #insertMany: StatementSync;
  readonly #insertOne: StatementSync;
  readonly #saveMergedUpto: StatementSync;
  readonly #dropSaved: StatementSync;

  constructor(db: DatabaseSync) {
    const insert = (rows: number) =>
      db.prepare(
        `INSERT INTO messages (${_INSERT_COLUMNS}) VALUES ${
          Array(rows).fill("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")
        }`,
      );
    this.#insertMany = insert(_ROWS_PER_INSERT);
    this.#insertOne = insert(1);
    this.#save = db.prepare("INSERT INTO staged (last_id, rows) VALUES (?, ?)");
    this.#saveMergedUpto = db.prepare("UPDATE meta SET value = ? WHERE key = 'merged_upto'");
    this.#dropSaved = db.prepare("DELETE FROM staged WHERE batch <= ?");
    this.#mergedUpto = (db.prepare("SELECT value FROM meta WHERE key = 'merged_upto'").get() as {
      value: number;
    }).value;
  }

  /**
   * Reads back what earlier runs staged and did not merge (the newest copy of each row wins);
   * a saved row that does not hold together throws `DamagedStagedRows`.
   */
  load(db: DatabaseSync, names: StagedNames, nextId: number): StagedRow[] {
    const copies = new Map<number, _Saved>();
    const batches = db.prepare("SELECT batch, last_id, rows FROM staged ORDER BY batch").all() as {
      batch: number;
      last_id: number;
      rows: string;
    }[];
    for (const { batch, last_id: lastId, rows } of batches) {
      this.#batches.push({ batch, lastId });
      for (const saved of _parseBatch(rows)) {
        if (saved[0] > this.#mergedUpto) copies.set(saved[0], saved);
      }
    }
    // An id the table holds already, or one not handed out yet, is damage, not a message.
    const inTable = new Set(
      (db.prepare("SELECT id FROM messages WHERE id > ?").all(this.#mergedUpto) as { id: number }[])
        .map((row) => row.id),
    );
    const loaded = [...copies.values()].sort((a, b) => a[0] - b[0]).map((saved) => {
      const [id, conversationId, senderId, flags, state, at, msgId, text, fingerprintId] = saved;
      if (inTable.has(id) || id >= nextId) {
        throw new DamagedStagedRows(`staged message ${id} is already stored, or beyond next_id`);
      }
      const conversation = names.conversation(conversationId);
      const sender = names.peer(senderId);
      const fingerprint = fingerprintId === null ? null : names.fingerprint(fingerprintId);
      if (conversation === undefined || sender === undefined || fingerprint === undefined) {
        throw new DamagedStagedRows(
          `staged message ${id} names a conversation or peer that is not stored`,
        );
      }
      const row: StagedRow = {
        id,
        flags,
        state,
        at,
        msg_id: msgId,
        text,
        reason: saved[9],
        pending: saved[10],
        conversation,
        sender,
        fingerprint,
        conversationId,
        senderId,
        fingerprintId,
      };
      this.#track(row);
      return row;
    });
    return loaded;
  }

  get size(): number {
    return this.#rows.length - this.#head;
  }

  /** The length of the staged texts together (UTF-16 units). */
  get textLength(): number {
    return this.#textLength;
  }

  /** The staged rows with an id above `after`, oldest first. */
  *rows(after = 0): IterableIterator<StagedRow> {
    // The first above `after`, by halves: a reader that follows new rows reads only those.
    let low = this.#head;
    let high = this.#rows.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#rows[middle].id <= after) low = middle + 1;
      else high = middle;
    }
    for (let at = low; at < this.#rows.length; at++) yield this.#rows[at];
  }

  /** The staged rows, newest first. */
  *newestFirst(): IterableIterator<StagedRow> {
    for (let at = this.#rows.length - 1; at >= this.#head; at--) yield this.#rows[at];
  }

  /** Staged rows in the outbox (queued, or waiting for room members), oldest first. */
  outbox(): StagedRow[] {
    return [...this.#outbox].filter(_inOutbox).sort((a, b) => a.id - b.id);
  }

  /** Staged outgoing rows with `msgId`. */
  ownRows(msgId: string): readonly StagedRow[] {
    return this.#outgoing.get(msgId) ?? [];
  }

  get(id: number): StagedRow | undefined {
    const rows = this.#rows;
    if (this.#head === rows.length) return undefined;
    const at = this.#head + id - rows[this.#head].id;
    if (at < this.#head) return undefined; // merged already
    if (rows[at]?.id === id) return rows[at];
    // A gap in the ids (a batch that was rolled back): search.
    let low = this.#head;
    let high = rows.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const found = rows[middle].id;
      if (found === id) return rows[middle];
      if (found < id) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  add(row: StagedRow): void {
    this.#track(row);
    this.#unsaved.add(row);
  }

  /** `row` changed in memory; the next save writes it again. */
  changed(row: StagedRow): void {
    this.#unsaved.add(row);
    if (_inOutbox(row)) this.#outbox.add(row);
  }

  /** True when an incoming row from `senderId` with `msgId` is staged. */
  holds(senderId: number, msgId: string): boolean {
    return this.#incoming.get(senderId)?.has(msgId) ?? false;
  }

  /** True when incoming rows from `senderId` are staged. */
  holdsFrom(senderId: number): boolean {
    return this.#incoming.has(senderId);
  }

  /** Saves the rows added or changed since the last save, as one row; returns how many. */
  save(): number {
    const count = this.#unsaved.size;
    if (count === 0) return 0;
    let lastId = 0;
    const rows: _Saved[] = [];
    for (const row of this.#unsaved) {
      rows.push(_saved(row));
      if (row.id > lastId) lastId = row.id;
    }
    this.#unsaved.clear();
    const { lastInsertRowid } = this.#save.run(lastId, JSON.stringify(rows));
    this.#batches.push({ batch: Number(lastInsertRowid), lastId });
    return count;
  }

  /**
   * Moves the oldest rows into `messages`, at most `maxRows`, and no more once `maxText` of text
   * is taken (one row at least); returns how many.
   */
  merge(maxRows: number, maxText = Infinity): number {
    let end = this.#head;
    for (let text = 0; end < this.#rows.length && end - this.#head < maxRows; end++) {
      if (text >= maxText) break;
      text += this.#rows[end].text.length;
    }
    const moving = this.#rows.slice(this.#head, end);
    if (moving.length === 0) return 0;
    let next = 0;
    for (; next + _ROWS_PER_INSERT <= moving.length; next += _ROWS_PER_INSERT) {
      const values: (number | string | null)[] = [];
      for (let i = next; i < next + _ROWS_PER_INSERT; i++) values.push(..._saved(moving[i]));
      this.#insertMany.run(...values);
    }
    for (; next < moving.length; next++) this.#insertOne.run(..._saved(moving[next]));
    for (const row of moving) this.#untrack(row);
    this.#head += moving.length;
    // Drop the merged front now and then (not on every step: that copies the whole array).
    if (this.#head > 4096 && this.#head * 2 > this.#rows.length) {
      this.#rows = this.#rows.slice(this.#head);
      this.#head = 0;
    }
    this.#mergedUpto = moving[moving.length - 1].id;
    this.#saveMergedUpto.run(this.#mergedUpto);
    let done = 0;
    while (done < this.#batches.length && this.#batches[done].lastId <= this.#mergedUpto) done++;
    if (done > 0) this.#dropSaved.run(this.#batches[done - 1].batch);
    this.#batches.splice(0, done);
    return moving.length;
  }

  #track(row: StagedRow): void {
    this.#rows.push(row);
    this.#textLength += row.text.length;
    if (_inOutbox(row)) this.#outbox.add(row);
    if (row.flags & OUTGOING) {
      const same = this.#outgoing.get(row.msg_id);
      if (same === undefined) this.#outgoing.set(row.msg_id, [row]);
      else same.push(row);
      return;
    }
    if (row.msg_id === "") return;
    const ids = this.#incoming.get(row.senderId);
    if (ids === undefined) this.#incoming.set(row.senderId, new Set([row.msg_id]));
    else ids.add(row.msg_id);
  }

  #untrack(row: StagedRow): void {
    this.#unsaved.delete(row);
    this.#textLength -= row.text.length;
    this.#outbox.delete(row);
    if (row.flags & OUTGOING) {
      const same = this.#outgoing.get(row.msg_id)!.filter((other) => other !== row);
      if (same.length === 0) this.#outgoing.delete(row.msg_id);
      else this.#outgoing.set(row.msg_id, same);
      return;
    }
    if (row.msg_id === "") return;
    const ids = this.#incoming.get(row.senderId)!;
    ids.delete(row.msg_id);
    if (ids.size === 0) this.#incoming.delete(row.senderId);
  }
}

function _inOutbox(row: StagedRow): boolean {
  return row.state === QUEUED || row.pending !== null;
}

function _saved(row: StagedRow): _Saved {
  return [
    row.id,
    row.conversationId,
    row.senderId,
    row.flags,
    row.state,
    row.at,
    row.msg_id,
    row.text,
    row.fingerprintId,
    row.reason,
    row.pending,
  ];
}

// Types of a saved row's columns: "i" integer, "s" string, "I"/"S" the same or null.
const _SAVED_TYPES = "iiiiiissISS";

function _parseBatch(text: string): _Saved[] {
  let batch: unknown;
  try {
    batch = JSON.parse(text);
  } catch {
    throw new DamagedStagedRows("a staged batch is not JSON");
  }
  if (!Array.isArray(batch)) throw new DamagedStagedRows("a staged batch is not a list");
  for (const row of batch) {
    const fits = Array.isArray(row) && row.length === _SAVED_TYPES.length &&
      row.every((value, i) => _fits(value, _SAVED_TYPES[i]));
    if (!fits) throw new DamagedStagedRows("a staged row is not one p2pchat wrote");
  }
  return batch as _Saved[];
}

function _fits(value: unknown, type: string): boolean {
  if (value === null) return type === "I" || type === "S";
  return type.toLowerCase() === "i" ? Number.isSafeInteger(value) : typeof value === "string";
}
