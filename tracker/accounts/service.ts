/**
 * The state shared by every session connection: the store, who is online where, login
 * throttling, and the pushes that follow each change. Pure apart from the store's
 * appends: time comes from the Clock and expiry happens in `tick()`.
 */
import { base64 } from "../../lib/bytes.ts";
import type { Clock } from "../../lib/clock.ts";
import { isWireName, toPort } from "../../lib/codec.ts";
import { checkName, nameSkeleton } from "../../lib/names.ts";
import { type ErrorCode, P2pError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { utf8Length } from "../../lib/framing.ts";
import { fingerprint } from "../../lib/noise/mod.ts";
import {
  hashPassword,
  MAX_PASSWORD_CHARS,
  MIN_PASSWORD_CHARS,
  needsRehash,
  type PasswordCredential,
  verifyPassword,
} from "../../lib/password.ts";
import type { SessionLink } from "../extension.ts";
import { type LoginLimiter } from "./limits.ts";
import {
  ANONYMOUS_COMMANDS,
  type Command,
  DEFAULT_PAGE_LIMIT,
  errorReply,
  eventMessage,
  isoTime,
  MAX_ANONYMOUS_SESSIONS,
  MAX_ANONYMOUS_SESSIONS_PER_IP,
  MAX_KEYS_PER_REQUEST,
  MAX_PAGE_LIMIT,
  MAX_ROOMS_PER_USER,
  MAX_SESSIONS_PER_USER,
  REPLY_BUDGET_BYTES,
  type RequestId,
  type WireAddress,
  type WireMember,
} from "./protocol.ts";
import {
  AccountStore,
  foldName,
  type RoomRecord,
  type StoreRecord,
  type UserRecord,
} from "./store.ts";
import { HashSlots } from "./hash_slots.ts";
import { SlotCounter } from "../../lib/slot_counter.ts";
import { hashToken, newToken } from "./tokens.ts";

/** `off`: no sessions, no name protection; `optional`: accounts own their names;
 * `required`: every registration goes through a logged-in session (SESSION_REGISTER). */
export type AccountsMode = "required" | "optional" | "off";

/**
 * One session connection as the service sees it. `Session` (session.ts) implements it; the
 * service depends on this shape only, so the dependency runs one way: session -> service.
 */
export interface ServiceSession {
  /** Set once logged in. */
  user?: UserRecord;
  tokenHash?: string;
  address?: WireAddress;
  readonly lastActivity: number;
  readonly openedAt: number;
  readonly ended: boolean;
  readonly link: SessionLink;
  send(message: Record<string, unknown>): void;
  end(): void;
}

/** Settings after defaults were applied. */
export interface ServiceSettings {
  mode: AccountsMode;
  heartbeatWindowMs: number;
  /** Infinity for no cap. */
  roomMemberCap: number;
  pbkdf2Iterations: number;
  tokenTtlMs: number;
}

/** What a command handler gives back: the reply fields, and whether to close afterwards. */
export interface CommandResult {
  reply: Record<string, unknown>;
  close?: boolean;
}

/** How long a session connection may stay without a login before it is closed. */
export const LOGIN_DEADLINE_MS = 30_000;

/** The one message for both an unknown user and a wrong password. */
const LOGIN_FAILED_MESSAGE = "Unknown username or wrong password";

/** A refusal that tells the client when to retry. */
class _RetryLater extends P2pError {
  constructor(readonly retryAfterMs: number, what = "failed logins") {
    super(
      "too_many_attempts",
      `Too many ${what}; try again in ${Math.ceil(retryAfterMs / 1000)} s`,
    );
  }
}

/** Accounts, presence and rooms for every session connection of one tracker. */
export class AccountsService {
  readonly sessions = new Set<ServiceSession>();
  /** Logged-in sessions by canonical username. */
  readonly #online = new Map<string, Set<ServiceSession>>();
  #dummyCredential?: Promise<PasswordCredential>;
  #stopped = false;
  readonly #hashing = new HashSlots();
  /** Sessions not logged in yet, by address (each takes a slot until its login or close). */
  readonly #anonymous = new SlotCounter(MAX_ANONYMOUS_SESSIONS, MAX_ANONYMOUS_SESSIONS_PER_IP);
  readonly #waitingForLogin = new Set<ServiceSession>();

  constructor(
    readonly store: AccountStore,
    readonly settings: ServiceSettings,
    readonly limiter: LoginLimiter,
    readonly clock: Clock,
    readonly log: Logger,
    /** Told after a sign-up which registered names the new account now owns. */
    readonly nameOwned: (covers: (name: string) => boolean) => void = () => {},
  ) {}

  /** Number of logged-in sessions, and of users with at least one. */
  get onlineSessions(): number {
    let count = 0;
    for (const sessions of this.#online.values()) count += sessions.size;
    return count;
  }

  get onlineUsers(): number {
    return this.#online.size;
  }

  /** Runs one command for a session; throws P2pError with a wire code on refusal. */
  handle(
    session: ServiceSession,
    command: Command,
    fields: Record<string, unknown>,
  ): CommandResult | Promise<CommandResult> {
    if (!session.user && !ANONYMOUS_COMMANDS.has(command)) {
      throw new P2pError("not_logged_in", `${command} needs a login first`);
    }
    switch (command) {
      case "SESSION_SIGNUP":
        return this.#signup(session, fields);
      case "SESSION_LOGIN":
        return this.#login(session, fields);
      case "SESSION_RESUME":
        return this.#resume(session, fields);
      case "SESSION_LOGOUT":
        return this.#logout(session);
      case "SESSION_HEARTBEAT":
        return { reply: { heartbeat_window_ms: this.settings.heartbeatWindowMs } };
      case "SESSION_USERS":
        return { reply: this.#listUsers(fields) };
      case "SESSION_ROOMS":
        return { reply: this.#listRooms(fields) };
      case "SESSION_ROOM_MEMBERS":
        return { reply: this.#listMembers(fields) };
      case "SESSION_ROOM_CREATE":
        return this.#createRoom(session, fields);
      case "SESSION_ROOM_JOIN":
        return this.#joinRoom(session, fields);
      case "SESSION_ROOM_LEAVE":
        return this.#leaveRoom(session, fields);
      case "SESSION_ROOM_DELETE":
        return this.#deleteRoom(session, fields);
      case "SESSION_KEYS":
        return { reply: this.#keys(fields) };
      case "SESSION_REGISTER":
      case "SESSION_UNREGISTER":
        return { reply: this.#rendezvous(session, command, fields) };
    }
  }

  /** The wire reply for a refusal (or for a failure we did not expect). */
  errorReplyFor(id: RequestId, error: unknown): Record<string, unknown> {
    if (error instanceof _RetryLater) {
      return { ...errorReply(id, error.code, error.message), retry_after_ms: error.retryAfterMs };
    }
    if (error instanceof P2pError && error.code !== "corrupt_store") {
      return errorReply(id, error.code, error.message);
    }
    this.log.error(`Session request failed: ${String(error)}`);
    return errorReply(id, "internal_error", "The tracker could not complete the request");
  }

  /**
   * A new session connection, not logged in yet: false when its address (or everyone) already
   * has too many of those waiting; the caller then refuses it with `busy`.
   */
  sessionOpened(session: ServiceSession): boolean {
    if (this.#anonymous.take(session.link.remoteIp) !== undefined) return false;
    this.sessions.add(session);
    this.#waitingForLogin.add(session);
    return true;
  }

  /** A session connection ended: it goes offline at once. */
  sessionClosed(session: ServiceSession): void {
    this.#loggedIn(session);
    this.sessions.delete(session);
    this.#deactivate(session, true);
  }

  /** Expires silent sessions, stale login counters and expired tokens. */
  tick(): void {
    const now = this.clock.now();
    for (const session of this.sessions) {
      // A connection that never logs in would otherwise hold a connection slot for ever.
      const anonymousTooLong = !session.user && now - session.openedAt >= LOGIN_DEADLINE_MS;
      if (!anonymousTooLong && now - session.lastActivity < this.settings.heartbeatWindowMs) {
        continue;
      }
      session.send(eventMessage("session_expired", {
        reason: anonymousTooLong
          ? `No login within ${LOGIN_DEADLINE_MS / 1000} s`
          : `No heartbeat for ${this.settings.heartbeatWindowMs} ms`,
      }));
      session.end();
    }
    this.limiter.prune(now);
    this.store.prune(now);
  }

  /**
   * A plain Rendezvous REGISTER of `name`: undefined when it may go ahead, else the ERROR
   * message (a stable code). Owned names are registered only through SESSION_REGISTER, so no
   * proof of a login ever travels in clear.
   */
  checkRegister(name: string): ErrorCode | undefined {
    if (this.settings.mode === "off") return undefined;
    if (this.settings.mode === "required") return "login_required";
    // Ownership covers look-alikes: "аlice" (Cyrillic а) or "alice\u200b" is alice's name too.
    return this.store.owner(name) ? "name_owned" : undefined;
  }

  /** A plain UNREGISTER would remove a listing of `name`: refused when an account owns it. */
  checkUnregister(name: string): ErrorCode | undefined {
    if (this.settings.mode === "off") return undefined;
    return this.store.owner(name) ? "name_owned" : undefined;
  }

  /** Records when online users were last seen and closes the store. */
  async stop(): Promise<void> {
    // Connections the server closes after this are already recorded as seen below.
    this.#stopped = true;
    const now = this.clock.now();
    const writes = [...this.#online.keys()].map((username) =>
      this.#commit({ op: "seen", username, at: now }).catch(() => {})
    );
    await Promise.all(writes);
    await this.store.close();
  }

  // ---- accounts ----

  async #signup(session: ServiceSession, fields: Record<string, unknown>): Promise<CommandResult> {
    if (session.user) throw new P2pError("already_logged_in", "This connection is logged in");
    const username = _requiredString(fields, "username");
    const problem = checkName("Username", username);
    if (problem) throw new P2pError("bad_username", problem);
    const password = _password(fields.password);
    const address = _declaredAddress(fields, session, username);
    if (this.store.owner(username)) _taken(username);
    const ip = session.link.remoteIp;
    const wait = this.limiter.signupRetryAfter(ip, this.clock.now());
    if (wait > 0) throw new _RetryLater(wait, "sign-ups from this address");
    this.limiter.recordSignup(ip, this.clock.now());
    const credential = await this.#hashing.run(() =>
      hashPassword(password, this.settings.pbkdf2Iterations)
    );
    if (this.store.owner(username)) _taken(username); // taken while we were hashing
    const { token, fields: tokenFields } = this.#issueToken();
    await this.#commit({
      op: "signup",
      username,
      credential,
      at: tokenFields.created,
      token: tokenFields,
      identity_key: base64(session.link.identityKey),
    });
    const user = this.store.user(username)!;
    this.log.info(`Account "${username}" signed up`, { ip: session.link.remoteIp });
    const skeleton = nameSkeleton(username);
    this.nameOwned((name) => nameSkeleton(name) === skeleton);
    this.#activate(session, user, tokenFields.hash, address);
    return { reply: this.#loginReply(user, token, tokenFields.expires) };
  }

  async #login(session: ServiceSession, fields: Record<string, unknown>): Promise<CommandResult> {
    if (session.user) throw new P2pError("already_logged_in", "This connection is logged in");
    const username = _requiredString(fields, "username");
    const password = _requiredString(fields, "password");
    const address = _declaredAddress(fields, session, username);
    const key = foldName(username);
    const ip = session.link.remoteIp;
    const checkThrottle = () => {
      const wait = this.limiter.retryAfter(key, ip, this.clock.now());
      if (wait > 0) throw new _RetryLater(wait);
    };
    checkThrottle();
    const user = this.store.user(username);
    // Unknown users cost the same hashing time, so timing does not reveal which names exist.
    const credential = user?.credential ?? await this.#dummy();
    const matches = await this.#hashing.run(() => {
      // Checked again once a slot is free: parallel guesses queued behind one another must
      // not all get past a lock that the earlier ones started.
      checkThrottle();
      return verifyPassword(password, credential);
    });
    if (!user || !matches) {
      this.limiter.recordFailure(key, ip, this.clock.now());
      throw new P2pError("login_failed", LOGIN_FAILED_MESSAGE);
    }
    this.limiter.recordSuccess(key, ip);
    const sessionKey = base64(session.link.identityKey);
    const replacing = user.identityKey !== undefined && user.identityKey !== sessionKey;
    if (replacing && fields.replace_key !== true) throw _keyMismatch(user, true);
    this.#checkSessionRoom(user);
    if (needsRehash(user.credential, this.settings.pbkdf2Iterations)) {
      const stronger = await this.#hashing.run(() =>
        hashPassword(password, this.settings.pbkdf2Iterations)
      );
      await this.#commit({ op: "credential", username: user.username, credential: stronger });
    }
    if (user.identityKey !== sessionKey) {
      // A first key binds (an account made before keys); another one replaces it.
      await this.#commit({
        op: "key",
        username: user.username,
        identity_key: sessionKey,
        at: this.clock.now(),
        ...(replacing ? { revoke_tokens: true } : {}),
      });
      if (replacing) this.#keyReplaced(user, sessionKey, session);
    }
    const { token, fields: tokenFields } = this.#issueToken();
    await this.#commit({
      op: "login",
      username: user.username,
      at: tokenFields.created,
      token: tokenFields,
    });
    this.#activate(session, user, tokenFields.hash, address);
    return { reply: this.#loginReply(user, token, tokenFields.expires) };
  }

  async #resume(session: ServiceSession, fields: Record<string, unknown>): Promise<CommandResult> {
    if (session.user) throw new P2pError("already_logged_in", "This connection is logged in");
    const hash = hashToken(_requiredString(fields, "token"));
    const user = this.store.tokenOwner(hash, this.clock.now());
    if (!user) throw new P2pError("bad_token", "The token is unknown, expired or revoked");
    // A token proves the login, not the key: only a password may bind or change the key.
    if (user.identityKey !== base64(session.link.identityKey)) throw _keyMismatch(user, false);
    this.#checkSessionRoom(user);
    const address = _declaredAddress(fields, session, user.username);
    await this.#commit({ op: "login", username: user.username, at: this.clock.now() });
    this.#activate(session, user, hash, address);
    return { reply: this.#loginReply(user, undefined, this.store.tokenExpiry(hash)) };
  }

  async #logout(session: ServiceSession): Promise<CommandResult> {
    const user = session.user!;
    const hash = session.tokenHash!;
    await this.#commit({
      op: "logout",
      username: user.username,
      at: this.clock.now(),
      token: hash,
    });
    // Every connection that used the revoked token ends with it.
    for (const other of this.#online.get(user.username) ?? []) {
      if (other === session || other.tokenHash !== hash) continue;
      other.send(eventMessage("session_closed", { reason: "The token was revoked by a logout" }));
      other.end();
    }
    this.#deactivate(session, false);
    return { reply: {}, close: true };
  }

  /** The account's key changed: its other sessions end, and every online session is told. */
  #keyReplaced(user: UserRecord, identityKey: string, by: ServiceSession): void {
    this.log.warn(`Account "${user.username}" replaced its identity key`, {
      ip: by.link.remoteIp,
      id: by.link.remoteId,
      fingerprint: fingerprint(by.link.identityKey),
    });
    for (const other of [...this.#online.get(user.username) ?? []]) {
      if (other === by) continue;
      other.send(eventMessage("session_closed", {
        reason: "The account's identity key was replaced; every login of the old key ended",
      }));
      other.end();
    }
    const event = eventMessage("key_changed", {
      username: user.username,
      identity_key: identityKey,
    });
    for (const sessions of this.#online.values()) this.#push(sessions, event);
  }

  // One account holds at most MAX_SESSIONS_PER_USER sessions, so one token cannot take them all.
  #checkSessionRoom(user: UserRecord): void {
    if ((this.#online.get(user.username)?.size ?? 0) < MAX_SESSIONS_PER_USER) return;
    throw new P2pError(
      "too_many_sessions",
      `"${user.username}" already has ${MAX_SESSIONS_PER_USER} live sessions; log out of one first`,
    );
  }

  #issueToken() {
    const token = newToken();
    const created = this.clock.now();
    return {
      token,
      fields: { hash: hashToken(token), created, expires: created + this.settings.tokenTtlMs },
    };
  }

  #loginReply(user: UserRecord, token: string | undefined, expires: number | undefined) {
    return {
      username: user.username,
      identity_key: user.identityKey ?? null,
      ...(token === undefined ? {} : { token }),
      token_expires_at: isoTime(expires),
      heartbeat_window_ms: this.settings.heartbeatWindowMs,
    };
  }

  #dummy(): Promise<PasswordCredential> {
    // Outside the hashing slots: a refusal while the queue is full must not be cached, or every
    // unknown name would answer `busy` at once from then on (and so reveal that it is unknown).
    this.#dummyCredential ??= hashPassword(newToken(), this.settings.pbkdf2Iterations);
    return this.#dummyCredential;
  }

  async #commit(record: StoreRecord): Promise<void> {
    try {
      await this.store.commit(record);
    } catch (error) {
      throw new P2pError(
        "internal_error",
        `The tracker could not save the change (${error instanceof Error ? error.message : error})`,
      );
    }
  }

  // ---- presence ----

  #activate(
    session: ServiceSession,
    user: UserRecord,
    tokenHash: string,
    address: WireAddress,
  ): void {
    // The connection may have dropped while the login was being hashed or written.
    if (session.ended) return;
    this.#loggedIn(session);
    session.user = user;
    session.tokenHash = tokenHash;
    session.address = address;
    let sessions = this.#online.get(user.username);
    if (!sessions) this.#online.set(user.username, sessions = new Set());
    sessions.add(session);
    this.#pushPresence(user, "member_online");
  }

  // Gives back the anonymous slot a session held until its login (or its end).
  #loggedIn(session: ServiceSession): void {
    if (this.#waitingForLogin.delete(session)) this.#anonymous.give(session.link.remoteIp);
  }

  #deactivate(session: ServiceSession, recordSeen: boolean): void {
    const user = session.user;
    if (!user) return;
    session.user = undefined;
    const sessions = this.#online.get(user.username);
    sessions?.delete(session);
    if (sessions && sessions.size > 0) {
      // Still online elsewhere: members get the remaining addresses.
      this.#pushPresence(user, "member_online");
      return;
    }
    this.#online.delete(user.username);
    if (recordSeen && !this.#stopped) {
      this.#commit({ op: "seen", username: user.username, at: this.clock.now() }).catch((error) =>
        this.log.warn(`Could not record when "${user.username}" was last seen: ${error}`)
      );
    }
    this.#pushPresence(user, "member_offline");
  }

  #pushPresence(user: UserRecord, event: "member_online" | "member_offline"): void {
    for (const key of user.rooms) {
      const room = this.store.room(key);
      if (!room) continue;
      const message = event === "member_online"
        ? eventMessage(event, { room: room.name, member: this.#member(user) })
        : eventMessage(event, {
          room: room.name,
          username: user.username,
          last_seen: isoTime(this.clock.now()),
        });
      this.#push(this.#recipients(room, user.username), message);
    }
  }

  /** Online sessions of a room's members, leaving out one user's own sessions. */
  #recipients(room: RoomRecord, exceptUser?: string): ServiceSession[] {
    const recipients: ServiceSession[] = [];
    for (const member of room.members) {
      if (member === exceptUser) continue;
      for (const session of this.#online.get(member) ?? []) recipients.push(session);
    }
    return recipients;
  }

  #push(sessions: Iterable<ServiceSession>, message: Record<string, unknown>): void {
    for (const session of sessions) session.send(message);
  }

  #addresses(username: string): WireAddress[] {
    return [...this.#online.get(username) ?? []].map((session) => session.address!);
  }

  #lastSeen(user: UserRecord): string | null {
    const sessions = this.#online.get(user.username);
    if (!sessions) return isoTime(user.lastSeen);
    return isoTime(Math.max(...[...sessions].map((session) => session.lastActivity)));
  }

  #member(user: UserRecord): WireMember {
    return {
      username: user.username,
      online: this.#online.has(user.username),
      addresses: this.#addresses(user.username),
      last_seen: this.#lastSeen(user),
      identity_key: user.identityKey ?? null,
    };
  }

  // ---- listings ----

  #listUsers(fields: Record<string, unknown>) {
    const after = _optionalString(fields, "after");
    const limit = _limit(fields.limit);
    if (fields.online !== undefined && typeof fields.online !== "boolean") {
      throw new P2pError("bad_request", `"online" must be true or false`);
    }
    const keys = fields.online === true
      ? [...this.#online.keys()].map(foldName).filter((key) =>
        after === undefined || key > foldName(after)
      ).sort()
      : this.store.usernamesAfter(after);
    const page = _page(keys, limit, (key) => {
      const user = this.store.user(key);
      if (!user) return undefined;
      return {
        username: user.username,
        online: this.#online.has(user.username),
        last_seen: this.#lastSeen(user),
        last_login: isoTime(user.lastLogin),
        rooms: [...user.rooms].map((room) => this.store.room(room)?.name).filter(Boolean),
        addresses: this.#addresses(user.username),
        identity_key: user.identityKey ?? null,
      };
    }, (entry) => entry.username as string);
    return { users: page.entries, next: page.next };
  }

  #listRooms(fields: Record<string, unknown>) {
    const after = _optionalString(fields, "after");
    const limit = _limit(fields.limit);
    const page = _page(this.store.roomsAfter(after), limit, (room) => {
      const entry = this.#roomSummary(room);
      const withMembers = { ...entry, members: room.members };
      // A huge room is listed without its members; SESSION_ROOM_MEMBERS pages through them.
      return utf8Length(JSON.stringify(withMembers)) <= REPLY_BUDGET_BYTES / 2
        ? withMembers
        : { ...entry, members_omitted: true };
    }, (entry) => entry.name as string);
    return { rooms: page.entries, next: page.next };
  }

  #listMembers(fields: Record<string, unknown>) {
    const room = this.#existingRoom(fields);
    return { room: this.#roomSummary(room), ...this.#memberPage(room, fields) };
  }

  #memberPage(room: RoomRecord, fields: Record<string, unknown>) {
    const after = _optionalString(fields, "after");
    const limit = _limit(fields.limit);
    const start = after === undefined ? 0 : room.members.indexOf(after) + 1;
    const page = _page(
      room.members.slice(start),
      limit,
      (username) => {
        const user = this.store.user(username);
        return user ? { ...this.#member(user) } : undefined;
      },
      (entry) => entry.username as string,
    );
    return { members: page.entries, next: page.next };
  }

  #roomSummary(room: RoomRecord) {
    let online = 0;
    for (const member of room.members) if (this.#online.has(member)) online++;
    return {
      name: room.name,
      owner: room.owner,
      created: isoTime(room.created),
      member_count: room.members.length,
      online_count: online,
      cap: Number.isFinite(this.settings.roomMemberCap) ? this.settings.roomMemberCap : null,
    };
  }

  // ---- keys and registrations ----

  /** The identity key of each account asked about, keyed by the name as asked. */
  #keys(fields: Record<string, unknown>) {
    const names = fields.usernames;
    if (
      !Array.isArray(names) || names.length < 1 || names.length > MAX_KEYS_PER_REQUEST ||
      !names.every(isWireName)
    ) {
      throw new P2pError(
        "bad_request",
        `"usernames" must be a list of 1..${MAX_KEYS_PER_REQUEST} names of 1..64 characters`,
      );
    }
    // A look-alike of an account's name ("аlice" with a Cyrillic а) answers that account's key,
    // so a peer calling itself by it is refused as an impostor. fromEntries defines own
    // properties, so even a name like "__proto__" is answered as asked.
    const keys = Object.fromEntries(
      names.map((name) => [name, this.store.owner(name)?.identityKey ?? null]),
    );
    if (utf8Length(JSON.stringify(keys)) > REPLY_BUDGET_BYTES) {
      throw new P2pError("bad_request", "The answer would be too long; ask about fewer names");
    }
    return { keys };
  }

  /**
   * SESSION_REGISTER and SESSION_UNREGISTER: the Rendezvous logic for the session's address,
   * where the login proves the name (it must be the username) instead of anything on the wire.
   */
  #rendezvous(
    session: ServiceSession,
    command: "SESSION_REGISTER" | "SESSION_UNREGISTER",
    fields: Record<string, unknown>,
  ): Record<string, unknown> {
    const username = session.user!.username;
    const ownName = (name: string): ErrorCode | undefined =>
      foldName(name) === foldName(username) ? undefined : "name_mismatch";
    let request = fields;
    if (command === "SESSION_UNREGISTER") {
      // Without a name, only the user's own listing goes: never a neighbour's behind one NAT.
      if (fields.name === undefined || fields.name === null) {
        request = { ...fields, name: username };
      } else if (typeof fields.name === "string" && ownName(fields.name)) _nameMismatch(username);
    }
    const reply = session.link.rendezvous(
      command === "SESSION_REGISTER" ? "REGISTER" : "UNREGISTER",
      request,
      ownName,
    );
    if (reply.status === "ERROR") {
      // Rendezvous messages are codes, or a code and the value (`bad_port (VALUE)`).
      throw new P2pError(reply.message.split(" ", 1)[0] as ErrorCode, reply.message);
    }
    const { status: _status, ...result } = reply;
    return result;
  }

  // ---- rooms ----

  async #createRoom(
    session: ServiceSession,
    fields: Record<string, unknown>,
  ): Promise<CommandResult> {
    const name = _requiredString(fields, "room");
    const problem = checkName("Room name", name);
    if (problem) throw new P2pError("bad_room_name", problem);
    if (this.store.room(name)) throw new P2pError("room_exists", `Room "${name}" already exists`);
    const user = session.user!;
    _checkRoomLimit(user);
    await this.#commit({
      op: "room_create",
      room: name,
      owner: user.username,
      at: this.clock.now(),
    });
    const room = this.store.room(name)!;
    // The creator's other sessions learn about it like any member would.
    this.#push(
      this.#otherSessions(session),
      eventMessage("room_joined", {
        room: room.name,
        member: this.#member(user),
      }),
    );
    return { reply: { room: this.#roomSummary(room), ...this.#memberPage(room, {}) } };
  }

  async #joinRoom(
    session: ServiceSession,
    fields: Record<string, unknown>,
  ): Promise<CommandResult> {
    const room = this.#existingRoom(fields);
    const user = session.user!;
    if (user.rooms.has(foldName(room.name))) {
      throw new P2pError("already_member", `You are already a member of "${room.name}"`);
    }
    _checkRoomLimit(user);
    const cap = this.settings.roomMemberCap;
    if (room.members.length >= cap) {
      throw new P2pError("room_full", `Room "${room.name}" is full (${cap} members)`);
    }
    await this.#commit({ op: "room_join", room: room.name, username: user.username });
    const event = eventMessage("room_joined", { room: room.name, member: this.#member(user) });
    this.#push(this.#recipients(room).filter((other) => other !== session), event);
    return { reply: { room: this.#roomSummary(room), ...this.#memberPage(room, {}) } };
  }

  async #leaveRoom(
    session: ServiceSession,
    fields: Record<string, unknown>,
  ): Promise<CommandResult> {
    const room = this.#existingRoom(fields);
    const user = session.user!;
    if (!user.rooms.has(foldName(room.name))) {
      throw new P2pError("not_member", `You are not a member of "${room.name}"`);
    }
    const recipients = this.#recipients(room).filter((other) => other !== session);
    await this.#commit({ op: "room_leave", room: room.name, username: user.username });
    const remaining = this.store.room(room.name);
    this.#push(
      recipients,
      eventMessage("room_left", {
        room: room.name,
        username: user.username,
        owner: remaining?.owner ?? null,
      }),
    );
    return { reply: { room: room.name, owner: remaining?.owner ?? null } };
  }

  async #deleteRoom(
    session: ServiceSession,
    fields: Record<string, unknown>,
  ): Promise<CommandResult> {
    const room = this.#existingRoom(fields);
    const user = session.user!;
    if (room.owner !== user.username) {
      throw new P2pError(
        "not_owner",
        `Only the owner of "${room.name}" (${room.owner}) can delete it`,
      );
    }
    const recipients = this.#recipients(room).filter((other) => other !== session);
    await this.#commit({ op: "room_delete", room: room.name });
    this.#push(recipients, eventMessage("room_deleted", { room: room.name, by: user.username }));
    return { reply: { room: room.name } };
  }

  #existingRoom(fields: Record<string, unknown>): RoomRecord {
    const name = _requiredString(fields, "room");
    const room = this.store.room(name);
    if (!room) throw new P2pError("no_such_room", `There is no room "${name}"`);
    return room;
  }

  #otherSessions(session: ServiceSession): ServiceSession[] {
    return [...this.#online.get(session.user!.username) ?? []].filter((other) => other !== session);
  }
}

