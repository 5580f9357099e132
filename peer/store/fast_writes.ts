/**
 * Messages stored without touching the tables: a direct message received from a p2pchat peer
 * whose msg_id needs no lookup (counter_marks.ts), and a direct message we send over an open
 * connection. Each goes into a record of the message log (message_log.ts) that its commit
 * writes; from then on only the record's place in the file is kept here (its messages kept alive
 * through a burst would cost the garbage collector more than writing them did), until the writes
 * pause or something else needs the tables; then `ingest` moves the records into the tables,
 * with the ids they were given, as the same messages stored one by one would be. The only change
 * made here is an ACK (sent to delivered) of such a message.
 */
import type { StoredMessage } from "../api.ts";
import {
  addToPairs,
  type LogPlace,
  type LogRecord,
  type MessageRun,
  runOf,
} from "./message_log.ts";
import type { MessageTables } from "./message_tables.ts";
import { DELIVERED, SENT, STATE_NAMES } from "./rows.ts";

// A record not in the tables: itself until it is written, then its place in the log. A run's
// first id, size and text length stay, and an outgoing run's states (the record says `sent`;
// an ACK changes the copy here and adds a state record). Every field is set when it is made:
// one shape for all (V8 drops a shape no live object has at a full collection, and with it the
// optimized code of every function that met it: the next burst would start slow).
interface _Pending {
  record: LogRecord | undefined;
  place: LogPlace | undefined;
  kind: "in" | "out" | "state";
  first: number;
  count: number;
  textLength: number;
  states: number[] | undefined;
}

/** The fast writes not yet in the tables, oldest first. */
export class FastWrites {
  #pending: _Pending[] = [];
  // Records from this offset in `#pending` on are not in the log file yet.
  #unwrittenFrom = 0;
  #messages = 0;
  #textLength = 0;
  #nextSeq: number;

  constructor(nextSeq: number) {
    this.#nextSeq = nextSeq;
  }

  /** The seq the next record gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Messages held. */
  get size(): number {
    return this.#messages;
  }

  /** The length of the texts and msg_ids held (UTF-16 units). */
  get textLength(): number {
    return this.#textLength;
  }

  get hasUnwritten(): boolean {
    return this.#unwrittenFrom < this.#pending.length;
  }

  /** True when records held here are in the log file (not in the tables yet). */
  get holdsWritten(): boolean {
    return this.#unwrittenFrom > 0;
  }

  get isEmpty(): boolean {
    return this.#pending.length === 0;
  }

  /** The lowest id held (Infinity when none is). */
  get firstId(): number {
    return this.#pending.find((pending) => pending.kind !== "state")?.first ?? Infinity;
  }

  /** Keeps a message a claim of `MessageTables` made (received, or ours and `sent`). */
  add(m: StoredMessage): void {
    const pending = this.#runFor(m);
    const run = runOf(pending.record!)!;
    addToPairs(run.at, m.at, 0);
    run.msgIds.push(m.msgId);
    run.texts.push(m.text);
    const length = m.text.length + m.msgId.length;
    pending.count++;
    pending.textLength += length;
    pending.states?.push(SENT);
    this.#messages++;
    this.#textLength += length;
  }

  /**
   * Marks our message `id` delivered; false when it is not held here, or was delivered
   * already.
   */
  deliver(id: number): boolean {
    for (let at = this.#pending.length - 1; at >= 0; at--) {
      const { kind, first, count, states } = this.#pending[at];
      if (kind !== "out") continue;
      const index = id - first;
      if (index >= count) return false; // newer than any held
      if (index < 0) continue;
      if (states![index] !== SENT) return false;
      states![index] = DELIVERED;
      this.#stateChange(DELIVERED, id);
      return true;
    }
    return false;
  }

  /** The records to append to the log now; `wrote` says where they went. */
  unwritten(): LogRecord[] {
    return this.#pending.slice(this.#unwrittenFrom).map((pending) => pending.record!);
  }

  /** The records `unwritten` gave were appended at `places`: only those are kept now. */
  wrote(places: readonly LogPlace[]): void {
    places.forEach((place, i) => {
      const pending = this.#pending[this.#unwrittenFrom + i];
      pending.place = place;
      pending.record = undefined;
    });
    this.#unwrittenFrom += places.length;
  }

