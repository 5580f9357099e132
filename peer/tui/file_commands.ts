/**
 * The terminal's file commands (/send, /accept, /decline, /transfers, /stop) and the notices
 * of offers, progress and outcomes. Transfer ids are shown by their first 6 characters; any
 * unique start of one works.
 */
import { type Clock, systemClock, type TimerId } from "../../lib/clock.ts";
import { describeError, P2pError } from "../../lib/errors.ts";
import type { FileTransfers, Scope, TransferEvent, TransferInfo } from "../api.ts";
import {
  type Command,
  type CommandContext,
  parseTarget,
  peerMeant,
  splitFirstWord,
} from "./commands.ts";
import { formatClock, formatTable, sanitize, type Style } from "./format.ts";
import type { Activity } from "./terminal.ts";

/** Characters of a transfer id the terminal shows. */
const SHORT_ID = 6;

/** A transfer without progress for this long shows as waiting (its peer is away or stalled). */
const STALLED_MS = 3_000;

/** Progress is told at these fractions of a transfer (the API has it finer). */
const PROGRESS_STEPS = [0.25, 0.5, 0.75];

/** What `/send #ROOM` needs of the accounts' rooms. */
export interface RoomDirectory {
  /** Peer ids of the members online now. */
  online(room: string): Promise<string[]>;
  /** Account names of every member (undefined: not a room we know). */
  members(room: string): readonly string[] | undefined;
}

const NO_ROOMS: RoomDirectory = { online: () => Promise.resolve([]), members: () => undefined };

/**
 * The file commands over `files`. `/send #ROOM` goes to the connected peers of that namespace
 * and members of that room, and waits for the members offline (offered when they connect).
 */
export function fileCommands(files: FileTransfers, rooms: RoomDirectory = NO_ROOMS): Command[] {
  const decide = (verb: "accept" | "decline" | "stop"): Command["run"] => async (context, args) => {
    const actionable = verb === "stop"
      ? (t: TransferInfo) => ["offered", "sending", "receiving"].includes(t.state)
      : (t: TransferInfo) => t.direction === "in" && t.state === "offered";
    const transfer = _find(context, files, args[0], actionable);
    if (!transfer) return;
    try {
      // What follows is told by the transfer's own notices.
      if (verb === "accept") await files.accept(transfer.id);
      else if (verb === "decline") files.decline(transfer.id);
      else await files.cancel(transfer.id);
    } catch (error) {
      context.error(describeError(error));
    }
  };
  return [
    {
      name: "send",
      usage: "/send PEER|#ROOM PATH",
      summary:
        "offer the file at PATH to PEER (or to each member of #ROOM; offline ones when back)",
      minArgs: 2,
      async run(context, _args, argText) {
        const [target, typed] = splitFirstWord(argText);
        const path = _typedPath(typed);
        const conversation = parseTarget(context.node, target);
        if (!conversation) {
          context.error(`bad peer "${sanitize(target)}": use name@namespace, name or #room`);
          return;
        }
        const peers = conversation.kind === "peer"
          ? [conversation.peerId]
          : await _onlineIn(context, conversation.scope, rooms);
        const later = conversation.kind === "scope"
          ? _offlineMembers(context, conversation.scope, rooms, peers)
          : [];
        if (peers.length === 0 && later.length === 0) {
          context.error(`nobody in ${sanitize(target)} is online to send to`);
          return;
        }
        for (
          const [peerId, when] of [
            ...peers.map((p) => [p, "now"] as const),
            ...later.map((p) => [p, "later"] as const),
          ]
        ) {
          try {
            const transfer = await files.send(peerId, path, { later: when === "later" });
            const wait = when === "later" ? ", offered when they are back" : "";
            context.print(
              `offered ${_what(transfer)} to ${sanitize(peerId)}${wait} (/stop ` +
                `${_short(transfer)} cancels it)`,
            );
          } catch (error) {
            context.error(
              `not sent to ${sanitize(peerId)}: ${_whyNotSent(context, peerId, error)}`,
            );
          }
        }
      },
    },
    {
      name: "accept",
      usage: "/accept ID",
      summary: "accept a file offered to you (/transfers lists them)",
      minArgs: 1,
      maxArgs: 1,
      run: decide("accept"),
    },
    {
      name: "decline",
      usage: "/decline ID",
      summary: "decline a file offered to you",
      minArgs: 1,
      maxArgs: 1,
      run: decide("decline"),
    },
    {
      name: "stop",
      usage: "/stop ID",
      summary: "cancel a file transfer, either way",
      minArgs: 1,
      maxArgs: 1,
      run: decide("stop"),
    },
    {
      name: "transfers",
      usage: "/transfers",
      summary: "file transfers: id, way, peer, size, state, progress, name",
      maxArgs: 0,
      run(context) {
        const all = files.list();
        if (all.length === 0) {
          context.print("no file transfers");
          return;
        }
        const rows = all.map((t) => [
          _short(t),
          t.direction === "in" ? "from" : "to",
          sanitize(t.peer),
          formatBytes(t.size),
          t.reason ? `${t.state} (${t.reason})` : t.state,
          _percent(t),
          _nameOf(t),
        ]);
        const header = ["ID", "WAY", "PEER", "SIZE", "STATE", "DONE", "NAME"];
        for (const line of formatTable(header, rows, context.style)) context.print(line);
      },
    },
  ];
}