function _checkRoomLimit(user: UserRecord): void {
  if (user.rooms.size >= MAX_ROOMS_PER_USER) {
    throw new P2pError(
      "too_many_rooms",
      `An account may be in at most ${MAX_ROOMS_PER_USER} rooms`,
    );
  }
}

function _keyMismatch(user: UserRecord, byPassword: boolean): P2pError {
  if (user.identityKey === undefined) {
    return new P2pError(
      "key_mismatch",
      `Account ${user.username} has no identity key yet: log in with the password to bind this ` +
        `profile's key`,
    );
  }
  const known = fingerprint(Uint8Array.fromBase64(user.identityKey));
  const remedy = byPassword
    ? `If you moved to a new profile or lost the old one, log in with replace_key to make this ` +
      `key the account's key; your contacts will be told the key changed`
    : `A token cannot change the key: log in with the password (and replace_key) instead`;
  return new P2pError(
    "key_mismatch",
    `This profile's identity key is not the key of account ${user.username} ` +
      `(fingerprint ${known}). ${remedy}`,
  );
}

function _nameMismatch(username: string): never {
  throw new P2pError("name_mismatch", `You can only register your own name "${username}"`);
}

function _taken(username: string): never {
  throw new P2pError(
    "username_taken",
    `Username "${username}" is taken (or one that looks like it)`,
  );
}

