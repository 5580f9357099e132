/**
 * The Rendezvous registration store, free of I/O. Records are indexed by namespace, then by
 * (ip, name), so DISCOVER of one namespace touches only that namespace's records and a
 * REGISTER of an existing key replaces it in place. Expiry is explicit: reads skip expired
 * records and `prune(now)` removes them.
 */
import { isRecord } from "../lib/codec.ts";
import { P2pError } from "../lib/errors.ts";

/** One registration: the key is (ip, namespace, name). */
export interface Registration {
  ip: string;
  namespace: string;
  name: string;
  port: number;
  /** The (clamped) TTL in seconds given by the last REGISTER. */
  ttl: number;
  /** Absolute expiry, ms since the Unix epoch, so a restart keeps the remaining lifetime. */
  expiresAt: number;
}

/** A DISCOVER entry, in the field order pyp2p trackers send. */
export interface PeerEntry {
  ip: string;
  port: number;
  name: string;
  namespace: string;
  ttl: number;
  /** Whole seconds left before expiry, never negative. */
  expires_in: number;
}

/** The persisted form of the store. */
export interface RegistrySnapshot {
  version: 1;
  registrations: Registration[];
}

/** The registration store. */
export class Registry {
  readonly #byNamespace = new Map<string, Map<string, Registration>>();
  #size = 0;

  /** Records held, including expired ones not yet pruned. */
  get size(): number {
    return this.#size;
  }

  /** Adds or replaces the record keyed by (ip, namespace, name); its lifetime restarts. */
  upsert(
    entry: { ip: string; namespace: string; name: string; port: number; ttl: number },
    now: number,
  ): Registration {
    let records = this.#byNamespace.get(entry.namespace);
    if (!records) {
      records = new Map();
      this.#byNamespace.set(entry.namespace, records);
    }
    const key = _key(entry.ip, entry.name);
    const record: Registration = {
      ip: entry.ip,
      namespace: entry.namespace,
      name: entry.name,
      port: entry.port,
      ttl: entry.ttl,
      expiresAt: now + entry.ttl * 1000,
    };
    if (!records.has(key)) this.#size++;
    records.set(key, record);
    return record;
  }

  /** Live records of one namespace, or of every namespace when `namespace` is undefined. */
  discover(namespace: string | undefined, now: number): PeerEntry[] {
    const peers: PeerEntry[] = [];
    if (namespace === undefined) {
      for (const records of this.#byNamespace.values()) _collect(records, now, peers);
    } else {
      const records = this.#byNamespace.get(namespace);
      if (records) _collect(records, now, peers);
    }
    return peers;
  }

  /** The records of `ip` in `namespace` matching `name` and `port` where given. */
  matching(
    filter: { ip: string; namespace: string; name?: string; port?: number },
  ): Registration[] {
    const records = this.#byNamespace.get(filter.namespace);
    if (!records) return [];
    if (filter.name !== undefined) {
      // The name is part of the key: at most one record can match.
      const record = records.get(_key(filter.ip, filter.name));
      return record && (filter.port === undefined || record.port === filter.port) ? [record] : [];
    }
    return [...records.values()].filter((record) =>
      record.ip === filter.ip && (filter.port === undefined || record.port === filter.port)
    );
  }

  /** Removes the records `matching(filter)` finds; returns how many. */
  unregister(filter: { ip: string; namespace: string; name?: string; port?: number }): number {
    const found = this.matching(filter);
    const records = this.#byNamespace.get(filter.namespace);
    if (!records) return 0;
    for (const record of found) records.delete(_key(record.ip, record.name));
    this.#size -= found.length;
    if (records.size === 0) this.#byNamespace.delete(filter.namespace);
    return found.length;
  }

  /** Removes every record, of any address and namespace, whose name `matches`. */
  removeNames(matches: (name: string) => boolean): number {
    let removed = 0;
    for (const [namespace, records] of this.#byNamespace) {
      for (const [key, record] of records) {
        if (!matches(record.name)) continue;
        records.delete(key);
        removed++;
      }
      if (records.size === 0) this.#byNamespace.delete(namespace);
    }
    this.#size -= removed;
    return removed;
  }

  /** Removes every record expired at `now`; returns how many went. */
  prune(now: number): number {
    let removed = 0;
    for (const [namespace, records] of this.#byNamespace) {
      for (const [key, record] of records) {
        if (record.expiresAt <= now) {
          records.delete(key);
          removed++;
        }
      }
      if (records.size === 0) this.#byNamespace.delete(namespace);
    }
    this.#size -= removed;
    return removed;
  }

  /** A copy of every record, for persistence. */
  snapshot(): RegistrySnapshot {
    const registrations: Registration[] = [];
    for (const records of this.#byNamespace.values()) {
      for (const record of records.values()) registrations.push({ ...record });
    }
    return { version: 1, registrations };
  }

  /** Builds a store from a snapshot, dropping records already expired at `now`. */
  static fromSnapshot(snapshot: RegistrySnapshot, now: number): Registry {
    const registry = new Registry();
    for (const record of snapshot.registrations) {
      if (record.expiresAt <= now) continue;
      let records = registry.#byNamespace.get(record.namespace);
      if (!records) {
        records = new Map();
        registry.#byNamespace.set(record.namespace, records);
      }
      const key = _key(record.ip, record.name);
      if (!records.has(key)) registry.#size++;
      records.set(key, { ...record });
    }
    return registry;
  }
}

/** Validates parsed JSON as a snapshot; throws a `corrupt_store` error naming the problem. */
export function parseRegistrySnapshot(json: unknown): RegistrySnapshot {
  if (!isRecord(json) || json.version !== 1 || !Array.isArray(json.registrations)) {
    throw new P2pError("corrupt_store", "not a version 1 registration snapshot");
  }
  const registrations = json.registrations.map((item, index): Registration => {
    if (
      !isRecord(item) || typeof item.ip !== "string" || typeof item.namespace !== "string" ||
      typeof item.name !== "string" || !Number.isInteger(item.port) ||
      !Number.isInteger(item.ttl) || typeof item.expiresAt !== "number" ||
      !Number.isFinite(item.expiresAt)
    ) {
      throw new P2pError("corrupt_store", `registration ${index} is malformed`);
    }
    return {
      ip: item.ip,
      namespace: item.namespace,
      name: item.name,
      port: item.port as number,
      ttl: item.ttl as number,
      expiresAt: item.expiresAt,
    };
  });
  return { version: 1, registrations };
}

// An IP address never contains a newline, so "ip\nname" cannot collide for different keys.
function _key(ip: string, name: string): string {
  return ip + "\n" + name;
}

function _collect(records: Map<string, Registration>, now: number, into: PeerEntry[]): void {
  for (const record of records.values()) {
    const left = record.expiresAt - now;
    if (left <= 0) continue;
    into.push({
      ip: record.ip,
      port: record.port,
      name: record.name,
      namespace: record.namespace,
      ttl: record.ttl,
      expires_in: Math.floor(left / 1000),
    });
  }
}
