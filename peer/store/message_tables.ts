/**
 * The messages of one database connection, with what is cheaper kept in memory than asked of
 * SQLite on every message: each conversation's newest id, read mark, unread and queued counts,
 * the interned strings, the total and the next id. New messages are staged (staged_rows.ts)
 * until `mergeStep()` moves them into the table; every read takes the staged rows where they
 * are (they are newer than any row of the table), so no read waits for a merge. Every method
 * runs inside the transaction `MessageStore` opened; `beforeCommit()` writes what changed.
 *
 * Methods are deterministic in their arguments and the committed state, so that the batch of a
 * failed commit can be replayed onto a copy in memory with the same ids (message_store.ts).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { P2pError } from "../../lib/errors.ts";
import {
  type ConversationSummary,
  MAX_WAITING_LISTED,
  type MessagePage,
  type MessageState,
  type StoredMessage,
  TRANSFER_LINE_PREFIX,
} from "../api.ts";
import { ContactBook } from "./contacts.ts";
import {
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
  MAX_RECEIPT_IDS,
  MAX_STAGED_TEXT,
  MAX_TEXT_CHARS,
  MERGE_STEP_ROWS,
  MERGE_STEP_TEXT,
  NEWEST_UNACKNOWLEDGED,
  PRUNE_STEP_ROWS,
} from "./limits.ts";
import {
  DELIVERED,
  ENCRYPTED,
  FAILED,
  mayMove,
  MESSAGE_SELECT,
  type MessageRow,
  OUTGOING,
  parsePending,
  pendingColumn,
  PUB,
  QUEUED,
  READ,
  SENT,
  STATE_CODES,
  storableText,
  toMessage,
} from "./rows.ts";
import { ReceiptsDue } from "./receipts_due.ts";
import { SearchIndex } from "./search_index.ts";
import { CounterMarks } from "./counter_marks.ts";
import { StagedRows } from "./staged_rows.ts";
import type { NewIncoming, NewOutgoing, PageOptions } from "./types.ts";

/** Messages the outbox holds (queued, or waiting for room members), through their index. */
const OUTBOX_SELECT = `${
  MESSAGE_SELECT.replace("FROM messages m", "FROM messages m INDEXED BY messages_outbox")
} WHERE (m.state = ${QUEUED} OR m.pending IS NOT NULL)`;

/** How far the store may grow. */
export interface TableLimits {
  /** 0 keeps messages forever. */
  retentionMs: number;
  maxMessages: number;
  maxQueued: number;
  maxQueuedPerConversation: number;
  /** Staged rows past this many are merged at each commit (as many as the commit added). */
  maxStaged: number;
  /** The message log's size past which all of it moves in. */
  maxLogBytes: number;
}

interface _Conversation {
  id: number;
  name: string;
  /** The newest message; 0 once the conversation is empty. */
  lastId: number;
  /** Every incoming message up to this id is read. */
  readUpto: number;
  unread: number;
  queued: number;
}

// Interned strings are looked up in these caches first; a flood of distinct senders only
// empties the cache, it cannot grow memory.
const _CACHE_LIMIT = 10_000;

// Characters of staged rows per page of the WAL, about.
const _PAGE_CHARS = 4096;

// The reason of a SEND left unconfirmed by a plain pyp2p peer.
const UNCONFIRMED = "unconfirmed";

// Rows `prune()` reads per query while looking for what to delete.
const _PRUNE_READ_ROWS = 256;

/** The tables of one connection. */
export class MessageTables {
  readonly contacts: ContactBook;
  readonly receiptsDue: ReceiptsDue;
  readonly search: SearchIndex;
  readonly #db: DatabaseSync;
  readonly #limits: TableLimits;
  readonly #byName = new Map<string, _Conversation>();
  readonly #byId = new Map<number, _Conversation>();
  readonly #dirty = new Set<_Conversation>();
  readonly #peerIds = new Map<string, number>();
  readonly #fingerprintIds = new Map<string, number>();
  readonly #ownSenders = new Set<number>();
  readonly #staged: StagedRows;
  readonly #marks: CounterMarks;
  #nextId: number;
  #savedNextId: number;
  #total: number;
  #queuedTotal = 0;
  // Where the search for strangers' messages to prune goes on (see #oldestFromStrangers).
  #strangersCursor = 0;
  // Rows of the table written in this batch (see beforeCommit).
  #rowWrites = 0;
  readonly #sql: Record<string, StatementSync>;
  readonly #stranger = (peerId: string) => !this.contacts.has(peerId);

