/**
 * What a running peer offers to its user interfaces (terminal UI, local HTTP API, tests).
 * The node implements it; interfaces depend only on this file.
 */
import type { Address } from "../lib/transport.ts";

/** Life cycle of one known peer in the peer table. */
export type PeerState = "connecting" | "connected" | "stale" | "failed";

/** A PUB scope: every connected peer, or those of one namespace. */
export type Scope = "*" | `#${string}`;

/** Where a peer's key stands: see docs/peer-protocol.md, "Encryption and identity". */
export type TrustState = "verified" | "unverified" | "key_changed" | "unencrypted";

/** How a peer's connection is protected, and how far its key is trusted. */
export interface PeerSecurity {
  /** True when every line after HELLO_OK travels in Noise-encrypted frames. */
  encrypted: boolean;
  trust: TrustState;
  /** The tracker holds this key for the account of the peer's name. */
  accountBound: boolean;
  /** The fingerprint of the peer's identity key (encrypted connections only). */
  fingerprint?: string;
}

/** Something the user must hear about a peer's key or a refusal. */
export type SecurityNotice =
  /** Refused: the key is not the one the tracker holds for the account of that name. */
  | { kind: "impostor"; peerId: string; fingerprint: string }
  /** Refused: the key is not the one remembered for that peer_id. */
  | { kind: "key_changed"; peerId: string; fingerprint: string; pinned: string }
  /** Refused: a peer whose key we know tried to talk in clear. */
  | { kind: "downgrade"; peerId: string }
  /** Accepted: the account's key changed at the tracker (a new device, a restored profile). */
  | { kind: "account_key_changed"; peerId: string; fingerprint: string; previous: string }
  /** The other side refused our connection for a reason about keys or encryption. */
  | { kind: "refused"; peerId: string; reason: string };

/** This peer's identity, and what `/verify` shows for another. */
export interface IdentityInfo {
  /** The identity key, base64. */
  publicKey: string;
  fingerprint: string;
}

/** The safety number of our key and a peer's, the same on both sides. */
export interface Verification {
  peerId: string;
  fingerprint: string;
  safetyNumber: string;
  verified: boolean;
}

/** One row of the peer table. */
export interface PeerInfo {
  /** `name@namespace`. */
  peerId: string;
  name: string;
  namespace: string;
  /** Where it listens (from DISCOVER or from the connection). */
  address?: Address;
  state: PeerState;
  /** Who opened the current connection, when there is one. */
  direction?: "inbound" | "outbound";
  /** Features both sides listed in HELLO/HELLO_OK. */
  features: string[];
  /** Round-trip time from PING/PONG: the last sample and a smoothed value (ms). */
  rtt?: { lastMs: number; smoothedMs: number };
  /** Failed dial attempts since the last successful connection. */
  reconnectAttempts: number;
  /** When the next dial is due (ms since epoch), while waiting to reconnect. */
  nextAttemptAt?: number;
  /** Last time a line arrived from it (ms since epoch). */
  lastSeenAt?: number;
  /** Of the current connection, or of the last one. */
  security?: PeerSecurity;
}

/** What `/status` shows. */
export interface NodeStatus {
  peerId: string;
  name: string;
  namespace: string;
  /** The address this peer listens on. */
  listen: Address;
  /** The address the tracker saw us come from (learned from REGISTER). */
  publicIp?: string;
  tracker: {
    address: Address;
    reachable: boolean;
    lastRegisterAt?: number;
    lastDiscoverAt?: number;
    lastError?: string;
  };
  peers: { known: number; connected: number };
  startedAt: number;
}

/**
 * Outcome of a direct message: ACKed (with round trip), or why not. A message never written
 * (`unknown_peer`, `offline`: an account not online, `not_connected`) has no id from the node.
 * With the message store, a message that could not be delivered now is `queued` (it has an id
 * and goes out by itself when the peer is back); `too_long`, `queue_full` are refusals.
 */
