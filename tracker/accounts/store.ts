/**
 * Accounts, session tokens and rooms, persisted through an append log. Every change is
 * a record applied to memory and appended in the same synchronous step, so replay and
 * live changes share one `apply`. Callers hash passwords before calling in: a sign-up
 * here costs one appended line, whatever the number of accounts.
 */
import { AppendLog, type LoadReport, type LogState } from "../../lib/append_log.ts";
import { base64, bytesFromBase64 } from "../../lib/bytes.ts";
import type { Logger } from "../../lib/log.ts";
import { nameSkeleton } from "../../lib/names.ts";
import { parseCredential, type PasswordCredential } from "../../lib/password.ts";

/** Beyond this many live tokens per account, the oldest is dropped at the next login. */
export const MAX_TOKENS_PER_USER = 16;

/** One account. `username` keeps its spelling; lookups ignore case. */
export interface UserRecord {
  username: string;
  credential: PasswordCredential;
  created: number;
  lastLogin?: number;
  lastSeen?: number;
  /** The account's Ed25519 identity key, base64; absent for accounts made before keys. */
  identityKey?: string;
  /** Folded names of the rooms the user is a member of (derived, not stored). */
  rooms: Set<string>;
  /** Hashes of the user's live tokens, oldest first (derived, not stored). */
  tokens: Set<string>;
}

/** A session token, known only by its SHA-256. */
export interface TokenRecord {
  hash: string;
  username: string;
  created: number;
  expires: number;
}

/** A room; `members` in join order, the owner among them. */
export interface RoomRecord {
  name: string;
  owner: string;
  created: number;
  members: string[];
}

/** A token as carried in a record. */
type _TokenFields = Omit<TokenRecord, "username">;

/** Every change the store can make; the `op` is what goes into the log. */
export type StoreRecord =
  | {
    op: "signup";
    username: string;
    credential: PasswordCredential;
    at: number;
    token?: _TokenFields;
    identity_key?: string;
  }
  | { op: "credential"; username: string; credential: PasswordCredential }
  /** The account's identity key is now `identity_key`; with `revoke_tokens`, every token dies. */
  | { op: "key"; username: string; identity_key: string; at: number; revoke_tokens?: boolean }
  | { op: "login"; username: string; at: number; token?: _TokenFields }
  | { op: "logout"; username: string; at: number; token: string }
  | { op: "seen"; username: string; at: number }
  | { op: "room_create"; room: string; owner: string; at: number }
  | { op: "room_join"; room: string; username: string }
  | { op: "room_leave"; room: string; username: string }
  | { op: "room_delete"; room: string };

/** How names are compared: `Alice` and `alice` are the same account or room. */
export function foldName(name: string): string {
  return name.toLowerCase();
}

/** The persisted accounts service state. */
export class AccountStore implements LogState<StoreRecord> {
  readonly #users = new Map<string, UserRecord>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #rooms = new Map<string, RoomRecord>();
  /** Accounts by the confusable skeleton of their name (the first account wins a collision). */
  readonly #bySkeleton = new Map<string, UserRecord>();
  /** Folded usernames in order, for paged listings; rebuilt lazily after bulk loads. */
  #sorted: string[] = [];
  #sortedDirty = false;
  #appendLog?: AppendLog<StoreRecord>;

  private constructor() {}

  /** Opens (or creates) the store under `dataDir`. */
  static async open(
    dataDir: string,
    log: Logger,
    options: { compactMinBytes?: number; recoverDamaged?: boolean; recoveryHint?: string } = {},
  ): Promise<{ store: AccountStore; report: LoadReport }> {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new AccountStore();
    const { appendLog, report } = await AppendLog.open({
      path: `${dataDir}/accounts.log`,
      state: store,
      log,
      ...options,
    });
    store.#appendLog = appendLog;
    return { store, report };
  }

  get userCount(): number {
    return this.#users.size;
  }

  get roomCount(): number {
    return this.#rooms.size;
  }

  /** The account with this name (any case), if any. */
  user(name: string): UserRecord | undefined {
    return this.#users.get(foldName(name));
  }

  /** The account whose name looks like this one (same TR39-style skeleton), if any. */
  owner(name: string): UserRecord | undefined {
    return this.#bySkeleton.get(nameSkeleton(name));
  }

  /** The room with this name (any case), if any. */
  room(name: string): RoomRecord | undefined {
    return this.#rooms.get(foldName(name));
  }

  /** The owner of a token that exists and has not expired at `now`. */
  tokenOwner(hash: string, now: number): UserRecord | undefined {
    const token = this.#tokens.get(hash);
    if (!token || token.expires <= now) return undefined;
    return this.user(token.username);
  }

  /** When a token expires (undefined for an unknown one). */
  tokenExpiry(hash: string): number | undefined {
    return this.#tokens.get(hash)?.expires;
  }

