/**
 * Whether a database at our schema version holds exactly our schema: a file can carry the
 * right `user_version` and still lack a table, or hold a trigger someone added. Both are
 * damage (the store would fail later, or run foreign SQL on every write).
 */
import { DatabaseSync } from "node:sqlite";
import { migrate } from "./schema.ts";

/** A database whose schema is not ours (missing, changed or extra objects). */
export class SchemaMismatch extends Error {}

interface _SchemaObject {
  type: string;
  name: string;
  sql: string | null;
}

let _expected: Map<string, _SchemaObject> | undefined;

/** Throws `SchemaMismatch` naming the first difference from a freshly migrated database. */
export function checkSchema(db: DatabaseSync): void {
  const expected = _expected ??= _reference();
  const actual = _objects(db);
  for (const [name, object] of expected) {
    const found = actual.get(name);
    if (!found) throw new SchemaMismatch(`the ${object.type} ${name} is missing`);
    if (found.type !== object.type || found.sql !== object.sql) {
      throw new SchemaMismatch(`the ${object.type} ${name} is not the one p2pchat made`);
    }
  }
  for (const [name, object] of actual) {
    if (!expected.has(name)) {
      throw new SchemaMismatch(`it holds a ${object.type} ${name} that p2pchat did not make`);
    }
  }
}

function _reference(): Map<string, _SchemaObject> {
  const db = new DatabaseSync(":memory:");
  try {
    migrate(db);
    return _objects(db);
  } finally {
    db.close();
  }
}

function _objects(db: DatabaseSync): Map<string, _SchemaObject> {
  // SQLite's own objects (sqlite_sequence, sqlite_stat1 from ANALYZE, autoindexes) vary.
  const rows = db.prepare(
    "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
  ).all() as unknown as _SchemaObject[];
  return new Map(rows.map((row) => [row.name, row]));
}
