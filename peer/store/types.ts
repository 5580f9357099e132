/**
 * The message store's contract: what the messaging layer of the node calls. The reads are the
 * same as `MessageHistory` in peer/api.ts, except that `markRead` and `cancel` return messages
 * (the node sends read receipts and state events for them).
 */
import type { Clock } from "../../lib/clock.ts";
import type { Logger } from "../../lib/log.ts";
import type {
  ConversationSummary,
  MessagePage,
  MessageState,
  StorageStatus,
  StoredMessage,
} from "../api.ts";

/** Where the store lives and how far it may grow. */
export interface MessageStoreOptions {
  /** The database file; ":memory:" for a store that saves nothing (tests, --no-history). */
  path: string;
  /** Messages older than this are deleted (default 365 days; 0 keeps them forever). */
  retentionDays?: number;
  /** At most this many messages are kept; the oldest go first (default 2_000_000). */
  maxMessages?: number;
  /** Queued outgoing messages in all (default 10_000). */
  maxQueued?: number;
  /** Queued outgoing messages toward one conversation (default 1_000). */
  maxQueuedPerConversation?: number;
  /** New messages kept staged before commits move them into the table (default 65_536). */
  maxStaged?: number;
  /** The message log is emptied, all of it moved in, past this size (default 32 MiB). */
  maxLogBytes?: number;
}

/** What the store needs from outside. */
export interface MessageStoreDeps {
  log: Logger;
  clock: Clock;
  /** Called (in a microtask) when history stops being saved while the peer runs. */
  onProblem?: (status: StorageStatus) => void;
}

/** What every new message has. */
interface _NewMessage {
  msgId: string;
  kind: "direct" | "pub";
  from: string;
  conversation: string;
  text: string;
  at: number;
  encrypted: boolean;
}

/** A message that arrived. */
export interface NewIncoming extends _NewMessage {
  fingerprint?: string;
}

/** A message we send (or keep in the outbox until its peer is back). */
export interface NewOutgoing extends _NewMessage {
  /** `failed` (with `reason`) for a room or broadcast message that reached nobody at once. */
  state: "queued" | "sent" | "failed";
  reason?: string;
  /** Room members it still has to reach (offline when it was sent). */
  pendingFor?: string[];
}

/** An address a contact was last seen at. */
export interface ContactAddress {
  hostname: string;
  port: number;
}

/** A contact as stored; the node adds presence and keys to make a `Contact`. */
export interface ContactRow {
  peerId: string;
  addedAt: number;
  lastSeenAt?: number;
  address?: ContactAddress;
}

/** Options of `page()`. */
export interface PageOptions {
  before?: number;
  after?: number;
  limit?: number;
}

/** The peer's messages, outbox and contacts (see docs/message-store.md). */
export interface MessageStore {
  /** Stores a received message; undefined when the same `from` + `msgId` is already stored. */
  addIncoming(message: NewIncoming): StoredMessage | undefined;
  /** Stores a message we send; throws `queue_full` when a queued one would pass the caps. */
  addOutgoing(message: NewOutgoing): StoredMessage;
  /**
   * Moves an outgoing message to `state`; undefined when it is unknown, incoming, already
   * there, or when the change would go backwards (see docs/message-store.md, "States").
   */
  setState(id: number, state: MessageState, reason?: string): StoredMessage | undefined;
  /**
   * The ACK of our message `message` (as `addOutgoing` gave it): `setState(id, "delivered")`,
   * but a message kept in the message log changes there, with no lookup.
   */
  delivered(message: StoredMessage): StoredMessage | undefined;
  setEncrypted(id: number, encrypted: boolean): void;
  /** Applies a delivery or read receipt; returns our messages that moved forward. */
  receipt(conversation: string, msgIds: string[], state: "delivered" | "read"): StoredMessage[];
  /** Outgoing direct messages of a conversation still queued, oldest first. */
  queuedFor(conversation: string): StoredMessage[];
  /** Outgoing room messages still waiting for `peerId`, oldest first. */
  pendingFor(peerId: string): StoredMessage[];
  /** `peerId` got the room message `id`; undefined when it was not waiting for it. */
  memberReached(id: number, peerId: string): StoredMessage | undefined;
  /** Fails queued messages and pending room entries older than `queuedMaxAgeMs`. */
  expire(
    now: number,
    queuedMaxAgeMs: number,
    sending?: { has(id: number): boolean },
  ): StoredMessage[];
  /**
   * A SEND a peer without durable de-duplication did not ACK: stays `sent` with reason
   * `unconfirmed`, never sent again; undefined when nothing changed.
   */
  setUnconfirmed(id: number): StoredMessage | undefined;
  /** Deletes what retention and `maxMessages` say must go, a bounded step per call. */
  prune(now: number): number;
  byId(id: number): StoredMessage | undefined;
  conversations(): ConversationSummary[];
  page(conversation: string, options?: PageOptions): MessagePage;
  /** Marks incoming messages read (up to `upTo`); returns those newly read. */
  markRead(conversation: string, upTo?: number): StoredMessage[];
  search(text: string, limit?: number): StoredMessage[];
  queued(): StoredMessage[];
  /** Room messages some members still wait for, oldest first (500 at most). */
  waiting(): StoredMessage[];
  /**
   * Fails a queued message with `cancelled`, or stops a room message waiting for members;
   * undefined when it is neither.
   */
  cancel(id: number): StoredMessage | undefined;
  /**
   * Deletes a conversation and every message in it (the outbox's too); returns how many,
   * undefined when there is no such conversation.
   */
  forget(conversation: string): number | undefined;
  contactRows(): ContactRow[];
  addContact(peerId: string, at: number): { peerId: string; addedAt: number };
  removeContact(peerId: string): boolean;
  isContact(peerId: string): boolean;
  /**
   * Puts back in the outbox the newest direct messages that were written and never
   * acknowledged (a crash cut them off); returns how many.
   */
  requeueUnacknowledged(): number;
  /** The conversation remembered as open (`setLastOpened`), if it still holds messages. */
  lastOpened(): string | undefined;
  /** Remembers `conversation` as open; false (nothing kept) when it holds no message. */
  setLastOpened(conversation: string): boolean;
  /** Owes `peerId` read receipts for `msgIds` (they were read while it was away). */
  holdReceipts(peerId: string, msgIds: readonly string[]): void;
  /** The read receipts owed to `peerId`, oldest first; no longer owed once taken. */
  takeReceipts(peerId: string): string[];
  seen(peerId: string, at: number, address?: ContactAddress): void;
  storage(): StorageStatus;
  /**
   * Resolves once every write made so far is committed (to the file, or to memory once the
   * disk failed); rejects only if even memory refused the batch.
   */
  committed(): Promise<void>;
  /** Commits now. */
  flush(): void;
  /**
   * Does now what pauses in the writes do in steps: moves every staged message into the table,
   * and copies the WAL into the database file when enough was written.
   */
  settle(): void;
  /** Flushes and closes; the store may not be used afterwards. */
  close(): void;
}
