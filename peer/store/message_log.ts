/**
 * The message log: messages stored during a burst, before they reach the tables. Putting a
 * message into the tables costs more than the rest of its trip (rows, indexes, JSON), so while
 * messages keep coming the store only appends them here, as the messages of a commit, one line
 * of JSON per record, and moves them into the tables when the writes pause (fast_writes.ts).
 * A record is written before the commit it belongs to is reported done, so before any ACK for
 * its messages; a record cut short (by a crash, before its commit was done; or by a full disk,
 * after which the store went on in memory) is dropped. The format is in docs/message-store.md,
 * "The message log".
 */
import { isPeerId } from "../protocol/mod.ts";
import { DELIVERED } from "./rows.ts";
import { MAX_TEXT_CHARS } from "./limits.ts";

/** Messages received from one peer in a row, with ids `first`, `first + 1`, ... */
export interface IncomingRecord {
  seq: number;
  in: MessageRun;
}

/** Direct messages we sent to one peer in a row, each `sent` when logged. */
export interface OutgoingRecord {
  seq: number;
  out: MessageRun;
}

/** Messages of ours that moved to `state` (an ACK: delivered). */
export interface StateRecord {
  seq: number;
  state: { state: number; ids: Pairs };
}

/**
 * Numbers as [value, count] pairs: `count` of them in a row, each `step` more than the one before
 * (ids: 1, times: 0). Kept so in memory as on disk: numbers cost more to write than the rest of a
 * message, and a pair is extended in place as messages come.
 */
export type Pairs = [number, number][];

/** Appends `value` to `pairs`, in the last pair when it continues it. */
export function addToPairs(pairs: Pairs, value: number, step: number): void {
  const last = pairs[pairs.length - 1];
  if (last !== undefined && last[0] + last[1] * step === value) last[1]++;
  else pairs.push([value, 1]);
}

export type LogRecord = IncomingRecord | OutgoingRecord | StateRecord;

/** Messages of one conversation, one sender and one way of travelling. */
export interface MessageRun {
  first: number;
  from: string;
  conversation: string;
  encrypted: boolean;
  /** The sender's key fingerprint (incoming, encrypted), else null. */
  fingerprint: string | null;
  /** The messages' times, as pairs of step 0. */
  at: Pairs;
  msgIds: string[];
  texts: string[];
}

/** Where a record was written: its line's bytes in the file, and its seq. */
export interface LogPlace {
  offset: number;
  length: number;
  seq: number;
}

/** What a log file held. */
export interface ReadLog {
  records: LogRecord[];
  /** Bytes after the last complete record: a write a crash or a full disk cut short. */
  tornBytes: number;
  /** What was wrong with the complete lines that are not records p2pchat wrote (skipped). */
  damage?: string;
}

/** The messages of `record` (of `kind` only, when given); undefined for a state record. */
export function runOf(record: LogRecord, kind?: "in" | "out"): MessageRun | undefined {
  if ("in" in record) return kind === "out" ? undefined : record.in;
  if ("out" in record) return kind === "in" ? undefined : record.out;
  return undefined;
}

const encoder = new TextEncoder();
// A state record holds one commit's ACKs: far fewer than this.
const _MAX_IDS = 1_000_000;
const NEWLINE = 0x0a;
// The encoding buffer: what a burst's commit needs, and the most kept after a larger one.
const _BUFFER_BYTES = 64 * 1024;
const _MAX_KEPT_BUFFER = 1024 * 1024;

