/**
 * Substring search over message texts. A trigram FTS5 index answers in about a millisecond on
 * a million rows where a scan takes ~150 ms, but indexing a row costs ~5 us: more than storing
 * it. So writes never index; `step()` indexes the next rows in bounded steps when the store is
 * idle, and a search reads the index up to `indexed_upto` and scans the (short) rest.
 *
 * Matching is exact and ASCII case-insensitive: the index only proposes candidates (through
 * the longest run of the needle free of LIKE wildcards), `instr(lower(text), lower(needle))`
 * decides, so `%`, `_`, `\` and quotes are plain characters. Needles whose longest such run is
 * under three characters cannot use trigrams and scan, newest first, until `limit` is found.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { MESSAGE_COLUMNS, MESSAGE_JOINS, MESSAGE_SELECT, type MessageRow } from "./rows.ts";

/** The trigram index of one connection and how far it reaches. */
export class SearchIndex {
  #indexedUpto: number;
  readonly #chunkEnd: StatementSync;
  readonly #index: StatementSync;
  readonly #saveUpto: StatementSync;
  readonly #scanAfter: StatementSync;
  readonly #lookup: StatementSync;

  constructor(db: DatabaseSync) {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'indexed_upto'").get() as {
      value: number;
    };
    this.#indexedUpto = row.value;
    this.#chunkEnd = db.prepare(
      "SELECT max(id) AS upto FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
    );
    this.#index = db.prepare(
      "INSERT INTO search_index (rowid, text) SELECT id, text FROM messages WHERE id > ? AND id <= ?",
    );
    this.#saveUpto = db.prepare("UPDATE meta SET value = ? WHERE key = 'indexed_upto'");
    this.#scanAfter = db.prepare(
      `${MESSAGE_SELECT} WHERE m.id > ? AND instr(lower(m.text), lower(?)) > 0
       ORDER BY m.id DESC LIMIT ?`,
    );
    // CROSS JOIN keeps the index as the outer loop, newest first.
    this.#lookup = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM search_index s CROSS JOIN messages m ON m.id = s.rowid
       ${MESSAGE_JOINS}
       WHERE s.text LIKE ? AND instr(lower(m.text), lower(?)) > 0
       ORDER BY s.rowid DESC LIMIT ?`,
    );
  }

  /** The highest message id the index has seen. */
  get indexedUpto(): number {
    return this.#indexedUpto;
  }

  /** Indexes up to `maxRows` more messages; returns how many. */
  step(maxRows: number): number {
    const { upto } = this.#chunkEnd.get(this.#indexedUpto, maxRows) as { upto: number | null };
    if (upto === null) return 0;
    const { changes } = this.#index.run(this.#indexedUpto, upto);
    this.#indexedUpto = upto;
    this.#saveUpto.run(upto);
    return Number(changes);
  }

  /** Messages holding `needle`, newest first. */
  search(needle: string, limit: number): MessageRow[] {
    const run = _longestLiteralRun(needle);
    if ([...run].length < 3) {
      return this.#scanAfter.all(0, needle, limit) as unknown as MessageRow[];
    }
    const newer = this.#scanAfter.all(this.#indexedUpto, needle, limit) as unknown as MessageRow[];
    if (newer.length >= limit) return newer;
    const older = this.#lookup.all(
      `%${run}%`,
      needle,
      limit - newer.length,
    ) as unknown as MessageRow[];
    return newer.concat(older);
  }
}

// The longest part of `needle` free of LIKE's wildcards: what the trigram index can look up.
function _longestLiteralRun(needle: string): string {
  let longest = "";
  for (const run of needle.split(/[%_]/)) if (run.length > longest.length) longest = run;
  return longest;
}
