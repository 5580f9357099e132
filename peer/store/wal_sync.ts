/**
 * Makes the commits in a store's WAL file durable without blocking: an fsync of the file on
 * Deno's I/O threads. SQLite's own fsyncs (in a checkpoint) run on the event loop, and under
 * heavy disk traffic (a large file being received) one took up to 230 ms, a stall of every
 * connection; so checkpoints are rare (message_store.ts) and this keeps the commits safe from a
 * power cut between them. A second fd on the file is harmless: SQLite puts no lock on the WAL.
 */
import { describeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";

/** One fsync of the WAL at a time; a request while one runs asks for one more after it. */
export class WalSync {
  readonly #path: string;
  readonly #log: Logger;
  readonly #onSynced?: () => void;
  #file?: Deno.FsFile;
  #running = false;
  #again = false;
  #closed = false;

  /** `path` is the database file; its WAL is `path-wal`. `onSynced` is for tests. */
  constructor(path: string, log: Logger, onSynced?: () => void) {
    this.#path = `${path}-wal`;
    this.#log = log;
    this.#onSynced = onSynced;
  }

  /** Syncs the commits made so far, in the background. */
  request(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#run().finally(() => {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    });
  }

  /** Stops syncing (the store closes, or went to memory); closing the store checkpoints. */
  close(): void {
    this.#closed = true;
    this.#again = false;
    try {
      this.#file?.close();
    } catch {
      // A sync still running holds the file until it ends.
    }
    this.#file = undefined;
  }

  async #run(): Promise<void> {
    try {
      // For writing (never created nor truncated): Windows flushes only a handle that may write.
      this.#file ??= await Deno.open(this.#path, { write: true });
      if (this.#closed) return this.close();
      await this.#file.syncData();
      this.#onSynced?.();
    } catch (error) {
      if (this.#closed) return;
      // The commits stay in the WAL; the next checkpoint fsyncs them.
      this.#log.warn(`Syncing the message store's WAL failed: ${describeError(error)}`, {
        file: this.#path,
      });
    }
  }
}
