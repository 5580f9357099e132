/**
 * The terminal UI's account and room commands (/signup, /login, /logout, /users, /rooms,
 * /create, /join, /leave, /delete, /who), registered into the CommandTable, and the notices
 * for what the tracker pushes. Passwords: in a terminal they are asked with masked input (one
 * given as argument is refused: it was on the screen, and /login lines never enter history);
 * in a pipe (scripts) they are the command's argument.
 */
import {
  type AccountsEvent,
  checkPassword,
  memberConnected,
  type PeerAccounts,
} from "../accounts/mod.ts";
import { formatAccountsEvent, formatMembers, formatRooms, formatUsers } from "./account_format.ts";
import { P2pError } from "../../lib/errors.ts";
import { checkName } from "../../lib/names.ts";
import type { Command, CommandContext } from "./commands.ts";
import { sanitize } from "./format.ts";
import type { PeerNode } from "../api.ts";

/** The account and room commands over `accounts`. */
export function accountCommands(accounts: PeerAccounts): Command[] {
  return [
    {
      name: "signup",
      usage: "/signup",
      summary: "create an account named after this peer and log in (asks for the password; " +
        "without a terminal: /signup PASSWORD)",
      secret: true,
      async run(context, _args, argText) {
        const password = await _password(context, "signup", argText);
        if (password === undefined) return;
        await _here(accounts, () => accounts.signup(password));
        context.print(
          context.style.good(`signed up and logged in as ${sanitize(accounts.username)}`),
        );
      },
    },
    {
      name: "login",
      usage: "/login [--replace-key]",
      summary: "log in as this peer's name (asks for the password; without a terminal: " +
        "/login PASSWORD); remembered until /logout; --replace-key from a new profile",
      secret: true,
      async run(context, _args, argText) {
        const flag = REPLACE_KEY_FLAG.exec(argText);
        const replaceKey = flag !== null;
        const command = replaceKey ? "login --replace-key" : "login";
        const password = await _password(context, command, argText.slice(flag?.[0].length ?? 0));
        if (password === undefined) return;
        try {
          await _here(accounts, () => accounts.login(password, { replaceKey }));
        } catch (error) {
          if (!replaceKey && error instanceof P2pError && error.code === "key_mismatch") {
            context.error(
              "the tracker holds another identity key for this account; if this is a new " +
                "profile (or you lost the old one), /login --replace-key makes this profile's " +
                "key the account's key, and your contacts are told it changed",
            );
          }
          throw error;
        }
        const who = sanitize(accounts.username);
        context.print(context.style.good(`logged in as ${who}`));
        if (replaceKey) {
          context.print(
            `this profile's key is now the key of account ${who}; ` +
              "your other logins were closed and your contacts are told the key changed",
          );
        }
      },
    },
    {
      name: "logout",
      usage: "/logout",
      summary: "log out and forget the remembered login",
      maxArgs: 0,
      async run(context) {
        const { revoked } = await _here(accounts, () => accounts.logout());
        context.print(
          revoked ? "logged out" : "logged out here; the tracker is told when it is back",
        );
      },
    },
    {
      name: "users",
      usage: "/users",
      summary: "accounts: online or not, last seen, last login, rooms, address",
      maxArgs: 0,
      async run(context) {
        const users = await accounts.users();
        if (users.length === 0) context.print("no accounts");
        else for (const line of formatUsers(users, context.style)) context.print(line);
      },
    },
    {
      name: "rooms",
      usage: "/rooms",
      summary: "rooms: owner, members, how many are online",
      maxArgs: 0,
      async run(context) {
        const rooms = await accounts.rooms();
        if (rooms.length === 0) context.print("no rooms");
        else for (const line of formatRooms(rooms, context.style)) context.print(line);
      },
    },
    {
      name: "create",
      usage: "/create ROOM",
      summary: "create a room (you own it) and make it the conversation",
      minArgs: 1,
      maxArgs: 1,
      async run(context, args) {
        const name = _roomName(context, args[0]);
        if (name === undefined) return;
        const { room } = await accounts.createRoom(name);
        context.conversation = { kind: "scope", scope: `#${room.name}` };
        context.print(
          `created room #${sanitize(room.name)} (owner ${
            sanitize(room.owner ?? "-")
          }); conversation: #${sanitize(room.name)}`,
        );
      },
    },
    {
      name: "join",
      usage: "/join ROOM",
      summary: "join a room and make it the conversation",
      minArgs: 1,
      maxArgs: 1,
      async run(context, args) {
        const name = _roomName(context, args[0]);
        if (name === undefined) return;
        const { room } = await accounts.joinRoom(name);
        context.conversation = { kind: "scope", scope: `#${room.name}` };
        context.print(
          `joined room #${
            sanitize(room.name)
          }: ${room.memberCount} members, ${room.onlineCount} online; conversation: #${
            sanitize(room.name)
          }`,
        );
      },
    },
    {
      name: "leave",
      usage: "/leave [ROOM]",
      summary: "leave a room (default: the current conversation's)",
      maxArgs: 1,
      async run(context, args) {
        const name = _roomName(context, args[0] ?? _currentRoom(context));
        if (name === undefined) return;
        const { room, owner } = await accounts.leaveRoom(name);
        if (_currentRoom(context)?.toLowerCase() === room.toLowerCase()) _backHome(context);
        context.print(
          `left room #${sanitize(room)}` +
            (owner === null ? "; the room is gone" : `; owner: ${sanitize(owner)}`),
        );
      },
    },
    {
      name: "delete",
      usage: "/delete ROOM",
      summary: "delete a room you own",
      minArgs: 1,
      maxArgs: 1,
      async run(context, args) {
        const name = _roomName(context, args[0]);
        if (name === undefined) return;
        const { room } = await accounts.deleteRoom(name);
        if (_currentRoom(context)?.toLowerCase() === room.toLowerCase()) _backHome(context);
        context.print(`deleted room #${sanitize(room)}`);
      },
    },
    {
      name: "who",
      usage: "/who [ROOM]",
      summary: "members of a room (default: the current conversation's), with addresses",
      maxArgs: 1,
      async run(context, args) {
        const name = _roomName(context, args[0] ?? _currentRoom(context));
        if (name === undefined) return;
        const { room, members } = await accounts.members(name);
        context.print(
          `#${sanitize(room.name)}: owner ${
            sanitize(room.owner ?? "-")
          }, ${room.memberCount} members, ${room.onlineCount} online`,
        );
        for (const line of formatMembers(members, context.style)) context.print(line);
      },
    },
  ];
}