/**
 * Prints offers and how each transfer ended; progress at each quarter too when there is no
 * prompt to show it (a pipe).
 */
export function fileNotices(files: FileTransfers): (context: CommandContext) => () => void {
  return (context) => {
    const told = new Map<string, number>();
    return files.subscribe((event) => {
      if (event.type === "transfer_progress" && context.interactive) return;
      const line = formatTransferEvent(event, context.style, told);
      if (line !== undefined) context.print(line);
    });
  };
}

/**
 * The transfers under way as a progress bar before the prompt, redrawn with each progress
 * event: `[photo.jpg ████░░░░ 52% 81.2 MB/s 3s]`, or the total of several.
 */
export function fileActivity(files: FileTransfers, clock: Clock = systemClock): Activity {
  const moving = new Map<string, { transfer: TransferInfo; movedAt: number }>();
  const note = (event: TransferEvent) => {
    const t = event.transfer;
    if (t.state === "sending" || t.state === "receiving") {
      // Only bytes that moved count as progress (not an offer or an accept said again).
      const known = moving.get(t.id);
      const movedAt = known?.transfer.bytes === t.bytes ? known.movedAt : clock.now();
      moving.set(t.id, { transfer: t, movedAt });
    } else moving.delete(t.id);
  };
  return {
    text() {
      const all = [...moving.values()].map((entry) => entry.transfer);
      if (all.length === 0) return "";
      const size = all.reduce((sum, t) => sum + t.size, 0);
      const bytes = all.reduce((sum, t) => sum + t.bytes, 0);
      // A rate is only as fresh as the last progress: a stalled transfer (its peer went away,
      // and it resumes when they are back) says it waits rather than show a frozen speed.
      const now = clock.now();
      const live = [...moving.values()].filter((entry) => now - entry.movedAt < STALLED_MS);
      const rate = live.reduce((sum, entry) => sum + (entry.transfer.rate ?? 0), 0);
      const what = all.length === 1 ? _ellipsis(sanitize(all[0].name), 20) : `${all.length} files`;
      const fraction = size === 0 ? 1 : bytes / size;
      const speed = live.length === 0
        ? " waiting"
        : rate > 0
        ? ` ${formatBytes(rate)}/s ${_duration((size - bytes) / rate)}`
        : "";
      return `[${what} ${_bar(fraction)} ${Math.floor(fraction * 100)}%${speed}]`;
    },
    subscribe(changed) {
      // Redrawn once the transfers have been quiet long enough to count as stalled.
      let timer: TimerId | undefined;
      const watch = () => {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = moving.size === 0 ? undefined : clock.setTimeout(() => {
          timer = undefined;
          changed();
        }, STALLED_MS);
      };
      const stop = files.subscribe((event) => {
        note(event);
        changed();
        watch();
      });
      return () => {
        stop();
        if (timer !== undefined) clock.clearTimeout(timer);
      };
    },
  };
}

