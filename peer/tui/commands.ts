/**
 * The terminal UI's commands: a pure parser for input lines, a command table that other
 * modules extend (accounts and rooms add theirs later), and the built-in commands.
 */
import type { PeerInfo, PeerNode, Scope, SendResult } from "../api.ts";
import { describeError } from "../../lib/errors.ts";
import { isLogLevel, LOG_LEVELS, type Logger } from "../../lib/log.ts";
import { closestMatch } from "../../lib/suggest.ts";
import { tooLongForLine } from "../protocol/mod.ts";
import {
  formatAddress,
  formatClock,
  formatCount,
  formatMs,
  formatPeerTable,
  formatTable,
  sanitize,
  type Style,
} from "./format.ts";
import { formatQueuedSend, formatStorageStatus } from "./history_format.ts";
import { connectionSecurity } from "./security_format.ts";

/** A parsed input line. */
export type ParsedInput =
  | { kind: "empty" }
  | { kind: "text"; text: string }
  | { kind: "command"; name: string; args: string[]; argText: string };

/**
 * Splits an input line. A line starting with "/" is a command (name lower-cased, arguments
 * split on white space, `argText` the raw rest); "//" escapes a text that starts with "/".
 */
export function parseInput(line: string): ParsedInput {
  if (line.trim() === "") return { kind: "empty" };
  if (line.startsWith("//")) return { kind: "text", text: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "text", text: line };
  const match = /^\/(\S*)\s*(.*)$/s.exec(line)!;
  const argText = match[2].replace(/\s+$/, "");
  return {
    kind: "command",
    name: match[1].toLowerCase(),
    args: argText === "" ? [] : argText.split(/\s+/),
    argText,
  };
}

/** Splits `argText` into its first word and the rest (kept as typed: the message text). */
export function splitFirstWord(argText: string): [string, string] {
  const match = /^(\S+)\s*(.*)$/s.exec(argText);
  return match ? [match[1], match[2]] : ["", ""];
}

/** Where plain text goes: a peer (direct message) or a scope (PUB). */
export type Conversation = { kind: "peer"; peerId: string } | { kind: "scope"; scope: Scope };

/** What a command can use. */
export interface CommandContext {
  readonly node: PeerNode;
  readonly log: Logger;
  readonly style: Style;
  readonly commands: CommandTable;
  /** Prints one line of output (above the prompt in a terminal). */
  print(line: string): void;
  /** Prints a one-line error. */
  error(message: string): void;
  conversation: Conversation;
  /** True in a terminal (prompt, raw keys); false when reading a pipe. */
  readonly interactive: boolean;
  /**
   * Asks for a secret (a password) with masked input; undefined in a pipe, where secrets come
   * as command arguments, or when the user quits instead.
   */
  readSecret(prompt: string): Promise<string | undefined>;
  /** Ends the session (runTerminal resolves). */
  quit(): void;
  /** Lines `/status` adds about the rest of the program (the HTTP API's address and token). */
  statusLines(): readonly string[];
  /**
   * Told when a direct message from this terminal goes out; the returned function is called
   * with its outcome (undefined: not sent), so that later state notices do not repeat it.
   */
  sendStarted?(peerId: string): (result: SendResult | undefined) => void;
}

/** One command: its name without "/", usage, summary for /help, argument count and action. */
export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** Fewest and most white-space separated arguments (default 0 and unlimited). */
  minArgs?: number;
  maxArgs?: number;
  /** The arguments are a secret (a password): in a terminal the line is kept out of history. */
  secret?: boolean;
  run(context: CommandContext, args: string[], argText: string): void | Promise<void>;
}

/** The command table; `register()` adds commands from other modules. */
export class CommandTable {
  #commands = new Map<string, Command>();

  constructor(commands: readonly Command[] = []) {
    this.register(commands);
  }

  /** Adds commands; a name that is already taken is a programming mistake. */
  register(commands: readonly Command[]): void {
    for (const command of commands) {
      if (this.#commands.has(command.name)) {
        throw new TypeError(`Command "/${command.name}" is already registered`);
      }
      this.#commands.set(command.name, command);
    }
  }