/**
 * Prints the account and room notices while the UI runs; a refusal of our name that came
 * before the UI started is told at once.
 */
export function accountNotices(accounts: PeerAccounts): (context: CommandContext) => () => void {
  return (context) => {
    // Members told offline here, by room: their next login is news, connected or not.
    const toldOffline = new Set<string>();
    const show = (event: AccountsEvent) => {
      if (event.type === "room" && event.event.startsWith("member_")) {
        const key = `${event.room}\n${event.username}`;
        if (event.event === "member_offline") {
          // Bounded: a tracker could name endless members.
          if (toldOffline.size >= 10_000) toldOffline.clear();
          toldOffline.add(key);
        } else if (!toldOffline.delete(key) && _stillConnected(context.node, event)) return;
      }
      const here = (_running.get(accounts) ?? 0) > 0;
      const line = formatAccountsEvent(event, context.style, here);
      if (line !== undefined) context.print(line);
    };
    if (accounts.nameOwned) {
      show({ type: "account", state: "name_owned", username: accounts.username, at: Date.now() });
    }
    return accounts.subscribe(show);
  };
}

/**
 * True for a member's login while our connection to their peer is open: unless we said they
 * went offline, they never went away (the tracker restarted and everyone logs in again), and
 * "is online" would be no news.
 */
function _stillConnected(node: PeerNode, event: AccountsEvent): boolean {
  if (event.type !== "room" || event.event !== "member_online" || !event.member) return false;
  return memberConnected(node, event.member);
}

/** Sign-ups, logins and logouts this terminal's commands have under way, per account. */
const _running = new WeakMap<PeerAccounts, number>();

// Runs an account change for a command here, so that its event is known as this terminal's
// (the command prints its own line; one made in the web chat or the API is told as a notice).
async function _here<T>(accounts: PeerAccounts, change: () => Promise<T>): Promise<T> {
  _running.set(accounts, (_running.get(accounts) ?? 0) + 1);
  try {
    return await change();
  } finally {
    _running.set(accounts, _running.get(accounts)! - 1);
  }
}

/** `/login --replace-key`: the flag, then the password (in a pipe) or nothing. */
const REPLACE_KEY_FLAG = /^--replace-key(?:\s+|$)/;

// In a terminal the password is asked without echo; in a pipe it is the argument. A new
// password (/signup) is checked before it is asked again or sent.
async function _password(
  context: CommandContext,
  command: "login" | "login --replace-key" | "signup",
  argText: string,
): Promise<string | undefined> {
  const confirm = command === "signup";
  if (context.interactive && argText !== "") {
    context.error(
      `in a terminal, type /${command} alone: the password is then asked without echo ` +
        "(the one given was not used)",
    );
    return undefined;
  }
  if (argText !== "") return confirm ? _newPassword(context, argText) : argText;
  if (!context.interactive) {
    context.error(`without a terminal the password is the argument: /${command} PASSWORD`);
    return undefined;
  }
  const password = await context.readSecret("password: ");
  if (password === undefined || password === "") return undefined;
  if (!confirm) return password;
  if (_newPassword(context, password) === undefined) return undefined;
  const again = await context.readSecret("password again: ");
  if (again !== password) {
    context.error("the passwords differ; nothing was changed");
    return undefined;
  }
  return password;
}

// The password, or undefined after saying why the tracker would refuse it.
function _newPassword(context: CommandContext, password: string): string | undefined {
  const problem = checkPassword(password);
  if (problem) context.error(problem);
  return problem ? undefined : password;
}

function _roomName(context: CommandContext, given: string | undefined): string | undefined {
  if (given === undefined) {
    context.error("name a room (the conversation is not a room)");
    return undefined;
  }
  const name = given.startsWith("#") ? given.slice(1) : given;
  const problem = checkName("Room name", name);
  if (problem) {
    context.error(sanitize(problem));
    return undefined;
  }
  return name;
}

function _currentRoom(context: CommandContext): string | undefined {
  const conversation = context.conversation;
  if (conversation.kind !== "scope" || conversation.scope === "*") return undefined;
  return conversation.scope.slice(1);
}

function _backHome(context: CommandContext): void {
  context.conversation = { kind: "scope", scope: `#${context.node.status().namespace}` };
}