export type SendResult =
  | { ok: true; msgId: string; roundTripMs: number; id?: number }
  | {
    ok: false;
    msgId?: string;
    reason: "timeout" | "not_connected" | "unknown_peer" | "offline" | "closed" | "queue_full";
    /** Kept in the outbox: delivered later, in order, exactly once. */
    queued?: boolean;
    /** The message's id in the store. */
    id?: number;
  };

/** The msg_id prefix of the line a file transfer leaves in its conversation (no SEND has it). */
export const TRANSFER_LINE_PREFIX = "file-";

/** Where a stored message stands (see docs/peer-protocol.md, "Message store"). */
export type MessageState = "queued" | "sent" | "delivered" | "read" | "failed";

/** One message of the store, sent or received. */
export interface StoredMessage {
  /** Local and increasing: the cursor for paging. */
  id: number;
  msgId: string;
  /**
   * The conversation: the other peer's `peer_id` for a direct message, `#room` (or `#ns`) for
   * a room or namespace, `*` for a broadcast.
   */
  conversation: string;
  kind: "direct" | "pub";
  /** The sender's peer_id (ours for an outgoing message). */
  from: string;
  outgoing: boolean;
  text: string;
  /** When it was sent (outgoing) or received (incoming), ms since epoch. */
  at: number;
  /**
   * Outgoing: queued, sent (written), delivered (ACK or delivery receipt), read (read
   * receipt) or failed. Incoming: delivered, or read once the user saw it.
   */
  state: MessageState;
  /**
   * Why it failed: `expired`, `cancelled`, `refused`; or `unconfirmed` on a `sent` message a plain
   * pyp2p peer did not ACK (it may have shown it: it is not sent again).
   */
  reason?: string;
  /** It travelled (or will travel) inside an encrypted connection. */
  encrypted: boolean;
  /** The fingerprint of the sender's identity key, when it came over an encrypted connection. */
  fingerprint?: string;
  /** Incoming from a peer that is not in our contacts. */
  stranger?: boolean;
  /** Outgoing room messages: members it still waits for (offline when it was sent). */
  pendingFor?: string[];
}

/** One conversation, for a list of them. */
export interface ConversationSummary {
  conversation: string;
  kind: "direct" | "room" | "broadcast";
  unread: number;
  /** The newest message. */
  last: StoredMessage;
}

/** A page of a conversation, oldest first. */
export interface MessagePage {
  messages: StoredMessage[];
  /** Older (or, paging forward, newer) messages exist beyond this page. */
  more: boolean;
}

/** A person in our contact list, with what we know of them now. */
export interface Contact {
  peerId: string;
  addedAt: number;
  online: boolean;
  lastSeenAt?: number;
  address?: Address;
  /** The fingerprint of their remembered key. */
  fingerprint?: string;
  verified: boolean;
  trust?: TrustState;
}

/** Whether history is being saved. */
export interface StorageStatus {
  persistent: boolean;
  /** The database file. */
  path?: string;
  /** Why history is not being saved (read-only disk, in use, newer version ...). */
  problem?: string;
  /** A damaged database moved aside at start. */
  movedAside?: string;
  /**
   * A damaged message log moved aside at start: its sound records are in history, those of its
   * damaged lines only in that file.
   */
  logMovedAside?: string;
}

/** The most room messages `MessageHistory.waiting()` lists. */
export const MAX_WAITING_LISTED = 500;

