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

  /** Opens the store at this path again (the previous one must be closed first). */
  open(hooks: OpenHooks = {}): MessageStore {
    this.store = openWithHooks(
      { path: this.path, ...this.options },
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
