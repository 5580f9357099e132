/**
 * How the terminal UI writes stored messages: history lines with the marks of your own
 * messages, search hits, the conversation list, the outbox, the contact list, the store's
 * status and the notices for state changes. Pure, like format.ts: every function returns text,
 * and without colour the lines are plain and stable.
 */
import {
  type Contact,
  type ConversationSummary,
  MAX_WAITING_LISTED,
  type SendResult,
  type StorageStatus,
  type StoredMessage,
} from "../api.ts";
import {
  formatAddress,
  formatClock,
  formatPeerToken,
  formatTable,
  sanitize,
  type Style,
} from "./format.ts";
import { quoteValue } from "../../lib/escape.ts";

/** How much of a message text a notice or a list quotes. */
export const QUOTE_CHARS = 40;

/** `HH:MM:SS` for a time of the same local day as `now`, else `YYYY-MM-DD HH:MM:SS`. */
export function formatStamp(at: number, now: number): string {
  return _sameDay(at, now) ? formatClock(at) : `${_date(at)} ${formatClock(at)}`;
}

/** `HH:MM:SS` for a time of today, else the date alone (a table cell, without spaces). */
export function formatDay(at: number | undefined, now: number): string {
  if (at === undefined) return "-";
  return _sameDay(at, now) ? formatClock(at) : _date(at);
}

/**
 * The mark beside one of your own messages: `·` queued, `✓` sent, `✓✓` delivered, `✓✓ read`
 * (in the "good" colour), `✗ REASON` failed; a room message some members still wait for says
 * how many. Empty for a received message.
 */
export function stateMark(message: StoredMessage, style: Style): string {
  if (!message.outgoing) return "";
  const waiting = message.pendingFor?.length ? ` (${message.pendingFor.length} waiting)` : "";
  switch (message.state) {
    case "queued":
      return `·${waiting}`;
    case "sent":
      return `✓${waiting}`;
    case "delivered":
      return `✓✓${waiting}`;
    case "read":
      return style.good("✓✓ read");
    case "failed":
      return style.error(`✗ ${sanitize(message.reason ?? "failed")}`);
  }
}

/**
 * A stored message as a chat line, the shape of a live one (`HH:MM:SS [dm] FROM: TEXT`, or
 * `[#room]`), with the date when it is older than today and, after your own text, two spaces
 * and its mark. `where: "conversation"` names the conversation instead of `dm` (search hits
 * come from every conversation).
 */
export function formatStoredLine(
  message: StoredMessage,
  style: Style,
  now: number,
  where: "dm" | "conversation" = "dm",
): string {
  const time = style.dim(formatStamp(message.at, now));
  const place = message.kind === "direct" && where === "dm"
    ? "[dm]"
    : `[${formatPeerToken(message.conversation)}]`;
  const from = style.peer(message.from, formatPeerToken(message.from));
  const mark = stateMark(message, style);
  return `${time} ${style.bold(place)} ${from}: ${sanitize(message.text)}${
    mark === "" ? "" : `  ${mark}`
  }`;
}

/** The start of a message text, made printable, at most `max` characters and a `…`. */
export function quoteStart(text: string, max = QUOTE_CHARS): string {
  const chars = [...sanitize(text)];
  return chars.length <= max ? chars.join("") : chars.slice(0, max).join("") + "…";
}

/** The `/search` lines: a header, then one line per hit, newest first. */
export function formatSearch(
  text: string,
  hits: readonly StoredMessage[],
  limit: number,
  style: Style,
  now: number,
): string[] {
  const what = `"${sanitize(text)}"`;
  if (hits.length === 0) return [`no messages hold ${what}`];
  if (hits.length > limit) {
    return [
      `more than ${limit} messages hold ${what}; the newest ${limit}, newest first:`,
      ...hits.slice(0, limit).map((hit) => formatStoredLine(hit, style, now, "conversation")),
    ];
  }
  const count = hits.length === 1 ? "1 message holds" : `${hits.length} messages hold`;
  return [
    `${count} ${what}, newest first:`,
    ...hits.map((hit) => formatStoredLine(hit, style, now, "conversation")),
  ];
}

