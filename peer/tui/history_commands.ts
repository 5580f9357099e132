/**
 * The terminal UI's commands over the message store: /history, /search, /conversations
 * (/convs), /forget, /queue, /cancel, /contacts, /add and /remove. Without a store (a node that
 * keeps none) each says so instead.
 */
import type { MessageHistory, StoredMessage } from "../api.ts";
import { type Command, type CommandContext, conversationName, parseTarget } from "./commands.ts";
import { formatCount, sanitize } from "./format.ts";
import { quoteValue } from "../../lib/escape.ts";
import {
  formatContacts,
  formatConversations,
  formatQueue,
  formatSearch,
} from "./history_format.ts";
import { type HistoryView, MAX_HISTORY_LINES, RECENT_LINES } from "./history_view.ts";

/** The most hits `/search` shows. */
export const SEARCH_LIMIT = 50;

/** What the history commands use of the running terminal. */
export interface HistoryAccess {
  /** The view over the node's history; undefined when the node keeps none. */
  readonly view?: HistoryView;
  /** Told of a message cancelled here, so that its "failed: cancelled" is not told again. */
  cancelled(id: number): void;
  /** Deletes a conversation, its deletion told by the command only (not again by its event). */
  forget(history: MessageHistory, conversation: string): number | undefined;
}

/** How long `/forget` waits for the same command again, which confirms it. */
export const FORGET_CONFIRM_MS = 30_000;

