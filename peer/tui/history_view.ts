/**
 * What the terminal shows of the stored history: the recent lines of a conversation when it is
 * opened, pages back and forth through it (PageUp/PageDown, printed above the prompt like any
 * other output: the input row is never touched), and which messages the user has seen.
 */
import type { MessageHistory, StoredMessage } from "../api.ts";
import { formatCount, sanitize, type Style } from "./format.ts";
import { formatStamp, formatStoredLine } from "./history_format.ts";

/** Lines shown when a conversation is opened, and by `/history` without a count. */
export const RECENT_LINES = 20;
/** Lines per PageUp/PageDown. */
export const PAGE_LINES = 20;
/** The most `/history N` shows (the store's largest page). */
export const MAX_HISTORY_LINES = 500;

/** The stored history as the terminal shows it. */
export class HistoryView {
  /** Conversations whose recent lines were shown in this session. */
  readonly #opened = new Set<string>();
  /** The ids of the lines shown last for paging, and of which conversation. */
  #window?: { conversation: string; oldest: number; newest: number };

  constructor(
    readonly history: MessageHistory,
    /** Prints lines above the prompt, all at once (one redraw of the input row). */
    readonly show: (lines: readonly string[]) => void,
    readonly style: Style,
    /** Whether PageUp exists (a terminal) or only /history (a pipe): what the hints say. */
    readonly interactive: boolean,
  ) {}

  /**
   * Shows the last `count` lines of `conversation` (up to message `upTo` when given; 0: none),
   * a divider before the first unread one, and marks them read; returns how many were shown.
   */
  showRecent(conversation: string, count: number, upTo?: number): number {
    this.#opened.add(conversation);
    if (upTo === 0) return 0;
    const page = this.history.page(
      conversation,
      upTo === undefined ? { limit: count } : { limit: count, before: upTo + 1 },
    );
    const messages = page.messages;
    if (messages.length === 0) return 0;
    const firstUnread = messages.findIndex(_unread);
    const now = Date.now();
    const lines: string[] = [];
    const back = this.interactive ? "PageUp" : "/history N";
    messages.forEach((message, index) => {
      if (index === firstUnread) {
        lines.push(this.style.dim(this.#unreadDivider(conversation, messages, back)));
      }
      lines.push(formatStoredLine(message, this.style, now));
    });
    const older = page.more ? `; older: ${back}` : "";
    lines.push(
      this.style.dim(
        `-- history of ${sanitize(conversation)}: ${
          formatCount(messages.length, "message")
        }${older} --`,
      ),
    );
    this.show(lines);
    this.#window = { conversation, oldest: messages[0].id, newest: messages.at(-1)!.id };
    // Opening a conversation reads it, also what is older than the lines shown.
    this.history.markRead(conversation, messages.at(-1)!.id);
    return messages.length;
  }

  // "-- N unread --" before the first unread line shown, with how many more lie above it.
  #unreadDivider(conversation: string, messages: StoredMessage[], back: string): string {
    const shown = messages.filter(_unread).length;
    const total = this.history.conversations()
      .find((summary) => summary.conversation === conversation)?.unread ?? shown;
    const above = total - shown;
    return above > 0 ? `-- ${total} unread (${above} above: ${back}) --` : `-- ${shown} unread --`;
  }

  /**
   * The first time a conversation is opened in this session, its recent lines, up to message
   * `upTo` when given (0: none).
   */
  opened(conversation: string, upTo?: number): void {
    if (this.#opened.has(conversation)) {
      this.history.markRead(conversation);
      return;
    }
    this.showRecent(conversation, RECENT_LINES, upTo);
  }

  /** The id of the newest message of `conversation`, 0 when it has none. */
  newestId(conversation: string): number {
    return this.history.page(conversation, { limit: 1 }).messages.at(-1)?.id ?? 0;
  }

  /** A message arrived in `conversation` while the user looks at it: it is read. */
  seen(message: StoredMessage): void {
    this.history.markRead(message.conversation, message.id);
  }

  /** PageUp: the page before the lines shown last (or the newest page). */
  pageUp(conversation: string): void {
    const window = this.#window?.conversation === conversation ? this.#window : undefined;
    const page = this.history.page(conversation, { before: window?.oldest, limit: PAGE_LINES });
    const name = sanitize(conversation);
    if (page.messages.length === 0) {
      this.show([this.style.dim(`-- no older messages in ${name} --`)]);
      return;
    }
    const what = page.more ? "older messages" : "the first messages";
    this.#showPage(
      conversation,
      page.messages,
      `-- ${name}: ${what}, from ${this.#since(page.messages)} --`,
    );
  }

  /** PageDown: the page after the lines shown last, toward the present. */
  pageDown(conversation: string): void {
    const window = this.#window?.conversation === conversation ? this.#window : undefined;
    const name = sanitize(conversation);
    if (window === undefined) {
      this.show([
        this.style.dim(`-- ${name}: this is the present; PageUp shows older messages --`),
      ]);
      return;
    }
    const page = this.history.page(conversation, { after: window.newest, limit: PAGE_LINES });
    if (page.messages.length === 0) {
      this.show([this.style.dim(`-- ${name}: no newer messages, this is the present --`)]);
      return;
    }
    const what = page.more ? "newer messages" : "the newest messages";
    this.#showPage(
      conversation,
      page.messages,
      `-- ${name}: ${what}, from ${this.#since(page.messages)} --`,
    );
  }

  #showPage(conversation: string, messages: StoredMessage[], header: string): void {
    const now = Date.now();
    this.show([
      this.style.dim(header),
      ...messages.map((message) => formatStoredLine(message, this.style, now)),
    ]);
    this.#window = { conversation, oldest: messages[0].id, newest: messages.at(-1)!.id };
  }

  #since(messages: StoredMessage[]): string {
    return formatStamp(messages[0].at, Date.now());
  }
}

function _unread(message: StoredMessage): boolean {
  return !message.outgoing && message.state !== "read";
}
