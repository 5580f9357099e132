/**
 * The peer's terminal UI. In a terminal: raw mode, a prompt with line editing, incoming
 * messages and log lines printed above it. Otherwise (a pipe, a script, a test): commands
 * read line by line and plain output lines, no prompt, no escape sequences.
 */
import type { NodeEvent, PeerNode, SendResult, StoredMessage } from "../api.ts";
import { describeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import {
  builtinCommands,
  type Command,
  type CommandContext,
  CommandTable,
  type Conversation,
  conversationName,
  conversationOf,
  type ParsedInput,
  parseInput,
  sendToConversation,
} from "./commands.ts";
import { complete } from "./completion.ts";
import { historyCommands } from "./history_commands.ts";
import {
  formatStorageWarnings,
  formatStoredLine,
  formatStranger,
  formatUnreadElsewhere,
} from "./history_format.ts";
import { HistoryView } from "./history_view.ts";
import { StateNotices } from "./state_notices.ts";
import {
  createStyle,
  formatClock,
  formatEvent,
  formatLogRecord,
  sanitize,
  type Style,
} from "./format.ts";
import type { LogRecord } from "../../lib/log.ts";
import { type Key, KeyDecoder } from "./keys.ts";
import { NoticeLimiter } from "./notice_limiter.ts";
import { securityCommands } from "./security_commands.ts";
import { quoteValue } from "../../lib/escape.ts";
import { conversationMark, formatSecurityEvent } from "./security_format.ts";
import { displayWidth, LineEditor } from "./line_editor.ts";
import {
  CLEAR_LINE,
  CLEAR_SCREEN,
  eraseAfterResize,
  renderAbove,
  renderInputRow,
  wrapWords,
} from "./screen.ts";

/** How a direct message is signalled while the terminal window does not have the focus. */
export type Notify = "bell" | "title" | "off";
export const NOTIFY_MODES: readonly Notify[] = ["bell", "title", "off"];

/** Options of `runTerminal`; the defaults use the process's standard input and output. */
export interface TerminalOptions {
  log: Logger;
  color: boolean;
  input?: ReadableStream<Uint8Array>;
  output?: (text: string) => void;
  isTerminal?: boolean;
  /** Commands added to the built-in ones (accounts, rooms ...). */
  commands?: readonly Command[];
  /** Called when the UI starts (e.g. to print pushed notices); returns its clean-up. */
  attach?: (context: CommandContext) => () => void;
  /** What runs in the background (file transfers), shown before the prompt and kept fresh. */
  activity?: Activity;
  /** Lines `/status` adds about the rest of the program (the HTTP API). */
  status?: () => readonly string[];
  /** Room names Tab completes after "#" (besides namespaces of known peers). */
  rooms?: () => readonly string[];
  /** Direct messages while the window is not focused: a bell (default), the title, or nothing. */
  notify?: Notify;
  /** The terminal's width (default: the console's). */
  columns?: () => number;
  /** Calls `listener` when the terminal is resized; returns the unsubscribe (default SIGWINCH). */
  onResize?: (listener: () => void) => () => void;
}

// A line that starts with a time (perhaps coloured): its continuation rows start under the text.
// deno-lint-ignore no-control-regex -- colour sequences start with ESC
const TIMED = /^(\x1b\[[0-9;]*m)*\d\d:\d\d:\d\d /;

/** Terminal modes the interactive UI turns on: bracketed paste and focus reports. */
const MODES_ON = "\x1b[?2004h\x1b[?1004h";
const MODES_OFF = "\x1b[?2004l\x1b[?1004l";

/** A line read from a pipe longer than this is refused (the wire limit is 32768 bytes). */
const MAX_INPUT_LINE_CHARS = 1 << 20;

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function shouldUseColor(): boolean {
  const noColor = Deno.env.get("NO_COLOR");
  if (noColor !== undefined && noColor !== "") return false;
  return Deno.stdout.isTerminal();
}

/** Runs the UI until the user quits (or input ends); the caller then stops the node. */
export async function runTerminal(node: PeerNode, options: TerminalOptions): Promise<void> {
  const isTerminal = options.isTerminal ?? Deno.stdin.isTerminal();
  const session = new _Session(node, options, isTerminal);
  if (isTerminal) await session.runInteractive(options.input);
  else await session.runLines(options.input ?? Deno.stdin.readable);
}

class _Session implements CommandContext {
  readonly log: Logger;
  readonly style: Style;
  readonly commands: CommandTable;
  readonly interactive: boolean;
  #conversation: Conversation;
  #output: (text: string) => void;
  #interactive: boolean;
  #attach?: (context: CommandContext) => () => void;
  #activity?: Activity;
  #secret?: { prompt: string; resolve: (secret: string | undefined) => void };
  #editor = new LineEditor();
  #columns: () => number;
  /** The terminal's width, read at start and after each resize (not per line printed). */
  #width: number;
  #onResize?: (listener: () => void) => () => void;
  #rooms: () => readonly string[];
  readonly statusLines: () => readonly string[];
  #notify: Notify;
  /** False once the terminal said the window lost the focus (and until it regains it). */
  #focused = true;
  #titleChanged = false;
  /** Where the cursor was left by the last input row drawn (for a redraw after a resize). */
  #cursorColumn = 0;
  #fullTold = false;
  #closed = false;
  #quitRequested = false;
  #wakeOnQuit: () => void = () => {};
  readonly #notices = new NoticeLimiter();
  #summaryTimer?: ReturnType<typeof setTimeout>;
  /** The stored history as shown here; undefined when the node keeps none. */
  readonly #view?: HistoryView;
  readonly #stateNotices: StateNotices;
  /** Direct conversations whose sender was told to be no contact (once per conversation). */
  readonly #strangersTold = new Set<string>();
  /** The conversation /forget is deleting here: the command tells of it, not the event. */
  #forgettingHere?: string;
  // Lines typed here still running (a send waits for its ACK meanwhile).
  #linesRunning = 0;
  // The conversation the store remembers as open (see #rememberOpen).
  #rememberedOpen?: string;

  constructor(readonly node: PeerNode, options: TerminalOptions, interactive: boolean) {
    this.log = options.log;
    this.style = createStyle(options.color);
    this.#stateNotices = new StateNotices((line) => this.print(line), this.style);
    if (node.history) {
      this.#view = new HistoryView(
        node.history,
        (lines) => this.#printLines(lines),
        this.style,
        interactive,
      );
    }
    this.commands = new CommandTable([
      ...builtinCommands(),
      ...securityCommands(),
      ...historyCommands({
        view: this.#view,
        cancelled: (id) => this.#stateNotices.cancelled(id),
        forget: (history, conversation) => {
          this.#forgettingHere = conversation;
          try {
            return history.forget(conversation);
          } finally {
            this.#forgettingHere = undefined;
          }
        },
      }),
    ]);
    this.commands.register(options.commands ?? []);
    this.#conversation = { kind: "scope", scope: `#${node.status().namespace}` };
    this.#output = options.output ?? _writeStdout;
    this.#interactive = interactive;
    this.interactive = interactive;
    this.#attach = options.attach;
    this.#activity = options.activity;
    this.#columns = options.columns ?? _columns;
    this.#width = this.#columns();
    this.#onResize = options.onResize;
    this.#rooms = options.rooms ?? (() => []);
    this.statusLines = options.status ?? (() => []);
    this.#notify = options.notify ?? "bell";
    this.#editor.keepInHistory = (line) => !this.#secretCommand(parseInput(line));
    // A person picks up where they left off (text typed after a restart must not go to the
    // whole namespace); a script always starts in the namespace.
    const history = node.history;
    if (history) {
      // A message leaves the outbox only on its ACK: what waits there now is told when it goes.
      this.#guard(() => {
        for (const message of history.queued()) this.#stateNotices.queued(message.id);
      });
    }
    if (interactive && history) {
      let last: string | undefined;
      this.#guard(() => last = history.lastOpened());
      if (last !== undefined) this.#conversation = conversationOf(last);
    }
  }

  get conversation(): Conversation {
    return this.#conversation;
  }

  // Every way to switch (/msg, /pub, /join, /leave ...) opens the new conversation's history.
  set conversation(next: Conversation) {
    const changed = conversationName(next) !== conversationName(this.#conversation);
    this.#conversation = next;
    if (!changed) return;
    this.#opened(next);
    this.#rememberOpen();
  }

  // Remembers the conversation open now for the next start (a terminal's, not a script's). The
  // store keeps only one that holds messages: tried again when the first is stored.
  #rememberOpen(): void {
    const name = conversationName(this.#conversation);
    if (!this.#interactive || name === this.#rememberedOpen) return;
    this.#guard(() => {
      if (this.node.history?.setLastOpened(name)) this.#rememberedOpen = name;
    });
  }

  print(line: string): void {
    this.#printLines([line]);
  }

  sendStarted(peerId: string): (result: SendResult | undefined) => void {
    // Someone the user wrote to first is no stranger to be warned about when they answer.
    this.#strangersTold.add(peerId);
    return this.#stateNotices.sendStarted(peerId);
  }

  error(message: string): void {
    this.print(this.style.error(`error: ${message}`));
  }

  quit(): void {
    this.#quitRequested = true;
    this.#endSecret(undefined);
    this.#wakeOnQuit();
  }

  readSecret(prompt: string): Promise<string | undefined> {
    if (!this.#interactive || this.#closed) return Promise.resolve(undefined);
    this.#endSecret(undefined);
    const { promise, resolve } = Promise.withResolvers<string | undefined>();
    this.#secret = { prompt, resolve };
    this.#editor.secret = true;
    this.#output(this.#inputLine());
    return promise;
  }

  #endSecret(secret: string | undefined): void {
    const pending = this.#secret;
    if (!pending) return;
    this.#secret = undefined;
    this.#editor.secret = false;
    pending.resolve(secret);
  }

  /** Pipe mode: one command per line, each finished before the next is read. */
  async runLines(input: ReadableStream<Uint8Array>): Promise<void> {
    const unsubscribe = this.node.subscribe((event) => this.#showEvent(event));
    const detach = this.#attach?.(this) ?? (() => {});
    this.#storageAtStart();
    try {
      for await (const line of _readLines(input)) {
        if (line === undefined) this.error(`input line longer than ${MAX_INPUT_LINE_CHARS} chars`);
        else await this.#handleLine(line);
        if (this.#quitRequested) break;
      }
    } finally {
      this.#closed = true;
      this.#stopSummaries();
      this.#stateNotices.close();
      detach();
      unsubscribe();
    }
  }

  /** Terminal mode: raw keys, a prompt, and output printed above it. */
  async runInteractive(input: ReadableStream<Uint8Array> | undefined): Promise<void> {
    // Raw mode only on the real standard input: a test passes its own byte stream.
    const rawStdin = input === undefined;
    if (rawStdin) Deno.stdin.setRaw(true);
    const reader = (input ?? Deno.stdin.readable).getReader();
    const previousSink = this.log.settings.sink;
    this.log.settings.sink = (line, record) => this.#printLog(line, record);
    const unsubscribe = this.node.subscribe((event) => this.#showEvent(event));
    const detach = this.#attach?.(this) ?? (() => {});
    // Redrawn in place on the input row: the lines above and the text typed stay as they are.
    const stopActivity = this.#activity?.subscribe(() => {
      if (!this.#closed && !this.#quitRequested) this.#output(this.#inputLine());
    }) ?? (() => {});
    const quitting = new Promise<"quit">((resolve) => {
      this.#wakeOnQuit = () => resolve("quit");
    });
    const onResize = this.#onResize ?? (rawStdin ? _onWindowChange : undefined);
    const stopResize = onResize?.(() => this.#resized()) ?? (() => {});
    const keys = new KeyDecoder();
    this.#output(MODES_ON + this.#inputLine());
    this.#storageAtStart();
    const view = this.#view;
    if (view) {
      const current = conversationName(this.#conversation);
      this.#guard(() => view.opened(current));
      this.#guard(() => {
        const line = formatUnreadElsewhere(view.history.conversations(), current, this.style);
        if (line !== undefined) this.print(line);
      });
    }
    try {
      while (!this.#quitRequested) {
        const read = await Promise.race([reader.read(), quitting]);
        if (read === "quit" || read.done) break;
        this.#keys(keys.push(read.value));
      }
    } finally {
      this.#closed = true;
      this.#stopSummaries();
      this.#stateNotices.close();
      this.#endSecret(undefined);
      stopResize();
      stopActivity();
      detach();
      unsubscribe();
      this.log.settings.sink = previousSink;
      this.#output(CLEAR_LINE + MODES_OFF + (this.#titleChanged ? _title("") : ""));
      await reader.cancel().catch(() => {});
      if (rawStdin) Deno.stdin.setRaw(false);
    }
  }

  // One read's keys; the input row is drawn once for all of them, however many there were.
  #keys(keys: Key[]): void {
    let redraw = false;
    for (const key of keys) {
      if (this.#quitRequested) return;
      if (key.name === "complete") redraw = this.#complete() || redraw;
      else if (key.name === "clear") {
        this.#output(CLEAR_SCREEN);
        redraw = true;
      } else if (key.name === "focus-in" || key.name === "focus-out") this.#focus(key.name);
      else if (key.name === "page-up" || key.name === "page-down") this.#page(key.name);
      else {
        const action = this.#editor.press(key);
        if (action.type === "quit") this.quit();
        else if (action.type === "submit") {
          this.#submit(action.line);
          redraw = false; // submitting drew the row
        } else if (action.type === "redraw") redraw = true;
        this.#checkFull(key);
      }
    }
    if (redraw && !this.#quitRequested) this.#output(this.#inputLine());
  }

  // Told once per full line: a long paste arrives in many reads, each one over the limit.
  #checkFull(key: Key): void {
    if (this.#editor.length < this.#editor.maxChars) this.#fullTold = false;
    else if (key.name === "char" && this.#editor.dropped > 0 && !this.#fullTold) {
      this.#fullTold = true;
      this.error(
        `the input line holds at most ${this.#editor.maxChars} characters; ` +
          "what was typed or pasted past that was dropped",
      );
    }
  }

  // Tab: completes the word before the cursor; lists the matches when they are ambiguous.
  #complete(): boolean {
    if (this.#secret) return false;
    const peers = this.node.peers();
    const namespace = this.node.status().namespace;
    const scopes = new Set([`#${namespace}`, ...peers.map((peer) => `#${peer.namespace}`)]);
    for (const room of this.#rooms()) scopes.add(`#${room}`);
    const history = this.node.history;
    let contacts: string[] = [];
    this.#guard(() => contacts = history?.contacts().map((contact) => contact.peerId) ?? []);
    // Only names that read as they are: what Tab inserts is drawn raw on the input line, and a
    // peer may name itself (or its namespace) with escape sequences.
    const plain = (names: Iterable<string>) =>
      [...names].filter((name) => quoteValue(name) === name);
    const { insert, candidates } = complete(this.#editor.textBeforeCursor, {
      commands: this.commands.list().map((command) => command.name),
      peers: plain([...peers.map((peer) => peer.peerId), ...contacts]),
      scopes: plain(scopes),
      namespace,
      argumentsOf: (command) => {
        if (!history || (command !== "cancel" && command !== "forget")) return undefined;
        // Peers of our namespace by their bare name, as /forget takes them.
        const suffix = `@${namespace}`;
        const bare = (name: string) => name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
        let names: string[] = [];
        this.#guard(() =>
          names = command === "cancel"
            ? [...history.queued(), ...history.waiting()].map((message) => String(message.id))
            : plain(history.conversations().map((summary) => bare(summary.conversation)))
        );
        return names;
      },
    });
    if (candidates.length > 0) this.print(candidates.map(sanitize).join("  "));
    if (insert === "") return false;
    this.#editor.insert(insert);
    return true;
  }

  #focus(key: "focus-in" | "focus-out"): void {
    this.#focused = key === "focus-in";
    // What arrived in the current conversation while the window was away is read now.
    const history = this.node.history;
    if (this.#focused && history) {
      this.#guard(() => history.markRead(conversationName(this.#conversation)));
    }
    if (this.#focused && this.#titleChanged) {
      this.#titleChanged = false;
      this.#output(_title(""));
    }
  }

  // A direct message while the window is in the background: ring or retitle, as asked.
  #notifyDirect(from: string): void {
    if (this.#focused || !this.#interactive || this.#notify === "off") return;
    if (this.#notify === "bell") {
      this.#output("\x07");
      return;
    }
    this.#titleChanged = true;
    this.#output(_title(`p2pchat: message from ${sanitize(from)}`));
  }

  #resized(): void {
    if (this.#closed) return;
    this.#width = this.#columns();
    this.#output(eraseAfterResize(this.#cursorColumn, this.#width) + this.#inputLine());
  }

  #submit(line: string): void {
    if (this.#secret) {
      // The secret goes to whoever asked, never to the screen, the history or the network.
      this.#endSecret(line);
      this.#output(this.#inputLine());
      return;
    }
    // A command carrying a secret is echoed with its arguments masked.
    const input = parseInput(line);
    const echo = this.#secretCommand(input) && input.argText !== "" ? `/${input.name} ***` : line;
    if (line.trim() !== "") {
      // The prompt without the activity (a progress bar): a stale copy of it in each echoed
      // line would only clutter the scrollback.
      const prompt = this.#prompt(false);
      this.print(this.style.dim(`${formatClock(Date.now())} ${prompt}${sanitize(echo)}`));
    } else this.#output(this.#inputLine());
    // Not awaited: waiting for an ACK must not freeze the prompt; the outcome prints later.
    void this.#handleLine(line);
  }

  // True for a command whose arguments are a secret (a password), such as /login.
  #secretCommand(input: ParsedInput): input is ParsedInput & { kind: "command" } {
    return input.kind === "command" && this.commands.get(input.name)?.secret === true;
  }

  async #handleLine(line: string): Promise<void> {
    const input = parseInput(line);
    this.#linesRunning++;
    try {
      if (input.kind === "text") await sendToConversation(this, input.text);
      else if (input.kind === "command") await this.commands.execute(this, input);
    } catch (error) {
      this.error(sanitize(error instanceof Error ? error.message : String(error)));
    } finally {
      this.#linesRunning--;
    }
  }

  // A message of ours stored while no line typed here runs was sent elsewhere (the web chat,
  // the API): shown as a history line when it is in the conversation on screen. One sent from
  // here is told by the send's own lines.
  #addedElsewhere(message: StoredMessage): void {
    if (message.state === "queued") this.#stateNotices.queued(message.id);
    if (!message.outgoing || this.#linesRunning > 0 || !this.#interactive) return;
    if (message.conversation !== conversationName(this.#conversation)) return;
    this.print(formatStoredLine(message, this.style, Date.now()));
  }

  #showEvent(event: NodeEvent): void {
    if (event.type === "message_state") {
      this.#stateNotices.changed(event.message, event.at, event.member);
      return;
    }
    if (event.type === "message_added") {
      if (event.message.conversation === conversationName(this.#conversation)) {
        this.#rememberOpen();
      }
      return this.#addedElsewhere(event.message);
    }
    // The store forgot it as the open one too: remembered again with its next message.
    if (event.type === "conversation_forgotten" && event.conversation === this.#rememberedOpen) {
      this.#rememberedOpen = undefined;
    }
    // One deleted here is told by /forget itself.
    if (
      event.type === "conversation_forgotten" && this.#forgettingHere === event.conversation
    ) return;
    if (event.type === "contact" || event.type === "conversation_read") return;
    if (event.type === "storage") {
      for (const line of formatStorageWarnings(event.status, this.style, event.at)) {
        this.print(line);
      }
      return;
    }
    if (event.type === "message") {
      if (event.stored?.conversation === conversationName(this.#conversation)) {
        this.#rememberOpen();
      }
      this.#showMessage(event);
      return;
    }
    // Only peers nobody listed are summarised: a discovered peer's notice always shows.
    if (
      event.type === "peer" && !this.#listed(event.peerId) &&
      !this.#notices.admit(event.state, event.at)
    ) {
      this.#summaryTimer ??= setTimeout(() => {
        this.#summaryTimer = undefined;
        const now = Date.now();
        const summary = this.#notices.takeSummary(now);
        if (summary) this.print(`${this.style.dim(formatClock(now))} -- ${summary}`);
      }, Math.max(0, this.#notices.summaryDueAt() - event.at));
      return;
    }
    this.print(
      event.type === "security"
        ? formatSecurityEvent(event, this.style, this.node.peerId)
        : formatEvent(event, this.style),
    );
  }

  // A stranger's first direct message is preceded by a notice (the line itself keeps the
  // shape scripts parse); one that arrives in the conversation the user looks at is read.
  #showMessage(event: Extract<NodeEvent, { type: "message" }>): void {
    const stored = event.stored;
    if (
      event.kind === "direct" && stored?.stranger && !this.#strangersTold.has(stored.conversation)
    ) {
      this.#strangersTold.add(stored.conversation);
      if (this.#firstOfConversation(stored)) {
        this.print(formatStranger(event.from, this.style, event.at));
      }
    }
    this.print(formatEvent(event, this.style));
    if (event.kind === "direct") this.#notifyDirect(event.from);
    if (
      stored && this.#view && this.#interactive && this.#focused &&
      stored.conversation === conversationName(this.#conversation)
    ) {
      const view = this.#view;
      this.#guard(() => view.seen(stored));
    }
  }

  // A store that is not saving (or was moved aside) is told at start: its event came before.
  #storageAtStart(): void {
    const history = this.node.history;
    if (!history) return;
    this.#guard(() => {
      for (const line of formatStorageWarnings(history.storage(), this.style, Date.now())) {
        this.print(line);
      }
    });
  }

  // A failing store (an error it did not absorb) must not stop the chat: the user is told.
  #guard(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.error(`history: ${sanitize(describeError(error, { withCode: true }))}`);
    }
  }

  // The conversation's recent lines, once the command that switched has said so (a terminal
  // only: a script would take old lines for new ones).
  #opened(conversation: Conversation): void {
    const view = this.#view;
    if (!view || !this.#interactive || this.#closed) return;
    // What the history holds now: a message the switching command sends next (`/msg bob hi`)
    // is told by its own lines, not as history.
    const name = conversationName(conversation);
    let upTo: number | undefined;
    this.#guard(() => upTo = view.newestId(name));
    queueMicrotask(() => {
      if (this.#closed || this.#conversation !== conversation) return; // switched again
      this.#guard(() => view.opened(name, upTo));
    });
  }

  #page(key: "page-up" | "page-down"): void {
    if (!this.#view || this.#secret) return;
    const view = this.#view;
    const conversation = conversationName(this.#conversation);
    this.#guard(() => key === "page-up" ? view.pageUp(conversation) : view.pageDown(conversation));
  }

  // True when the history holds nothing before `message` in its conversation: the stranger
  // notice is for someone new, not again for them after each restart.
  #firstOfConversation(message: StoredMessage): boolean {
    const history = this.node.history;
    let earlier = 0;
    this.#guard(() => {
      earlier = history?.page(message.conversation, { before: message.id, limit: 1 }).messages
        .length ?? 0;
    });
    return earlier === 0;
  }

  // True for a peer discovery (or the user) gave an address: not a stranger's made-up id.
  #listed(peerId: string): boolean {
    return this.node.peers().some((peer) => peer.peerId === peerId && peer.address !== undefined);
  }

  #stopSummaries(): void {
    clearTimeout(this.#summaryTimer);
    this.#summaryTimer = undefined;
  }

  #printLines(lines: readonly string[]): void {
    if (this.#closed) return;
    if (this.#interactive) {
      // Wrapped here, between words: a line with a time gets its continuation rows indented.
      const columns = Math.max(20, this.#width - 1);
      const rows = lines.flatMap((line) => wrapWords(line, columns, TIMED.test(line) ? 9 : 2));
      this.#output(renderAbove(rows, this.#inputLine()));
    } else this.#output(lines.map((line) => line + "\n").join(""));
  }

  // Log lines look like the other notices (JSON ones stay JSON) and wrap between words, with
  // the continuation rows indented past the time.
  #printLog(line: string, record: LogRecord): void {
    const text = sanitize(this.log.settings.format === "json" ? line : formatLogRecord(record));
    const style = record.level === "error"
      ? this.style.error
      : record.level === "warn"
      ? this.style.warn
      : this.style.dim;
    this.#printLines([style(text)]);
  }

  #prompt(withActivity = true): string {
    if (this.#secret) return this.#secret.prompt;
    const name = sanitize(conversationName(this.#conversation));
    const mark = this.#conversationMark();
    const activity = withActivity ? this.#activity?.text() ?? "" : "";
    const before = activity === "" ? "" : `${activity} `;
    return mark === "" ? `${before}${name}> ` : `${before}${name} ${mark}> `;
  }

  // How the current peer conversation is protected; scopes mix peers and carry no mark.
  #conversationMark(): string {
    const conversation = this.#conversation;
    if (conversation.kind !== "peer") return "";
    const peer = this.node.peers().find((known) => known.peerId === conversation.peerId);
    return conversationMark(peer);
  }

  #inputLine(): string {
    const prompt = this.#prompt();
    const row = renderInputRow(
      this.style.bold(prompt),
      displayWidth(prompt),
      this.#editor,
      this.#width,
    );
    this.#cursorColumn = row.cursorColumn;
    return row.text;
  }
}