function _requiredString(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== "string") throw new P2pError("bad_request", `"${name}" must be a string`);
  return value;
}

function _optionalString(fields: Record<string, unknown>, name: string): string | undefined {
  return fields[name] === undefined || fields[name] === null
    ? undefined
    : _requiredString(fields, name);
}

function _password(value: unknown): string {
  if (
    typeof value !== "string" || value.length < MIN_PASSWORD_CHARS ||
    value.length > MAX_PASSWORD_CHARS
  ) {
    throw new P2pError(
      "bad_password",
      `The password must be ${MIN_PASSWORD_CHARS} to ${MAX_PASSWORD_CHARS} characters`,
    );
  }
  return value;
}

function _limit(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_PAGE_LIMIT;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new P2pError("bad_request", `"limit" must be a whole number from 1`);
  }
  return Math.min(value as number, MAX_PAGE_LIMIT);
}

/**
 * The address a client declares at login: its listening port and its peer_id, whose name must
 * be the account's (members dial these addresses, so nobody may advertise someone else's).
 */
function _declaredAddress(
  fields: Record<string, unknown>,
  session: ServiceSession,
  username: string,
): WireAddress {
  const address: WireAddress = { ip: session.link.remoteIp };
  if (fields.port !== undefined && fields.port !== null) {
    const port = toPort(fields.port);
    if (port === undefined) throw new P2pError("bad_request", `"port" must be 1..65535`);
    address.port = port;
  }
  if (fields.peer_id !== undefined && fields.peer_id !== null) {
    const peerId = fields.peer_id;
    if (typeof peerId !== "string" || !/^[^@]{1,64}@[^@]{1,64}$/u.test(peerId)) {
      throw new P2pError("bad_request", `"peer_id" must look like name@namespace`);
    }
    if (foldName(peerId.slice(0, peerId.indexOf("@"))) !== foldName(username)) {
      throw new P2pError(
        "name_mismatch",
        `"peer_id" must be ${username}@NAMESPACE, got "${peerId}"`,
      );
    }
    address.peer_id = peerId;
  }
  return address;
}

/** Takes entries up to `limit` and the byte budget; `next` is the cursor when more remain. */
function _page<T>(
  items: Iterable<T>,
  limit: number,
  entry: (item: T) => Record<string, unknown> | undefined,
  cursor: (entry: Record<string, unknown>) => string,
): { entries: Record<string, unknown>[]; next: string | null } {
  const entries: Record<string, unknown>[] = [];
  let bytes = 0;
  for (const item of items) {
    const value = entry(item);
    if (!value) continue;
    const size = utf8Length(JSON.stringify(value)) + 1;
    if (entries.length >= limit || (entries.length > 0 && bytes + size > REPLY_BUDGET_BYTES)) {
      return { entries, next: cursor(entries[entries.length - 1]) };
    }
    entries.push(value);
    bytes += size;
  }
  return { entries, next: null };
}