/** The history, outbox and contact commands. */
export function historyCommands(access: HistoryAccess): Command[] {
  const conversations = _listing((history, style, now) =>
    formatConversations(history.conversations(), style, now)
  );
  // The /forget asked last, which the same command confirms until `until`.
  let confirming: { conversation: string; until: number } | undefined;
  return [
    {
      name: "history",
      usage: "/history [N]",
      summary: `the last N lines of the conversation (default ${RECENT_LINES}, at most ` +
        `${MAX_HISTORY_LINES}); PageUp/PageDown page through it in a terminal`,
      maxArgs: 1,
      run(context, args) {
        const view = access.view;
        if (!_history(context) || !view) return;
        const count = args[0] === undefined ? RECENT_LINES : _count(args[0]);
        if (count === undefined) {
          context.error(
            `bad count "${sanitize(args[0])}": use a number from 1 to ${MAX_HISTORY_LINES}`,
          );
          return;
        }
        const conversation = conversationName(context.conversation);
        if (view.showRecent(conversation, count) === 0) {
          context.print(`no messages in ${sanitize(conversation)} yet`);
        }
      },
    },
    {
      name: "search",
      usage: "/search TEXT",
      summary: "messages holding TEXT (any case) in every conversation, newest first",
      minArgs: 1,
      run: _withHistory((history, context, _args, argText) => {
        // One more than shown, to know whether there are more.
        const hits = history.search(argText, SEARCH_LIMIT + 1);
        _printAll(context, formatSearch(argText, hits, SEARCH_LIMIT, context.style, Date.now()));
      }),
    },
    {
      name: "conversations",
      usage: "/conversations",
      summary: "every conversation with its unread count and last line (also /convs)",
      maxArgs: 0,
      run: conversations,
    },
    {
      name: "convs",
      usage: "/convs",
      summary: "short for /conversations",
      maxArgs: 0,
      run: conversations,
    },
    {
      name: "forget",
      usage: "/forget CONVERSATION",
      summary: "delete a conversation (PEER, #room or *) and its messages from this computer; " +
        "asks again first",
      minArgs: 1,
      maxArgs: 1,
      run: _withHistory((history, context, args) => {
        const target = parseTarget(context.node, args[0]);
        if (!target) {
          context.error(`bad conversation "${sanitize(args[0])}": use PEER, #room or *`);
          return;
        }
        const name = conversationName(target);
        const where = sanitize(name);
        if (!history.conversations().some((summary) => summary.conversation === name)) {
          context.error(`no conversation ${where} (/conversations lists them)`);
          return;
        }
        const now = Date.now();
        if (confirming?.conversation !== name || now > confirming.until) {
          confirming = { conversation: name, until: now + FORGET_CONFIRM_MS };
          const here = (message: StoredMessage) => message.conversation === name;
          const queued = history.queued().filter(here).length;
          const waiting = history.waiting().filter(here).length;
          const unsent = queued > 0
            ? `, with ${formatCount(queued, "message")} queued (not sent again)`
            : waiting > 0
            ? `, with ${formatCount(waiting, "message")} waiting for members (not sent to them)`
            : "";
          const others = target.kind === "peer"
            ? `${where} keeps theirs`
            : "the others keep theirs";
          context.print(
            `this deletes ${where} and every message in it from this computer${unsent}; ` +
              `${others}. /forget ${sanitize(args[0])} again within ` +
              `${FORGET_CONFIRM_MS / 1000} s to confirm`,
          );
          return;
        }
        confirming = undefined;
        const deleted = access.forget(history, name);
        context.print(
          `deleted the conversation ${where} (${formatCount(deleted ?? 0, "message")})`,
        );
      }),
    },
    {
      name: "queue",
      usage: "/queue",
      summary:
        "the outbox: messages waiting for their peer, then room messages waiting for members",
      maxArgs: 0,
      run: _listing((history, style, now) =>
        formatQueue(history.queued(), history.waiting(), style, now)
      ),
    },
    {
      name: "cancel",
      usage: "/cancel ID",
      summary:
        "cancel a queued message, or stop a room message waiting for members (/queue lists ids)",
      minArgs: 1,
      maxArgs: 1,
      run: _withHistory((history, context, args) => {
        const id = /^\d{1,15}$/.test(args[0]) ? Number(args[0]) : undefined;
        if (id === undefined) {
          context.error(`bad id "${sanitize(args[0])}": use a number that /queue lists`);
          return;
        }
        // Who a room message waits for, before it stops (the first page of waiting ones).
        const waited = history.waiting().find((message) => message.id === id)?.pendingFor ?? [];
        // Told before the store answers: its "failed: cancelled" event comes at once.
        access.cancelled(id);
        const cancelled = history.cancel(id);
        if (!cancelled) {
          context.error(`no queued or waiting message has id ${id} (/queue lists them)`);
          return;
        }
        const where = sanitize(cancelled.conversation);
        if (cancelled.state !== "failed") {
          const members = waited.map((member) => quoteValue(member, ","));
          const who = members.length > 0 ? members.join(", ") : "the members who were offline";
          context.print(`message ${id} in ${where} stopped waiting: ${who} will not get it`);
          return;
        }
        context.print(`cancelled message ${id} to ${where}: it will not be sent`);
      }),
    },
    {
      name: "contacts",
      usage: "/contacts",
      summary: "your contacts: online or not, last seen, address, key fingerprint, verified",
      maxArgs: 0,
      run: _listing((history, style, now) => formatContacts(history.contacts(), style, now)),
    },
    {
      name: "add",
      usage: "/add PEER",
      summary: "add PEER to your contacts (a bare name means name@your-namespace)",
      minArgs: 1,
      maxArgs: 1,
      run: _withHistory((history, context, args) => {
        const peerId = _peerId(context, args[0]);
        if (peerId === undefined) return;
        if (peerId.toLowerCase() === context.node.peerId.toLowerCase()) {
          context.error(`${sanitize(peerId)} is this peer: /add another peer`);
          return;
        }
        const known = history.contacts().some((contact) => contact.peerId === peerId);
        history.addContact(peerId);
        const who = sanitize(peerId);
        context.print(
          known ? `${who} is already in your contacts` : `added ${who} to your contacts`,
        );
      }),
    },
    {
      name: "remove",
      usage: "/remove PEER",
      summary: "remove PEER from your contacts (the conversation stays)",
      minArgs: 1,
      maxArgs: 1,
      run: _withHistory((history, context, args) => {
        const peerId = _peerId(context, args[0]);
        if (peerId === undefined) return;
        const who = sanitize(peerId);
        if (history.removeContact(peerId)) context.print(`removed ${who} from your contacts`);
        else context.error(`${who} is not in your contacts (/contacts lists them)`);
      }),
    },
  ];
}

// A command's run over the store; without one it says so.
function _withHistory(
  run: (history: MessageHistory, context: CommandContext, args: string[], argText: string) => void,
): Command["run"] {
  return (context, args, argText) => {
    const history = _history(context);
    if (history) run(history, context, args, argText);
  };
}

// A command that prints a table of the store (conversations, outbox, contacts).
function _listing(
  format: (history: MessageHistory, style: CommandContext["style"], now: number) => string[],
): Command["run"] {
  return _withHistory((history, context) =>
    _printAll(context, format(history, context.style, Date.now()))
  );
}

function _history(context: CommandContext): MessageHistory | undefined {
  const history = context.node.history;
  if (!history) {
    context.error("this peer keeps no message store: no history, outbox or contacts");
  }
  return history;
}

function _peerId(context: CommandContext, given: string): string | undefined {
  const target = parseTarget(context.node, given);
  if (target?.kind === "peer") return target.peerId;
  context.error(`bad peer "${sanitize(given)}": use name@namespace or name`);
  return undefined;
}

function _count(given: string): number | undefined {
  if (!/^\d{1,4}$/.test(given)) return undefined;
  const count = Number(given);
  return count >= 1 && count <= MAX_HISTORY_LINES ? count : undefined;
}

function _printAll(context: CommandContext, lines: readonly string[]): void {
  for (const line of lines) context.print(line);
}
