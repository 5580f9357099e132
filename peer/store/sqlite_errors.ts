/**
 * What went wrong with the database file, from a node:sqlite error. Its errors carry only
 * `code: "ERR_SQLITE_ERROR"` and SQLite's message, whose wording (sqlite3ErrStr) is stable.
 */

/** The kinds of failure the store reacts to differently. */
export type StorageFailure =
  /** Another connection holds the lock: another peer runs on this profile. */
  | "locked"
  /** Not a database, or a damaged one: moved aside. */
  | "damaged"
  /** The disk is full, read-only, gone or failing: history goes on in memory. */
  | "unwritable";

const _PATTERNS: [RegExp, StorageFailure][] = [
  [/database is locked|database table is locked/, "locked"],
  [/file is not a database|database disk image is malformed/, "damaged"],
  [
    /database or disk is full|disk I\/O error|readonly database|unable to open database file|no such file or directory|permission denied/i,
    "unwritable",
  ],
];

/** The kind of storage failure `error` is, or undefined for anything else (a bug). */
export function storageFailure(error: unknown): StorageFailure | undefined {
  if (!(error instanceof Error)) return undefined;
  for (const [pattern, kind] of _PATTERNS) if (pattern.test(error.message)) return kind;
  return undefined;
}