  /** Folded usernames sorted, after `after` (exclusive). */
  usernamesAfter(after: string | undefined): Iterable<string> {
    if (this.#sortedDirty) {
      this.#sorted = [...this.#users.keys()].sort();
      this.#sortedDirty = false;
    }
    const start = after === undefined ? 0 : _upperBound(this.#sorted, foldName(after));
    const sorted = this.#sorted;
    return (function* () {
      for (let index = start; index < sorted.length; index++) yield sorted[index];
    })();
  }

  /** Every room, sorted by folded name, after `after` (exclusive). */
  roomsAfter(after: string | undefined): RoomRecord[] {
    const from = after === undefined ? undefined : foldName(after);
    return [...this.#rooms.entries()]
      .filter(([key]) => from === undefined || key > from)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, room]) => room);
  }

  /** Writes one change: validated by the caller, applied now, resolved once durable. */
  commit(record: StoreRecord): Promise<void> {
    if (!this.#appendLog) throw new TypeError("AccountStore used before open() finished");
    this.apply(record);
    return this.#appendLog.append(record);
  }

  /** Drops expired tokens from memory (they are already invalid; this frees the space). */
  prune(now: number): void {
    for (const [hash, token] of this.#tokens) {
      if (token.expires <= now) this.#deleteToken(hash);
    }
  }

  /** Flushes pending appends and closes the log. */
  async close(): Promise<void> {
    await this.#appendLog?.close();
  }

  // ---- LogState ----

  apply(record: StoreRecord): void {
    switch (record.op) {
      case "signup": {
        const key = foldName(record.username);
        if (this.#users.has(key)) return;
        this.#addUser(key, {
          username: record.username,
          credential: record.credential,
          created: record.at,
          lastLogin: record.token ? record.at : undefined,
          identityKey: record.identity_key,
          rooms: new Set(),
          tokens: new Set(),
        });
        this.#insertSorted(key);
        if (record.token) this.#addToken(record.username, record.token);
        return;
      }
      case "credential": {
        const user = this.user(record.username);
        if (user) user.credential = record.credential;
        return;
      }
      case "key": {
        const user = this.user(record.username);
        if (!user) return;
        user.identityKey = record.identity_key;
        if (record.revoke_tokens) { for (const hash of user.tokens) this.#deleteToken(hash); }
        return;
      }
      case "login": {
        const user = this.user(record.username);
        if (!user) return;
        user.lastLogin = record.at;
        if (record.token) this.#addToken(user.username, record.token);
        return;
      }
      case "logout": {
        const user = this.user(record.username);
        if (user) user.lastSeen = record.at;
        this.#deleteToken(record.token);
        return;
      }
      case "seen": {
        const user = this.user(record.username);
        if (user) user.lastSeen = record.at;
        return;
      }
      case "room_create": {
        const key = foldName(record.room);
        const owner = this.user(record.owner);
        if (this.#rooms.has(key) || !owner) return;
        this.#rooms.set(key, {
          name: record.room,
          owner: owner.username,
          created: record.at,
          members: [owner.username],
        });
        owner.rooms.add(key);
        return;
      }
      case "room_join": {
        const room = this.room(record.room);
        const user = this.user(record.username);
        if (!room || !user || user.rooms.has(foldName(room.name))) return;
        room.members.push(user.username);
        user.rooms.add(foldName(room.name));
        return;
      }
      case "room_leave": {
        const room = this.room(record.room);
        const user = this.user(record.username);
        if (!room || !user) return;
        const key = foldName(room.name);
        room.members = room.members.filter((member) => member !== user.username);
        user.rooms.delete(key);
        // The longest-standing member inherits an abandoned room; an empty one goes away.
        if (room.members.length === 0) this.#rooms.delete(key);
        else if (room.owner === user.username) room.owner = room.members[0];
        return;
      }
      case "room_delete": {
        const room = this.room(record.room);
        if (!room) return;
        const key = foldName(room.name);
        for (const member of room.members) this.user(member)?.rooms.delete(key);
        this.#rooms.delete(key);
        return;
      }
    }
  }

  parse(json: unknown): StoreRecord {
    const value = _object(json);
    switch (value.op) {
      case "signup":
        return {
          op: "signup",
          username: _string(value.username),
          credential: parseCredential(value.credential),
          at: _number(value.at),
          token: value.token === undefined ? undefined : _tokenFields(value.token),
          identity_key: _optionalKey(value.identity_key),
        };
      case "key":
        return {
          op: "key",
          username: _string(value.username),
          identity_key: _key(value.identity_key),
          at: _number(value.at),
          revoke_tokens: value.revoke_tokens === true ? true : undefined,
        };
      case "credential":
        return {
          op: "credential",
          username: _string(value.username),
          credential: parseCredential(value.credential),
        };
      case "login":
        return {
          op: "login",
          username: _string(value.username),
          at: _number(value.at),
          token: value.token === undefined ? undefined : _tokenFields(value.token),
        };
      case "logout":
        return {
          op: "logout",
          username: _string(value.username),
          at: _number(value.at),
          token: _string(value.token),
        };
      case "seen":
        return { op: "seen", username: _string(value.username), at: _number(value.at) };
      case "room_create":
        return {
          op: "room_create",
          room: _string(value.room),
          owner: _string(value.owner),
          at: _number(value.at),
        };
      case "room_join":
      case "room_leave":
        return { op: value.op, room: _string(value.room), username: _string(value.username) };
      case "room_delete":
        return { op: "room_delete", room: _string(value.room) };
      default:
        throw new TypeError(`Unknown record op ${JSON.stringify(value.op)}`);
    }
  }

  snapshot(): unknown {
    const users = [...this.#users.values()].map((user) => ({
      username: user.username,
      credential: user.credential,
      created: user.created,
      lastLogin: user.lastLogin,
      lastSeen: user.lastSeen,
      identityKey: user.identityKey,
    }));
    return { users, tokens: [...this.#tokens.values()], rooms: [...this.#rooms.values()] };
  }

  restore(state: unknown): void {
    const value = _object(state);
    if (!Array.isArray(value.users) || !Array.isArray(value.tokens)) {
      throw new TypeError("Snapshot lacks users or tokens");
    }
    if (!Array.isArray(value.rooms)) throw new TypeError("Snapshot lacks rooms");
    for (const item of value.users) {
      const user = _object(item);
      const username = _string(user.username);
      this.#addUser(foldName(username), {
        username,
        credential: parseCredential(user.credential),
        created: _number(user.created),
        lastLogin: _optionalNumber(user.lastLogin),
        lastSeen: _optionalNumber(user.lastSeen),
        identityKey: _optionalKey(user.identityKey),
        rooms: new Set(),
        tokens: new Set(),
      });
    }
    this.#sortedDirty = true;
    for (const item of value.tokens) {
      const token = _object(item);
      this.#addToken(_string(token.username), _tokenFields(token));
    }
    for (const item of value.rooms) {
      const room = _object(item);
      const name = _string(room.name);
      if (!Array.isArray(room.members)) throw new TypeError(`Room "${name}" lacks members`);
      const record: RoomRecord = {
        name,
        owner: _string(room.owner),
        created: _number(room.created),
        members: room.members.map(_string),
      };
      this.#rooms.set(foldName(name), record);
      for (const member of record.members) this.user(member)?.rooms.add(foldName(name));
    }
  }

  #addUser(key: string, user: UserRecord): void {
    this.#users.set(key, user);
    const skeleton = nameSkeleton(user.username);
    if (!this.#bySkeleton.has(skeleton)) this.#bySkeleton.set(skeleton, user);
  }

  #addToken(username: string, fields: _TokenFields): void {
    const user = this.user(username);
    if (!user) return;
    this.#tokens.set(fields.hash, { ...fields, username: user.username });
    user.tokens.add(fields.hash);
    // Keep the newest few: a client that never logs out must not grow the store forever.
    for (const hash of user.tokens) {
      if (user.tokens.size <= MAX_TOKENS_PER_USER) break;
      this.#deleteToken(hash);
    }
  }

  #deleteToken(hash: string): void {
    const token = this.#tokens.get(hash);
    if (!token) return;
    this.#tokens.delete(hash);
    this.user(token.username)?.tokens.delete(hash);
  }

  #insertSorted(key: string): void {
    if (this.#sortedDirty) return;
    // A binary insertion moves at most one pointer per account: microseconds at 100,000.
    this.#sorted.splice(_upperBound(this.#sorted, key), 0, key);
  }
}

function _upperBound(sorted: string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle] <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}

function _object(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("Expected an object");
  }
  return value as Record<string, unknown>;
}

function _string(value: unknown): string {
  if (typeof value !== "string" || value === "") throw new TypeError("Expected a string");
  return value;
}

function _number(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError("Expected a number");
  }
  return value;
}

function _optionalNumber(value: unknown): number | undefined {
  return value === undefined || value === null ? undefined : _number(value);
}

/** A 32-byte key in base64, re-encoded so that equal keys compare equal as strings. */
function _key(value: unknown): string {
  const bytes = bytesFromBase64(value);
  if (bytes?.length !== 32) throw new TypeError("Expected a 32-byte key in base64");
  return base64(bytes);
}

function _optionalKey(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : _key(value);
}

function _tokenFields(value: unknown): _TokenFields {
  const token = _object(value);
  return {
    hash: _string(token.hash),
    created: _number(token.created),
    expires: _number(token.expires),
  };
}
