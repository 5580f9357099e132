/**
 * Messages that last: every message sent and received goes through the store, a direct message
 * that cannot be delivered now waits in the outbox and goes out by itself (in order, under its
 * first msg_id, so the receiver shows it once) when the peer connects, room messages wait for the
 * members that were offline, and receipts move states forward. Seen by interfaces as the
 * `PeerNode` it wraps, plus `history`.
 */
import type { Clock, TimerId } from "../../lib/clock.ts";
import { describeError, P2pError } from "../../lib/errors.ts";
import { Listeners } from "../../lib/listeners.ts";
import type { Logger } from "../../lib/log.ts";
import { isWireName } from "../../lib/codec.ts";
import type {
  ArrivedMessage,
  Contact,
  MessageHistory,
  NodeEvent,
  PeerNode,
  PublishResult,
  Scope,
  SendResult,
  StorageStatus,
  StoredMessage,
} from "../api.ts";
import type { ArrivalSecurity, Inbox, StartablePeerNode } from "../node/mod.ts";
import { type ReceiptStatus, splitPeerId } from "../protocol/mod.ts";
import type { MessageStore, NewIncoming, NewOutgoing } from "../store/mod.ts";
import { liveContact } from "./contacts.ts";

/** Messenger settings. */
export interface MessengerOptions {
  /** A queued message fails as `expired` after this long (default 7 days). */
  queueMaxAgeMs?: number;
  /** How often expiry, retention and retries run (default ten seconds). */
  sweepIntervalMs?: number;
  /** False: no read receipt is kept for a sender who is away (`--no-read-receipts`). */
  readReceipts?: boolean;
}

/** Collaborators. */
export interface MessengerDeps {
  /** The node itself: msg_ids, receipts, the peer table. */
  node: StartablePeerNode;
  /** What sends and publishes (the node seen through the accounts: rooms, offline accounts). */
  chat: PeerNode;
  store: MessageStore;
  clock: Clock;
  log: Logger;
  /** The member names of a room we know of (lower case), for room messages to offline members. */
  roomMembers?: (room: string) => readonly string[] | undefined;
}

/** How long a queued message waits by default. */
export const DEFAULT_QUEUE_DAYS = 7;
const DAY_MS = 24 * 60 * 60_000;
const DEFAULT_SWEEP_MS = 10_000;
/** Loop time one sweep may spend pruning (in steps of a few ms each). */
const PRUNE_BUDGET_MS = 20;

/** Reasons a direct message stays in the outbox (the others are final). */
const RETRYABLE: ReadonlySet<string> = new Set([
  "timeout",
  "not_connected",
  "unknown_peer",
  "offline",
  "closed",
]);

/** Why a send did not reach its peer. */
type _Failure = Extract<SendResult, { ok: false }>["reason"];

/** The node, with a store behind it. */
export class Messenger implements PeerNode, Inbox {
  readonly history: MessageHistory;
  readonly #node: StartablePeerNode;
  readonly #chat: PeerNode;
  readonly #store: MessageStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #roomMembers?: (room: string) => readonly string[] | undefined;
  readonly #queueMaxAgeMs: number;
  readonly #namespace: string;
  readonly #sweepIntervalMs: number;
  readonly #readReceipts: boolean;
  readonly #listeners: Listeners<NodeEvent>;
  /**
   * Conversations with queued direct messages (a new message there must not overtake them), with
   * why the last one was queued (a new one waits for the same reason).
   */
  readonly #backlog = new Map<string, _Failure>();
  /** Outbox messages on their way, by store id, with their outcome. */
  readonly #inFlight = new Map<number, Promise<SendResult>>();
  #sweepTimer?: TimerId;
  #unsubscribe = () => {};

  constructor(options: MessengerOptions, deps: MessengerDeps) {
    this.#node = deps.node;
    this.#chat = deps.chat;
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#log = deps.log.child("Messages");
    this.#roomMembers = deps.roomMembers;
    this.#queueMaxAgeMs = options.queueMaxAgeMs ?? DEFAULT_QUEUE_DAYS * DAY_MS;
    this.#namespace = splitPeerId(deps.node.peerId).namespace;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_MS;
    this.#readReceipts = options.readReceipts ?? true;
    this.#listeners = new Listeners(this.#log, "Event listener");
    this.history = this.#historyView();
  }

