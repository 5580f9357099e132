/** Test harness for the accounts extension: in-memory session links and a ManualClock. */
import { ManualClock } from "../lib/clock.ts";
import { memoryLogger } from "../lib/log.ts";
import type {
  SessionHandler,
  SessionLink,
  SessionRendezvousCommand,
} from "../tracker/extension.ts";
import { Registry } from "../tracker/registry.ts";
import { handleRendezvous, type NameCheck, type Reply } from "../tracker/rendezvous.ts";
import {
  type AccountsExtension,
  type AccountsOptions,
  createAccountsExtension,
} from "../tracker/accounts/mod.ts";

/** Low PBKDF2 cost so tests stay fast; the default is tested separately. */
export const TEST_ITERATIONS = 1000;

type Message = Record<string, unknown>;

/** A test identity key: 32 random bytes (the service only compares keys). */
export function testKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** Who is at the other end of a MemoryLink, as a session handshake would have proved it. */
export interface LinkIdentity {
  identityKey: Uint8Array;
  remoteId: string;
}

/**
 * A SessionLink that records what the extension sends; its Rendezvous requests run against
 * `registry` as the server would run them.
 */
export class MemoryLink implements SessionLink {
  readonly sent: Message[] = [];
  closedByServer = false;
  readonly identityKey: Uint8Array;
  readonly remoteId: string;
  #waiters = new Set<() => void>();

  constructor(
    readonly remoteIp = "127.0.0.1",
    readonly remotePort = 50000,
    identity: LinkIdentity = { identityKey: testKey(), remoteId: "test@default" },
    readonly registry = new Registry(),
    readonly now: () => number = () => 0,
  ) {
    this.identityKey = identity.identityKey;
    this.remoteId = identity.remoteId;
  }

  rendezvous(
    command: SessionRendezvousCommand,
    fields: Record<string, unknown>,
    checkName: NameCheck,
  ): Reply {
    const outcome = handleRendezvous({ ok: true, message: { type: command, fields } }, {
      registry: this.registry,
      ip: this.remoteIp,
      now: this.now(),
      checkRegister: checkName,
      checkUnregister: checkName,
    });
    return outcome.reply;
  }

  send(message: Message): void {
    this.sent.push(message);
    for (const wake of this.#waiters) wake();
  }

  close(): void {
    this.closedByServer = true;
  }

  /** Resolves with the first sent message matching `match` (already sent or future). */
  waitFor(match: (message: Message) => boolean, timeoutMs = 10_000): Promise<Message> {
    const found = this.sent.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const wake = () => {
        const hit = this.sent.find(match);
        if (!hit) return;
        this.#waiters.delete(wake);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(
          new Error(
            `No matching message within ${timeoutMs} ms; sent: ${JSON.stringify(this.sent)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }
}

/** One client connection to the extension. */
export class TestClient {
  #nextId = 1;

  constructor(readonly link: MemoryLink, readonly handler: SessionHandler) {}

  /** Sends a command and waits for its reply. */
  request(type: string, fields: Message = {}): Promise<Message> {
    const id = `r${this.#nextId++}`;
    this.handler.receive({
      ok: true,
      message: { type: type.toUpperCase(), fields: { type, id, ...fields } },
    });
    return this.link.waitFor((message) => message.type === "SESSION_REPLY" && message.id === id);
  }

  /** Events received so far, optionally of one name. */
  events(name?: string): Message[] {
    return this.link.sent.filter((message) =>
      message.type === "SESSION_EVENT" && (name === undefined || message.event === name)
    );
  }

  /** Waits for an event matching `match`. */
  event(name: string, match: (message: Message) => boolean = () => true): Promise<Message> {
    return this.link.waitFor((message) =>
      message.type === "SESSION_EVENT" && message.event === name && match(message)
    );
  }

  /** Signs up (password derived from the name) and returns the reply. */
  signup(username: string, extra: Message = {}): Promise<Message> {
    return this.request("SESSION_SIGNUP", { username, password: `${username}-secret`, ...extra });
  }

  login(username: string, password = `${username}-secret`, extra: Message = {}) {
    return this.request("SESSION_LOGIN", { username, password, ...extra });
  }
}

/** A started extension on a fresh temporary directory. */
export class Harness {
  readonly clock = new ManualClock();
  readonly logged = memoryLogger();
  /** Where the sessions' SESSION_REGISTERs land. */
  readonly registry = new Registry();
  /** The identity key of connections that do not bring their own: one profile for all. */
  readonly profileKey = testKey();
  extension!: AccountsExtension;
  #clients: TestClient[] = [];

  private constructor(readonly dataDir: string, readonly options: Partial<AccountsOptions>) {}

  static async start(options: Partial<AccountsOptions> = {}, dataDir?: string) {
    const harness = new Harness(
      dataDir ?? await Deno.makeTempDir({ prefix: "accounts-" }),
      options,
    );
    await harness.#startExtension();
    return harness;
  }

  async #startExtension(): Promise<void> {
    this.extension = createAccountsExtension(
      {
        mode: "optional",
        pbkdf2Iterations: TEST_ITERATIONS,
        ...this.options,
        dataDir: this.dataDir,
      },
      { clock: this.clock, log: this.logged.log },
    );
    await this.extension.start();
  }

  /** Opens a session connection from `ip`, proving `identityKey` (default: `profileKey`). */
  connect(
    ip = "127.0.0.1",
    port = 50000 + this.#clients.length,
    identityKey = this.profileKey,
  ): TestClient {
    const identity = { identityKey, remoteId: "test@default" };
    const link = new MemoryLink(ip, port, identity, this.registry, () => this.clock.now());
    const client = new TestClient(link, this.extension.openSession(link));
    this.#clients.push(client);
    return client;
  }

  /** Stops the extension and starts a new one on the same directory (a tracker restart). */
  async restart(options: Partial<AccountsOptions> = {}): Promise<void> {
    await this.extension.stop();
    Object.assign(this.options, options);
    this.#clients = [];
    await this.#startExtension();
  }

  /** Stops everything and removes the directory. */
  async close(): Promise<void> {
    await this.extension.stop();
    await Deno.remove(this.dataDir, { recursive: true });
  }
}