/** Something under way that the prompt shows (a short text), and tells when it changes. */
export interface Activity {
  text(): string;
  subscribe(changed: () => void): () => void;
}

/** Lines of UTF-8 text (without "\n" or "\r\n"); `undefined` stands for an over-long line. */
async function* _readLines(
  input: ReadableStream<Uint8Array>,
): AsyncGenerator<string | undefined> {
  const decoder = new TextDecoder();
  let buffer = "";
  let skipping = false;
  for await (const chunk of input) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (skipping) skipping = false;
      else yield line;
    }
    if (buffer.length > MAX_INPUT_LINE_CHARS) {
      if (!skipping) yield undefined;
      skipping = true;
      buffer = "";
    }
  }
  buffer += decoder.decode();
  if (buffer !== "" && !skipping) yield buffer.replace(/\r$/, "");
}

function _columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

function _onWindowChange(listener: () => void): () => void {
  if (Deno.build.os === "windows") return () => {};
  Deno.addSignalListener("SIGWINCH", listener);
  return () => Deno.removeSignalListener("SIGWINCH", listener);
}

// OSC 2 sets the window title; an empty one lets the terminal show its default again.
function _title(text: string): string {
  return `\x1b]2;${text}\x07`;
}

const stdoutEncoder = new TextEncoder();

function _writeStdout(text: string): void {
  const bytes = stdoutEncoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}
