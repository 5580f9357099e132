/**
 * Which state changes of your own messages the terminal tells, and when. Old lines are never
 * rewritten (they are in the scrollback, out of reach): a change is one short notice line, and
 * only when it is news. A send resolved with an ACK already printed "delivered to PEER", so its
 * `delivered` event is not told again; nor is the prompt delivery (within a second) of a
 * message sent elsewhere (the HTTP API: its caller knows). A message that was queued is told
 * when it is delivered (a `sent` event says it left the outbox). A `sent` or `queued` event
 * is never news itself (the send's own line said it); reads are dim and a burst of them (one
 * receipt for many messages) is one line; failures are always told, once: a send's own failure
 * by its "not delivered" line.
 */
import type { SendResult, StoredMessage } from "../api.ts";
import type { Style } from "./format.ts";
import {
  formatDelivered,
  formatFailed,
  formatMemberReached,
  formatRead,
} from "./history_format.ts";

/** How many msg_ids of ACKed sends are remembered until their `delivered` event comes. */
const TOLD_LIMIT = 1024;

/** A delivery this soon after the message was written is no news unless it had been queued. */
const PROMPT_DELIVERY_MS = 1000;

interface _Change {
  message: StoredMessage;
  at: number;
}

/** Turns `message_state` events into notice lines, given the outcomes of this terminal's sends. */
export class StateNotices {
  /** Direct sends from this terminal still waiting for their outcome, per peer. */
  readonly #inFlight = new Map<string, number>();
  /** `delivered` events that came while a send to the same peer was waiting. */
  readonly #held = new Map<string, _Change[]>();
  /** msg_ids whose send call ended with an ACK (its line said "delivered"). */
  readonly #toldBySend = new Set<string>();
  /** Ids whose send call ended in failure (its line said "not delivered"). */
  readonly #failedBySend = new Set<number>();
  /** Ids whose send call here said "queued for": their delivery is always told. */
  readonly #queuedHere = new Set<number>();
  /** Ids cancelled with /cancel here: their `failed: cancelled` is no news. */
  readonly #cancelledHere = new Set<number>();
  /** Reads gathered in this task, per conversation, told together when it ends. */
  readonly #reads = new Map<string, _Change[]>();
  /** Room messages a returning member got in this task, per member and room, told together. */
  readonly #reached = new Map<string, _Change[]>();
  #closed = false;

  constructor(readonly show: (line: string) => void, readonly style: Style) {}

  /**
   * A direct send from this terminal starts; call the returned function with its outcome
   * (undefined: it was not sent). Until then a `delivered` event for that peer is held, since
   * it may be the one this send is about to print.
   */
  sendStarted(peerId: string): (result: SendResult | undefined) => void {
    this.#inFlight.set(peerId, (this.#inFlight.get(peerId) ?? 0) + 1);
    let ended = false;
    return (result) => {
      if (ended) return;
      ended = true;
      if (result?.ok) _remember(this.#toldBySend, result.msgId);
      else if (result?.queued && result.id !== undefined) _remember(this.#queuedHere, result.id);
      else if (result?.id !== undefined) _remember(this.#failedBySend, result.id);
      const left = (this.#inFlight.get(peerId) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(peerId, left);
      else this.#inFlight.delete(peerId);
      this.#release(peerId);
    };
  }

  /**
   * `id` is in the outbox (left by an earlier run, or queued from the API or the web chat): its
   * delivery is news whenever it comes.
   */
  queued(id: number): void {
    _remember(this.#queuedHere, id);
  }

  /** The user cancelled `id` here (the command said so). */
  cancelled(id: number): void {
    _remember(this.#cancelledHere, id);
  }

  /** A stored message changed state; `member`: a room member who just got it. */
  changed(message: StoredMessage, at: number, member?: string): void {
    if (!message.outgoing || this.#closed) return;
    if (member !== undefined && message.kind === "pub") {
      this.#gatherReached(member, { message, at });
      return;
    }
    if (message.state === "failed" && message.reason === "cancelled") {
      if (this.#cancelledHere.delete(message.id)) return;
    }
    // While a send to this peer waits, its own line is about to tell its outcome ("delivered",
    // "not delivered"), and a receipt can come in the same read as its ACK: decide after it.
    const outcome = message.state === "delivered" || message.state === "read" ||
      message.state === "failed";
    if (outcome && message.kind === "direct" && this.#inFlight.has(message.conversation)) {
      const held = this.#held.get(message.conversation) ?? [];
      held.push({ message, at });
      this.#held.set(message.conversation, held);
      return;
    }
    this.#tell({ message, at });
  }

  /** Stops telling (the terminal closed). */
  close(): void {
    this.#closed = true;
    this.#reads.clear();
    this.#reached.clear();
    this.#held.clear();
  }

  #delivered(change: _Change): void {
    const { message, at } = change;
    if (this.#toldBySend.delete(message.msgId)) return;
    if (this.#queuedHere.delete(message.id)) {
      this.show(formatDelivered(message, this.style, at));
      return;
    }
    if (at - message.at < PROMPT_DELIVERY_MS) return; // sent elsewhere, delivered at once
    this.show(formatDelivered(message, this.style, at));
  }

  // Once no send to `peerId` waits, the held events are told.
  #release(peerId: string): void {
    if (this.#inFlight.has(peerId) || this.#closed) return;
    const held = this.#held.get(peerId) ?? [];
    this.#held.delete(peerId);
    for (const change of held) this.#tell(change);
  }

  #tell(change: _Change): void {
    const { message, at } = change;
    switch (message.state) {
      case "delivered":
        // A room's members are told by their own lines; its sender by "reached N peers".
        if (message.kind === "direct") this.#delivered(change);
        return;
      case "read":
        this.#gatherRead(change);
        return;
      case "failed":
        if (!this.#failedBySend.delete(message.id)) {
          this.show(formatFailed(message, this.style, at));
        }
        return;
      case "sent":
        // Only a message leaving the outbox changes to sent (a new one is stored as sent): it
        // was queued, perhaps by an earlier run, so its delivery is news.
        _remember(this.#queuedHere, message.id);
        return;
      default:
        return; // "queued" (again): the send's own line told it
    }
  }

  // One receipt marks many messages read at once: one line per conversation, after the burst.
  #gatherRead(change: _Change): void {
    this.#gather(this.#reads, change.message.conversation, change, (changes, at) => {
      this.show(formatRead(changes.map((read) => read.message), this.style, at));
    });
  }

  // A member back after a while gets every room message that waited: one line per room.
  #gatherReached(member: string, change: _Change): void {
    const key = `${member}\n${change.message.conversation}`;
    this.#gather(this.#reached, key, change, (changes, at) => {
      const messages = changes.map((reached) => reached.message);
      this.show(formatMemberReached(messages, member, this.style, at));
    });
  }

  // Collects the changes of this task under `key`, and tells them together once it ends.
  #gather(
    gathered: Map<string, _Change[]>,
    key: string,
    change: _Change,
    tell: (changes: _Change[], at: number) => void,
  ): void {
    const changes = gathered.get(key);
    if (changes) {
      changes.push(change);
      return;
    }
    gathered.set(key, [change]);
    queueMicrotask(() => {
      const all = gathered.get(key);
      gathered.delete(key);
      if (!all || this.#closed) return;
      tell(all, Math.max(...all.map((one) => one.at)));
    });
  }
}

function _remember<T>(set: Set<T>, value: T): void {
  set.add(value);
  if (set.size > TOLD_LIMIT) set.delete(set.values().next().value!);
}
