/**
 * How the terminal UI writes things: events, tables, colours. Pure: every function returns
 * text. Without colour the output is plain, stable lines that scripts can parse (the formats
 * are listed in docs and fixed by tests).
 */
import type { NodeEvent, PeerInfo, PeerSecurity } from "../api.ts";
import { escapeText as sanitize, quoteValue } from "../../lib/escape.ts";
import type { Address } from "../../lib/transport.ts";
import { formatFields, type LogRecord } from "../../lib/log.ts";

/** Colour helpers; all return the text unchanged when colour is off. */
export interface Style {
  readonly color: boolean;
  peer(peerId: string, text?: string): string;
  dim(text: string): string;
  bold(text: string): string;
  error(text: string): string;
  warn(text: string): string;
  good(text: string): string;
}

/** Colours for sender names; bright variants so they read on dark and light backgrounds. */
const PEER_COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** Makes the colour helpers. */
export function createStyle(color: boolean): Style {
  const sgr = (code: number | string, text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
  return {
    color,
    peer: (peerId, text = peerId) => sgr(peerColorCode(peerId), text),
    dim: (text) => sgr(2, text),
    bold: (text) => sgr(1, text),
    error: (text) => sgr(31, text),
    warn: (text) => sgr(33, text),
    good: (text) => sgr(32, text),
  };
}

/** The stable ANSI colour of a peer: FNV-1a hash of its id into the palette. */
export function peerColorCode(peerId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(peerId)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return PEER_COLORS[hash % PEER_COLORS.length];
}

/** Free text from the network made safe to print (the one escaping rule: lib/escape.ts). */
export { escapeText as sanitize } from "../../lib/escape.ts";

/**
 * A sender or scope as one token that scripts can cut out of `HH:MM:SS [WHERE] FROM: TEXT`:
 * bare when it holds no white space, quote, colon, bracket or invisible character, else a JSON
 * string literal (README, "The terminal UI").
 */
export function formatPeerToken(peerId: string): string {
  return quoteValue(peerId, ":[]");
}

/** `1 message`, `2 messages`. */
export function formatCount(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** `HH:MM:SS` in local time. */
export function formatClock(at: number): string {
  const date = new Date(at);
  return [date.getHours(), date.getMinutes(), date.getSeconds()]
    .map((part) => String(part).padStart(2, "0"))
    .join(":");
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatAddress(address: Address | undefined): string {
  if (!address) return "-";
  // A tracker's DISCOVER answer (and the contacts kept from it) could hold any text.
  const hostname = sanitize(address.hostname);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `${host}:${address.port}`;
}

/** Milliseconds for people: one decimal below 10 ms, whole numbers above. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  return ms < 10 ? `${Math.round(ms * 10) / 10}ms` : `${Math.round(ms)}ms`;
}

/**
 * Events other than security notices (security_format.ts writes those) and store events (the
 * terminal shows contacts on /contacts).
 */
export type PlainEvent = Exclude<
  NodeEvent,
  | { type: "security" }
  | { type: "message_state" }
  | { type: "message_added" }
  | {
    type: "storage";
  }
  | { type: "contact" }
  | { type: "conversation_read" }
>;

/** One line for an event: a chat message or a notice. */
export function formatEvent(event: PlainEvent, style: Style): string {
  const time = style.dim(formatClock(event.at));
  switch (event.type) {
    case "message": {
      const from = formatPeerToken(event.from);
      const where = event.kind === "direct" ? "[dm]" : `[${formatPeerToken(event.to)}]`;
      return `${time} ${style.bold(where)} ${style.peer(event.from, from)}: ${
        sanitize(event.text)
      }`;
    }
    case "peer": {
      const reason = event.reason ? `: ${sanitize(event.reason)}` : "";
      const state = event.state === "connected" ? style.good(event.state) : event.state;
      const text = `-- peer ${
        style.peer(event.peerId, formatPeerToken(event.peerId))
      } ${state}${reason}`;
      return `${time} ${event.state === "failed" ? style.warn(text) : text}`;
    }
    case "name_in_use":
      return `${time} ${
        style.error(
          `-- another peer already uses the name ${sanitize(event.peerId)} (at ${
            formatAddress(event.address)
          }): the others refuse our connections; /quit and start again with another --name`,
        )
      }`;
    case "conversation_forgotten":
      return `${time} -- the conversation ${formatPeerToken(event.conversation)} was deleted (${
        formatCount(event.deleted, "message")
      })`;
    case "tracker": {
      // Reachable, but it said no: not news of the connection.
      if (event.refused) {
        return `${time} ${
          style.warn(`-- the tracker refused our REGISTER: ${sanitize(event.refused)}`)
        }`;
      }
      const detail = event.detail ? `: ${sanitize(event.detail)}` : "";
      const text = `-- tracker ${event.reachable ? "reachable" : "unreachable"}${detail}`;
      return `${time} ${event.reachable ? text : style.warn(text)}`;
    }
  }
}

/**
 * A log record as a notice line: `HH:MM:SS -- LEVEL [Component] message key=value`, the same
 * shape as the other notices (the logger's own lines carry an ISO date for files).
 */
export function formatLogRecord(record: LogRecord): string {
  const tag = record.component ? ` [${record.component}]` : "";
  const fields = record.fields && Object.keys(record.fields).length > 0
    ? " " + formatFields(record.fields)
    : "";
  return `${formatClock(record.time)} -- ${record.level}${tag} ${record.message}${fields}`;
}

/**
 * Lays out rows in columns separated by two spaces. Cells never contain spaces (empty ones
 * are "-"), so scripts can split lines on white space.
 */
export function formatTable(header: string[], rows: string[][], style: Style): string[] {
  // Blanks would split a column for a script (awk, cut): they become no-break spaces, which read
  // the same. The last column keeps them (a file name must read as it is).
  const last = header.length - 1;
  const cells = rows.map((row) =>
    row.map((cell, column) =>
      cell === "" ? "-" : column === last ? cell : cell.replace(/[ \t\r\n\v\f]/g, "\u00a0")
    )
  );
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => [...row[column]].length))
  );
  const line = (row: string[]) =>
    row.map((cell, column) =>
      column === row.length - 1 ? cell : cell + " ".repeat(widths[column] - [...cell].length)
    ).join("  ");
  return [style.bold(line(header)), ...cells.map(line)];
}

/** A peer's trust in one word, with `+account` when the tracker vouches for its key. */
export function securityLabel(security: PeerSecurity | undefined): string {
  if (!security) return "-";
  const trust = security.trust === "key_changed" ? "key-changed" : security.trust;
  return security.accountBound ? `${trust}+account` : trust;
}

/** The `/peers` table. */
export function formatPeerTable(peers: PeerInfo[], style: Style): string[] {
  return formatTable(
    ["PEER", "STATE", "DIR", "RTT", "SECURITY", "ADDRESS"],
    peers.map((peer) => [
      sanitize(peer.peerId),
      peer.state,
      peer.direction ?? "-",
      formatMs(peer.rtt?.smoothedMs),
      securityLabel(peer.security),
      formatAddress(peer.address),
    ]),
    style,
  );
}