/** The message store as interfaces see it: history, outbox and contacts. */
export interface MessageHistory {
  conversations(): ConversationSummary[];
  /** Messages of a conversation before/after an id (exclusive), newest `limit` by default. */
  page(
    conversation: string,
    options?: { before?: number; after?: number; limit?: number },
  ): MessagePage;
  /** Marks the conversation's incoming messages read (up to `upTo`); returns how many. */
  markRead(conversation: string, upTo?: number): number;
  /** Messages whose text holds `text` (any case), newest first. */
  search(text: string, limit?: number): StoredMessage[];
  /** Outgoing messages waiting in the outbox, oldest first. */
  queued(): StoredMessage[];
  /**
   * Room messages some members (`pendingFor`) still wait for, oldest first, at most
   * `MAX_WAITING_LISTED`.
   */
  waiting(): StoredMessage[];
  /**
   * Cancels a queued message (it fails with `cancelled`), or stops a room message waiting for
   * members who were offline (they will not get it; its state stays); returns the message as it
   * is now, undefined when it was neither.
   */
  cancel(id: number): StoredMessage | undefined;
  /** The conversation the terminal had open when it last closed (one that holds messages). */
  lastOpened(): string | undefined;
  /**
   * Deletes a conversation from this peer's store, with every message in it (those waiting in
   * the outbox too: they are not sent); returns how many, undefined when there is no such
   * conversation. The other side keeps its copy.
   */
  forget(conversation: string): number | undefined;
  /** Remembers `conversation` as the one open; false (nothing kept) while it holds no message. */
  setLastOpened(conversation: string): boolean;
  contacts(): Contact[];
  /** Adds (or keeps) a contact; returns it. */
  addContact(peerId: string): Contact;
  removeContact(peerId: string): boolean;
  storage(): StorageStatus;
}

/** Outcome of a PUB: how many connected peers it was written to, and which. */
export interface PublishResult {
  msgId: string;
  reached: number;
  peers: string[];
  /** How many of `reached` got it encrypted; the others (plain pyp2p peers) in clear. */
  encrypted: number;
  /** Room members offline now, who get it when they are back (with the message store). */
  waiting?: number;
  /** The message's id in the store. */
  id?: number;
}

/** Something the user should see, pushed to every subscriber. */
/** A message as it arrived: what, from whom, to what, when. */
export interface ArrivedMessage {
  kind: "direct" | "pub";
  msgId: string;
  from: string;
  /** The SEND's `dst` (our peer id) or the PUB's `dst` (`*` or `#ns`). */
  to: string;
  text: string;
  at: number;
}

export type NodeEvent =
  | ArrivedMessage & {
    type: "message";
    /** With the message store: the stored message (its id, conversation, stranger mark). */
    stored?: StoredMessage;
  }
  /**
   * A stored message changed state (sent, delivered, read, failed, or queued again); for a room
   * message that waited for members, `member` is the peer id of one who just got it.
   */
  | { type: "message_state"; message: StoredMessage; at: number; member?: string }
  /** A message we sent (from any interface) was stored: pages show it before it is delivered. */
  | { type: "message_added"; message: StoredMessage; at: number }
  /** `peerId` was added to the contacts or removed from them (from any interface). */
  | { type: "contact"; peerId: string; change: "added" | "removed"; at: number }
  /** Messages of `conversation` were marked read (from any interface): unread counts changed. */
  | { type: "conversation_read"; conversation: string; at: number }
  /** A conversation was deleted from the store (from any interface), with `deleted` messages. */
  | { type: "conversation_forgotten"; conversation: string; deleted: number; at: number }
  /** History stopped being saved (or a damaged store was moved aside). */
  | { type: "storage"; status: StorageStatus; at: number }
  | { type: "peer"; peerId: string; state: PeerState | "gone"; reason?: string; at: number }
  | { type: "security"; notice: SecurityNotice; at: number }
  /** At start: a live peer at `address` already uses our peer_id; the others refuse us. */
  | { type: "name_in_use"; peerId: string; address: Address; at: number }
  | {
    type: "tracker";
    reachable: boolean;
    detail?: string;
    /** The tracker's reason when it refused our REGISTER (e.g. `name_owned`). */
    refused?: string;
    at: number;
  };

