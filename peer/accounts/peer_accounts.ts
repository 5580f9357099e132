/**
 * Accounts, presence and rooms on the peer: the operations the terminal UI and the HTTP API
 * offer (sign-up, login, rooms ...) over a `SessionClient`, the events they show, and the
 * room-aware PUB: `#room` reaches the peers of namespace `room` (pyp2p semantics) and every
 * online member of room `room`, dialled when not yet connected. While the tracker session is
 * reconnecting the remembered member lists stay in use, so members still connected to each
 * other keep chatting.
 */
import { Listeners } from "../../lib/listeners.ts";
import type { Clock } from "../../lib/clock.ts";
import { isRecord } from "../../lib/codec.ts";
import { P2pError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { Address } from "../../lib/transport.ts";
import { MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS } from "../../lib/password.ts";
import type { PeerNode, PublishResult, Scope, SendResult } from "../api.ts";
import { splitPeerId } from "../protocol/mod.ts";
import type { SessionClient, SessionClientEvent } from "./session_client.ts";

/** A reachable address of a member, as the tracker saw it. */
export interface MemberAddress {
  ip: string;
  port?: number;
  peerId?: string;
}

/** A room member. */
export interface RoomMember {
  username: string;
  online: boolean;
  addresses: MemberAddress[];
  lastSeen: string | null;
}

/** A room as listed by the tracker. */
export interface RoomSummary {
  name: string;
  owner: string | null;
  created?: string;
  memberCount: number;
  onlineCount: number;
  /** Member names; undefined when the tracker omitted a long list. */
  members?: string[];
}

/** A user as listed by the tracker. */
export interface UserSummary {
  username: string;
  online: boolean;
  lastSeen: string | null;
  lastLogin: string | null;
  rooms: string[];
  addresses: MemberAddress[];
}

/** A room event, pushed by the tracker (`event` is its wire name). */
export interface RoomEvent {
  type: "room";
  event: "room_joined" | "room_left" | "room_deleted" | "member_online" | "member_offline";
  room: string;
  /** Who joined, left, came or went (or deleted the room). */
  username: string;
  /** The owner after a `room_left`. */
  owner?: string | null;
  member?: RoomMember;
  at: number;
}

/** A change of the login. */
export interface AccountEvent {
  type: "account";
  /** `name_owned`: the tracker refused our REGISTER because an account owns our name. */
  state: "logged_in" | "logged_out" | "reconnecting" | "name_owned";
  username: string;
  /** How a login happened (`reconnect`: a lost session is back), or why a logout did. */
  reason?: string;
  detail?: string;
  at: number;
}

/** Anything the accounts part reports to the user interfaces. */
export type AccountsEvent = RoomEvent | AccountEvent;

/** How long a room PUB waits for members not yet connected. */
export const ROOM_DIAL_WAIT_MS = 3_000;

/** Where to reach one member's peer. */
export interface RoomTarget {
  peerId: string;
  address: Address;
}

/** Why `password` cannot be an account's (the tracker's rule), or undefined. */
/**
 * True when one of the member's peers is connected to ours. The tracker lets a member list
 * only peer ids of their own name (which their account owns).
 */
export function memberConnected(node: PeerNode, member: RoomMember): boolean {
  const ids = new Set(member.addresses.map((address) => address.peerId?.toLowerCase()));
  return node.peers().some((peer) =>
    peer.state === "connected" && ids.has(peer.peerId.toLowerCase())
  );
}

export function checkPassword(password: string): string | undefined {
  // UTF-16 units, as the tracker counts.
  return password.length < MIN_PASSWORD_CHARS || password.length > MAX_PASSWORD_CHARS
    ? `the password must be ${MIN_PASSWORD_CHARS} to ${MAX_PASSWORD_CHARS} characters`
    : undefined;
}

/** Largest page asked for; the tracker caps it too. */
const PAGE_LIMIT = 500;

/** Accounts and rooms of one peer. */
export class PeerAccounts {
  readonly #client: SessionClient;
  readonly #node: PeerNode;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #listeners: Listeners<AccountsEvent>;
  /** Members of rooms we looked at (folded name), kept current by pushed events. */
  readonly #members = new Map<string, Map<string, RoomMember>>();
  /** Names of the rooms seen in replies and events (folded name to name), for Tab completion. */
  readonly #roomNames = new Map<string, string>();
  #nameOwned = false;

  constructor(client: SessionClient, node: PeerNode, deps: { clock: Clock; log: Logger }) {
    this.#client = client;
    this.#node = node;
    this.#clock = deps.clock;
    this.#log = deps.log.child("Accounts");
    this.#listeners = new Listeners(this.#log, "Accounts listener");
    client.subscribe((event) => this.#fromClient(event));
    node.subscribe((event) => {
      if (event.type !== "tracker") return;
      // Discovery reached the tracker: the session need not wait for its backoff.
      if (event.reachable) client.retryNow();
      // A remembered login resumes (and registers again) by itself: no /login hint meanwhile.
      if (event.refused !== "name_owned" || this.loggedIn || client.token !== undefined) return;
      this.#nameOwned = true;
      this.#listeners.emit({
        type: "account",
        state: "name_owned",
        username: this.username,
        at: event.at,
      });
    });
  }

  /** True when the tracker refused our name (owned by an account) and we are not logged in. */
  get nameOwned(): boolean {
    return this.#nameOwned;
  }

  /** The account name (the peer's name). */
  get username(): string {
    return this.#client.username;
  }

  /** True while logged in (the tracker connection is up). */
  get loggedIn(): boolean {
    return this.#client.state === "logged_in";
  }

  /** `logged_in`, `logged_out` or `reconnecting`. */
  get state(): string {
    return this.#client.state;
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: (event: AccountsEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Creates the account and logs in; a password of the wrong length never leaves the peer. */
  async signup(password: string): Promise<void> {
    const problem = checkPassword(password);
    if (problem) throw new P2pError("bad_password", problem);
    await this.#client.signup(password);
  }

  async login(password: string, options: { replaceKey?: boolean } = {}): Promise<void> {
    await this.#client.login(password, options);
  }

  /** Logs out; `revoked` is false when the tracker is away (revoked once it is back). */
  logout(): Promise<{ revoked: boolean }> {
    return this.#client.logout();
  }

  /** Every user (or the online ones), all pages. */
  async users(onlineOnly = false): Promise<UserSummary[]> {
    const users: UserSummary[] = [];
    let after: unknown = null;
    do {
      const reply = await this.#client.request("SESSION_USERS", {
        ...(onlineOnly ? { online: true } : {}),
        ...(after === null ? {} : { after }),
        limit: PAGE_LIMIT,
      });
      for (const item of _list(reply.users)) users.push(_user(item));
      after = reply.next ?? null;
    } while (after !== null);
    return users;
  }

  /** Every room, all pages. */
  async rooms(): Promise<RoomSummary[]> {
    const rooms: RoomSummary[] = [];
    let after: unknown = null;
    do {
      const reply = await this.#client.request("SESSION_ROOMS", {
        ...(after === null ? {} : { after }),
        limit: PAGE_LIMIT,
      });
      for (const item of _list(reply.rooms)) rooms.push(this.#seenRoom(_room(item)));
      after = reply.next ?? null;
    } while (after !== null);
    return rooms;
  }

  /** Creates a room; we are its owner and first member. */
  async createRoom(name: string): Promise<{ room: RoomSummary; members: RoomMember[] }> {
    const reply = await this.#client.request("SESSION_ROOM_CREATE", { room: name });
    return this.#roomReply(reply);
  }

  /**
   * Joins a room; its online members are dialled so the first message goes out at once.
   * Joining a room we are already in (we created it, or joined before) answers the same.
   */
  async joinRoom(name: string): Promise<{ room: RoomSummary; members: RoomMember[] }> {
    let result: { room: RoomSummary; members: RoomMember[] };
    try {
      result = this.#roomReply(await this.#client.request("SESSION_ROOM_JOIN", { room: name }));
    } catch (error) {
      if (!(error instanceof P2pError && error.code === "already_member")) throw error;
      result = await this.members(name);
    }
    for (const member of result.members) this.#dialMember(member);
    return result;
  }

  /** Leaves a room; returns the owner after the change (null: the room is gone). */
  async leaveRoom(name: string): Promise<{ room: string; owner: string | null }> {
    const reply = await this.#client.request("SESSION_ROOM_LEAVE", { room: name });
    this.#members.delete(_fold(name));
    return {
      room: typeof reply.room === "string" ? reply.room : name,
      owner: typeof reply.owner === "string" ? reply.owner : null,
    };
  }

  /** Deletes a room (owner only). */
  async deleteRoom(name: string): Promise<{ room: string }> {
    const reply = await this.#client.request("SESSION_ROOM_DELETE", { room: name });
    this.#members.delete(_fold(name));
    this.#roomNames.delete(_fold(name));
    return { room: typeof reply.room === "string" ? reply.room : name };
  }

  /** A room's summary and every member, with addresses of the online ones. */
  async members(name: string): Promise<{ room: RoomSummary; members: RoomMember[] }> {
    const members: RoomMember[] = [];
    let room: RoomSummary | undefined;
    let after: unknown = null;
    do {
      const reply = await this.#client.request("SESSION_ROOM_MEMBERS", {
        room: name,
        ...(after === null ? {} : { after }),
        limit: PAGE_LIMIT,
      });
      room ??= this.#seenRoom(_room(reply.room));
      for (const item of _list(reply.members)) members.push(_member(item));
      after = reply.next ?? null;
    } while (after !== null);
    this.#members.set(_fold(name), new Map(members.map((m) => [m.username, m])));
    return { room: room!, members };
  }

  /**
   * Peer ids of the online members of `room` other than us, with where to dial them; empty
   * when we are logged out or not a member (then `#room` keeps its pyp2p meaning). While
   * reconnecting, the members last known are used.
   */
  async roomTargets(room: string): Promise<RoomTarget[]> {
    if (this.state === "logged_out") return [];
    let members = this.#members.get(_fold(room));
    if (!members) {
      if (!this.loggedIn) return [];
      try {
        await this.members(room);
      } catch (error) {
        if (error instanceof P2pError && error.code === "no_such_room") return [];
        throw error;
      }
      members = this.#members.get(_fold(room))!;
    }
    if (!members.has(this.username)) return [];
    const targets = new Map<string, RoomTarget>();
    for (const member of members.values()) {
      if (!member.online) continue;
      for (const target of this.#targetsOf(member)) targets.set(target.peerId, target);
    }
    return [...targets.values()];
  }

  /**
   * Publishes to `scope`; for `#room` also to every online member of that room. The PUB goes
   * at once to the peers connected; members not connected are dialled and each gets it when
   * its dial succeeds within `waitMs` (under the same msg_id, so each peer gets it once). A
   * member whose redial waits for its backoff, or that failed, is not waited for. Resolves
   * with everyone reached.
   */
  async publish(scope: Scope, text: string, waitMs = ROOM_DIAL_WAIT_MS): Promise<PublishResult> {
    if (scope === "*") return this.#node.publish(scope, text);
    let targets: RoomTarget[] = [];
    try {
      targets = await this.roomTargets(scope.slice(1));
    } catch (error) {
      this.#log.warn("Could not read the room's members; sending to the namespace only", {
        room: scope,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    const table = new Map(this.#node.peers().map((peer) => [peer.peerId, peer]));
    const connected: string[] = [];
    const toDial: RoomTarget[] = [];
    for (const target of targets) {
      const peer = table.get(target.peerId);
      if (peer?.state === "connected") connected.push(target.peerId);
      else if (peer?.state !== "failed" && peer?.nextAttemptAt === undefined) toDial.push(target);
    }
    const first = await this.#node.publish(scope, text, connected);
    if (toDial.length === 0) return first;
    const reached = new Set(first.peers);
    let encrypted = first.encrypted;
    const signal = AbortSignal.timeout(waitMs);
    await Promise.all(toDial.map(async (target) => {
      if (!await this.#node.connectPeer(target.peerId, target.address, signal)) return;
      if (reached.has(target.peerId)) return;
      const late = await this.#node.publishTo([target.peerId], scope, text, first.msgId);
      for (const peerId of late.peers) reached.add(peerId);
      encrypted += late.encrypted;
    }));
    return { msgId: first.msgId, reached: reached.size, peers: [...reached], encrypted };
  }

  /**
   * The member names (lower case) of a room whose member list we hold, we being one of them;
   * undefined otherwise. What a room message must reach, online or not.
   */
  roomMemberNames(room: string): string[] | undefined {
    const members = this.#members.get(_fold(room));
    if (!members?.has(this.username)) return undefined;
    return [...members.keys()].map(_fold);
  }

  /** The names of the rooms this peer has seen (listed, created, joined), sorted. */
  knownRooms(): string[] {
    return [...this.#roomNames.values()].sort();
  }

  // The member lists of the rooms we are in, read at each login: a message to one of them is
  // filed under the room only when we know we are in it (a restarted peer filed them under "*"
  // until /join). What fails here is read later, when a message goes to the room.
  async #loadOwnRooms(): Promise<void> {
    try {
      const me = _fold(this.username);
      for (const room of await this.rooms()) {
        // A room listed without its members (too many for a line) may be ours too.
        if (room.members && !room.members.some((name) => _fold(name) === me)) continue;
        if (!this.#members.has(_fold(room.name))) await this.members(room.name);
      }
    } catch (error) {
      this.#log.debug("Could not read the rooms we are in", { error: String(error) });
    }
  }

  /**
   * After a session came back (the tracker restarted, or our link to it dropped): a member we
   * saw online whom the new list says is offline left meanwhile, when no session of ours was
   * there to be told. Told now, unless their peer is still connected to ours (then they are
   * about to log in again, as everyone does after a tracker restart).
   */
  #tellWhoLeft(before: Map<string, Map<string, RoomMember>>): void {
    for (const [key, was] of before) {
      const now = this.#members.get(key);
      if (!now) continue;
      for (const [username, member] of was) {
        if (!member.online || now.get(username)?.online !== false) continue;
        if (memberConnected(this.#node, member)) continue;
        this.#listeners.emit({
          type: "room",
          event: "member_offline",
          room: this.#roomNames.get(key) ?? key,
          username,
          at: this.#clock.now(),
        });
      }
    }
  }

  #seenRoom(room: RoomSummary): RoomSummary {
    this.#roomNames.set(_fold(room.name), room.name);
    return room;
  }

  /**
   * Sends a direct message; a peer the tracker does not list but whose name is an account of
   * ours that is not online is reported as `offline` rather than unknown.
   */
  async send(peerId: string, text: string, msgId?: string): Promise<SendResult> {
    const result = await this.#node.send(peerId, text, msgId);
    if (result.ok || result.reason !== "unknown_peer" || !this.loggedIn) return result;
    const { name } = splitPeerId(peerId);
    try {
      const users = await this.users();
      const user = users.find((user) => _fold(user.username) === _fold(name));
      return user && !user.online ? { ok: false, reason: "offline" } : result;
    } catch (error) {
      this.#log.debug("Could not ask whether the peer is an account", { error: String(error) });
      return result;
    }
  }

  /** The node seen through the accounts: its `publish` and `send` know accounts and rooms. */
  roomAwareNode(): PeerNode {
    const node = this.#node;
    const publish = (scope: Scope, text: string) => this.publish(scope, text);
    return {
      get peerId() {
        return node.peerId;
      },
      status: () => node.status(),
      peers: (scope) => node.peers(scope),
      send: (peerId, text, msgId) => this.send(peerId, text, msgId),
      publish,
      publishTo: (peerIds, dst, text, msgId) => node.publishTo(peerIds, dst, text, msgId),
      connectPeer: (peerId, address, signal) => node.connectPeer(peerId, address, signal),
      registerNow: () => node.registerNow(),
      reconnect: (peerId) => node.reconnect(peerId),
      identity: () => node.identity(),
      verification: (peerId) => node.verification(peerId),
      setVerified: (peerId, verified) => node.setVerified(peerId, verified),
      forgetKey: (peerId) => node.forgetKey(peerId),
      subscribe: (listener) => node.subscribe(listener),
      stop: (reason) => node.stop(reason),
    };
  }

  #roomReply(reply: Record<string, unknown>): { room: RoomSummary; members: RoomMember[] } {
    const room = this.#seenRoom(_room(reply.room));
    const members = _list(reply.members).map(_member);
    // A first page only: complete it lazily when a message goes out.
    if (reply.next === null || reply.next === undefined) {
      this.#members.set(_fold(room.name), new Map(members.map((m) => [m.username, m])));
    } else this.#members.delete(_fold(room.name));
    return { room, members };
  }

  #dialMember(member: RoomMember): void {
    if (!member.online || member.username === this.username) return;
    for (const target of this.#targetsOf(member)) {
      void this.#node.connectPeer(
        target.peerId,
        target.address,
        AbortSignal.timeout(ROOM_DIAL_WAIT_MS),
      );
    }
  }

  // The dialable addresses of a member. A peer_id must be the member's own (its name part
  // equal to the username, ignoring case as the tracker does): another account must not make
  // us dial, or move, someone else's peer.
  #targetsOf(member: RoomMember): RoomTarget[] {
    const targets: RoomTarget[] = [];
    for (const address of member.addresses) {
      const peerId = address.peerId;
      if (!peerId || !address.port || peerId === this.#node.peerId) continue;
      if (_fold(splitPeerId(peerId).name) !== _fold(member.username)) {
        this.#log.debug("Ignoring a member address with another peer's id", {
          member: member.username,
          peer: peerId,
        });
        continue;
      }
      targets.push({ peerId, address: { hostname: address.ip, port: address.port } });
    }
    return targets;
  }

  #fromClient(event: SessionClientEvent): void {
    const at = this.#clock.now();
    switch (event.kind) {
      case "logged_in": {
        // Events may have been missed while away: member lists are read again.
        const before = new Map(this.#members);
        this.#members.clear();
        this.#nameOwned = false;
        this.#node.registerNow();
        void this.#loadOwnRooms().then(() => this.#tellWhoLeft(before));
        this.#listeners.emit({
          type: "account",
          state: "logged_in",
          username: this.username,
          reason: event.how,
          at,
        });
        return;
      }
      case "logged_out":
        // Only a real logout forgets the members; while reconnecting they keep rooms working.
        this.#members.clear();
        this.#listeners.emit({
          type: "account",
          state: "logged_out",
          username: this.username,
          reason: event.reason,
          detail: event.detail,
          at,
        });
        return;
      case "reconnecting":
        this.#listeners.emit({
          type: "account",
          state: "reconnecting",
          username: this.username,
          detail: event.detail,
          at,
        });
        return;
      case "pushed":
        return this.#pushed(event.event, event.fields, at);
    }
  }

  #pushed(name: string, fields: Record<string, unknown>, at: number): void {
    if (name === "session_expired") return; // the client resumes by itself
    const room = typeof fields.room === "string" ? fields.room : undefined;
    if (room === undefined) return;
    const cached = this.#members.get(_fold(room));
    const member = isRecord(fields.member) ? _member(fields.member) : undefined;
    const username = member?.username ??
      (typeof fields.username === "string" ? fields.username : undefined) ??
      (typeof fields.by === "string" ? fields.by : "");
    switch (name) {
      case "room_joined":
      case "member_online":
        if (member) {
          cached?.set(member.username, member);
          this.#dialMember(member);
        }
        break;
      case "member_offline": {
        const known = cached?.get(username);
        if (known) cached!.set(username, { ...known, online: false, addresses: [] });
        break;
      }
      case "room_left":
        cached?.delete(username);
        break;
      case "room_deleted":
        this.#members.delete(_fold(room));
        this.#roomNames.delete(_fold(room));
        break;
      default:
        return;
    }
    this.#listeners.emit({
      type: "room",
      event: name as RoomEvent["event"],
      room,
      username,
      ...(name === "room_left"
        ? { owner: typeof fields.owner === "string" ? fields.owner : null }
        : {}),
      ...(member ? { member } : {}),
      at,
    });
  }
}

