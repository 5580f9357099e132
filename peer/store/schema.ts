/**
 * The schema as an ordered list of migrations: version N is `MIGRATIONS[N - 1]`, recorded in
 * `PRAGMA user_version`. Each runs in its own transaction, so a crash leaves the database at
 * one version or the next. Append new migrations; never edit a released one.
 */
import type { DatabaseSync } from "node:sqlite";

/**
 * Version 1. Choices measured on 1,000,000 rows (scripts/bench_store_engine.ts):
 * - Strings repeated on every row (conversation, sender, fingerprint) are interned as integers.
 * - Three indexes on messages, each cheap to append to: paging by conversation; de-duplication
 *   and receipts by (sender, msg_id), whose p2pchat msg_ids grow per connection, so a burst
 *   writes one leaf (a hashed key would dirty a random page per row: 20x the cost); the
 *   outbox, a partial index holding only queued and pending rows.
 * - Search is a trigram FTS5 index over the text, filled in bounded steps after the writes;
 *   `meta.indexed_upto` says how far. Deleting an indexed row removes it from the index.
 */
const VERSION_1 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('next_id', 1), ('indexed_upto', 0), ('opened_at', 0);

CREATE TABLE conversations (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  last_id INTEGER NOT NULL DEFAULT 0,
  read_upto INTEGER NOT NULL DEFAULT 0,
  unread INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE peers (
  id INTEGER PRIMARY KEY,
  peer_id TEXT NOT NULL UNIQUE,
  own INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE fingerprints (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  state INTEGER NOT NULL,
  at INTEGER NOT NULL,
  msg_id TEXT NOT NULL,
  text TEXT NOT NULL,
  fingerprint INTEGER,
  reason TEXT,
  pending TEXT
);
CREATE INDEX messages_by_conversation ON messages (conversation, id);
CREATE INDEX messages_by_sender ON messages (sender, msg_id);
CREATE INDEX messages_outbox ON messages (conversation, id) WHERE state = 0 OR pending IS NOT NULL;

CREATE VIRTUAL TABLE search_index USING fts5 (
  text, content = 'messages', content_rowid = 'id', tokenize = 'trigram', detail = 'none',
  columnsize = 0
);
CREATE TRIGGER messages_unindex AFTER DELETE ON messages
WHEN old.id <= (SELECT value FROM meta WHERE key = 'indexed_upto')
BEGIN
  INSERT INTO search_index (search_index, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TABLE contacts (
  peer_id TEXT PRIMARY KEY,
  added_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  hostname TEXT,
  port INTEGER
) WITHOUT ROWID;
`;

/**
 * Version 2: new messages are staged before they reach `messages` (staged_rows.ts). A commit
 * adds one row to `staged`: the JSON array of the message rows it added or changed, each as
 * the `messages` columns in order (id, conversation, sender, flags, state, at, msg_id, text,
 * fingerprint, reason, pending), and `last_id`, the highest id in it. `meta.merged_upto` is
 * the highest id moved into `messages`; staged copies of ids up to it are outdated.
 */
const VERSION_2 = `
CREATE TABLE staged (batch INTEGER PRIMARY KEY, last_id INTEGER NOT NULL, rows TEXT NOT NULL);
INSERT INTO meta (key, value) SELECT 'merged_upto', coalesce(max(id), 0) FROM messages;
`;

/**
 * Version 3 changes no table: a batch in `staged` may also hold `[id, state]`, the new state of
 * a row an earlier batch holds. A version 2 program would take those for damage: the version
 * makes it refuse the file instead.
 */
const VERSION_3 = "-- no table changes";

/**
 * Version 4: read receipts owed to peers that were away when we read their messages
 * (receipts_due.ts), in the order they were owed.
 */
const VERSION_4 = `
CREATE TABLE receipts_due (
  seq INTEGER PRIMARY KEY,
  peer_id TEXT NOT NULL,
  msg_id TEXT NOT NULL
);
CREATE INDEX receipts_due_by_peer ON receipts_due (peer_id, seq);
`;

/**
 * Version 5: messages may wait in the message log (message_log.ts, a file beside the database)
 * before they reach the tables; `meta.log_seq` is the seq of the newest record moved in. A
 * version 4 program would not read the log: the version makes it refuse the file instead.
 */
const VERSION_5 = "INSERT INTO meta (key, value) VALUES ('log_seq', 0);";

/** Every schema version in order. */
export const MIGRATIONS: readonly string[] = [
  VERSION_1,
  VERSION_2,
  VERSION_3,
  VERSION_4,
  VERSION_5,
];

/** The newest schema version this program knows. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The schema version recorded in the database (0 for a new one). */
export function schemaVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  return row.user_version;
}

/** Brings the database up to `SCHEMA_VERSION`, one transaction per migration. */
export function migrate(db: DatabaseSync): void {
  for (let version = schemaVersion(db); version < SCHEMA_VERSION; version++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[version]);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}