/** The notice line for a transfer event, or undefined when there is nothing to say. */
export function formatTransferEvent(
  event: TransferEvent,
  style: Style,
  told: Map<string, number>,
): string | undefined {
  const t = event.transfer;
  const at = style.dim(formatClock(event.at));
  const who = sanitize(t.peer);
  const id = _short(t);
  switch (event.type) {
    case "transfer_offer":
      return `${at} -- ${who} offers ${_what(t)}: /accept ${id} or /decline ${id}`;
    case "transfer_progress": {
      const step = PROGRESS_STEPS.findLast((fraction) => t.bytes >= fraction * t.size);
      if (step === undefined || (told.get(t.id) ?? 0) >= step) return undefined;
      told.set(t.id, step);
      const rate = t.rate ? `, ${formatBytes(t.rate)}/s` : "";
      const left = t.rate ? `, ${_duration((t.size - t.bytes) / t.rate)} left` : "";
      return style.dim(`${at} -- ${sanitize(t.name)} ${_percent(t)}${rate}${left}`);
    }
    case "transfer_state":
      told.delete(t.id);
      return _stateLine(t, at, who, style);
  }
}

/** Bytes as people read them: 512 B, 2.1 MB, 1.0 GB (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB", "PB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function _stateLine(t: TransferInfo, at: string, who: string, style: Style): string | undefined {
  const name = sanitize(t.name);
  const reason = sanitize(t.reason ?? "");
  switch (t.state) {
    // With bytes already there, the transfer resumes (after a drop or a restart).
    case "sending":
      return t.bytes > 0
        ? `${at} -- resuming ${name} to ${who} at ${_percent(t)}`
        : `${at} -- ${who} accepted ${name}: sending`;
    case "receiving":
      return t.bytes > 0
        ? `${at} -- resuming ${name} from ${who} at ${_percent(t)}`
        : `${at} -- receiving ${_what(t)} from ${who} (/stop ${_short(t)} cancels it)`;
    case "done":
      return style.good(
        t.direction === "in"
          ? `${at} -- received ${name} from ${who}, verified: saved as ${sanitize(t.savedAs ?? "")}`
          : `${at} -- ${who} received ${name}, verified`,
      );
    case "declined":
      if (t.direction === "in") return `${at} -- declined ${name}`;
      // Refused by the peer's program (too many offers waiting), not by the person.
      return t.reason && t.reason !== "declined"
        ? style.warn(`${at} -- ${who} refused ${name} (${reason})`)
        : `${at} -- ${who} declined ${name}`;
    case "cancelled":
      return style.warn(
        `${at} -- ${name} ${t.direction === "in" ? "from" : "to"} ${who} ` +
          `cancelled (${reason})`,
      );
    case "failed":
      return style.error(
        `${at} -- ${name} ${t.direction === "in" ? "from" : "to"} ${who} ` +
          `failed (${reason})${t.direction === "in" ? ": nothing was kept" : ""}`,
      );
    default:
      return undefined;
  }
}

// Connected peers of a namespace, and connected members of a room, of that name.
async function _onlineIn(
  context: CommandContext,
  scope: Scope,
  rooms: RoomDirectory,
): Promise<string[]> {
  const connected = new Set(
    context.node.peers().filter((peer) => peer.state === "connected").map((peer) => peer.peerId),
  );
  const members = scope === "*" ? [] : await rooms.online(scope.slice(1)).catch(() => []);
  const inScope = context.node.peers(scope).map((peer) => peer.peerId);
  return [...new Set([...inScope, ...members])].filter((peerId) =>
    connected.has(peerId) && peerId !== context.node.peerId
  );
}

// Room members not among `online`, as peers of our namespace (where a room's members are).
function _offlineMembers(
  context: CommandContext,
  scope: Scope,
  rooms: RoomDirectory,
  online: readonly string[],
): string[] {
  if (scope === "*") return [];
  const namespace = context.node.status().namespace;
  const here = new Set(online.map((peerId) => peerId.split("@")[0].toLowerCase()));
  const self = context.node.peerId.split("@")[0].toLowerCase();
  return (rooms.members(scope.slice(1)) ?? [])
    .filter((name) => !here.has(name.toLowerCase()) && name.toLowerCase() !== self)
    .map((name) => `${name}@${namespace}`);
}

// A path as a shell would read it: people type (or drop into the terminal) paths quoted,
// with escaped spaces, or from "~/".
function _typedPath(typed: string): string {
  const path = typed.trim();
  // As in a shell: a quoted path is taken as it is, ~ included; `\~` is a plain ~.
  const quoted = /^(['"])(.*)\1$/s.exec(path);
  if (quoted) return quoted[2];
  const unescape = (text: string) => text.replace(/\\(.)/g, "$1");
  const home = Deno.env.get("HOME");
  return home && /^~(\/|$)/.test(path) ? home + unescape(path.slice(1)) : unescape(path);
}

// The transfer an id prefix names. A prefix that starts several names the one the command can act
// on (an offer for /accept, one under way for /stop): finished ones do not make it ambiguous.
function _find(
  context: CommandContext,
  files: FileTransfers,
  given: string,
  actionable: (t: TransferInfo) => boolean,
): TransferInfo | undefined {
  const prefix = given.toLowerCase();
  const all = /^[0-9a-f]{1,32}$/.test(prefix)
    ? files.list().filter((t) => t.id.startsWith(prefix))
    : [];
  const open = all.filter(actionable);
  const found = all.length === 1 ? all[0] : open.length === 1 ? open[0] : undefined;
  if (found) return found;
  const shown = open.length > 1 ? open : all;
  context.error(
    shown.length > 1
      ? `"${prefix}" starts ${shown.length} transfers (${
        shown.map(_short).join(", ")
      }): type more of the id`
      : `no transfer starts with "${sanitize(given)}" (/transfers lists them)`,
  );
  return undefined;
}

// A name no peer has is most likely a typo: "not connected" would read as "offline".
function _whyNotSent(context: CommandContext, peerId: string, error: unknown): string {
  const known = [
    ...context.node.peers().map((peer) => peer.peerId),
    ...context.node.history?.contacts().map((contact) => contact.peerId) ?? [],
  ];
  if (!(error instanceof P2pError && error.code === "not_connected") || known.includes(peerId)) {
    return describeError(error);
  }
  return `no peer of that name is known${peerMeant(peerId, known)} (/peers lists them)`;
}

// The offered name, and the name it was saved under when another file had that one.
function _nameOf(t: TransferInfo): string {
  const saved = t.savedAs?.slice(t.savedAs.lastIndexOf("/") + 1);
  const name = sanitize(t.name);
  return saved === undefined || saved === t.name ? name : `${name} (saved as ${sanitize(saved)})`;
}

// The type only when the content told one (an offer to us names none until bytes arrive).
function _what(t: TransferInfo): string {
  const type = t.type === "application/octet-stream" ? "" : `, ${t.type}`;
  return `${sanitize(t.name)} (${formatBytes(t.size)}${type})`;
}

function _short(t: TransferInfo): string {
  return t.id.slice(0, SHORT_ID);
}

function _percent(t: TransferInfo): string {
  return t.size === 0 ? "100%" : `${Math.floor((t.bytes / t.size) * 100)}%`;
}

const BAR_CELLS = 8;

function _bar(fraction: number): string {
  const full = Math.min(BAR_CELLS, Math.floor(fraction * BAR_CELLS));
  return "█".repeat(full) + "░".repeat(BAR_CELLS - full);
}

function _ellipsis(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join("") + "…";
}

function _duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}