// Room and user names are unique ignoring case, as the tracker compares them.
function _fold(name: string): string {
  return name.toLowerCase();
}

function _list(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function _string(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function _count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : 0;
}

function _addresses(value: unknown): MemberAddress[] {
  return _list(value).flatMap((item) => {
    if (typeof item.ip !== "string") return [];
    return [{
      ip: item.ip,
      port: typeof item.port === "number" ? item.port : undefined,
      peerId: typeof item.peer_id === "string" ? item.peer_id : undefined,
    }];
  });
}

function _member(item: Record<string, unknown>): RoomMember {
  return {
    username: String(item.username ?? ""),
    online: item.online === true,
    addresses: _addresses(item.addresses),
    lastSeen: _string(item.last_seen),
  };
}

function _room(value: unknown): RoomSummary {
  const item = isRecord(value) ? value : {};
  return {
    name: String(item.name ?? ""),
    owner: _string(item.owner),
    created: typeof item.created === "string" ? item.created : undefined,
    memberCount: _count(item.member_count),
    onlineCount: _count(item.online_count),
    members: Array.isArray(item.members) ? item.members.map(String) : undefined,
  };
}

function _user(item: Record<string, unknown>): UserSummary {
  return {
    username: String(item.username ?? ""),
    online: item.online === true,
    lastSeen: _string(item.last_seen),
    lastLogin: _string(item.last_login),
    rooms: Array.isArray(item.rooms) ? item.rooms.map(String) : [],
    addresses: _addresses(item.addresses),
  };
}
