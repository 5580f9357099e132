/**
 * Read receipts owed to peers that were not connected when their messages were read: sent when
 * they connect, after restarts on either side too. Bounded: the newest `MAX_DUE_PER_PEER` per
 * peer and `MAX_DUE` in all (older ones are dropped: a read receipt is a courtesy, not a
 * message).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** Receipts kept per peer, and in all. */
export const MAX_DUE_PER_PEER = 1_000;
export const MAX_DUE = 100_000;

/** The `receipts_due` table of one connection. */
export class ReceiptsDue {
  readonly #add: StatementSync;
  readonly #trimPeer: StatementSync;
  readonly #trimAll: StatementSync;
  readonly #of: StatementSync;
  readonly #drop: StatementSync;

  constructor(db: DatabaseSync) {
    this.#add = db.prepare("INSERT INTO receipts_due (peer_id, msg_id) VALUES (?, ?)");
    this.#trimPeer = db.prepare(
      `DELETE FROM receipts_due WHERE peer_id = ?1 AND seq <= (SELECT seq FROM receipts_due
       WHERE peer_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ${MAX_DUE_PER_PEER})`,
    );
    this.#trimAll = db.prepare(
      `DELETE FROM receipts_due WHERE seq <= (SELECT seq FROM receipts_due ORDER BY seq DESC
       LIMIT 1 OFFSET ${MAX_DUE})`,
    );
    this.#of = db.prepare("SELECT msg_id FROM receipts_due WHERE peer_id = ? ORDER BY seq");
    this.#drop = db.prepare("DELETE FROM receipts_due WHERE peer_id = ?");
  }

  /** Owes `peerId` a read receipt for each of `msgIds`. */
  hold(peerId: string, msgIds: readonly string[]): void {
    for (const msgId of msgIds.slice(-MAX_DUE_PER_PEER)) this.#add.run(peerId, msgId);
    this.#trimPeer.run(peerId);
    this.#trimAll.run();
  }

  /** What is owed to `peerId`, oldest first. */
  of(peerId: string): string[] {
    // A cell that is not text (a damaged file) is no id of ours to send.
    return (this.#of.all(peerId) as { msg_id: unknown }[]).flatMap((row) =>
      typeof row.msg_id === "string" ? [row.msg_id] : []
    );
  }

  /** Nothing is owed to `peerId` any more (its receipts went). */
  drop(peerId: string): void {
    this.#drop.run(peerId);
  }
}