  /**
   * Takes the oldest records, of about `maxMessages` messages (one at least), out of here; those
   * written are read back with `readBack`.
   */
  take(maxMessages: number, readBack: (place: LogPlace) => LogRecord): LogRecord[] {
    let end = 0;
    for (let messages = 0; end < this.#pending.length && messages < maxMessages; end++) {
      messages += this.#pending[end].count;
    }
    // Read back before anything is let go: a record that cannot be read stays here.
    const records = this.#pending.slice(0, end).map((pending) =>
      pending.record ?? readBack(pending.place!)
    );
    for (const { count, textLength } of this.#pending.splice(0, end)) {
      this.#messages -= count;
      this.#textLength -= textLength;
    }
    this.#unwrittenFrom = Math.max(0, this.#unwrittenFrom - end);
    return records;
  }

  // The record `m` joins: the newest one when it is not written, of the same kind, sender,
  // conversation and way of travelling, and `m.id` comes next in it; else a new one.
  #runFor(m: StoredMessage): _Pending {
    const kind = m.outgoing ? "out" : "in";
    const fingerprint = m.fingerprint ?? null;
    const newest = this.#pending[this.#pending.length - 1];
    const run = newest?.record && runOf(newest.record, kind);
    if (
      run && run.from === m.from && run.conversation === m.conversation &&
      run.encrypted === m.encrypted && run.fingerprint === fingerprint &&
      newest.first + newest.count === m.id
    ) return newest;
    const fresh: MessageRun = {
      first: m.id,
      from: m.from,
      conversation: m.conversation,
      encrypted: m.encrypted,
      fingerprint,
      at: [],
      msgIds: [],
      texts: [],
    };
    const seq = this.#nextSeq++;
    const record: LogRecord = kind === "in" ? { seq, in: fresh } : { seq, out: fresh };
    const pending: _Pending = {
      record,
      place: undefined,
      kind,
      first: m.id,
      count: 0,
      textLength: 0,
      states: kind === "out" ? [] : undefined,
    };
    this.#pending.push(pending);
    return pending;
  }

  #stateChange(state: number, id: number): void {
    const newest = this.#pending[this.#pending.length - 1];
    const record = newest?.record;
    if (record && "state" in record && record.state.state === state) {
      addToPairs(record.state.ids, id, 1);
      return;
    }
    this.#pending.push({
      record: { seq: this.#nextSeq++, state: { state, ids: [[id, 1]] } },
      place: undefined,
      kind: "state",
      first: id,
      count: 0,
      textLength: 0,
      states: undefined,
    });
  }
}

/**
 * Moves `records` into the tables, in order, with their ids, and remembers the last one's seq
 * as moved (in the same transaction). With `checkDuplicates` (a log read at start, which anyone
 * with the file could have written), a received message already stored is left out.
 */
export function ingest(
  tables: MessageTables,
  records: readonly LogRecord[],
  checkDuplicates = false,
): void {
  for (const record of records) {
    if ("state" in record) {
      const state = STATE_NAMES[record.state.state];
      for (const [first, count] of record.state.ids) {
        for (let id = first; id < first + count; id++) tables.setState(id, state);
      }
      continue;
    }
    const outgoing = "out" in record;
    const run = outgoing ? record.out : record.in;
    // The time of message `i`: the pair of `at` that holds it.
    let pair = 0;
    let pairEnd = run.at[0][1];
    const { from, conversation, encrypted } = run;
    const fingerprint = run.fingerprint ?? undefined;
    const [kind, state] = ["direct", "sent"] as const;
    for (let i = 0; i < run.msgIds.length; i++) {
      if (i === pairEnd) pairEnd += run.at[++pair][1];
      const msgId = run.msgIds[i];
      const text = run.texts[i];
      const at = run.at[pair][0];
      // Made as the messenger makes them, field for field (one shape: see _Pending).
      if (outgoing) {
        const message = { msgId, kind, from, conversation, text, at, encrypted, state };
        tables.addOutgoing(message, run.first + i);
      } else {
        const message = { msgId, kind, from, conversation, text, at, encrypted, fingerprint };
        tables.addIncoming(message, run.first + i, checkDuplicates);
      }
    }
  }
  if (records.length > 0) tables.setLogMark(records[records.length - 1].seq);
}