/** A running peer. */
export interface PeerNode {
  readonly peerId: string;
  status(): NodeStatus;
  /** The peer table, optionally limited to a scope (`*` = all, `#ns` = one namespace). */
  peers(scope?: Scope): PeerInfo[];
  /**
   * Sends a direct message and resolves on ACK or after the 5 s timeout; `msgId` is the id it
   * already has (a message from the outbox, sent again).
   */
  send(peerId: string, text: string, msgId?: string): Promise<SendResult>;
  /**
   * Publishes to every connected peer in scope, plus the connected peers listed in `alsoTo`
   * (room members of other namespaces); each peer gets the PUB once.
   */
  publish(scope: Scope, text: string, alsoTo?: readonly string[]): Promise<PublishResult>;
  /**
   * Writes a PUB with `dst` to exactly the listed peers that are connected, under `msgId` (a
   * new one by default): how a PUB already sent to others reaches a peer that connected late.
   */
  publishTo(
    peerIds: readonly string[],
    dst: Scope,
    text: string,
    msgId?: string,
  ): Promise<PublishResult>;
  /**
   * Makes sure there is a connection to `peerId` at `address` (dialling it if needed);
   * true once it is up, false if the signal fires first.
   */
  connectPeer(peerId: string, address: Address, signal: AbortSignal): Promise<boolean>;
  /** Sends REGISTER now (after a login, so that it carries the new token). */
  registerNow(): void;
  /** Dials failed or stale peers now (all of them, or one), resetting their backoff. */
  reconnect(peerId?: string): number;
  /** Our identity; undefined when the node runs without one (tests, benchmarks). */
  identity(): IdentityInfo | undefined;
  /** The safety number with a peer whose key is known; undefined otherwise. */
  verification(peerId: string): Verification | undefined;
  /** Marks a known peer's key verified (or not); false when its key is not known. */
  setVerified(peerId: string, verified: boolean): boolean;
  /**
   * Forgets a peer's remembered key, so that its next connection is trusted on first use
   * (after the user checked that the key change is real); false when no key is remembered.
   */
  forgetKey(peerId: string): boolean;
  /** The message store, when the peer keeps one. */
  readonly history?: MessageHistory;
  /** Registers a listener for events; returns the function that removes it. */
  subscribe(listener: (event: NodeEvent) => void): () => void;
  /** Says BYE on every connection, UNREGISTERs, and releases every socket and timer. */
  stop(reason?: string): Promise<void>;
}

/** Where a file transfer stands (see docs/peer-protocol.md, "Files"). */
export type TransferState =
  | "offered"
  | "sending"
  | "receiving"
  | "done"
  | "declined"
  | "cancelled"
  | "failed";

/** One file transfer, either way. */
export interface TransferInfo {
  /** 32 hex characters; the terminal shows the first 6. */
  id: string;
  direction: "in" | "out";
  peer: string;
  /** The name offered (made safe for the terminal by whoever shows it). */
  name: string;
  size: number;
  sha256: string;
  /** From the file's first bytes: an image type, or application/octet-stream. */
  type: string;
  state: TransferState;
  /** Why it was declined, cancelled or failed. */
  reason?: string;
  /** Bytes the receiver has (or, sending, has acknowledged). */
  bytes: number;
  /** Bytes a second over the last few seconds, while it moves. */
  rate?: number;
  /** Where a received file was saved, once verified. */
  savedAs?: string;
  createdAt: number;
}

/** What the files layer tells its subscribers. */
export type TransferEvent = {
  type: "transfer_offer" | "transfer_progress" | "transfer_state";
  transfer: TransferInfo;
  at: number;
};

/** File transfers between peers, as interfaces see them. */
export interface FileTransfers {
  list(): TransferInfo[];
  get(id: string): TransferInfo | undefined;
  /**
   * Offers the file at `path` to `peerId` (`name`: the name to offer, default the file's;
   * `temporary`: the file is removed once the transfer ended; `later`: a peer not connected now
   * is offered the file when it connects). Throws `no_files`, `not_connected`,
   * `file_unreadable` or `too_many_transfers`.
   */
  send(
    peerId: string,
    path: string,
    options?: { name?: string; temporary?: boolean; later?: boolean },
  ): Promise<TransferInfo>;
  accept(id: string): Promise<TransferInfo>;
  decline(id: string): TransferInfo;
  cancel(id: string): Promise<TransferInfo>;
  /** The file on disk: a received file once verified, or the file being sent. */
  localPath(id: string): string | undefined;
  subscribe(listener: (event: TransferEvent) => void): () => void;
}
