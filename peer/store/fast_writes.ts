/**
 * Messages stored without touching the tables: a direct message received from a p2pchat peer
 * whose msg_id needs no lookup (counter_marks.ts), and a direct message we send over an open
 * connection. Each is kept here, in the record of the message log (message_log.ts) its commit
 * writes, until the writes pause or something else needs the tables; then `ingest` moves the
 * records into the tables, with the ids they were given, as the same messages stored one by one
 * would be. The only change made here is an ACK (sent to delivered) of such a message.
 */
import type { MessageState, StoredMessage } from "../api.ts";
import { type LogRecord, type MessageRun, runOf } from "./message_log.ts";
import type { MessageTables } from "./message_tables.ts";
import { DELIVERED, SENT } from "./rows.ts";

// A record kept in memory, with the states of an outgoing run's messages (the record says
// `sent`; an ACK changes the copy here and adds a state record).
interface _Pending {
  record: LogRecord;
  states?: number[];
}

const _STATE_NAMES: MessageState[] = ["queued", "sent", "delivered", "read", "failed"];

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

  /** Keeps a message a claim of `MessageTables` made (received, or ours and `sent`). */
  add(m: StoredMessage): void {
    const kind = m.outgoing ? "out" : "in";
    const run = this.#runFor(
      kind,
      m.id,
      m.from,
      m.conversation,
      m.encrypted,
      m.fingerprint ?? null,
    );
    run.at.push(m.at);
    run.msgIds.push(m.msgId);
    run.texts.push(m.text);
    this.#messages++;
    this.#textLength += m.text.length + m.msgId.length;
    if (m.outgoing) this.#pending[this.#pending.length - 1].states!.push(SENT);
  }

  get isEmpty(): boolean {
    return this.#pending.length === 0;
  }

  /** The lowest id held (Infinity when none is). */
  get firstId(): number {
    for (const { record } of this.#pending) {
      const run = runOf(record);
      if (run) return run.first;
    }
    return Infinity;
  }

  /**
   * Marks our message `id` delivered; the message, or undefined when it is not held here or
   * was delivered already.
   */
  deliver(id: number): StoredMessage | undefined {
    for (let at = this.#pending.length - 1; at >= 0; at--) {
      const { record, states } = this.#pending[at];
      if (!("out" in record)) continue;
      const run = record.out;
      const index = id - run.first;
      if (index >= run.msgIds.length) return undefined; // newer than any held
      if (index < 0) continue;
      if (states![index] !== SENT) return undefined;
      states![index] = DELIVERED;
      this.#stateChange(DELIVERED, id);
      return _message(run, index, true, DELIVERED);
    }
    return undefined;
  }

  /** The records to append to the log now (they count as written from here on). */
  unwritten(): LogRecord[] {
    const records = this.#pending.slice(this.#unwrittenFrom).map((pending) => pending.record);
    this.#unwrittenFrom = this.#pending.length;
    return records;
  }

  /** Takes the oldest records, of about `maxMessages` messages (one at least), out of here. */
  take(maxMessages = Infinity): LogRecord[] {
    let end = 0;
    for (let messages = 0; end < this.#pending.length && messages < maxMessages; end++) {
      const run = runOf(this.#pending[end].record);
      if (run === undefined) continue;
      messages += run.msgIds.length;
      this.#messages -= run.msgIds.length;
      for (let i = 0; i < run.msgIds.length; i++) {
        this.#textLength -= run.texts[i].length + run.msgIds[i].length;
      }
    }
    const taken = this.#pending.splice(0, end).map((pending) => pending.record);
    this.#unwrittenFrom = Math.max(0, this.#unwrittenFrom - end);
    return taken;
  }

  // The run `id` joins: the newest record when it is of the same kind, sender, conversation
  // and way of travelling, not written, and `id` comes next in it; else a new one.
  #runFor(
    kind: "in" | "out",
    id: number,
    from: string,
    conversation: string,
    encrypted: boolean,
    fingerprint: string | null,
  ): MessageRun {
    const last = this.#pending.length - 1;
    const newest = last >= this.#unwrittenFrom ? this.#pending[last].record : undefined;
    const run = newest === undefined ? undefined : runOf(newest, kind);
    if (
      run && run.from === from && run.conversation === conversation &&
      run.encrypted === encrypted && run.fingerprint === fingerprint &&
      run.first + run.msgIds.length === id
    ) return run;
    const fresh: MessageRun = {
      first: id,
      from,
      conversation,
      encrypted,
      fingerprint,
      at: [],
      msgIds: [],
      texts: [],
    };
    const seq = this.#nextSeq++;
    const record: LogRecord = kind === "in" ? { seq, in: fresh } : { seq, out: fresh };
    this.#pending.push(kind === "in" ? { record } : { record, states: [] });
    return fresh;
  }

  #stateChange(state: number, id: number): void {
    const last = this.#pending.length - 1;
    const newest = last >= this.#unwrittenFrom ? this.#pending[last].record : undefined;
    if (newest && "state" in newest && newest.state.state === state) {
      newest.state.ids.push(id);
      return;
    }
    this.#pending.push({ record: { seq: this.#nextSeq++, state: { state, ids: [id] } } });
  }
}

function _message(run: MessageRun, index: number, outgoing: boolean, state: number): StoredMessage {
  const message: StoredMessage = {
    id: run.first + index,
    msgId: run.msgIds[index],
    conversation: run.conversation,
    kind: "direct",
    from: run.from,
    outgoing,
    text: run.texts[index],
    at: run.at[index],
    state: _STATE_NAMES[state],
    encrypted: run.encrypted,
  };
  if (run.fingerprint !== null) message.fingerprint = run.fingerprint;
  return message;
}

/**
 * Moves `records` into the tables, in order, with their ids, and remembers the last one's seq
 * as moved (in the same transaction).
 */
export function ingest(tables: MessageTables, records: readonly LogRecord[]): void {
  for (const record of records) {
    if ("state" in record) {
      const state = _STATE_NAMES[record.state.state];
      for (const id of record.state.ids) tables.setState(id, state);
      continue;
    }
    const outgoing = "out" in record;
    const run = outgoing ? record.out : record.in;
    for (let i = 0; i < run.msgIds.length; i++) {
      const message = {
        msgId: run.msgIds[i],
        kind: "direct" as const,
        from: run.from,
        conversation: run.conversation,
        text: run.texts[i],
        at: run.at[i],
        encrypted: run.encrypted,
      };
      if (outgoing) tables.addOutgoing({ ...message, state: "sent" }, run.first + i);
      else {
        tables.addIncoming(
          run.fingerprint === null ? message : { ...message, fingerprint: run.fingerprint },
          run.first + i,
        );
      }
    }
  }
  if (records.length > 0) tables.setLogMark(records[records.length - 1].seq);
}
