/**
 * The least a message store can do in the SEND benchmark's layout, to show what persisting costs
 * whatever the store's design: each message is kept as a row until its commit, and a commit
 * writes the rows as one JSON text into one SQLite row of a file in WAL mode
 * (`synchronous=NORMAL`, as the message store). The sender commits within 10 ms, the receiver
 * before it ACKs (once per read); an ACK changes the row's state in place, or is saved as
 * `[id, state]` once the row is. No duplicate check, no conversations or counters, no reads, no
 * events, nothing kept after a commit: none of what the real store (peer/store/) does besides.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { StoredMessage } from "../peer/api.ts";
import type { Inbox } from "../peer/node/mod.ts";

// As COMMIT_DELAY_MS in peer/store/limits.ts.
const SENDER_COMMIT_DELAY_MS = 10;
/** The state codes of peer/store/rows.ts. */
export const SENT = 1;
const DELIVERED = 2;

// id, conversation, sender, flags, state, at, msgId, text: the leading columns of a staged row.
type _Row = [number, number, number, number, number, number, string, string];

/** The least store, in one file. */
export class LeastStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  #rows: (_Row | [number, number])[] = [];
  // Rows not committed yet, by id: an ACK before the commit changes the row itself.
  readonly #unsaved = new Map<number, _Row>();
  #lastId = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #queued = false;
  #done?: PromiseWithResolvers<void>;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(
      `PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA locking_mode = EXCLUSIVE;
       PRAGMA wal_autocheckpoint = 0;
       CREATE TABLE staged (batch INTEGER PRIMARY KEY, last_id INTEGER NOT NULL, rows TEXT NOT NULL)`,
    );
    this.#insert = this.#db.prepare("INSERT INTO staged (last_id, rows) VALUES (?, ?)");
  }

  /** Keeps a message; the commit comes within the sender's delay. */
  add(msgId: string, text: string, state: number): number {
    const id = ++this.#lastId;
    const row: _Row = [id, 1, 1, 0, state, Date.now(), msgId, text];
    this.#rows.push(row);
    this.#unsaved.set(id, row);
    this.#commitLater();
    return id;
  }

  /** The ACK of message `id`. */
  delivered(id: number): void {
    const row = this.#unsaved.get(id);
    if (row !== undefined) row[4] = DELIVERED;
    else {
      this.#rows.push([id, DELIVERED]);
      this.#commitLater();
    }
  }

  /** Commits once the code running now yields; settles after that commit. */
  committed(): Promise<void> {
    if (this.#rows.length === 0) return Promise.resolve();
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(() => this.#commit());
    }
    this.#done ??= Promise.withResolvers<void>();
    return this.#done.promise;
  }

  /** Commits now what was kept. */
  commitNow(): void {
    this.#commit();
  }

  close(): void {
    this.#commit();
    this.#db.close();
  }

  #commitLater(): void {
    if (this.#timer === undefined && !this.#queued) {
      this.#timer = setTimeout(() => this.#commit(), SENDER_COMMIT_DELAY_MS);
    }
  }

  #commit(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queued = false;
    if (this.#rows.length > 0) {
      this.#db.exec("BEGIN");
      this.#insert.run(this.#lastId, JSON.stringify(this.#rows));
      this.#db.exec("COMMIT");
      this.#rows = [];
      this.#unsaved.clear();
    }
    const done = this.#done;
    this.#done = undefined;
    done?.resolve();
  }
}

/** The receiving node's inbox over `store`: keeps every message, ACKs after the commit. */
export function leastStoreInbox(store: LeastStore): Inbox {
  return {
    accept(message, security): StoredMessage {
      const id = store.add(message.msgId, message.text, DELIVERED);
      // The message event carries the stored message, as with the real store.
      return {
        id,
        msgId: message.msgId,
        conversation: message.from,
        kind: message.kind,
        from: message.from,
        outgoing: false,
        text: message.text,
        at: message.at,
        state: "delivered",
        encrypted: security.encrypted,
      };
    },
    committed: () => store.committed(),
    commitNow: () => store.commitNow(),
    receipt: () => {},
    settled: (_message, result) => result,
  };
}
