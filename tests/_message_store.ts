/**
 * Test helper: a message store in a temporary folder (or in memory) with a manual clock and a
 * logger that keeps its lines, plus builders for messages with defaults.
 */
import { ManualClock } from "../lib/clock.ts";
import { memoryLogger } from "../lib/log.ts";
import {
  type MessageStore,
  type MessageStoreOptions,
  openMessageStore,
} from "../peer/store/mod.ts";
import type { NewIncoming, NewOutgoing } from "../peer/store/mod.ts";
import type { StorageStatus } from "../peer/api.ts";
import type { OpenHooks } from "../peer/store/open.ts";
import { openMessageStore as openWithHooks } from "../peer/store/open.ts";

/** Where a contract test runs: a file on disk, or a store that saves nothing. */
export type StoreBackend = "file" | "memory";

export const BACKENDS: StoreBackend[] = ["file", "memory"];

/** A store under test and what it was opened with. */
export class TestStore {
  readonly clock = new ManualClock();
  readonly logged: string[];
  readonly problems: StorageStatus[] = [];
  readonly dir: string;
  readonly path: string;
  store: MessageStore;
  readonly #log;

  constructor(
    readonly backend: StoreBackend,
    readonly options: Omit<MessageStoreOptions, "path"> = {},
    hooks: OpenHooks = {},
  ) {
    const { log, lines } = memoryLogger();
    this.#log = log;
    this.logged = lines;
    this.dir = Deno.makeTempDirSync({ prefix: "p2pchat-store-" });
    this.path = backend === "file" ? `${this.dir}/messages.db` : ":memory:";
    this.store = this.open(hooks);
  }

  /** Opens the store at this path (or another) again; close the previous one first. */
  open(hooks: OpenHooks = {}, path: string = this.path): MessageStore {
    this.store = openWithHooks(
      { path, ...this.options },
      { log: this.#log, clock: this.clock, onProblem: (status) => this.problems.push(status) },
      hooks,
    );
    return this.store;
  }

  /** Closes the store and reopens it from its file. */
  reopen(): MessageStore {
    this.store.close();
    return this.open();
  }

  [Symbol.dispose](): void {
    try {
      this.store.close();
    } finally {
      Deno.removeSync(this.dir, { recursive: true });
    }
  }
}

/** The store's own entry point, for tests that do not need hooks. */
export { openMessageStore };

let _serial = 0;

/** A received direct message from bob, with fields overridden. */
export function incoming(fields: Partial<NewIncoming> = {}): NewIncoming {
  const from = fields.from ?? "bob@lobby";
  return {
    msgId: `in-${++_serial}`,
    kind: "direct",
    from,
    conversation: from,
    text: "hello",
    at: Date.UTC(2026, 0, 1),
    encrypted: true,
    ...fields,
  };
}

/** A direct message we send to bob, with fields overridden. */
export function outgoing(fields: Partial<NewOutgoing> = {}): NewOutgoing {
  return {
    msgId: `out-${++_serial}`,
    kind: "direct",
    from: "alice@lobby",
    conversation: "bob@lobby",
    text: "hi",
    at: Date.UTC(2026, 0, 1),
    encrypted: true,
    state: "sent",
    ...fields,
  };
}

const CHILD = new URL("./_store_child.ts", import.meta.url).pathname;
const CHILD_ANSWER_MS = 30_000;

/** A child process holding the store at `path` (tests/_store_child.ts), driven line by line. */
export class StoreChild {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  #closed = false;

  constructor(path: string) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, path],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = _lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  /** The next line the child prints. */
  async answer(): Promise<string> {
    const signal = AbortSignal.timeout(CHILD_ANSWER_MS);
    const aborted = new Promise<never>((_, reject) =>
      signal.addEventListener("abort", () => reject(new Error("The store child did not answer")))
    );
    const next = await Promise.race([this.#lines.next(), aborted]);
    if (next.done) throw new Error("The store child exited");
    return next.value;
  }

  async ask(command: string): Promise<string> {
    await this.#stdin.write(new TextEncoder().encode(command + "\n"));
    return await this.answer();
  }

  /** Kills the child with SIGKILL: no flush, no close, as a crash or `kill -9`. */
  async kill(): Promise<void> {
    this.#child.kill("SIGKILL");
    await this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#release();
  }

  async #release(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stdin.close().catch(() => {});
    await this.#lines.return?.();
    await this.#child.status;
  }
}

async function* _lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
}
