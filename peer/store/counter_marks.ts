/**
 * The duplicate check's shortcut for p2pchat peers. Their msg_ids are a prefix chosen per
 * connection and a 12-digit hex counter (peer/protocol/send_ids.ts), so a message whose id is
 * above the highest stored with its prefix cannot be a duplicate; only the others (a retry, a
 * pyp2p peer's UUID) need the lookup, which through node:sqlite costs more than storing does.
 *
 * A mark is at least every incoming msg_id stored from its sender with its prefix: it is read
 * from the table when made, and raised with every message stored after. It is only made while
 * none of the sender's messages are staged (the table would not show those).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

const _PREFIX_CHARS = 24;
const _ID_CHARS = _PREFIX_CHARS + 12;
// Marks kept; past this they are dropped (and made again as messages come).
const _MAX_MARKS = 10_000;

/** The highest stored msg_id per sender and prefix. */
export class CounterMarks {
  // sender -> prefix -> highest msg_id.
  readonly #marks = new Map<number, Map<string, string>>();
  #count = 0;
  readonly #highest: StatementSync;

  constructor(db: DatabaseSync) {
    this.#highest = db.prepare(
      `SELECT max(msg_id) AS top FROM messages
       WHERE sender = ? AND msg_id >= ? AND msg_id <= ? AND flags & 1 = 0`,
    );
  }

  /** True when `msgId` from `senderId` is newer than every one stored: not a duplicate. */
  isNew(senderId: number, msgId: string): boolean {
    if (!_counted(msgId)) return false;
    const top = this.#marks.get(senderId)?.get(msgId.slice(0, _PREFIX_CHARS));
    return top !== undefined && msgId > top;
  }

  /**
   * Records that `msgId` from `senderId` is being stored; `staged` says whether messages of
   * that sender are staged (and so not in the table a new mark would read), asked only when a
   * mark is to be made.
   */
  note(senderId: number, msgId: string, staged: { holdsFrom(senderId: number): boolean }): void {
    if (!_counted(msgId)) return;
    const prefix = msgId.slice(0, _PREFIX_CHARS);
    let prefixes = this.#marks.get(senderId);
    const top = prefixes?.get(prefix);
    if (top !== undefined) {
      if (msgId > top) prefixes!.set(prefix, msgId);
      return;
    }
    if (staged.holdsFrom(senderId)) return;
    const row = this.#highest.get(senderId, `${prefix}000000000000`, `${prefix}ffffffffffff`) as {
      top: string | null;
    };
    if (this.#count >= _MAX_MARKS) {
      this.#marks.clear();
      this.#count = 0;
      prefixes = undefined;
    }
    if (prefixes === undefined) this.#marks.set(senderId, prefixes = new Map());
    prefixes.set(prefix, row.top !== null && row.top > msgId ? row.top : msgId);
    this.#count++;
  }
}

// A prefix of lowercase hex digits and "-", and 12 lowercase hex digits (read by char code: a
// RegExp costs more per message). Only such characters: SQLite's max() reads a text up to a
// NUL, so a prefix holding one would make a mark lower than what is stored.
function _counted(msgId: string): boolean {
  if (msgId.length !== _ID_CHARS) return false;
  for (let i = 0; i < _ID_CHARS; i++) {
    const c = msgId.charCodeAt(i);
    const hex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
    if (!hex && (i >= _PREFIX_CHARS || c !== 45)) return false;
  }
  return true;
}
