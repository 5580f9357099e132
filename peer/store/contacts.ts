/**
 * The contact list: kept whole in memory (`isContact` runs for every received message) and
 * written through to its table. Last-seen updates arrive with every message from a contact,
 * so they only mark the contact dirty and are written once per commit.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { ContactAddress, ContactRow } from "./types.ts";

interface _ContactTableRow {
  peer_id: string;
  added_at: number;
  last_seen_at: number | null;
  hostname: string | null;
  port: number | null;
}

/** Contacts of one database connection. */
export class ContactBook {
  readonly #contacts = new Map<string, ContactRow>();
  readonly #dirty = new Set<string>();
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #update: StatementSync;

  constructor(db: DatabaseSync) {
    const rows = db.prepare("SELECT * FROM contacts ORDER BY added_at, peer_id")
      .all() as unknown as _ContactTableRow[];
    for (const row of rows) this.#contacts.set(row.peer_id, _toContact(row));
    this.#insert = db.prepare("INSERT INTO contacts (peer_id, added_at) VALUES (?, ?)");
    this.#delete = db.prepare("DELETE FROM contacts WHERE peer_id = ?");
    this.#update = db.prepare(
      "UPDATE contacts SET last_seen_at = ?, hostname = ?, port = ? WHERE peer_id = ?",
    );
  }

  has(peerId: string): boolean {
    return this.#contacts.has(peerId);
  }

  rows(): ContactRow[] {
    return [...this.#contacts.values()].map((contact) => structuredClone(contact));
  }

  /** Adds `peerId` (or keeps it as it is). */
  add(peerId: string, at: number): { peerId: string; addedAt: number } {
    const known = this.#contacts.get(peerId);
    if (known) return { peerId, addedAt: known.addedAt };
    this.#insert.run(peerId, at);
    this.#contacts.set(peerId, { peerId, addedAt: at });
    return { peerId, addedAt: at };
  }

  remove(peerId: string): boolean {
    if (!this.#contacts.has(peerId)) return false;
    this.#delete.run(peerId);
    this.#contacts.delete(peerId);
    this.#dirty.delete(peerId);
    return true;
  }

  /** Records when (and where) a contact was last seen; true when it is a contact. */
  seen(peerId: string, at: number, address?: ContactAddress): boolean {
    const contact = this.#contacts.get(peerId);
    if (!contact) return false;
    // Clocks can step back; last seen never does.
    if (contact.lastSeenAt === undefined || at >= contact.lastSeenAt) contact.lastSeenAt = at;
    if (address) contact.address = { hostname: address.hostname, port: address.port };
    this.#dirty.add(peerId);
    return true;
  }

  /** Writes the last-seen updates made since the previous call. */
  writeDirty(): void {
    for (const peerId of this.#dirty) {
      const contact = this.#contacts.get(peerId);
      if (!contact) continue;
      this.#update.run(
        contact.lastSeenAt ?? null,
        contact.address?.hostname ?? null,
        contact.address?.port ?? null,
        peerId,
      );
    }
    this.#dirty.clear();
  }

  get hasDirty(): boolean {
    return this.#dirty.size > 0;
  }
}

function _toContact(row: _ContactTableRow): ContactRow {
  const contact: ContactRow = { peerId: row.peer_id, addedAt: row.added_at };
  if (row.last_seen_at !== null) contact.lastSeenAt = row.last_seen_at;
  if (row.hostname !== null && row.port !== null) {
    contact.address = { hostname: row.hostname, port: row.port };
  }
  return contact;
}