/** An open log file, appended to by one store. */
export class MessageLog {
  readonly path: string;
  #file: Deno.FsFile;
  // Bytes written since the file was last emptied.
  #size: number;
  // Where a commit's lines are encoded before their one write.
  #buffer = new Uint8Array(_BUFFER_BYTES);

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.#size = size;
  }

  /** Opens (or creates, for the owner alone) the log at `path`, cutting a torn tail off. */
  static open(path: string, keepBytes: number): MessageLog {
    const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
    try {
      if (file.statSync().size > keepBytes) file.truncateSync(keepBytes);
      file.seekSync(keepBytes, Deno.SeekMode.Start);
      return new MessageLog(path, file, keepBytes);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** True when the file holds records. */
  get holdsRecords(): boolean {
    return this.#size > 0;
  }

  /** The file's size in bytes. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends `records`, and says where each went; throws when the disk refuses (the file may then
   * end in a torn record).
   */
  append(records: readonly LogRecord[]): LogPlace[] {
    const places: LogPlace[] = [];
    let used = 0;
    for (const record of records) {
      const line = _line(record);
      // Encoded in place (UTF-8 takes at most 3 bytes per UTF-16 unit): no array per line.
      if (this.#buffer.length - used < line.length * 3) this.#grow(used, used + line.length * 3);
      const length = encoder.encodeInto(line, this.#buffer.subarray(used)).written;
      places.push({ offset: this.#size + used, length, seq: record.seq });
      used += length;
    }
    const bytes = this.#buffer.subarray(0, used);
    for (let written = 0; written < bytes.length;) {
      written += this.#file.writeSync(bytes.subarray(written));
    }
    this.#size += bytes.length;
    // A commit of long texts made it large: it is not kept that large.
    if (this.#buffer.length > _MAX_KEPT_BUFFER) this.#buffer = new Uint8Array(_BUFFER_BYTES);
    return places;
  }

  // Makes room for `needed` bytes, keeping the first `used`.
  #grow(used: number, needed: number): void {
    const larger = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
    larger.set(this.#buffer.subarray(0, used));
    this.#buffer = larger;
  }

  /** The record written at `place` (throws when the file no longer holds it there). */
  read(place: LogPlace): LogRecord {
    const bytes = new Uint8Array(place.length);
    this.#file.seekSync(place.offset, Deno.SeekMode.Start);
    try {
      for (let read = 0; read < bytes.length;) {
        const n = this.#file.readSync(bytes.subarray(read));
        if (n === null) break;
        read += n;
      }
    } finally {
      this.#file.seekSync(this.#size, Deno.SeekMode.Start);
    }
    try {
      const value = JSON.parse(strictDecoder.decode(bytes));
      // The same record: what was written there (the file may have been changed meanwhile).
      if (_problem(value, 0, 1) === undefined && (value as LogRecord).seq === place.seq) {
        return value as LogRecord;
      }
    } catch {
      // Told below.
    }
    throw new Error(
      `The message log "${this.path}" no longer holds its record at byte ${place.offset}`,
    );
  }

  /** Empties the file: every record in it is in the tables. */
  clear(): void {
    this.#file.truncateSync(0);
    this.#file.seekSync(0, Deno.SeekMode.Start);
    this.#size = 0;
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // Closed already.
    }
  }
}

/**
 * Reads the log at `path`; a missing file holds nothing, and one over `maxBytes` (more than
 * p2pchat writes before it empties it) is damage, not read.
 */
export function readLog(path: string, maxBytes: number): ReadLog & { completeBytes: number } {
  const none = { records: [], tornBytes: 0, completeBytes: 0 };
  let bytes: Uint8Array;
  try {
    // Only a plain file: a link could make us write outside the profile, a FIFO would block.
    const info = Deno.lstatSync(path);
    if (!info.isFile) return { ...none, damage: "it is not a plain file" };
    if (info.size > maxBytes) {
      return { ...none, damage: `it holds ${info.size} bytes, more than p2pchat writes` };
    }
    bytes = Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return none;
    throw error;
  }
  const complete = bytes.lastIndexOf(NEWLINE) + 1;
  const parsed = parseLog(bytes.subarray(0, complete));
  return { ...parsed, tornBytes: bytes.length - complete, completeBytes: complete };
}

/**
 * The records of the complete lines of `bytes` (UTF-8, each line ended by "\n"), in order, and
 * what was wrong with the lines that are not records p2pchat writes (skipped).
 */
export function parseLog(bytes: Uint8Array): Omit<ReadLog, "tornBytes"> {
  const records: LogRecord[] = [];
  const check = new _Sequence();
  let firstDamage: string | undefined;
  let damaged = 0;
  let line = 0;
  for (let start = 0; start < bytes.length; line++) {
    let end = bytes.indexOf(NEWLINE, start);
    if (end === -1) end = bytes.length;
    const problem = check.problem(bytes.subarray(start, end));
    start = end + 1;
    // A damaged line is skipped: the records after it are as sound as those before. A file
    // of them is not a log p2pchat wrote: reading it through would only cost.
    if (typeof problem !== "string") records.push(problem);
    else if (++damaged === 1) firstDamage = `line ${line + 1}: ${problem}`;
    else if (damaged > _MAX_DAMAGED_LINES) {
      return {
        records,
        damage:
          `${firstDamage} (and more than ${_MAX_DAMAGED_LINES} damaged lines: the rest was not read)`,
      };
    }
  }
  if (damaged === 0) return { records };
  const more = damaged > 1 ? ` (and ${damaged - 1} more damaged lines)` : "";
  return { records, damage: `${firstDamage}${more}` };
}

/** Ids and seqs stay below this, far from where numbers stop being exact. */
export const LOG_MAX_ID = 2 ** 52;
// Past this many damaged lines, the rest of a file is not read.
const _MAX_DAMAGED_LINES = 1_000;
// The latest time a Date can hold.
const _MAX_TIME = 8.64e15;
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// The lines of one file in order: each must follow the ones before it.
class _Sequence {
  #lastSeq = 0;
  #nextId = 1;
  // The outgoing runs so far, in id order, with which of their messages an ACK named already.
  readonly #outFirst: number[] = [];
  readonly #outAcked: Uint8Array[] = [];
  // Messages those runs hold, and the ids state records named so far (examined, sound or not).
  #sent = 0;
  #named = 0;

  // The record `line` holds, or what is wrong with it.
  problem(line: Uint8Array): LogRecord | string {
    // p2pchat writes no empty line (and a file of them must not cost a parse each).
    if (line.length === 0) return "an empty line";
    let value: unknown;
    try {
      value = JSON.parse(strictDecoder.decode(line));
    } catch {
      return "not JSON in UTF-8";
    }
    const problem = _problem(value, this.#lastSeq, this.#nextId) ?? this.#acknowledge(value);
    if (problem !== undefined) return problem;
    const record = value as LogRecord;
    this.#lastSeq = record.seq;
    const run = runOf(record);
    if (run) this.#nextId = run.first + run.msgIds.length;
    if (run && "out" in record) {
      this.#outFirst.push(run.first);
      this.#outAcked.push(new Uint8Array(run.msgIds.length));
      this.#sent += run.msgIds.length;
    }
    return record;
  }

  // A state record is the ACK of messages of the outgoing runs before it, each acknowledged
  // once. Nothing is marked unless all of it holds. What reading them costs is bounded by the
  // messages of the file: sound records name each sent message once at most, so past twice that
  // (lines that marked much, then failed and were undone, again and again) none is examined.
  #acknowledge(value: unknown): string | undefined {
    const change = (value as { state?: { ids: [number, number][] } }).state;
    if (change === undefined) return undefined;
    const named = change.ids.reduce((sum, [, count]) => sum + count, 0);
    if (this.#named + named > 2 * this.#sent) return "ACKs of more messages than the log sent";
    this.#named += named;
    // What this record marked (run, index), to undo.
    const marked: number[] = [];
    const undo = (problem: string) => {
      for (let i = 0; i < marked.length; i += 2) this.#outAcked[marked[i]][marked[i + 1]] = 0;
      return problem;
    };
    for (const [first, count] of change.ids) {
      let run = this.#runOf(first);
      for (let id = first; id < first + count; id++) {
        // Runs are adjacent when one commit's ACKs reach across two of them.
        if (run !== -1 && id - this.#outFirst[run] >= this.#outAcked[run].length) run++;
        const acked = this.#outAcked[run];
        const index = id - this.#outFirst[run];
        if (run === -1 || acked === undefined || index < 0 || index >= acked.length) {
          return undo("ids of no message sent in this log");
        }
        if (acked[index]) return undo("an ACK of a message acknowledged already");
        acked[index] = 1;
        marked.push(run, index);
      }
    }
    return undefined;
  }

  // The last outgoing run starting at or before `id`; -1 when none does.
  #runOf(id: number): number {
    let low = 0;
    let high = this.#outFirst.length - 1;
    if (high === -1 || this.#outFirst[0] > id) return -1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.#outFirst[middle] <= id) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

// What makes `value` something other than a record p2pchat writes after `lastSeq`, with ids
// from `nextId` on.
function _problem(value: unknown, lastSeq: number, nextId: number): string | undefined {
  if (!_isObject(value)) return "not an object";
  const { seq } = value;
  if (!Number.isSafeInteger(seq) || (seq as number) <= lastSeq || (seq as number) > LOG_MAX_ID) {
    return "seq out of order";
  }
  const kinds = ["in", "out", "state"].filter((kind) => kind in value);
  if (kinds.length !== 1 || Object.keys(value).length !== 2) return "not one kind of record";
  if (kinds[0] === "state") {
    const change = value.state;
    if (!_isObject(change)) return "state is not an object";
    const { state, ids } = change;
    // An ACK is the only change p2pchat logs.
    if (state !== DELIVERED) return "a state p2pchat does not log";
    if (!_isPairs(ids, _MAX_IDS) || !ids.every(([id, n]) => id > 0 && id + n <= LOG_MAX_ID)) {
      return "ids are not ids";
    }
    return undefined;
  }
  const run = value[kinds[0]];
  if (!_isObject(run)) return "messages are not an object";
  const { first, from, conversation, encrypted, fingerprint, at, msgIds, texts } = run;
  if (!Number.isSafeInteger(first) || (first as number) < nextId) return "ids out of order";
  // Peer ids as the wire takes them: a direct message's conversation is a peer.
  if (!isPeerId(from) || !isPeerId(conversation)) return "names that are no peer ids";
  // A received direct message's conversation is its sender.
  if (kinds[0] === "in" && conversation !== from) return "a conversation that is not the sender's";
  if (typeof encrypted !== "boolean") return "encrypted is not true or false";
  // Only a sender's key proved over an encrypted connection has a fingerprint.
  const keyed = kinds[0] === "in" && encrypted === true;
  if (fingerprint !== null && (typeof fingerprint !== "string" || !keyed)) {
    return "a fingerprint where there is none";
  }
  if (!Array.isArray(msgIds) || !Array.isArray(texts)) return "messages are not lists";
  const count = msgIds.length;
  if (!_isPairs(at, count) || at.reduce((sum, [, n]) => sum + n, 0) !== count) {
    return "times do not match the messages";
  }
  if (!at.every(([time]) => time >= 0 && time <= _MAX_TIME)) return "a time no date holds";
  if (count === 0 || texts.length !== count) return "lists of different lengths";
  if ((first as number) + count > LOG_MAX_ID) return "ids out of order";
  if (!msgIds.every((msgId) => typeof msgId === "string" && msgId !== "")) {
    return "a msg_id is not text";
  }
  if (!texts.every((text) => typeof text === "string" && text.length <= MAX_TEXT_CHARS)) {
    return "a text is not text, or too long";
  }
  return undefined;
}

// A record as its line of the file, written as text around its lists (the lists of strings are
// what costs, and JSON.stringify writes a list of strings faster than an object holding it).
function _line(record: LogRecord): string {
  if ("state" in record) {
    const { state, ids } = record.state;
    return `{"seq":${record.seq},"state":{"state":${state},"ids":${JSON.stringify(ids)}}}\n`;
  }
  const run = runOf(record)!;
  const kind = "in" in record ? "in" : "out";
  const names = `"from":${JSON.stringify(run.from)},"conversation":${
    JSON.stringify(run.conversation)
  },"encrypted":${run.encrypted},"fingerprint":${JSON.stringify(run.fingerprint)}`;
  return `{"seq":${record.seq},"${kind}":{"first":${run.first},${names},"at":${
    JSON.stringify(run.at)
  },"msgIds":${JSON.stringify(run.msgIds)},"texts":${JSON.stringify(run.texts)}}}\n`;
}

// True for [value, count] pairs of safe integers, counts positive, at most `most` values.
function _isPairs(value: unknown, most: number): value is [number, number][] {
  if (!Array.isArray(value)) return false;
  let total = 0;
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) return false;
    const [first, count] = pair;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 1) return false;
    total += count;
    if (total > most) return false;
  }
  return true;
}

function _isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