/** The `/conversations` lines: a summary of unread messages, then one row per conversation. */
export function formatConversations(
  summaries: readonly ConversationSummary[],
  style: Style,
  now: number,
): string[] {
  if (summaries.length === 0) return ["no conversations yet"];
  const unread = summaries.filter((summary) => summary.unread > 0);
  const total = unread.reduce((sum, summary) => sum + summary.unread, 0);
  const noun = summaries.length === 1 ? "conversation" : "conversations";
  const header = total === 0
    ? `${summaries.length} ${noun}, nothing unread`
    : `${summaries.length} ${noun}, ${total} unread in ${unread.length}`;
  const rows = summaries.map((summary) => [
    sanitize(summary.conversation),
    summary.unread > 0 ? String(summary.unread) : "-",
  ]);
  const lasts = summaries.map((summary) => {
    const last = summary.last;
    const mark = stateMark(last, style);
    return `${formatStamp(last.at, now)} ${formatPeerToken(last.from)}: ${quoteStart(last.text)}${
      mark === "" ? "" : `  ${mark}`
    }`;
  });
  return [header, ..._tableWithText(["CONVERSATION", "UNREAD"], "LAST", rows, lasts, style)];
}

/** The `/queue` lines: the outbox, oldest first, and how to cancel. */
export function formatQueue(
  queued: readonly StoredMessage[],
  waiting: readonly StoredMessage[],
  style: Style,
  now: number,
): string[] {
  if (queued.length === 0 && waiting.length === 0) {
    return ["the outbox is empty: nothing waits to be delivered"];
  }
  const lines: string[] = [];
  if (queued.length > 0) {
    const rows = queued.map((message) => [
      String(message.id),
      sanitize(message.conversation),
      formatAge(now - message.at),
    ]);
    const texts = queued.map((message) => quoteStart(message.text));
    lines.push(
      ..._tableWithText(["ID", "TO", "AGE"], "TEXT", rows, texts, style),
      "they go out by themselves when the peer is back; /cancel ID cancels one",
    );
  }
  if (waiting.length > 0) {
    const rows = waiting.map((message) => [
      String(message.id),
      sanitize(message.conversation),
      (message.pendingFor ?? []).map((member) => quoteValue(member, ",")).join(","),
      formatAge(now - message.at),
    ]);
    const texts = waiting.map((message) => quoteStart(message.text));
    lines.push(
      ..._tableWithText(["ID", "ROOM", "WAITING", "AGE"], "TEXT", rows, texts, style),
      "room messages: each member who was offline gets it when back; /cancel ID stops waiting" +
        (waiting.length >= MAX_WAITING_LISTED
          ? ` (the oldest ${MAX_WAITING_LISTED} are listed)`
          : ""),
    );
  }
  return lines;
}

/** `45s`, `12m`, `5h`, `3d`: how long ago, roughly. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** The `/contacts` lines: a count, then the table. */
export function formatContacts(contacts: readonly Contact[], style: Style, now: number): string[] {
  if (contacts.length === 0) return ["no contacts yet: /add PEER adds one"];
  const online = contacts.filter((contact) => contact.online).length;
  const noun = contacts.length === 1 ? "contact" : "contacts";
  return [
    `${contacts.length} ${noun}, ${online} online`,
    ...formatTable(
      ["PEER", "STATE", "LAST_SEEN", "ADDRESS", "FINGERPRINT", "VERIFIED"],
      contacts.map((contact) => [
        sanitize(contact.peerId),
        contact.online ? "online" : "offline",
        contact.online ? "now" : formatDay(contact.lastSeenAt, now),
        formatAddress(contact.address),
        shortFingerprint(contact.fingerprint),
        contact.trust === "key_changed" ? "key-changed" : contact.verified ? "yes" : "no",
      ]),
      style,
    ),
  ];
}