  constructor(db: DatabaseSync, limits: TableLimits) {
    this.#db = db;
    this.#limits = limits;
    this.contacts = new ContactBook(db);
    this.receiptsDue = new ReceiptsDue(db);
    this.search = new SearchIndex(db);
    this.#staged = new StagedRows(db);
    this.#marks = new CounterMarks(db);
    const prepare = (sql: string) => db.prepare(sql);
    this.#sql = {
      duplicate: prepare(
        "SELECT 1 AS found FROM messages WHERE sender = ? AND msg_id = ? AND flags & 1 = 0 LIMIT 1",
      ),
      own: prepare(
        "SELECT id, conversation FROM messages WHERE sender = ? AND msg_id = ? AND flags & 1 = 1",
      ),
      byId: prepare(`${MESSAGE_SELECT} WHERE m.id = ?`),
      older: prepare(
        `${MESSAGE_SELECT} WHERE m.conversation = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`,
      ),
      newer: prepare(
        `${MESSAGE_SELECT} WHERE m.conversation = ? AND m.id > ? AND m.id < ?
         ORDER BY m.id LIMIT ?`,
      ),
      unread: prepare(
        `${MESSAGE_SELECT} WHERE m.conversation = ? AND m.id > ? AND m.id <= ?
         AND m.flags & 1 = 0 AND m.state = ${DELIVERED} ORDER BY m.id`,
      ),
      markRead: prepare(
        `UPDATE messages SET state = ${READ} WHERE conversation = ? AND id > ? AND id <= ?
         AND flags & 1 = 0 AND state = ${DELIVERED}`,
      ),
      move: prepare("UPDATE messages SET state = ?, reason = ?, pending = ? WHERE id = ?"),
      pending: prepare("UPDATE messages SET pending = ? WHERE id = ?"),
      encrypted: prepare(
        `UPDATE messages SET flags = (flags & ~${ENCRYPTED}) | ? WHERE id = ? AND flags & 1 = 1`,
      ),
      // The outbox queries go through the partial index of held messages (their WHERE repeats
      // its condition): a full scan of a million messages costs over 100 ms, and a remote can
      // make us run them (a RECEIPT, a connection).
      queued: prepare(`${OUTBOX_SELECT} AND m.state = ${QUEUED} ORDER BY m.id`),
      queuedFor: prepare(
        `${OUTBOX_SELECT} AND m.state = ${QUEUED} AND m.conversation = ?
         AND m.flags & ${PUB} = 0 ORDER BY m.id`,
      ),
      pendingFor: prepare(
        `${OUTBOX_SELECT} AND m.pending IS NOT NULL AND json_valid(m.pending)
         AND EXISTS (SELECT 1 FROM json_each(m.pending) WHERE value = ?) ORDER BY m.id`,
      ),
      outboxBefore: prepare(`${OUTBOX_SELECT} AND m.at < ? ORDER BY m.id`),
      waiting: prepare(
        `${OUTBOX_SELECT} AND m.pending IS NOT NULL ORDER BY m.id LIMIT ${MAX_WAITING_LISTED}`,
      ),
      pruneCandidates: prepare(
        `SELECT id, at, state = ${QUEUED} OR pending IS NOT NULL AS held FROM messages
         WHERE id > ? ORDER BY id LIMIT ${_PRUNE_READ_ROWS}`,
      ),
      deleteIds: prepare(
        `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))
         RETURNING id, conversation, flags, state`,
      ),
      lastOf: prepare("SELECT max(id) AS id FROM messages WHERE conversation = ?"),
      strangersAfter: prepare(
        `SELECT id FROM messages WHERE id > ? AND flags & 1 = 0 AND sender NOT IN
         (SELECT p.id FROM peers p JOIN contacts c ON c.peer_id = p.peer_id) ORDER BY id LIMIT ?`,
      ),
      newestId: prepare("SELECT max(id) AS id FROM messages"),
      deleteConversation: prepare("DELETE FROM messages WHERE conversation = ?"),
      // By rowid: only the newest rows are read.
      newestSent: prepare(
        `${MESSAGE_SELECT} WHERE m.id > ? AND m.state = ${SENT} AND m.flags & 3 = ${OUTGOING}`,
      ),
      addConversation: prepare("INSERT INTO conversations (name) VALUES (?) RETURNING id"),
      saveConversation: prepare(
        "UPDATE conversations SET last_id = ?, read_upto = ?, unread = ? WHERE id = ?",
      ),
      dropConversation: prepare("DELETE FROM conversations WHERE id = ?"),
      peerId: prepare("SELECT id FROM peers WHERE peer_id = ?"),
      addPeer: prepare("INSERT INTO peers (peer_id) VALUES (?) RETURNING id"),
      markOwn: prepare("UPDATE peers SET own = 1 WHERE id = ?"),
      fingerprintId: prepare("SELECT id FROM fingerprints WHERE fingerprint = ?"),
      addFingerprint: prepare("INSERT INTO fingerprints (fingerprint) VALUES (?) RETURNING id"),
      saveNextId: prepare("UPDATE meta SET value = ? WHERE key = 'next_id'"),
      saveLogMark: prepare(
        `INSERT INTO meta (key, value) VALUES ('log_seq', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
      logMark: prepare("SELECT value FROM meta WHERE key = 'log_seq'"),
      openConversation: prepare("SELECT value FROM meta WHERE key = 'open_conversation'"),
      saveOpenConversation: prepare(
        `INSERT INTO meta (key, value) VALUES ('open_conversation', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
      forgetOpenConversation: prepare(
        "DELETE FROM meta WHERE key = 'open_conversation' AND value = ?",
      ),
      usedBytes: prepare(
        `SELECT ((SELECT page_count FROM pragma_page_count()) -
          (SELECT freelist_count FROM pragma_freelist_count())) *
          (SELECT page_size FROM pragma_page_size()) AS bytes`,
      ),
    };
    this.#total = (db.prepare("SELECT count(*) AS n FROM messages").get() as { n: number }).n;
    this.#nextId = this.#loadNextId();
    this.#savedNextId = this.#nextId;
    this.#loadConversations();
    this.#loadStaged();
    const own = db.prepare("SELECT id FROM peers WHERE own = 1").all() as { id: number }[];
    for (const { id } of own) this.#ownSenders.add(id);
  }

  /** The id the next message gets. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Makes ids continue after `nextId` at least (a copy must not hand out ids again). */
  raiseNextId(nextId: number): void {
    if (nextId > this.#nextId) this.#nextId = nextId;
  }

  /** Bytes the database holds in its pages in use. */
  get usedBytes(): number {
    return (this.#sql.usedBytes.get() as { bytes: number }).bytes;
  }

  /** How many messages are stored. */
  get total(): number {
    return this.#total;
  }

  /** How many messages wait in the staged rows. */
  get stagedCount(): number {
    return this.#staged.size;
  }

  /**
   * Moves up to `maxRows` of the oldest staged messages (and about `maxText` of text at most)
   * into the table; returns how many.
   */
  mergeStep(maxRows: number, maxText = Infinity): number {
    const merged = this.#staged.merge(maxRows, maxText);
    this.#rowWrites += merged;
    return merged;
  }

  /** Moves every staged message into the table (`settle()`, `close()`). */
  mergeAll(): void {
    this.mergeStep(this.#staged.size);
  }

  get db(): DatabaseSync {
    return this.#db;
  }

  /**
   * A received message stored as `addIncoming` would store it, but with no lookup and no row:
   * the caller keeps it in `FastWrites` until `ingest` moves it in. Only a direct message whose
   * msg_id is a p2pchat counter above every one stored from its sender (known already);
   * undefined for any other, which goes through `addIncoming`.
   */
  claimIncoming(m: NewIncoming): StoredMessage | undefined {
    _checkText(m.text);
    if (m.kind !== "direct") return undefined;
    const sender = this.#peerIds.get(m.from);
    if (sender === undefined || !this.#marks.claim(sender, m.msgId)) return undefined;
    return this.#incomingMessage(this.#nextId++, m, storableText(m.text));
  }

  /**
   * The same for a direct message we send, `sent` at once (over an open connection), once we
   * sent one before (our peer_id is interned and marked ours); undefined for any other.
   */
  claimOutgoing(m: NewOutgoing): StoredMessage | undefined {
    _checkText(m.text);
    if (m.kind !== "direct" || m.state !== "sent") return undefined;
    const sender = this.#peerIds.get(m.from);
    if (sender === undefined || !this.#ownSenders.has(sender)) return undefined;
    return _newMessage(this.#nextId++, m, storableText(m.text), true, "sent");
  }

  /** True when `peerId` is one we sent messages as (ours). */
  isOwnSender(peerId: string): boolean {
    const sender = this.#peer(peerId, false);
    return sender !== undefined && this.#ownSenders.has(sender);
  }

  /** The highest id stored, in the table or staged (0 when none is). */
  highestStoredId(): number {
    const { id } = this.#sql.newestId.get() as { id: number | null };
    return Math.max(id ?? 0, this.#staged.newestId);
  }

  /** Remembers that the message log's records up to `seq` are in the tables. */
  setLogMark(seq: number): void {
    this.#sql.saveLogMark.run(seq);
  }

  /** The seq of the newest record of the message log in the tables. */
  get logMark(): number {
    return (this.#sql.logMark.get() as { value: number } | undefined)?.value ?? 0;
  }

  /**
   * Stores a received message; undefined when the same `from` + `msgId` is already stored. With
   * `claimed` (a claim's id, moved in from the log) it is stored under that id, and looked up
   * only when `checkDuplicate` says so (a log read at start).
   */
  addIncoming(
    m: NewIncoming,
    claimed?: number,
    checkDuplicate = claimed === undefined,
  ): StoredMessage | undefined {
    _checkText(m.text);
    const text = storableText(m.text);
    // An empty msg_id (allowed by pyp2p) cannot tell two messages apart: keep them all.
    const known = this.#peer(m.from, false);
    const check = checkDuplicate && m.msgId !== "" && known !== undefined;
    if (check && this.#isDuplicate(known, m.msgId)) return undefined;
    const conversation = this.#conversation(m.conversation, true)!;
    const sender = known ?? this.#peer(m.from, true)!;
    const fingerprintId = m.fingerprint === undefined ? null : this.#fingerprint(m.fingerprint);
    const id = claimed ?? this.#nextId++;
    this.raiseNextId(id + 1);
    if (m.msgId !== "") this.#marks.note(sender, m.msgId, this.#staged);
    this.#staged.add({
      id,
      flags: (m.kind === "pub" ? PUB : 0) | (m.encrypted ? ENCRYPTED : 0),
      state: DELIVERED,
      at: m.at,
      msg_id: m.msgId,
      text,
      reason: null,
      pending: null,
      conversation: m.conversation,
      sender: m.from,
      fingerprint: m.fingerprint ?? null,
      conversationId: conversation.id,
      senderId: sender,
      fingerprintId,
    });
    this.#total++;
    conversation.lastId = id;
    conversation.unread++;
    this.#dirty.add(conversation);
    return this.#incomingMessage(id, m, text);
  }

  #incomingMessage(id: number, m: NewIncoming, text: string): StoredMessage {
    const message = _newMessage(id, m, text, false, "delivered");
    if (m.fingerprint !== undefined) message.fingerprint = m.fingerprint;
    if (!this.contacts.has(m.from)) message.stranger = true;
    return message;
  }

  /** Stores a message we send (under `claimed`, moved in from the log, when given). */
  addOutgoing(m: NewOutgoing, claimed?: number): StoredMessage {
    _checkText(m.text);
    const text = storableText(m.text);
    const queued = m.state === "queued";
    if (queued) this.#checkQueueRoom(m.conversation);
    const conversation = this.#conversation(m.conversation, true)!;
    const sender = this.#peer(m.from, true)!;
    if (!this.#ownSenders.has(sender)) {
      this.#sql.markOwn.run(sender);
      this.#ownSenders.add(sender);
    }
    const id = claimed ?? this.#nextId++;
    this.raiseNextId(id + 1);
    const pending = pendingColumn(m.pendingFor);
    const reason = m.state === "failed" ? m.reason ?? "failed" : null;
    this.#staged.add({
      id,
      flags: OUTGOING | (m.kind === "pub" ? PUB : 0) | (m.encrypted ? ENCRYPTED : 0),
      state: STATE_CODES[m.state],
      at: m.at,
      msg_id: m.msgId,
      text,
      reason,
      pending,
      conversation: m.conversation,
      sender: m.from,
      fingerprint: null,
      conversationId: conversation.id,
      senderId: sender,
      fingerprintId: null,
    });
    this.#total++;
    conversation.lastId = id;
    if (queued) {
      conversation.queued++;
      this.#queuedTotal++;
    }
    this.#dirty.add(conversation);
    const message = _newMessage(id, m, text, true, m.state);
    if (reason !== null) message.reason = reason;
    if (pending !== null) message.pendingFor = [...m.pendingFor!];
    return message;
  }

  setState(id: number, state: MessageState, reason?: string): StoredMessage | undefined {
    const to = STATE_CODES[state];
    if (to === undefined) throw new RangeError(`Unknown message state "${state}"`);
    const row = this.#row(id);
    if (row === undefined || !(row.flags & OUTGOING) || !mayMove(row.state, to)) return undefined;
    return this.#move(row, to, to === FAILED ? reason ?? "failed" : null);
  }

  setEncrypted(id: number, encrypted: boolean): void {
    const staged = this.#staged.get(id);
    if (staged === undefined) {
      this.#sql.encrypted.run(encrypted ? ENCRYPTED : 0, id);
      this.#rowWrites++;
    } else if (staged.flags & OUTGOING) {
      staged.flags = (staged.flags & ~ENCRYPTED) | (encrypted ? ENCRYPTED : 0);
      this.#staged.changed(staged);
    }
  }

  receipt(conversation: string, msgIds: string[], state: "delivered" | "read"): StoredMessage[] {
    const target = this.#byName.get(conversation);
    const to = STATE_CODES[state];
    if (target === undefined || (to !== DELIVERED && to !== READ)) return [];
    const changed: StoredMessage[] = [];
    const done = new Set<number>();
    for (const msgId of msgIds.slice(0, MAX_RECEIPT_IDS)) {
      // New messages are read where they are: a receipt must not move a burst into the table.
      for (const row of this.#staged.ownRows(msgId)) {
        if (row.conversationId !== target.id || done.has(row.id)) continue;
        done.add(row.id);
        if (mayMove(row.state, to)) changed.push(this.#move(row, to, null));
      }
      for (const sender of this.#ownSenders) {
        const rows = this.#sql.own.all(sender, msgId) as { id: number; conversation: number }[];
        for (const { id, conversation: conversationId } of rows) {
          if (conversationId !== target.id || done.has(id)) continue;
          done.add(id);
          const row = this.#row(id)!;
          if (mayMove(row.state, to)) changed.push(this.#move(row, to, null));
        }
      }
    }
    return changed;
  }

  queuedFor(conversation: string): StoredMessage[] {
    const target = this.#byName.get(conversation);
    if (target === undefined || target.queued === 0) return [];
    const staged = this.#staged.outbox().filter((row) =>
      row.state === QUEUED && row.conversationId === target.id && !(row.flags & PUB)
    );
    return this.#messages([...this.#sql.queuedFor.all(target.id), ...staged]);
  }

  pendingFor(peerId: string): StoredMessage[] {
    const staged = this.#staged.outbox().filter((row) =>
      parsePending(row.pending)?.includes(peerId)
    );
    return this.#messages([...this.#sql.pendingFor.all(peerId), ...staged]);
  }

  memberReached(id: number, peerId: string): StoredMessage | undefined {
    const row = this.#row(id);
    if (row === undefined || !(row.flags & OUTGOING)) return undefined;
    const pendingFor = parsePending(row.pending) ?? [];
    const at = pendingFor.indexOf(peerId);
    if (at < 0) return undefined;
    pendingFor.splice(at, 1);
    row.pending = pendingColumn(pendingFor);
    this.#saveColumn(row, () => this.#sql.pending.run(row.pending, id));
    return toMessage(row, this.#stranger);
  }

  expire(
    now: number,
    queuedMaxAgeMs: number,
    sending?: { has(id: number): boolean },
  ): StoredMessage[] {
    const cutoff = now - queuedMaxAgeMs;
    const rows = [
      ...this.#sql.outboxBefore.all(cutoff) as unknown as MessageRow[],
      ...this.#staged.outbox().filter((row) => row.at < cutoff),
    ].filter((row) => !sending?.has(row.id));
    const changed: StoredMessage[] = [];
    for (const row of rows) {
      // A room message some members acknowledged stops waiting for the others.
      changed.push(
        mayMove(row.state, FAILED) ? this.#move(row, FAILED, "expired") : this.#stopWaiting(row),
      );
    }
    return changed;
  }

  /**
   * Puts back in the outbox the direct messages we wrote to a connection and never saw
   * acknowledged (state sent) among the newest `NEWEST_UNACKNOWLEDGED` messages (the staged
   * ones and the table's): what a crash cut off. Returns how many.
   */
  requeueUnacknowledged(): number {
    // Not a transfer's line (no SEND), nor one a plain pyp2p peer left unconfirmed.
    const sent = (row: MessageRow) =>
      row.state === SENT && (row.flags & (OUTGOING | PUB)) === OUTGOING && row.reason === null &&
      !row.msg_id.startsWith(TRANSFER_LINE_PREFIX);
    const rows: MessageRow[] = [...this.#staged.rows()].filter(sent);
    const fromTable = this.#sql.newestSent.all(this.#nextId - NEWEST_UNACKNOWLEDGED);
    rows.push(...(fromTable as unknown as MessageRow[]).filter(sent));
    for (const row of rows) this.#move(row, QUEUED, null);
    return rows.length;
  }

  /** The conversation remembered as open, if it still holds messages. */
  lastOpened(): string | undefined {
    const row = this.#sql.openConversation.get() as { value: number } | undefined;
    return row === undefined ? undefined : this.#byId.get(row.value)?.name;
  }

  /** Remembers `name` as open (in `meta`, by id); false when it holds no message. */
  setLastOpened(name: string): boolean {
    const conversation = this.#byName.get(name);
    if (conversation === undefined) return false;
    this.#sql.saveOpenConversation.run(conversation.id);
    return true;
  }

  /**
   * A SEND toward a peer without durable de-duplication that got no ACK: written, perhaps shown,
   * never sent again (reason `unconfirmed`, out of the outbox).
   */
  setUnconfirmed(id: number): StoredMessage | undefined {
    const row = this.#row(id);
    if (row === undefined || !(row.flags & OUTGOING)) return undefined;
    if (row.state !== SENT && !mayMove(row.state, SENT)) return undefined;
    return this.#move(row, SENT, UNCONFIRMED);
  }

  /**
   * A queued message fails as `cancelled`; a room message stops waiting for the members who
   * were offline (those online got it: its state stays).
   */
  cancel(id: number): StoredMessage | undefined {
    const row = this.#row(id);
    if (row === undefined || !(row.flags & OUTGOING)) return undefined;
    if (row.state === QUEUED) return this.#move(row, FAILED, "cancelled");
    return row.pending === null ? undefined : this.#stopWaiting(row);
  }

  #stopWaiting(row: MessageRow): StoredMessage {
    row.pending = null;
    this.#saveColumn(row, () => this.#sql.pending.run(null, row.id));
    return toMessage(row, this.#stranger);
  }

  /** Deletes what retention and `maxMessages` say must go, and `more` of the oldest besides. */
  prune(now: number, more = 0): number {
    const cutoff = this.#limits.retentionMs > 0 ? now - this.#limits.retentionMs : -Infinity;
    let excess = Math.max(0, this.#total - this.#limits.maxMessages) + more;
    const strangers = excess > 0
      ? this.#oldestFromStrangers(Math.min(excess, PRUNE_STEP_ROWS))
      : undefined;
    const doomed = strangers ?? [];
    // This step's share of the count cap is theirs, when there were any.
    if (strangers !== undefined) excess = 0;
    let cursor = 0;
    // Staged rows are the newest: a step of them joins the table only when the scan got through
    // it with room left (never a whole burst at once: the sweep runs on the network loop).
    let merged = false;
    scan: for (;;) {
      const rows = this.#sql.pruneCandidates.all(cursor) as {
        id: number;
        at: number;
        held: number;
      }[];
      for (const row of rows) {
        cursor = row.id;
        // The outbox is never pruned: expire() ends it.
        if (row.held) continue;
        if (row.at >= cutoff && excess <= 0) break scan;
        doomed.push(row.id);
        excess--;
        if (doomed.length >= PRUNE_STEP_ROWS) break scan;
      }
      if (rows.length < _PRUNE_READ_ROWS) {
        if (merged || this.#staged.size === 0) break;
        this.mergeStep(MERGE_STEP_ROWS, MERGE_STEP_TEXT);
        merged = true;
      }
    }
    if (doomed.length === 0) return 0;
    const deleted = this.#sql.deleteIds.all(JSON.stringify(doomed)) as {
      id: number;
      conversation: number;
      flags: number;
      state: number;
    }[];
    const emptied = new Set<_Conversation>();
    for (const row of deleted) {
      const conversation = this.#byId.get(row.conversation);
      if (conversation === undefined) continue;
      if (!(row.flags & OUTGOING) && row.state === DELIVERED) conversation.unread--;
      if (row.id === conversation.lastId) emptied.add(conversation);
      this.#dirty.add(conversation);
    }
    this.#total -= deleted.length;
    this.#rowWrites += deleted.length;
    for (const conversation of emptied) {
      const { id } = this.#sql.lastOf.get(conversation.id) as { id: number | null };
      if (id !== null) {
        conversation.lastId = id;
        continue;
      }
      this.#sql.dropConversation.run(conversation.id);
      this.#byName.delete(conversation.name);
      this.#byId.delete(conversation.id);
      this.#dirty.delete(conversation);
    }
    return deleted.length;
  }

  // Past the count cap, messages from peers who are not contacts go first, oldest first: a
  // stranger's flood must not push out the history with contacts (nor our own messages).
  // Undefined when there are none left (then the oldest go, whoever sent them). The search goes
  // on from where the last one stopped: what lies before is contacts' (or was deleted).
  #oldestFromStrangers(count: number): number[] | undefined {
    // Staged rows are the newest: a step of them joins the table when the table has none.
    for (let merged = false;; merged = true) {
      const rows = this.#sql.strangersAfter.all(this.#strangersCursor, count) as { id: number }[];
      if (rows.length > 0) {
        this.#strangersCursor = rows[rows.length - 1].id;
        return rows.map((row) => row.id);
      }
      if (merged || this.#staged.size === 0) break;
      this.mergeStep(MERGE_STEP_ROWS, MERGE_STEP_TEXT);
    }
    const { id } = this.#sql.newestId.get() as { id: number | null };
    this.#strangersCursor = id ?? 0;
    return undefined;
  }

  /**
   * Deletes the conversation `name` with every message in it, those in the outbox too; returns
   * how many, undefined when there is no such conversation.
   */
  forget(name: string): number | undefined {
    const conversation = this.#byName.get(name);
    if (conversation === undefined) return undefined;
    // Staged rows are not in the table yet: one DELETE finds them all once they are.
    this.mergeAll();
    const deleted = Number(this.#sql.deleteConversation.run(conversation.id).changes);
    this.#total -= deleted;
    this.#queuedTotal -= conversation.queued;
    this.#rowWrites += deleted;
    this.#sql.forgetOpenConversation.run(conversation.id);
    this.#sql.dropConversation.run(conversation.id);
    this.#byName.delete(name);
    this.#byId.delete(conversation.id);
    this.#dirty.delete(conversation);
    return deleted;
  }

  byId(id: number): StoredMessage | undefined {
    const row = this.#row(id);
    return row === undefined ? undefined : toMessage(row, this.#stranger);
  }

  conversations(): ConversationSummary[] {
    const summaries: ConversationSummary[] = [];
    const list = [...this.#byName.values()].filter((c) => c.lastId > 0);
    list.sort((a, b) => b.lastId - a.lastId);
    for (const conversation of list) {
      const last = this.byId(conversation.lastId);
      if (last === undefined) continue;
      summaries.push({
        conversation: conversation.name,
        kind: _kindOf(conversation.name),
        unread: conversation.unread,
        last,
      });
    }
    return summaries;
  }

  page(name: string, options: PageOptions = {}): MessagePage {
    if (Number.isNaN(options.before) || Number.isNaN(options.after)) {
      throw new RangeError("page before or after is NaN");
    }
    const limit = _limit(options.limit);
    const conversation = this.#byName.get(name);
    if (conversation === undefined) return { messages: [], more: false };
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    const after = options.after;
    // The staged rows of the conversation in the range, oldest first: all newer than the table's.
    const staged: MessageRow[] = [];
    for (const row of this.#staged.rows(after)) {
      if (row.id >= before) break;
      if (row.conversationId !== conversation.id) continue;
      staged.push(row);
      // Forward, the first ones are all that can be shown.
      if (after !== undefined && staged.length > limit) break;
    }
    let rows: MessageRow[];
    if (after !== undefined) {
      // Forward: the table's first, then the staged ones.
      const table = this.#sql.newer.all(conversation.id, after, before, limit + 1);
      rows = [...table as unknown as MessageRow[], ...staged].slice(0, limit + 1);
    } else {
      // Backward: the newest staged ones, then the table's newest below them.
      const newest = staged.slice(-(limit + 1)).reverse();
      const need = limit + 1 - newest.length;
      const table = need > 0 ? this.#sql.older.all(conversation.id, before, need) : [];
      rows = [...newest, ...table as unknown as MessageRow[]];
    }
    const more = rows.length > limit;
    if (more) rows.pop();
    if (after === undefined) rows.reverse();
    return { messages: this.#messages(rows), more };
  }

  markRead(name: string, upTo?: number): StoredMessage[] {
    if (upTo !== undefined && Number.isNaN(upTo)) throw new RangeError("markRead upTo is NaN");
    const conversation = this.#byName.get(name);
    if (conversation === undefined) return [];
    const end = Math.min(upTo ?? conversation.lastId, conversation.lastId);
    if (end <= conversation.readUpto) return [];
    const rows = this.#sql.unread.all(
      conversation.id,
      conversation.readUpto,
      end,
    ) as unknown as MessageRow[];
    this.#sql.markRead.run(conversation.id, conversation.readUpto, end);
    this.#rowWrites += rows.length;
    for (const row of this.#staged.rows(conversation.readUpto)) {
      if (row.id > end) break;
      if (
        row.conversationId === conversation.id && !(row.flags & OUTGOING) &&
        row.state === DELIVERED
      ) {
        rows.push(row);
        this.#staged.stateChanged(row);
      }
    }
    conversation.readUpto = end;
    conversation.unread -= rows.length;
    this.#dirty.add(conversation);
    for (const row of rows) row.state = READ;
    return this.#messages(rows);
  }

  searchText(given: string, limit?: number): StoredMessage[] {
    if (given === "") return [];
    // Texts are stored as `storableText` makes them: so is what is looked for.
    const text = storableText(given);
    const most = _limit(limit);
    // The staged rows are the newest: matched here as SQLite matches (ASCII case folded).
    const needle = _asciiLower(text);
    const found: MessageRow[] = [];
    for (const row of this.#staged.newestFirst()) {
      if (found.length >= most) break;
      if (_asciiLower(row.text).includes(needle)) found.push(row);
    }
    if (found.length < most) found.push(...this.search.search(text, most - found.length));
    return this.#messages(found);
  }

  queued(): StoredMessage[] {
    const staged = this.#staged.outbox().filter((row) => row.state === QUEUED);
    return this.#messages([...this.#sql.queued.all(), ...staged]);
  }

  waiting(): StoredMessage[] {
    const staged = this.#staged.outbox().filter((row) => row.pending !== null);
    const rows = [...this.#sql.waiting.all() as unknown as MessageRow[], ...staged];
    return this.#messages(rows.slice(0, MAX_WAITING_LISTED));
  }

  /**
   * Writes what changed in memory since the last commit; call right before COMMIT. Returns
   * the rows the batch wrote, about (staged saves count by the page, not by the row): what a
   * checkpoint will have to copy.
   */
  beforeCommit(): number {
    // Past the caps, as many rows move as needed to be back under them.
    while (
      this.#staged.size > this.#limits.maxStaged || this.#staged.textLength > MAX_STAGED_TEXT
    ) {
      const rowsOver = this.#staged.size - this.#limits.maxStaged;
      const textOver = this.#staged.textLength - MAX_STAGED_TEXT;
      this.#rowWrites += this.#staged.merge(
        rowsOver > 0 ? rowsOver : this.#staged.size,
        textOver > 0 ? textOver : Infinity,
      );
    }
    const written = this.#rowWrites + Math.ceil(this.#staged.save() / _PAGE_CHARS) + 1;
    this.#rowWrites = 0;
    for (const c of this.#dirty) {
      this.#sql.saveConversation.run(c.lastId, c.readUpto, c.unread, c.id);
    }
    this.#dirty.clear();
    this.contacts.writeDirty();
    if (this.#nextId !== this.#savedNextId) {
      this.#sql.saveNextId.run(this.#nextId);
      this.#savedNextId = this.#nextId;
    }
    return written;
  }

  /** True when the search index has not seen every message yet. */
  get indexLags(): boolean {
    return this.search.indexedUpto < this.#nextId - 1 && this.#total > 0;
  }

  #move(row: MessageRow, to: number, reason: string | null): StoredMessage {
    const pending = to === FAILED ? null : row.pending;
    const conversation = this.#byName.get(row.conversation);
    const delta = (to === QUEUED ? 1 : 0) - (row.state === QUEUED ? 1 : 0);
    if (conversation !== undefined && delta !== 0) {
      conversation.queued += delta;
      this.#queuedTotal += delta;
    }
    const onlyState = reason === row.reason && pending === row.pending;
    row.state = to;
    row.reason = reason;
    row.pending = pending;
    const staged = this.#staged.get(row.id);
    if (staged === undefined) {
      this.#sql.move.run(to, reason, pending, row.id);
      this.#rowWrites++;
    } else if (onlyState) this.#staged.stateChanged(staged);
    else this.#staged.changed(staged);
    return toMessage(row, this.#stranger);
  }

  #checkQueueRoom(name: string): void {
    const { maxQueued, maxQueuedPerConversation } = this.#limits;
    if (this.#queuedTotal >= maxQueued) {
      throw new P2pError(
        "queue_full",
        `The outbox is full: ${this.#queuedTotal} messages wait to be delivered (at most ${maxQueued})`,
      );
    }
    const queued = this.#byName.get(name)?.queued ?? 0;
    if (queued >= maxQueuedPerConversation) {
      throw new P2pError(
        "queue_full",
        `The outbox toward "${name}" is full: ${queued} messages wait (at most ${maxQueuedPerConversation})`,
      );
    }
  }

  // A staged row is the object itself: changing it changes what the next save writes.
  #row(id: number): MessageRow | undefined {
    return this.#staged.get(id) ?? this.#sql.byId.get(id) as unknown as MessageRow | undefined;
  }

  // A change to `row`: written with the staged rows if it is one, else by `update`.
  #saveColumn(row: MessageRow, update: () => void): void {
    const staged = this.#staged.get(row.id);
    if (staged !== undefined) return this.#staged.changed(staged);
    update();
    this.#rowWrites++;
  }

  #isDuplicate(sender: number, msgId: string): boolean {
    if (this.#marks.isNew(sender, msgId)) return false;
    return this.#staged.holds(sender, msgId) ||
      this.#sql.duplicate.get(sender, msgId) !== undefined;
  }

  #messages(rows: unknown[]): StoredMessage[] {
    return (rows as MessageRow[]).map((row) => toMessage(row, this.#stranger));
  }

  #conversation(name: string, create: boolean): _Conversation | undefined {
    const known = this.#byName.get(name);
    if (known !== undefined || !create) return known;
    const { id } = this.#sql.addConversation.get(name) as { id: number };
    const conversation = { id, name, lastId: 0, readUpto: 0, unread: 0, queued: 0 };
    this.#byName.set(name, conversation);
    this.#byId.set(id, conversation);
    return conversation;
  }

  #peer(peerId: string, create: boolean): number | undefined {
    return _intern(this.#peerIds, peerId, this.#sql.peerId, create ? this.#sql.addPeer : undefined);
  }

  #fingerprint(fingerprint: string): number {
    return _intern(
      this.#fingerprintIds,
      fingerprint,
      this.#sql.fingerprintId,
      this.#sql.addFingerprint,
    )!;
  }

  #loadNextId(): number {
    const saved = this.#db.prepare("SELECT value FROM meta WHERE key = 'next_id'").get() as {
      value: number;
    };
    const max = this.#db.prepare("SELECT max(id) AS id FROM messages").get() as {
      id: number | null;
    };
    return Math.max(saved.value, (max.id ?? 0) + 1);
  }

  // Messages staged by an earlier run and not merged: back in memory, counted.
  #loadStaged(): void {
    const peers = this.#db.prepare("SELECT peer_id FROM peers WHERE id = ?");
    const fingerprints = this.#db.prepare("SELECT fingerprint FROM fingerprints WHERE id = ?");
    const rows = this.#staged.load(this.#db, {
      conversation: (id) => this.#byId.get(id)?.name,
      peer: (id) => (peers.get(id) as { peer_id: string } | undefined)?.peer_id,
      fingerprint: (id) =>
        (fingerprints.get(id) as { fingerprint: string } | undefined)?.fingerprint,
    }, this.#nextId);
    this.#total += rows.length;
    for (const row of rows) {
      if (row.state !== QUEUED) continue;
      this.#byId.get(row.conversationId)!.queued++;
      this.#queuedTotal++;
    }
  }

  #loadConversations(): void {
    const rows = this.#db.prepare(
      "SELECT id, name, last_id, read_upto, unread FROM conversations",
    ).all() as {
      id: number;
      name: string;
      last_id: number;
      read_upto: number;
      unread: number;
    }[];
    for (const row of rows) {
      const conversation = {
        id: row.id,
        name: row.name,
        lastId: row.last_id,
        readUpto: row.read_upto,
        unread: row.unread,
        queued: 0,
      };
      this.#byName.set(row.name, conversation);
      this.#byId.set(row.id, conversation);
    }
    const queued = this.#db.prepare(
      `SELECT conversation, count(*) AS n FROM messages WHERE state = ${QUEUED}
       GROUP BY conversation`,
    ).all() as { conversation: number; n: number }[];
    for (const { conversation, n } of queued) {
      const known = this.#byId.get(conversation);
      if (known !== undefined) known.queued = n;
      this.#queuedTotal += n;
    }
  }
}

