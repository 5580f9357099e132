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

// The highest msg_id stored with one prefix, changed in place (no Map.set per message).
interface _Mark {
  top: string;
}

/** The highest stored msg_id per sender and prefix. */
export class CounterMarks {
  // sender -> prefix -> highest msg_id.
  readonly #marks = new Map<number, Map<string, _Mark>>();
  #count = 0;
  // The mark used last, with its sender and prefix: a burst from one connection finds its mark
  // without slicing and hashing a new prefix for every message (that cost more than the rest).
  #last?: { sender: number; prefix: string; mark: _Mark };
  readonly #highest: StatementSync;

  constructor(db: DatabaseSync) {
    this.#highest = db.prepare(
      `SELECT max(msg_id) AS top FROM messages
       WHERE sender = ? AND msg_id >= ? AND msg_id <= ? AND flags & 1 = 0`,
    );
  }

  /** True when `msgId` from `senderId` is newer than every one stored: not a duplicate. */
  isNew(senderId: number, msgId: string): boolean {
    const mark = this.#markOf(senderId, msgId);
    return mark !== undefined && msgId > mark.top;
  }

  /**
   * True when `msgId` from `senderId` is newer than every one stored, and then its mark is
   * raised to it: `isNew` and `note` together, for a message stored without a lookup.
   */
  claim(senderId: number, msgId: string): boolean {
    const mark = this.#markOf(senderId, msgId);
    if (mark === undefined || msgId <= mark.top) return false;
    mark.top = msgId;
    return true;
  }

  // The mark of `msgId`'s prefix from `senderId`; undefined when it is no counted id, or none
  // is made.
  #markOf(senderId: number, msgId: string): _Mark | undefined {
    const last = this.#last;
    if (
      last !== undefined && last.sender === senderId && msgId.length === _ID_CHARS &&
      msgId.startsWith(last.prefix)
    ) return _countedFrom(msgId, _PREFIX_CHARS) ? last.mark : undefined;
    if (!_counted(msgId)) return undefined;
    const prefix = msgId.slice(0, _PREFIX_CHARS);
    const mark = this.#marks.get(senderId)?.get(prefix);
    if (mark !== undefined) this.#last = { sender: senderId, prefix, mark };
    return mark;
  }

  /**
   * Records that `msgId` from `senderId` is being stored; `staged` says whether messages of
   * that sender are staged (and so not in the table a new mark would read), asked only when a
   * mark is to be made.
   */
  note(senderId: number, msgId: string, staged: { holdsFrom(senderId: number): boolean }): void {
    const known = this.#markOf(senderId, msgId);
    if (known !== undefined) {
      if (msgId > known.top) known.top = msgId;
      return;
    }
    if (!_counted(msgId) || staged.holdsFrom(senderId)) return;
    const prefix = msgId.slice(0, _PREFIX_CHARS);
    const row = this.#highest.get(senderId, `${prefix}000000000000`, `${prefix}ffffffffffff`) as {
      top: string | null;
    };
    if (this.#count >= _MAX_MARKS) {
      this.#marks.clear();
      this.#last = undefined;
      this.#count = 0;
    }
    let prefixes = this.#marks.get(senderId);
    if (prefixes === undefined) this.#marks.set(senderId, prefixes = new Map());
    prefixes.set(prefix, { top: row.top !== null && row.top > msgId ? row.top : msgId });
    this.#count++;
  }
}

// A prefix of lowercase hex digits and "-", and 12 lowercase hex digits (read by char code: a
// RegExp costs more per message). Only such characters: SQLite's max() reads a text up to a
// NUL, so a prefix holding one would make a mark lower than what is stored.
function _counted(msgId: string): boolean {
  return msgId.length === _ID_CHARS && _countedFrom(msgId, 0);
}

// The characters of `msgId` from `start` on are those of a counted id.
function _countedFrom(msgId: string, start: number): boolean {
  for (let i = start; i < _ID_CHARS; i++) {
    const c = msgId.charCodeAt(i);
    const hex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
    if (!hex && (i >= _PREFIX_CHARS || c !== 45)) return false;
  }
  return true;
}