/** The first two groups of a fingerprint, enough to tell keys apart at a glance (/verify has all). */
export function shortFingerprint(fingerprint: string | undefined): string {
  if (fingerprint === undefined) return "-";
  const groups = sanitize(fingerprint).split(/\s+/).filter((group) => group !== "");
  return groups.length > 2 ? `${groups.slice(0, 2).join(" ")} …` : groups.join(" ");
}

/** What `/status` says about history: where it is saved, or why not. */
export function formatStorageStatus(status: StorageStatus, queued: number, style: Style): string[] {
  const lines = status.persistent
    ? [`history: saved in ${sanitize(status.path ?? "-")}`]
    : [style.warn(`history: not saved: ${sanitize(status.problem ?? "kept in memory only")}`)];
  if (status.movedAside !== undefined) {
    lines.push(
      style.warn(`history: a damaged store was moved aside to ${sanitize(status.movedAside)}`),
    );
  }
  if (status.logMovedAside !== undefined) {
    lines.push(style.warn(
      `history: a damaged message log was moved aside to ${sanitize(status.logMovedAside)}`,
    ));
  }
  lines.push(`outbox: ${queued} queued`);
  return lines;
}

/** The warnings for a store that stopped saving, or was moved aside (`HH:MM:SS !! ...`). */
export function formatStorageWarnings(status: StorageStatus, style: Style, at: number): string[] {
  const time = style.dim(formatClock(at));
  const lines: string[] = [];
  const movedAside = (what: string, to: string, after: string) =>
    lines.push(
      `${time} ${
        style.error(`!! the ${what} was damaged; it was moved aside to ${sanitize(to)}${after}`)
      }`,
    );
  if (status.movedAside !== undefined) {
    movedAside(
      "message store",
      status.movedAside,
      " and a new one started (the old history is in that file)",
    );
  }
  if (status.logMovedAside !== undefined) {
    movedAside(
      "message log",
      status.logMovedAside,
      ": the messages of its damaged lines are only in that file, the others are in history",
    );
  }
  if (status.problem !== undefined) {
    lines.push(
      `${time} ${
        style.warn(
          `!! history is not being saved: ${
            sanitize(status.problem)
          }; the chat goes on, messages are kept until you quit`,
        )
      }`,
    );
  } else if (!status.persistent) {
    // Chosen (--no-history): said once, calmly.
    lines.push(
      `${time} ${style.dim("-- history is kept in memory only: it is gone when you quit")}`,
    );
  }
  return lines;
}

/**
 * Why a send was queued, in words: `offline`, `not known to the tracker now`, `not connected`
 * (also after a restart, before anything was tried), `no answer in time`, `unreachable`.
 */
export function queuedReason(reason: Extract<SendResult, { ok: false }>["reason"]): string {
  switch (reason) {
    case "offline":
      return "offline";
    case "not_connected":
      return "not connected";
    case "unknown_peer":
      return "not known to the tracker now";
    case "timeout":
      return "no answer in time";
    default:
      return "unreachable";
  }
}

/** The line for a send kept in the outbox: where, why, and how to list or cancel it. */
export function formatQueuedSend(
  peerId: string,
  result: Extract<SendResult, { ok: false }>,
): string {
  const cancel = result.id === undefined ? "/cancel ID" : `/cancel ${result.id}`;
  return `queued for ${sanitize(peerId)} (${queuedReason(result.reason)}): it goes out by itself ` +
    `when they are back (/queue lists the outbox, ${cancel} cancels it)`;
}

/** `-- ✓✓ delivered to PEER: "text"` for a message delivered after the send call ended. */
export function formatDelivered(message: StoredMessage, style: Style, at: number): string {
  return `${style.dim(formatClock(at))} -- ✓✓ delivered to ${sanitize(message.conversation)}: "${
    quoteStart(message.text)
  }"`;
}

/**
 * `-- ✓✓ delivered to PEER in #room: "text"`: a member who was offline got room messages (the
 * newest quoted, and how many earlier; how many members it still waits for).
 */