function _checkText(text: string): void {
  if (text.length > MAX_TEXT_CHARS) {
    throw new P2pError(
      "text_too_long",
      `The message is ${text.length} characters long; at most ${MAX_TEXT_CHARS} are stored`,
    );
  }
}

// Lower case for A-Z only, as SQLite's lower() without ICU.
function _asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

function _limit(limit: number | undefined): number {
  if (limit === undefined || Number.isNaN(limit)) return DEFAULT_PAGE_LIMIT;
  return Math.min(Math.max(1, Math.floor(limit)), MAX_PAGE_LIMIT);
}

function _kindOf(name: string): ConversationSummary["kind"] {
  if (name === "*") return "broadcast";
  return name.startsWith("#") ? "room" : "direct";
}

// The integer of an interned string: the cache, then the table, then (if allowed) a new row.
function _intern(
  cache: Map<string, number>,
  value: string,
  find: StatementSync,
  add: StatementSync | undefined,
): number | undefined {
  const cached = cache.get(value);
  if (cached !== undefined) return cached;
  const row = (find.get(value) ?? add?.get(value)) as { id: number } | undefined;
  if (row === undefined) return undefined;
  if (cache.size >= _CACHE_LIMIT) cache.clear();
  cache.set(value, row.id);
  return row.id;
}

// The message a new row is, as interfaces see it (fields copied one by one: it is per message).
function _newMessage(
  id: number,
  m: NewIncoming | NewOutgoing,
  text: string,
  outgoing: boolean,
  state: MessageState,
): StoredMessage {
  return {
    id,
    msgId: m.msgId,
    conversation: m.conversation,
    kind: m.kind,
    from: m.from,
    outgoing,
    text,
    at: m.at,
    state,
    encrypted: m.encrypted,
  };
}
