/**
 * Read receipts owed to peers that were not connected when their messages were read: sent when
 * they connect, after restarts on either side too. Bounded: the newest `MAX_DUE_PER_PEER` per
 * peer, `MAX_DUE` in all, ids of `MAX_DUE_ID_CHARS` at most (the rest are dropped: a read
 * receipt is a courtesy, not a message).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** Receipts kept per peer, and in all. */
export const MAX_DUE_PER_PEER = 1_000;
export const MAX_DUE = 100_000;
/** A msg_id longer than this gets no read receipt (ours and pyp2p's are 36 characters). */
export const MAX_DUE_ID_CHARS = 256;

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
    this.#trimAll = db.prepare("DELETE FROM receipts_due WHERE seq <= ?");
    this.#of = db.prepare("SELECT msg_id FROM receipts_due WHERE peer_id = ? ORDER BY seq");
    this.#drop = db.prepare("DELETE FROM receipts_due WHERE peer_id = ?");
  }

  /** Owes `peerId` a read receipt for each of `msgIds` (ids too long for one are skipped). */
  hold(peerId: string, msgIds: readonly string[]): void {
    let last: number | bigint = 0;
    for (const msgId of msgIds.slice(-MAX_DUE_PER_PEER)) {
      if (msgId.length <= MAX_DUE_ID_CHARS) last = this.#add.run(peerId, msgId).lastInsertRowid;
    }
    this.#trimPeer.run(peerId);
    // Rows are numbered in order: those more than MAX_DUE behind the newest go (by rowid).
    this.#trimAll.run(Number(last) - MAX_DUE);
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