export function formatMemberReached(
  messages: readonly StoredMessage[],
  member: string,
  style: Style,
  at: number,
): string {
  const newest = messages.reduce((a, b) => (b.id > a.id ? b : a));
  const more = messages.length > 1 ? ` and ${messages.length - 1} earlier` : "";
  const waiting = newest.pendingFor?.length ?? 0;
  const still = waiting > 0 ? ` (${waiting} still waiting)` : "";
  return `${style.dim(formatClock(at))} -- ✓✓ delivered to ${formatPeerToken(member)} in ${
    sanitize(newest.conversation)
  }: "${quoteStart(newest.text)}"${more}${still}`;
}

/** `-- ✓✓ read by PEER: "text"` (and how many earlier ones), dim: the least urgent news. */
export function formatRead(messages: readonly StoredMessage[], style: Style, at: number): string {
  const newest = messages.reduce((a, b) => (b.id > a.id ? b : a));
  const more = messages.length > 1 ? ` and ${messages.length - 1} earlier` : "";
  const where = newest.kind === "direct"
    ? `read by ${sanitize(newest.conversation)}`
    : `read in ${sanitize(newest.conversation)}`;
  return style.dim(`${formatClock(at)} -- ✓✓ ${where}: "${quoteStart(newest.text)}"${more}`);
}

/** `-- ✗ not delivered to PEER (REASON): "text"`: failures are always told. */
export function formatFailed(message: StoredMessage, style: Style, at: number): string {
  const to = message.kind === "direct"
    ? sanitize(message.conversation)
    : `everyone in ${sanitize(message.conversation)}`;
  return `${style.dim(formatClock(at))} ${
    style.warn(
      `-- ✗ not delivered to ${to} (${sanitize(message.reason ?? "failed")}): "${
        quoteStart(message.text)
      }"`,
    )
  }`;
}

/**
 * At start: the other conversations with unread messages, the most unread first (five at most),
 * or undefined when there are none.
 */
export function formatUnreadElsewhere(
  summaries: readonly ConversationSummary[],
  current: string,
  style: Style,
): string | undefined {
  const unread = summaries.filter((summary) =>
    summary.unread > 0 && summary.conversation !== current
  )
    .sort((a, b) => b.unread - a.unread);
  if (unread.length === 0) return undefined;
  // As a token, as history lines write names: spaces and commas in a name cannot fake entries.
  const shown = unread.slice(0, 5).map((summary) =>
    `${quoteValue(summary.conversation, ",")} ${summary.unread}`
  );
  const more = unread.length > 5 ? ` and ${unread.length - 5} more` : "";
  return style.dim(`-- unread elsewhere: ${shown.join(", ")}${more} (/conversations) --`);
}

/** The notice before the first direct message of someone not in the contacts. */
export function formatStranger(peerId: string, style: Style, at: number): string {
  const who = sanitize(peerId);
  return `${style.dim(formatClock(at))} -- ${who} is not in your contacts (/add ${who} adds them)`;
}

// Columns of cells without spaces, then a last column of free text (a message start).
function _tableWithText(
  header: string[],
  lastTitle: string,
  rows: string[][],
  texts: string[],
  style: Style,
): string[] {
  const cells = rows.map((row) => row.map((cell) => cell === "" ? "-" : cell.replace(/\s/g, "_")));
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => [...row[column]].length))
  );
  const line = (row: string[], text: string) =>
    row.map((cell, column) => cell + " ".repeat(widths[column] - [...cell].length)).join("  ") +
    "  " + text;
  return [style.bold(line(header, lastTitle)), ...cells.map((row, i) => line(row, texts[i]))];
}

function _sameDay(a: number, b: number): boolean {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() &&
    x.getDate() === y.getDate();
}

function _date(at: number): string {
  const date = new Date(at);
  return [date.getFullYear(), date.getMonth() + 1, date.getDate()]
    .map((part, index) => String(part).padStart(index === 0 ? 4 : 2, "0"))
    .join("-");
}
