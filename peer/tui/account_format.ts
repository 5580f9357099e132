/**
 * How the terminal UI writes accounts and rooms: notices for pushed events and the /users,
 * /rooms and /who tables. Pure, like tui_format.ts: plain stable lines without colour.
 */
import type {
  AccountsEvent,
  MemberAddress,
  RoomMember,
  RoomSummary,
  UserSummary,
} from "../accounts/mod.ts";
import { formatClock, formatTable, sanitize, type Style } from "./format.ts";
import { formatDay } from "./history_format.ts";

/**
 * One notice line for an account or room event; undefined when the command already said it
 * (`byCommandHere`: a sign-up, login or logout of this terminal's is under way).
 */
export function formatAccountsEvent(
  event: AccountsEvent,
  style: Style,
  byCommandHere = false,
): string | undefined {
  const time = style.dim(formatClock(event.at));
  const user = (name: string) => style.peer(name, sanitize(name));
  if (event.type === "account") {
    const name = user(event.username);
    switch (event.state) {
      case "logged_in":
        if (event.reason === "reconnect") {
          return `${time} -- tracker session back; logged in as ${name}`;
        }
        if (event.reason === "resume") return `${time} -- logged in as ${name} (remembered login)`;
        // A sign-up or login of this terminal's printed its own line.
        return byCommandHere
          ? undefined
          : `${time} -- logged in as ${name} (from the web chat or the API)`;
      case "logged_out":
        if (event.reason === "bad_token") {
          return `${time} ${
            style.warn(`-- the remembered login of ${name} is no longer valid; /login again`)
          }`;
        }
        if (event.reason === "session_closed") {
          return `${time} ${
            style.warn("-- logged out: the login was revoked by a logout elsewhere")
          }`;
        }
        return event.reason === "logout" && !byCommandHere
          ? `${time} -- logged out (from the web chat or the API)`
          : undefined;
      case "name_owned":
        return `${time} ${
          style.warn(
            `-- the name ${name} belongs to an account: /login to use it if it is yours, else start again with another --name (the tracker refused REGISTER: name_owned)`,
          )
        }`;
      case "reconnecting":
        // Told once per loss (retries are quiet); connected peers keep chatting meanwhile.
        return `${time} ${
          style.warn(
            `-- tracker session lost (${
              sanitize(event.detail ?? "")
            }); reconnecting in the background`,
          )
        }`;
    }
  }
  const room = style.bold(`#${sanitize(event.room)}`);
  const who = user(event.username);
  switch (event.event) {
    case "room_joined":
      return `${time} -- ${who} joined ${room}`;
    case "room_left":
      return `${time} -- ${who} left ${room}` +
        (event.owner ? `; owner: ${sanitize(event.owner)}` : "");
    case "room_deleted":
      return `${time} -- ${room} was deleted by ${who}`;
    case "member_online": {
      const where = event.member?.addresses.map(formatMemberAddress).join(" ") ?? "";
      return `${time} -- ${who} is online in ${room}${where ? ` (${where})` : ""}`;
    }
    case "member_offline":
      return `${time} -- ${who} went offline in ${room}`;
  }
}

/** `peer_id@ip:port`, or what of it is known. */
export function formatMemberAddress(address: MemberAddress): string {
  const where = address.port === undefined ? address.ip : `${address.ip}:${address.port}`;
  return sanitize(address.peerId ? `${address.peerId}/${where}` : where);
}

/** The /users table; times as /contacts shows them (`HH:MM:SS` today, else the date). */
export function formatUsers(users: UserSummary[], style: Style, now = Date.now()): string[] {
  return formatTable(
    ["USER", "STATE", "LAST_SEEN", "LAST_LOGIN", "ROOMS", "ADDRESS"],
    users.map((user) => [
      sanitize(user.username),
      user.online ? "online" : "offline",
      user.online ? "now" : _time(user.lastSeen, now),
      _time(user.lastLogin, now),
      sanitize(user.rooms.join(",")),
      user.addresses.map(formatMemberAddress).join(","),
    ]),
    style,
  );
}

/** The /rooms table. */
export function formatRooms(rooms: RoomSummary[], style: Style): string[] {
  return formatTable(
    ["ROOM", "OWNER", "MEMBERS", "ONLINE", "NAMES"],
    rooms.map((room) => [
      `#${sanitize(room.name)}`,
      sanitize(room.owner ?? "-"),
      String(room.memberCount),
      String(room.onlineCount),
      room.members ? sanitize(room.members.join(",")) : "(many)",
    ]),
    style,
  );
}

/** The /who table. */
export function formatMembers(members: RoomMember[], style: Style): string[] {
  return formatTable(
    ["MEMBER", "STATE", "ADDRESS"],
    members.map((member) => [
      sanitize(member.username),
      member.online ? "online" : "offline",
      member.addresses.map(formatMemberAddress).join(","),
    ]),
    style,
  );
}

// The tracker's ISO 8601 time as a cell; one it garbled is shown as it came.
function _time(iso: string | null, now: number): string {
  if (iso === null) return "-";
  const at = Date.parse(iso);
  return Number.isNaN(at) ? sanitize(iso) : formatDay(at, now);
}
