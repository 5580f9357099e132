/** The store's limits and defaults, each with where it comes from. */

/** Retention: a year of history by default (0 keeps everything). */
export const DEFAULT_RETENTION_DAYS = 365;
/** About 500 MB of disk at the measured ~250 bytes per message. */
export const DEFAULT_MAX_MESSAGES = 2_000_000;
/** The outbox: in all, and toward one conversation, so one absent friend cannot fill it. */
export const DEFAULT_MAX_QUEUED = 10_000;
export const DEFAULT_MAX_QUEUED_PER_CONVERSATION = 1_000;

/** Text cap in UTF-16 units: twice what one protocol line (32768 bytes) can carry. */
export const MAX_TEXT_CHARS = 65_536;

/** `page()` and `search()`: default and largest number of messages returned. */
export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** Ids one `receipt()` call looks at: a receipt from the network cannot make us work more. */
export const MAX_RECEIPT_IDS = 1000;

/** Rows one `prune()` call deletes at most: ~2 ms (three indexes, and the search index). */
export const PRUNE_STEP_ROWS = 250;
/**
 * History kept in memory (`--no-history`, or once the disk failed) holds at most this much: past
 * it the oldest messages go at each commit, a few prune steps at a time, so that a flood of
 * messages cannot take the machine's memory.
 */
export const MEMORY_MAX_BYTES = 64 * 1024 * 1024;
/** Prune steps one commit may take to get back under `MEMORY_MAX_BYTES`. */
export const MEMORY_PRUNE_STEPS = 8;

/**
 * New messages wait as staged rows (staged_rows.ts) until the writes pause; past this many, or
 * past `MAX_STAGED_TEXT` of text, each commit moves as many into the table as it added. A burst
 * this long runs at the speed of the staged rows (about 1 us a message against 6-8 us); reads
 * take staged rows in place. Each holds ~310 bytes of memory with a short text (measured), so
 * ~20 MB at the cap: room for a burst of 50,000 messages (scripts/bench_peer.ts) and what the
 * writes before it left staged.
 */
export const DEFAULT_MAX_STAGED = 65_536;
/**
 * Text and msg_ids held in staged rows at most, in UTF-16 units (16 MB of memory at most): room
 * for the 50,000-message burst with its 36-character msg_ids.
 */
export const MAX_STAGED_TEXT = 8 * 1024 * 1024;
/** Staged rows moved into the table per pause in the writes (~7 ms), and their text at most. */
export const MERGE_STEP_ROWS = 1_024;
/** Messages of the message log moved into the tables per step while the writes pause. */
export const INGEST_STEP_MESSAGES = 2_048;
/**
 * The message log is emptied once every record in it is in the tables; writes that never pause
 * leave some out at every commit, so past this size all of it moves in at once (and the file
 * is emptied at that commit).
 */
export const DEFAULT_MAX_LOG_BYTES = 32 * 1024 * 1024;
export const MERGE_STEP_TEXT = 512 * 1024;

/**
 * At start, messages sent and never acknowledged (a crash cut them off) go back to the outbox;
 * they are looked for among this many newest messages (a rowid range: a few ms).
 */
export const NEWEST_UNACKNOWLEDGED = 20_000;

/**
 * A batch nobody waits for (what a sender writes: nothing is acknowledged by it) commits
 * within this long: a kill -9 loses at most this much of our own history of messages sent,
 * never what was acknowledged to a peer or promised as queued (those wait for their commit).
 */
export const COMMIT_DELAY_MS = 10;

/**
 * Search indexing runs apart from the writes: at most this many rows (~2.5 ms at ~5 us a row)
 * every `INDEX_INTERVAL_MS`, about a tenth of one core while it catches up.
 */
export const INDEX_STEP_ROWS = 500;
export const INDEX_INTERVAL_MS = 25;

/**
 * How long opening waits for a lock. Another peer holds its lock for as long as it runs, so
 * waiting only helps a peer that is just exiting; start-up must stay well under a second.
 */
export const BUSY_TIMEOUT_MS = 250;

/**
 * Checkpoints (copying the WAL into the database, with two fsyncs) cost 10-30 ms, and up to
 * 230 ms while the disk is busy with a large file coming in; they run on the event loop, so each
 * is a stall of every connection. SQLite's own, every 1000 pages, stalled the loop that often.
 * They run when writes pause and at least this many were made since the last (fewer are made
 * durable by a WAL fsync in the background, wal_sync.ts) ...
 */
export const CHECKPOINT_PAUSE_WRITES = 1_000;

/** ... or once the store has had no commit for this long ... */
export const CHECKPOINT_IDLE_MS = 30_000;

/**
 * ... or after this many writes without a pause: a checkpoint's cost grows with the pages
 * written since the last one (20,000 writes into a store of a million messages took ~300 ms).
 */
export const CHECKPOINT_FORCE_WRITES = 4_000;

/** A WAL file larger than this is cut back after a checkpoint. */
export const WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024;
