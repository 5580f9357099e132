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
import { idKey } from "../../lib/id_key.ts";
import { DELIVERED, FAILED, OUTGOING, QUEUED, READ } from "./rows.ts";
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

/** A staged row of which only the state changed since it was saved: id and new state. */
type _SavedState = [id: number, state: number];

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
  // Saving: the rows from `#unsavedFrom` on are new since the last save; `#changedRows` are older
  // ones changed since, and `#changedStates` older ones of which only the state changed (saved
  // as a short entry: an ACK changes nearly every message we send).
  #unsavedFrom = 0;
  readonly #changedRows = new Set<StagedRow>();
  readonly #changedStates = new Set<StagedRow>();
  // The lookups by msg_id (incoming by sender, for the duplicate check; outgoing, for receipts)
  // are made when first asked, up to the newest row, not as rows come: most bursts are never
  // looked up (a p2pchat sender's counted ids skip the check, see counter_marks.ts), and making
  // them cost more than the rest of staging a row. `#indexedTo` is the offset in `#rows` they
  // cover. Nested by sender rather than one joined key: a msg_id keeps its hash.
  #indexedTo = 0;
  readonly #incoming = new Map<number, Set<string>>();
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
    let batches: { batch: unknown; last_id: unknown; rows: unknown }[];
    try {
      batches = db.prepare("SELECT batch, last_id, rows FROM staged ORDER BY batch").all() as {
        batch: unknown;
        last_id: unknown;
        rows: unknown;
      }[];
    } catch (error) {
      // node:sqlite refuses integers past 2^53.
      if (error instanceof RangeError) {
        throw new DamagedStagedRows("a staged batch number is too large");
      }
      throw error;
    }
    for (const { batch, last_id: lastId, rows } of batches) {
      if (!Number.isSafeInteger(lastId) || typeof rows !== "string") {
        throw new DamagedStagedRows("a staged batch is not one p2pchat wrote");
      }
      this.#batches.push({ batch: batch as number, lastId: lastId as number });
      for (const saved of _parseBatch(rows)) {
        if (saved[0] < 1 || (saved.length === 2 && !_isState(saved[1]))) {
          throw new DamagedStagedRows(`staged message ${saved[0]} is not one p2pchat wrote`);
        }
        if (saved[0] <= this.#mergedUpto) continue;
        if (saved.length === _SAVED_TYPES.length) {
          copies.set(saved[0], saved as _Saved);
          continue;
        }
        // A new state for a row that an earlier batch holds.
        const copy = copies.get(saved[0]);
        if (copy === undefined) {
          throw new DamagedStagedRows(
            `staged message ${saved[0]} changes state before it is saved`,
          );
        }
        copy[4] = saved[1];
      }
    }
    // An id the table holds already, or one not handed out yet, is damage, not a message.
    // (Looked up by id: reading every id above `merged_upto` took a second in a table whose
    // mark was behind.)
    const inTable = new Set(
      (db.prepare("SELECT id FROM messages WHERE id IN (SELECT value FROM json_each(?))")
        .all(JSON.stringify([...copies.keys()])) as { id: number }[]).map((row) => row.id),
    );
    const loaded = [...copies.values()].sort((a, b) => a[0] - b[0]).map((saved) => {
      const [id, conversationId, senderId, flags, state, at, msgId, text, fingerprintId] = saved;
      if (inTable.has(id) || id >= nextId) {
        throw new DamagedStagedRows(`staged message ${id} is already stored, or beyond next_id`);
      }
      // A message we received is delivered or read: no other state is ours to give it.
      const incoming = !(flags & OUTGOING);
      if (!_isState(state) || (incoming && state !== DELIVERED && state !== READ)) {
        throw new DamagedStagedRows(`staged message ${id} has a state p2pchat never gives`);
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
    // Saved already.
    this.#unsavedFrom = this.#rows.length;
    return loaded;
  }

  get size(): number {
    return this.#rows.length - this.#head;
  }

  /** The highest staged id (0 when none is). */
  get newestId(): number {
    return this.size === 0 ? 0 : this.#rows[this.#rows.length - 1].id;
  }

  /** The length of the staged texts and msg_ids together (UTF-16 units). */
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
    this.#index();
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
  }

  /** `row` changed in memory; the next save writes it again. */
  changed(row: StagedRow): void {
    // A row added since the last save is written by it anyway.
    if (row.id < this.#firstUnsavedId) this.#changedRows.add(row);
    if (_inOutbox(row)) this.#outbox.add(row);
  }

  /** Only the state of `row` changed in memory; the next save writes the new state. */
  stateChanged(row: StagedRow): void {
    if (row.id < this.#firstUnsavedId && !this.#changedRows.has(row)) {
      this.#changedStates.add(row);
    }
    if (_inOutbox(row)) this.#outbox.add(row);
  }

  /** True when an incoming row from `senderId` with `msgId` is staged. */
  holds(senderId: number, msgId: string): boolean {
    this.#index();
    return this.#incoming.get(senderId)?.has(idKey(msgId)) ?? false;
  }

  /** True when incoming rows from `senderId` are staged. */
  holdsFrom(senderId: number): boolean {
    this.#index();
    return this.#incoming.has(senderId);
  }

  /**
   * Saves the rows added or changed since the last save, as one row; returns the length of its
   * text (what the WAL grows by, about).
   */
  save(): number {
    const rows: (_Saved | _SavedState)[] = [];
    let lastId = 0;
    for (const row of this.#changedRows) {
      rows.push(_saved(row));
      if (row.id > lastId) lastId = row.id;
    }
    for (const row of this.#changedStates) {
      if (this.#changedRows.has(row)) continue;
      rows.push([row.id, row.state]);
      if (row.id > lastId) lastId = row.id;
    }
    this.#changedRows.clear();
    this.#changedStates.clear();
    for (let at = this.#unsavedFrom; at < this.#rows.length; at++) {
      rows.push(_saved(this.#rows[at]));
    }
    if (this.#unsavedFrom < this.#rows.length) lastId = this.#rows[this.#rows.length - 1].id;
    this.#unsavedFrom = this.#rows.length;
    if (rows.length === 0) return 0;
    const text = JSON.stringify(rows);
    const { lastInsertRowid } = this.#save.run(lastId, text);
    this.#batches.push({ batch: Number(lastInsertRowid), lastId });
    return text.length;
  }

  /**
   * Moves the oldest rows into `messages`, at most `maxRows`, and no more once `maxText` of text
   * is taken (one row at least); returns how many.
   */
  merge(maxRows: number, maxText = Infinity): number {
    let end = this.#head;
    for (let text = 0; end < this.#rows.length && end - this.#head < maxRows; end++) {
      if (text >= maxText) break;
      text += _length(this.#rows[end]);
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
    moving.forEach((row, i) => {
      this.#untrack(row, this.#head + i);
      // Let the row go now (its text may be long), not when the front is dropped.
      this.#rows[this.#head + i] = _MERGED;
    });
    this.#head += moving.length;
    // Rows moved before a save or a lookup reached them are in the table instead.
    this.#unsavedFrom = Math.max(this.#unsavedFrom, this.#head);
    this.#indexedTo = Math.max(this.#indexedTo, this.#head);
    // Drop the merged front now and then (not on every step: that copies the whole array).
    if (this.#head > 4096 && this.#head * 2 > this.#rows.length) {
      this.#rows = this.#rows.slice(this.#head);
      this.#unsavedFrom -= this.#head;
      this.#indexedTo -= this.#head;
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

  // The id of the oldest row not saved yet (higher than every id when all are saved).
  get #firstUnsavedId(): number {
    return this.#rows[this.#unsavedFrom]?.id ?? Infinity;
  }

  #track(row: StagedRow): void {
    this.#rows.push(row);
    this.#textLength += _length(row);
    if (_inOutbox(row)) this.#outbox.add(row);
  }

  // Brings the lookups by msg_id up to the newest row.
  #index(): void {
    for (; this.#indexedTo < this.#rows.length; this.#indexedTo++) {
      const row = this.#rows[this.#indexedTo];
      if (row.flags & OUTGOING) {
        const same = this.#outgoing.get(row.msg_id);
        if (same === undefined) this.#outgoing.set(row.msg_id, [row]);
        else same.push(row);
      } else if (row.msg_id !== "") {
        const ids = this.#incoming.get(row.senderId);
        if (ids === undefined) this.#incoming.set(row.senderId, new Set([idKey(row.msg_id)]));
        else ids.add(idKey(row.msg_id));
      }
    }
  }

  // Called for the rows at the front as they move into the table.
  #untrack(row: StagedRow, at: number): void {
    this.#changedRows.delete(row);
    this.#changedStates.delete(row);
    this.#textLength -= _length(row);
    this.#outbox.delete(row);
    if (at >= this.#indexedTo) return;
    if (row.flags & OUTGOING) {
      const same = this.#outgoing.get(row.msg_id)!.filter((other) => other !== row);
      if (same.length === 0) this.#outgoing.delete(row.msg_id);
      else this.#outgoing.set(row.msg_id, same);
      return;
    }
    if (row.msg_id === "") return;
    const ids = this.#incoming.get(row.senderId)!;
    ids.delete(idKey(row.msg_id));
    if (ids.size === 0) this.#incoming.delete(row.senderId);
  }
}

// What stands in the slots before `#head` (never read) once their rows are merged.
const _MERGED: StagedRow = Object.freeze({
  id: 0,
  flags: 0,
  state: 0,
  at: 0,
  msg_id: "",
  text: "",
  reason: null,
  pending: null,
  conversation: "",
  sender: "",
  fingerprint: null,
  conversationId: 0,
  senderId: 0,
  fingerprintId: null,
});

// What a row's strings hold, counted against `MAX_STAGED_TEXT` (a msg_id may be 32 KB long).
function _length(row: StagedRow): number {
  return row.text.length + row.msg_id.length;
}

function _isState(state: number): boolean {
  return state >= QUEUED && state <= FAILED;
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
const _STATE_TYPES = "ii";

function _parseBatch(text: string): (_Saved | _SavedState)[] {
  let batch: unknown;
  try {
    batch = JSON.parse(text);
  } catch {
    throw new DamagedStagedRows("a staged batch is not JSON");
  }
  if (!Array.isArray(batch)) throw new DamagedStagedRows("a staged batch is not a list");
  for (const row of batch) {
    const types = Array.isArray(row) && row.length === 2 ? _STATE_TYPES : _SAVED_TYPES;
    const fits = Array.isArray(row) && row.length === types.length &&
      row.every((value, i) => _fits(value, types[i]));
    if (!fits) throw new DamagedStagedRows("a staged row is not one p2pchat wrote");
  }
  return batch as (_Saved | _SavedState)[];
}

function _fits(value: unknown, type: string): boolean {
  if (value === null) return type === "I" || type === "S";
  return type.toLowerCase() === "i" ? Number.isSafeInteger(value) : typeof value === "string";
}