  /** Loads the outbox and starts delivering; call once, before the node starts. */
  start(): void {
    // Written before a crash and never acknowledged: it goes again (a p2pchat peer shows it
    // once; see docs/peer-protocol.md), unless it is past the queue time.
    this.#store.requeueUnacknowledged();
    // What expired (or passed retention) while we were away goes before anything is sent.
    this.#sweep();
    for (const message of this.#store.queued()) {
      this.#backlog.set(message.conversation, "not_connected");
    }
    this.#unsubscribe = this.#node.subscribe((event) => {
      if (event.type !== "peer") return;
      if (event.state === "connected") this.#peerConnected(event.peerId);
      if (event.state === "connected" || event.state === "stale" || event.state === "gone") {
        this.#store.seen(event.peerId, event.at, this.#addressOf(event.peerId));
      }
    });
    this.#scheduleSweep();
  }

  /** Stops the timers; the store is closed by its owner after the node stopped. */
  close(): void {
    this.#unsubscribe();
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  /** The store's problem (disk full, read-only ...) told to every interface. */
  storageChanged(status: StorageStatus): void {
    this.#listeners.emit({ type: "storage", status, at: this.#clock.now() });
  }

  // ---- PeerNode: sending goes through the store, the rest is the node's ----

  get peerId(): string {
    return this.#chat.peerId;
  }

  status() {
    return this.#chat.status();
  }

  peers(scope?: Scope) {
    return this.#chat.peers(scope);
  }

  send(peerId: string, text: string): Promise<SendResult> {
    // Nothing would ever deliver it: we never connect to ourselves.
    // (Lengths first: this runs for every message sent, and lower-casing makes two strings.)
    const self = this.peerId;
    if (peerId.length === self.length && peerId.toLowerCase() === self.toLowerCase()) {
      return Promise.resolve({ ok: false, reason: "unknown_peer" });
    }
    // Not async: the common case (connected, nothing queued before it) adds no promise of its
    // own to the one that waits for the ACK.
    const encrypted = this.#node.encryptedLink(peerId);
    const backlog = this.#backlog.has(peerId);
    let stored: StoredMessage;
    try {
      stored = this.#store.addOutgoing({
        msgId: this.#node.newMsgId(),
        kind: "direct",
        from: self,
        conversation: peerId,
        text,
        at: this.#clock.now(),
        // Not connected: it will travel encrypted if we remember the peer's key (a known key
        // never connects in clear); the connection that takes it says for sure (#pump).
        encrypted: encrypted ?? this.#chat.verification(peerId) !== undefined,
        // Straight to the connection, unless older messages wait: those go first.
        state: encrypted !== undefined && !backlog ? "sent" : "queued",
      });
    } catch (error) {
      if (error instanceof P2pError && error.code === "queue_full") {
        return Promise.resolve({ ok: false, reason: "queue_full" });
      }
      return Promise.reject(error);
    }
    this.#added(stored);
    if (backlog) return this.#sendBehindBacklog(stored, encrypted !== undefined);
    // Connected: straight to the connection, and `settled` hears how it ended (no promise of
    // ours, nor an #inFlight entry, per message: the connection's unanswered SENDs are those).
    // A connection closing meanwhile takes nothing: the message goes the way of the others.
    return (encrypted !== undefined && this.#node.sendStored(stored)) || this.#transmit(stored);
  }

  // A message queued behind older ones of its conversation: they go first.
  async #sendBehindBacklog(stored: StoredMessage, connected: boolean): Promise<SendResult> {
    const peerId = stored.conversation;
    if (!connected) {
      // "Queued" is a promise to the user: it holds once the message is on disk.
      await this.#store.committed();
      return this.#queuedResult(stored, this.#backlog.get(peerId) ?? "not_connected");
    }
    this.#pump(peerId);
    return await (this.#inFlight.get(stored.id) ?? this.#transmit(stored));
  }

  async publish(scope: Scope, text: string, alsoTo?: readonly string[]): Promise<PublishResult> {
    const result = await this.#chat.publish(scope, text, alsoTo);
    const reached = new Set(result.peers.map((peerId) => _fold(splitPeerId(peerId).name)));
    const own = _fold(splitPeerId(this.peerId).name);
    const members = scope === "*" ? undefined : this.#roomMembers?.(scope.slice(1));
    const pendingFor = members?.filter((name) => name !== own && !reached.has(name)) ?? [];
    // Nobody got it and nobody waits for it: it is not "sent" anywhere.
    const unreached = result.reached === 0 && pendingFor.length === 0;
    const stored = this.#store.addOutgoing({
      msgId: result.msgId,
      kind: "pub",
      from: this.peerId,
      conversation: scope,
      text,
      at: this.#clock.now(),
      // Those reached later get it encrypted too (room members are p2pchat peers).
      encrypted: result.encrypted === result.reached,
      state: unreached ? "failed" : "sent",
      reason: unreached ? "unreached" : undefined,
      pendingFor,
    });
    this.#added(stored);
    // "Waiting" for members is a promise to the user, as "queued" is: it holds once on disk.
    if (pendingFor.length > 0) await this.#store.committed();
    return { ...result, waiting: pendingFor.length, id: stored.id };
  }

  publishTo(peerIds: readonly string[], dst: Scope, text: string, msgId?: string) {
    return this.#chat.publishTo(peerIds, dst, text, msgId);
  }

  connectPeer(
    peerId: string,
    address: Parameters<PeerNode["connectPeer"]>[1],
    signal: AbortSignal,
  ) {
    return this.#chat.connectPeer(peerId, address, signal);
  }

  registerNow(): void {
    this.#chat.registerNow();
  }

  reconnect(peerId?: string): number {
    return this.#chat.reconnect(peerId);
  }

  identity() {
    return this.#chat.identity();
  }

  verification(peerId: string) {
    return this.#chat.verification(peerId);
  }

  setVerified(peerId: string, verified: boolean): boolean {
    return this.#chat.setVerified(peerId, verified);
  }

  forgetKey(peerId: string): boolean {
    return this.#chat.forgetKey(peerId);
  }

  subscribe(listener: (event: NodeEvent) => void): () => void {
    const fromNode = this.#chat.subscribe(listener);
    const own = this.#listeners.add(listener);
    return () => {
      fromNode();
      own();
    };
  }

  stop(reason?: string): Promise<void> {
    this.close();
    return this.#chat.stop(reason);
  }

  // ---- Inbox: what the node receives ----

  accept(message: ArrivedMessage, security: ArrivalSecurity): StoredMessage | "duplicate" {
    const stored = this.#store.addIncoming({
      // A SEND without msg_id cannot be told from another: it gets a local id of its own.
      msgId: message.msgId === "" ? `local-${crypto.randomUUID()}` : message.msgId,
      kind: message.kind,
      from: message.from,
      conversation: message.kind === "direct" ? message.from : this.#pubConversation(message.to),
      text: message.text,
      at: message.at,
      encrypted: security.encrypted,
      fingerprint: security.fingerprint,
    });
    return stored ?? "duplicate";
  }

  committed(): Promise<void> {
    return this.#store.committed();
  }

  commitNow(): void {
    this.#store.flush();
  }

  receipt(from: string, msgIds: string[], status: ReceiptStatus): void {
    // Only messages we sent to `from` itself: ids are guessable, and another peer's receipt
    // must not mark a message to someone else read.
    for (const message of this.#store.receipt(from, msgIds, status)) this.#changed(message);
    if (status !== "delivered" || !this.#provesAccount(from)) return;
    const ids = new Set(msgIds);
    const name = _fold(splitPeerId(from).name);
    for (const message of this.#store.pendingFor(name)) {
      if (!ids.has(message.msgId)) continue;
      const reached = this.#store.memberReached(message.id, name);
      if (reached) this.#changed(reached, from);
    }
  }

  // ---- the outbox ----

  // Hands a stored message to the node and records the outcome.
  #transmit(message: StoredMessage): Promise<SendResult> {
    const outcome = this.#chat.send(message.conversation, message.text, message.msgId)
      .then((result) => this.settled(message, result));
    this.#inFlight.set(message.id, outcome);
    return outcome;
  }

  // How a send ended (an outbox one's, or one the node sent at once): the outcome it gives.
  settled(message: StoredMessage, result: SendResult): SendResult | Promise<SendResult> {
    this.#inFlight.delete(message.id);
    if (result.ok) {
      const delivered = this.#store.delivered(message);
      if (delivered) this.#changed(delivered);
      this.#recheckBacklog(message.conversation);
      // A new object rather than the node's with an id added: that would be an object shape of
      // its own, which a full collection drops between bursts, with the code that met it.
      return { ok: true, msgId: result.msgId, roundTripMs: result.roundTripMs, id: message.id };
    }
    // A peer without durable de-duplication (a plain pyp2p peer) may have shown a SEND it
    // did not ACK: sending it again would show it twice, so it stays sent, unconfirmed.
    const unconfirmed = result.reason === "timeout" &&
      !this.#node.takesReceipts(message.conversation);
    if (unconfirmed) {
      // Written, perhaps shown: out of the outbox, and not sent again after a restart either.
      const sent = this.#store.setUnconfirmed(message.id);
      if (sent) this.#changed(sent);
      return { ...result, id: message.id };
    }
    // A name nobody listed and we never heard from is perhaps a typo, and whoever claims it
    // first would get the message: only people we know wait in the outbox.
    // (Not in our peer table at all is as unlisted, while the tracker is away.)
    const unlisted = result.reason === "unknown_peer" ||
      (result.reason === "not_connected" && this.#node.peerRow(message.conversation) === undefined);
    const stranger = unlisted && !this.#knows(message.conversation);
    if (stranger || !RETRYABLE.has(result.reason)) {
      const failed = this.#store.setState(message.id, "failed", result.reason);
      if (failed) this.#changed(failed);
      return { ...result, id: message.id };
    }
    // Perhaps delivered (an ACK lost with the connection): it goes again under the same id,
    // and the receiver, which keeps every id it stored, shows it once.
    const queued = this.#store.setState(message.id, "queued");
    if (queued) this.#changed(queued);
    this.#backlog.set(message.conversation, result.reason);
    // "Queued" is a promise to the user: it holds once the message is on disk.
    const reason = result.reason;
    return this.#store.committed().then(() => this.#queuedResult(message, reason));
  }

  // Known: a contact, a peer whose key we remember, or one that wrote to us.
  #knows(peerId: string): boolean {
    if (this.#store.isContact(peerId) || this.#chat.verification(peerId)) return true;
    return this.#store.page(peerId, { limit: 50 }).messages.some((message) => !message.outgoing);
  }

  #queuedResult(
    message: StoredMessage,
    reason: _Failure,
  ): SendResult {
    return { ok: false, reason, queued: true, id: message.id, msgId: message.msgId };
  }

  // Sends the conversation's queued messages, oldest first, over its open connection.
  #pump(peerId: string): void {
    const encrypted = this.#node.encryptedLink(peerId);
    if (encrypted === undefined) return;
    for (const message of this.#store.queuedFor(peerId)) {
      if (this.#inFlight.has(message.id)) continue;
      // It goes over this connection: say how, as a message sent now would.
      if (message.encrypted !== encrypted) this.#store.setEncrypted(message.id, encrypted);
      // It stays queued until its ACK: a crash before that must leave it in the outbox.
      void this.#transmit(message);
    }
  }

  #recheckBacklog(conversation: string): void {
    if (!this.#backlog.has(conversation)) return;
    if (this.#store.queuedFor(conversation).length === 0) this.#backlog.delete(conversation);
  }

  #peerConnected(peerId: string): void {
    if (this.#backlog.has(peerId)) this.#pump(peerId);
    const reads = this.#store.takeReceipts(peerId);
    if (reads.length > 0) this.#node.sendReceipt(peerId, reads, "read");
    // Room messages that waited for this member (by account name: rooms are accounts').
    const name = _fold(splitPeerId(peerId).name);
    if (this.#provesAccount(peerId)) return this.#deliverWaiting(peerId, name);
    // Its key may be the account's still: the tracker's "no such account" may predate a sign-up.
    if (this.#node.encryptedLink(peerId) !== true || this.#store.pendingFor(name).length === 0) {
      return;
    }
    this.#node.recheckAccount(peerId).then((bound) => {
      if (bound) this.#deliverWaiting(peerId, name);
    }).catch((error) => {
      this.#log.warn("Could not check a room member's account", {
        peer: peerId,
        error: describeError(error),
      });
    });
  }

  // Sends the room messages waiting for member `name` to its account-bound peer `peerId`.
  #deliverWaiting(peerId: string, name: string): void {
    const waiting = this.#store.pendingFor(name);
    if (waiting.length === 0) return;
    const confirms = this.#node.takesReceipts(peerId);
    for (const message of waiting) {
      // Only while they are still a member (someone who left must not get it).
      const members = this.#roomMembers?.(message.conversation.slice(1));
      if (members === undefined) continue;
      if (!members.includes(name)) {
        const dropped = this.#store.memberReached(message.id, name);
        if (dropped) this.#changed(dropped);
        continue;
      }
      void this.#chat.publishTo(
        [peerId],
        message.conversation as Scope,
        message.text,
        message.msgId,
      )
        .then((result) => {
          // A peer that confirms with a RECEIPT is reached once it says so (see `receipt`).
          if (result.reached === 0 || confirms) return;
          const reached = this.#store.memberReached(message.id, name);
          if (reached) this.#changed(reached, peerId);
        });
    }
  }

  // True when the peer's key is the one the tracker holds for the account of its name: room
  // members are accounts, and a name alone (any namespace, any key) can be anyone's.
  #provesAccount(peerId: string): boolean {
    return this.#node.peerRow(peerId)?.security?.accountBound === true;
  }

  #scheduleSweep(): void {
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.#sweep();
      this.#scheduleSweep();
    }, this.#sweepIntervalMs);
  }

  // Expiry, retention, and another try for what timed out on a connection still open.
  #sweep(): void {
    const now = this.#clock.now();
    // Not one on its way: its ACK may come yet.
    const expired = this.#store.expire(now, this.#queueMaxAgeMs, this.#inFlight);
    for (const message of expired) this.#changed(message);
    const started = performance.now();
    while (this.#store.prune(now) > 0 && performance.now() - started < PRUNE_BUDGET_MS);
    for (const conversation of [...this.#backlog.keys()]) {
      this.#recheckBacklog(conversation);
      if (this.#backlog.has(conversation)) this.#pump(conversation);
    }
  }

  // A PUB's `dst` as a conversation: `#name` for our namespace and the rooms we are in, `*` for
  // anything else, so that made-up scopes cannot each open a conversation of their own.
  #pubConversation(to: string): string {
    if (!to.startsWith("#")) return "*";
    const name = to.slice(1);
    if (name === this.#namespace) return to;
    return isWireName(name) && this.#roomMembers?.(name) !== undefined ? to : "*";
  }

  /**
   * Stores a line that is not a chat message (a file transfer) in its conversation and tells
   * the pages, as for a message.
   */
  record(line: { incoming: NewIncoming } | { outgoing: NewOutgoing }): void {
    const stored = "incoming" in line
      ? this.#store.addIncoming(line.incoming)
      : this.#store.addOutgoing(line.outgoing);
    if (stored) this.#added(stored);
  }

  #added(message: StoredMessage): void {
    if (this.#listeners.size === 0) return;
    this.#listeners.emit({ type: "message_added", message, at: this.#clock.now() });
  }

  #changed(message: StoredMessage, member?: string): void {
    if (this.#listeners.size === 0) return;
    const at = this.#clock.now();
    // Built without a spread: this runs for every ACK of a message we send.
    this.#listeners.emit(
      member === undefined
        ? { type: "message_state", message, at }
        : { type: "message_state", message, at, member },
    );
  }

  #addressOf(peerId: string) {
    return this.#node.peerRow(peerId)?.address;
  }

  // ---- history, as interfaces see it ----

  #historyView(): MessageHistory {
    const store = this.#store;
    return {
      conversations: () => store.conversations(),
      page: (conversation, options) => store.page(conversation, options),
      markRead: (conversation, upTo) => this.#markRead(conversation, upTo),
      search: (text, limit) => store.search(text, limit),
      queued: () => store.queued(),
      waiting: () => store.waiting(),
      // What the user changes by hand is on disk before they are told it is done: a cancelled
      // message must not come back and go out after a crash.
      cancel: (id) => {
        // Handed to the node already: it may be on the wire (it leaves the outbox on its ACK,
        // or comes back to it, cancellable, when the try fails).
        if (this.#inFlight.has(id)) {
          throw new P2pError("bad_state", `Message ${id} is being sent now: too late to cancel`);
        }
        const cancelled = store.cancel(id);
        if (!cancelled) return undefined;
        store.flush();
        this.#changed(cancelled);
        this.#recheckBacklog(cancelled.conversation);
        return cancelled;
      },
      // As a cancel: refused while a message of it is on its way (a connection writes what it
      // was given, and the user would be told it would not go), on disk before the answer.
      forget: (conversation) => {
        // Outbox messages on their way (perhaps waiting for a connection), and whatever the
        // connection to the peer has not had an ACK for (messages sent at once among them).
        const sending = Math.max(
          [...this.#inFlight.keys()].filter((id) => store.byId(id)?.conversation === conversation)
            .length,
          this.#node.unansweredSends(conversation),
        );
        if (sending > 0) {
          const what = sending === 1 ? "a message" : `${sending} messages`;
          throw new P2pError(
            "bad_state",
            `${what} to ${conversation} ${sending === 1 ? "is" : "are"} on the way now: ` +
              "try again in a few seconds",
          );
        }
        const deleted = store.forget(conversation);
        if (deleted === undefined) return undefined;
        store.flush();
        this.#recheckBacklog(conversation);
        const at = this.#clock.now();
        this.#listeners.emit({ type: "conversation_forgotten", conversation, deleted, at });
        return deleted;
      },
      lastOpened: () => store.lastOpened(),
      setLastOpened: (conversation) => store.setLastOpened(conversation),
      contacts: () => store.contactRows().map((row) => this.#contact(row.peerId, row)),
      addContact: (peerId) => {
        const known = store.isContact(peerId);
        const row = store.addContact(peerId, this.#clock.now());
        store.flush();
        if (!known) this.#contactChanged(peerId, "added");
        return this.#contact(peerId, row);
      },
      removeContact: (peerId) => {
        const removed = store.removeContact(peerId);
        store.flush();
        if (removed) this.#contactChanged(peerId, "removed");
        return removed;
      },
      storage: () => store.storage(),
    };
  }

  // Told to every interface: the web chat's list follows a /add typed in the terminal.
  #contactChanged(peerId: string, change: "added" | "removed"): void {
    this.#listeners.emit({ type: "contact", peerId, change, at: this.#clock.now() });
  }

  #contact(peerId: string, row: Parameters<typeof liveContact>[0]): Contact {
    return liveContact(row, this.#node.peerRow(peerId), this.#chat.verification(peerId));
  }

  // Marks read and tells the senders of direct messages (when both sides have read receipts on).
  #markRead(conversation: string, upTo?: number): number {
    const read = this.#store.markRead(conversation, upTo);
    if (read.length > 0 && this.#listeners.size > 0) {
      this.#listeners.emit({ type: "conversation_read", conversation, at: this.#clock.now() });
    }
    const direct = read.filter((message) => message.kind === "direct");
    if (direct.length > 0 && !direct[0].outgoing) {
      const msgIds = direct.map((message) => message.msgId);
      // Owed until the sender connects (a restart of either side included); with read
      // receipts off, nothing is owed, ever.
      if (this.#node.peerRow(conversation)?.state === "connected") {
        this.#node.sendReceipt(conversation, msgIds, "read");
      } else if (this.#readReceipts) {
        this.#store.holdReceipts(conversation, msgIds);
      }
    }
    return read.length;
  }
}

/**
 * An inbox that hands everything to the messenger `get()` returns: the node needs its inbox when
 * it is made, and the messenger needs the node.
 */
export function lateInbox(get: () => Inbox): Inbox {
  return {
    accept: (message, security) => get().accept(message, security),
    committed: () => get().committed(),
    commitNow: () => get().commitNow(),
    settled: (message, result) => get().settled(message, result),
    receipt: (from, msgIds, status) => get().receipt(from, msgIds, status),
  };
}

// Account names compare without case, as the tracker compares them.
function _fold(name: string): string {
  return name.toLowerCase();
}