  get(name: string): Command | undefined {
    return this.#commands.get(name);
  }

  list(): Command[] {
    return [...this.#commands.values()];
  }

  /** Runs a parsed command; wrong names and argument counts print a one-line error. */
  async execute(
    context: CommandContext,
    input: { name: string; args: string[]; argText: string },
  ): Promise<void> {
    const command = this.#commands.get(input.name);
    if (!command) {
      const near = closestMatch(input.name, this.#commands.keys());
      context.error(
        `unknown command "/${sanitize(input.name)}"` +
          (near === undefined ? " (try /help)" : ` (did you mean /${near}? /help lists them)`),
      );
      return;
    }
    const { minArgs = 0, maxArgs = Infinity } = command;
    if (input.args.length < minArgs || input.args.length > maxArgs) {
      context.error(`usage: ${command.usage}`);
      return;
    }
    try {
      await command.run(context, input.args, input.argText);
    } catch (error) {
      context.error(
        `/${command.name} failed: ${sanitize(describeError(error, { withCode: true }))}`,
      );
    }
  }
}

/** Reads a conversation target: `*`, `#ns`, or a peer (a bare name means our namespace). */
export function parseTarget(node: PeerNode, target: string): Conversation | undefined {
  if (target === "*") return { kind: "scope", scope: "*" };
  if (target.startsWith("#")) {
    return target.length > 1 ? { kind: "scope", scope: target as Scope } : undefined;
  }
  if (target.startsWith("@") || target.endsWith("@")) return undefined;
  if (target.includes("@")) return { kind: "peer", peerId: target };
  return { kind: "peer", peerId: `${target}@${node.status().namespace}` };
}

/** How a conversation is written (prompt, messages). */
export function conversationName(conversation: Conversation): string {
  return conversation.kind === "peer" ? conversation.peerId : conversation.scope;
}

/** The conversation a name from `conversationName` stands for. */
export function conversationOf(name: string): Conversation {
  return name === "*" || name.startsWith("#")
    ? { kind: "scope", scope: name as Scope }
    : { kind: "peer", peerId: name };
}

/** Sends a direct message, prints the outcome and returns it (undefined: too long to send). */
export async function sendDirect(
  context: CommandContext,
  peerId: string,
  text: string,
): Promise<SendResult | undefined> {
  if (_tooLong(context, "SEND", peerId, text)) return undefined;
  const ended = context.sendStarted?.(peerId);
  let result: SendResult | undefined;
  try {
    result = await context.node.send(peerId, text);
  } finally {
    ended?.(result);
  }
  const who = sanitize(peerId);
  if (result.ok) {
    context.print(context.style.good(`delivered to ${who} (${Math.round(result.roundTripMs)} ms)`));
  } else if (result.queued) {
    // Kept in the outbox: not an error, it goes out by itself when the peer is back.
    context.print(formatQueuedSend(peerId, result));
  } else if (result.reason === "queue_full") {
    context.print(
      context.style.warn(
        `not delivered to ${who}: queue_full: the outbox is full (/queue lists it, ` +
          "/cancel ID makes room)",
      ),
    );
  } else if (result.reason === "unknown_peer" || result.reason === "offline") {
    const why = result.reason === "offline"
      ? "that account is not online"
      : _whyUnknown(context, peerId);
    // The reason's code first, as on every such line, for scripts.
    context.print(context.style.warn(`not delivered to ${who}: ${result.reason}: ${why}`));
  } else {
    context.print(context.style.warn(`not delivered to ${who}: ${result.reason}`));
  }
  return result;
}

// Unknown because the tracker does not list it, or because there is no tracker to ask.
function _whyUnknown(context: CommandContext, peerId: string): string {
  const meant = peerMeant(peerId, context.node.peers().map((peer) => peer.peerId));
  return context.node.status().tracker.reachable
    ? `the tracker lists no such peer${meant} (/peers shows the known ones)`
    : `no such peer is known${meant}, and the tracker is unreachable to look it up (/status)`;
}

/**
 * `" (did you mean bob@default?)"` when a known peer of the same namespace has a name close to
 * the one of `peerId` (names compared, not whole ids: "nobody@x" is not "bob@x"), else "".
 */
export function peerMeant(peerId: string, known: readonly string[]): string {
  const [name, namespace] = peerId.split("@");
  const names = known.filter((id) => id !== peerId && id.endsWith(`@${namespace}`))
    .map((id) => id.slice(0, id.lastIndexOf("@")));
  const match = closestMatch(name, names);
  return match === undefined ? "" : ` (did you mean ${sanitize(`${match}@${namespace}`)}?)`;
}

/** Publishes to a scope and prints how many peers it reached. */
export async function publishTo(context: CommandContext, scope: Scope, text: string) {
  if (_tooLong(context, "PUB", scope, text)) return;
  const result = await context.node.publish(scope, text);
  const waiting = result.waiting ?? 0;
  const cancel = result.id === undefined ? "" : ` (/cancel ${result.id} stops it waiting)`;
  const later = waiting === 0
    ? ""
    : `${waiting} offline ${waiting === 1 ? "member gets" : "members get"} it when back${cancel}`;
  if (result.reached === 0) {
    context.print(
      waiting > 0
        ? `reached nobody in ${sanitize(scope)} now; ${later}`
        : context.style.warn(`reached nobody in ${sanitize(scope)}: no connected peer in scope`),
    );
    return;
  }
  const noun = result.reached === 1 ? "peer" : "peers";
  const clear = result.reached - result.encrypted;
  const line = `reached ${result.reached} ${noun} in ${
    sanitize(scope)
  } (${result.encrypted} encrypted, ${clear} in clear): ${result.peers.map(sanitize).join(" ")}${
    later && `; ${later}`
  }`;
  context.print(clear > 0 ? context.style.warn(line) : line);
}

// A text whose protocol line would pass the limit is refused here, before anything is sent.
function _tooLong(context: CommandContext, type: "SEND" | "PUB", dst: string, text: string) {
  const problem = tooLongForLine(type, context.node.peerId, dst, text);
  if (problem !== undefined) context.error(`not sent: ${problem}; send it in parts`);
  return problem !== undefined;
}

/** Sends plain text to the current conversation. */
export async function sendToConversation(context: CommandContext, text: string): Promise<void> {
  const conversation = context.conversation;
  if (conversation.kind === "peer") await sendDirect(context, conversation.peerId, text);
  else await publishTo(context, conversation.scope, text);
}

/** `/msg` and `/pub`: make TARGET the conversation, and send TEXT there when there is one. */
function _switchConversation(kind: Conversation["kind"], hint: string): Command["run"] {
  return async (context, _args, argText) => {
    const [target, text] = splitFirstWord(argText);
    const conversation = parseTarget(context.node, target);
    if (!conversation || conversation.kind !== kind) {
      context.error(`bad ${kind} "${sanitize(target)}": ${hint}`);
      return;
    }
    if (conversation.kind === "peer" && conversation.peerId === context.node.peerId) {
      context.error(`${sanitize(target)} is this peer: /msg another peer (/peers lists them)`);
      return;
    }
    const previous = context.conversation;
    // At once, even before the message is taken: the lines typed next must go to this peer.
    context.conversation = conversation;
    if (text === "") {
      context.print(`conversation: ${sanitize(conversationName(conversation))}`);
      if (conversation.kind === "peer" && _unheardOf(context.node, conversation.peerId)) {
        const who = sanitize(conversation.peerId);
        context.print(
          `-- nothing is known of ${who} (not seen online, not in your contacts, no history): ` +
            `messages fail unless they are online (/peers lists who is; /add ${who} keeps ` +
            "messages for them until they come)",
        );
      }
      return;
    }
    if (conversation.kind === "scope") return publishTo(context, conversation.scope, text);
    const result = await sendDirect(context, conversation.peerId, text);
    // A mistyped or absent recipient must not capture the lines typed next.
    if (!result || result.ok || result.queued) return;
    if (result.reason !== "unknown_peer" && result.reason !== "offline") return;
    if (context.conversation !== conversation) return; // the user moved on meanwhile
    context.conversation = previous;
    context.print(`conversation stays ${sanitize(conversationName(previous))}`);
  };
}

// True for a name this peer never met: perhaps a typo (sends to it fail rather than wait).
function _unheardOf(node: PeerNode, peerId: string): boolean {
  const folded = peerId.toLowerCase();
  const history = node.history;
  if (!history) return false; // Without a store every send needs the peer online anyway.
  // Names compare without case, as the tracker compares them; history keeps each as written.
  const conversations = history.conversations().filter((summary) =>
    summary.kind === "direct" && summary.conversation.toLowerCase() === folded
  );
  return !node.peers().some((peer) => peer.peerId.toLowerCase() === folded) &&
    !history.contacts().some((contact) => contact.peerId.toLowerCase() === folded) &&
    node.verification(peerId) === undefined &&
    // Our own failed tries (a typo sent once) do not make a name known.
    !conversations.some(({ conversation }) =>
      history.page(conversation, { limit: 50 }).messages.some((m) =>
        !m.outgoing || m.state !== "failed"
      )
    );
}

/** `/conn` and `/rtt`: one table row per connected peer, or "no connections". */
function _connectionTable(headers: string[], row: (peer: PeerInfo) => string[]): Command["run"] {
  return (context) => {
    const connected = context.node.peers().filter((peer) => peer.state === "connected");
    if (connected.length === 0) {
      context.print("no connections");
      return;
    }
    for (const line of formatTable(headers, connected.map(row), context.style)) {
      context.print(line);
    }
  };
}

/** The commands every peer has. */
export function builtinCommands(): Command[] {
  let warnedOfLoss = false;
  return [
    {
      name: "help",
      usage: "/help",
      summary: "list the commands",
      maxArgs: 0,
      run(context) {
        const commands = context.commands.list();
        const width = Math.max(...commands.map((command) => command.usage.length));
        for (const command of commands) {
          context.print(`${command.usage.padEnd(width)}  ${command.summary}`);
        }
        context.print(`${"TEXT".padEnd(width)}  send TEXT to the current conversation`);
        context.print(`${"//TEXT".padEnd(width)}  send /TEXT (a text that starts with /)`);
      },
    },
    {
      name: "peers",
      usage: "/peers [*|#NS]",
      summary: "known peers: state, direction, round trip, security, address",
      maxArgs: 1,
      run(context, args) {
        const scope = args[0] ?? "*";
        if (scope !== "*" && !/^#./.test(scope)) {
          context.error(`bad scope "${sanitize(scope)}": use * or #namespace`);
          return;
        }
        const peers = context.node.peers(scope as Scope);
        if (peers.length === 0) {
          context.print(`no known peers in ${scope}`);
          return;
        }
        for (const line of formatPeerTable(peers, context.style)) context.print(line);
      },
    },
    {
      name: "msg",
      usage: "/msg PEER [TEXT]",
      summary: "send a direct message; PEER becomes the conversation",
      minArgs: 1,
      run: _switchConversation("peer", "use name@namespace or name"),
    },
    {
      name: "pub",
      usage: "/pub *|#NS [TEXT]",
      summary: "publish to every connected peer in scope; the scope becomes the conversation",
      minArgs: 1,
      run: _switchConversation("scope", "use * or #namespace"),
    },
    {
      name: "conn",
      usage: "/conn",
      summary: "open connections: direction, encryption, trust and negotiated features",
      maxArgs: 0,
      run: _connectionTable(
        ["PEER", "DIR", "ADDRESS", "ENCRYPTION", "TRUST", "FEATURES"],
        (peer) => [
          sanitize(peer.peerId),
          peer.direction ?? "-",
          formatAddress(peer.address),
          ...connectionSecurity(peer.security),
          peer.features.map(sanitize).join(",") || "-",
        ],
      ),
    },
    {
      name: "rtt",
      usage: "/rtt",
      summary: "last and smoothed round-trip time per connected peer",
      maxArgs: 0,
      run: _connectionTable(["PEER", "LAST", "SMOOTHED"], (peer) => [
        sanitize(peer.peerId),
        formatMs(peer.rtt?.lastMs),
        formatMs(peer.rtt?.smoothedMs),
      ]),
    },
    {
      name: "reconnect",
      usage: "/reconnect [PEER]",
      summary: "dial failed or stale peers now (all, or one)",
      maxArgs: 1,
      run(context, args) {
        let peerId: string | undefined;
        if (args[0] !== undefined) {
          const target = parseTarget(context.node, args[0]);
          if (!target || target.kind !== "peer") {
            context.error(`bad peer "${sanitize(args[0])}": use name@namespace or name`);
            return;
          }
          peerId = target.peerId;
        }
        const count = context.node.reconnect(peerId);
        context.print(`reconnecting ${formatCount(count, "peer")}`);
      },
    },
    {
      name: "log",
      usage: "/log [debug|info|warn|error]",
      summary: "show or set the log level",
      maxArgs: 1,
      run(context, args) {
        const level = args[0]?.toLowerCase();
        if (level !== undefined) {
          if (!isLogLevel(level)) {
            context.error(
              `bad log level "${sanitize(args[0])}": use one of ${LOG_LEVELS.join(", ")}`,
            );
            return;
          }
          context.log.setLevel(level);
        }
        context.print(`log level: ${context.log.settings.level}`);
      },
    },
    {
      name: "status",
      usage: "/status",
      summary: "this peer, its tracker and counts",
      maxArgs: 0,
      run(context) {
        const status = context.node.status();
        const tracker = status.tracker;
        const lines = [
          `peer: ${sanitize(status.peerId)}`,
          `listen: ${formatAddress(status.listen)}`,
          `public ip: ${status.publicIp ?? "-"}`,
          `tracker: ${formatAddress(tracker.address)} ${
            tracker.reachable ? "reachable" : "unreachable"
          }`,
          `last register: ${_clockOrDash(tracker.lastRegisterAt)}`,
          `last discover: ${_clockOrDash(tracker.lastDiscoverAt)}`,
        ];
        if (tracker.lastError) lines.push(`tracker error: ${sanitize(tracker.lastError)}`);
        lines.push(
          `peers: ${status.peers.known} known, ${status.peers.connected} connected`,
          `uptime: ${_duration(Date.now() - status.startedAt)}`,
          `conversation: ${sanitize(conversationName(context.conversation))}`,
          `log level: ${context.log.settings.level}`,
        );
        const history = context.node.history;
        try {
          if (history) {
            lines.push(
              ...formatStorageStatus(history.storage(), history.queued().length, context.style),
            );
          }
        } catch (error) {
          // The rest of the status is still worth seeing when the store fails.
          lines.push(context.style.error(`history: ${sanitize(describeError(error))}`));
        }
        lines.push(
          ...context.statusLines(),
        );
        for (const line of lines) context.print(line);
      },
    },
    {
      name: "quit",
      usage: "/quit",
      summary: "say BYE to every peer and exit",
      maxArgs: 0,
      run(context) {
        // Queued messages outlive the process only in a saved store: ask once before dropping.
        const history = context.node.history;
        const queued = history?.storage().persistent === false ? history.queued().length : 0;
        if (queued > 0 && !warnedOfLoss) {
          warnedOfLoss = true;
          context.print(context.style.warn(
            `${queued} queued ${queued === 1 ? "message is" : "messages are"} lost if you quit: ` +
              "history is not being saved (/status says why); /quit again to quit anyway",
          ));
          return;
        }
        context.quit();
      },
    },
  ];
}

function _clockOrDash(at: number | undefined): string {
  return at === undefined ? "-" : formatClock(at);
}

function _duration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const parts = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  return `${parts[0]}h${String(parts[1]).padStart(2, "0")}m${String(parts[2]).padStart(2, "0")}s`;
}
