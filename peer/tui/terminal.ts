/**
 * The peer's terminal UI. In a terminal: raw mode, a prompt with line editing, incoming
 * messages and log lines printed above it. Otherwise (a pipe, a script, a test): commands
 * read line by line and plain output lines, no prompt, no escape sequences.
 */
import type { NodeEvent, PeerNode } from "../api.ts";
import type { Logger } from "../../lib/log.ts";
import {
  builtinCommands,
  type Command,
  type CommandContext,
  CommandTable,
  type Conversation,
  conversationName,
  type ParsedInput,
  parseInput,
  sendToConversation,
} from "./commands.ts";
import { createStyle, formatClock, formatEvent, sanitize, type Style } from "./format.ts";
import { NoticeLimiter } from "./notice_limiter.ts";
import { KeyDecoder } from "./keys.ts";
import { displayWidth, LineEditor } from "./line_editor.ts";
import { CLEAR_LINE, renderAbove, renderInputLine } from "./screen.ts";

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
}

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
  conversation: Conversation;
  readonly interactive: boolean;
  #output: (text: string) => void;
  #interactive: boolean;
  #attach?: (context: CommandContext) => () => void;
  #secret?: { prompt: string; resolve: (secret: string | undefined) => void };
  #editor = new LineEditor();
  #closed = false;
  #quitRequested = false;
  #wakeOnQuit: () => void = () => {};
  readonly #notices = new NoticeLimiter();
  #summaryTimer?: ReturnType<typeof setTimeout>;

  constructor(readonly node: PeerNode, options: TerminalOptions, interactive: boolean) {
    this.log = options.log;
    this.style = createStyle(options.color);
    this.commands = new CommandTable(builtinCommands());
    this.commands.register(options.commands ?? []);
    this.conversation = { kind: "scope", scope: `#${node.status().namespace}` };
    this.#output = options.output ?? _writeStdout;
    this.#interactive = interactive;
    this.interactive = interactive;
    this.#attach = options.attach;
    this.#editor.keepInHistory = (line) => !this.#secretCommand(parseInput(line));
  }

  print(line: string): void {
    this.#printLines([line]);
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
    try {
      for await (const line of _readLines(input)) {
        if (line === undefined) this.error(`input line longer than ${MAX_INPUT_LINE_CHARS} chars`);
        else await this.#handleLine(line);
        if (this.#quitRequested) break;
      }
    } finally {
      this.#closed = true;
      this.#stopSummaries();
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
    this.log.settings.sink = (line) => this.#printLines([this.style.dim(sanitize(line))]);
    const unsubscribe = this.node.subscribe((event) => this.#showEvent(event));
    const detach = this.#attach?.(this) ?? (() => {});
    const quitting = new Promise<"quit">((resolve) => {
      this.#wakeOnQuit = () => resolve("quit");
    });
    const keys = new KeyDecoder();
    this.#output(this.#inputLine());
    try {
      while (!this.#quitRequested) {
        const read = await Promise.race([reader.read(), quitting]);
        if (read === "quit" || read.done) break;
        for (const key of keys.push(read.value)) {
          const action = this.#editor.press(key);
          if (action.type === "quit") this.quit();
          else if (action.type === "redraw") this.#output(this.#inputLine());
          else if (action.type === "submit") this.#submit(action.line);
          if (this.#quitRequested) break;
        }
      }
    } finally {
      this.#closed = true;
      this.#stopSummaries();
      this.#endSecret(undefined);
      detach();
      unsubscribe();
      this.log.settings.sink = previousSink;
      this.#output(CLEAR_LINE);
      await reader.cancel().catch(() => {});
      if (rawStdin) Deno.stdin.setRaw(false);
    }
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
    if (line.trim() !== "") this.print(this.style.dim(this.#prompt() + sanitize(echo)));
    else this.#output(this.#inputLine());
    // Not awaited: waiting for an ACK must not freeze the prompt; the outcome prints later.
    void this.#handleLine(line);
  }

  // True for a command whose arguments are a secret (a password), such as /login.
  #secretCommand(input: ParsedInput): input is ParsedInput & { kind: "command" } {
    return input.kind === "command" && this.commands.get(input.name)?.secret === true;
  }

  async #handleLine(line: string): Promise<void> {
    const input = parseInput(line);
    try {
      if (input.kind === "text") await sendToConversation(this, input.text);
      else if (input.kind === "command") await this.commands.execute(this, input);
    } catch (error) {
      this.error(sanitize(error instanceof Error ? error.message : String(error)));
    }
  }

  #showEvent(event: NodeEvent): void {
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
    this.print(formatEvent(event, this.style));
  }

  // True for a peer discovery (or the user) gave an address: not a stranger's made-up id.
  #listed(peerId: string): boolean {
    return this.node.peers().some((peer) => peer.peerId === peerId && peer.address !== undefined);
  }

  #stopSummaries(): void {
    clearTimeout(this.#summaryTimer);
    this.#summaryTimer = undefined;
  }

  #printLines(lines: string[]): void {
    if (this.#closed) return;
    if (this.#interactive) this.#output(renderAbove(lines, this.#inputLine()));
    else this.#output(lines.map((line) => line + "\n").join(""));
  }

  #prompt(): string {
    if (this.#secret) return this.#secret.prompt;
    return `${sanitize(conversationName(this.conversation))}> `;
  }

  #inputLine(): string {
    const prompt = this.#prompt();
    return renderInputLine(
      this.style.bold(prompt),
      displayWidth(prompt),
      this.#editor.shownText,
      this.#editor.cursor,
      _columns(),
    );
  }
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

const stdoutEncoder = new TextEncoder();

function _writeStdout(text: string): void {
  const bytes = stdoutEncoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}
