/**
 * Test helper: the real tracker (Rendezvous server plus the accounts extension) in process,
 * on a ManualClock, served over in-memory connections; it can be stopped and restarted on
 * the same data directory, or be down.
 */
import { ManualClock } from "../lib/clock.ts";
import { memoryLogger } from "../lib/log.ts";
import { type Conn, memoryConnPair } from "../lib/transport.ts";
import { type AccountsExtension, createAccountsExtension } from "../tracker/accounts/mod.ts";
import { createTracker, type Tracker } from "../tracker/mod.ts";
import { TEST_ITERATIONS } from "./_accounts_harness.ts";

export class SessionTracker {
  readonly clock = new ManualClock();
  readonly logged = memoryLogger();
  tracker?: Tracker;
  extension?: AccountsExtension;
  /** Connections asked for through `connect`, including refused ones. */
  dials = 0;
  #ports = 41000;

  private constructor(readonly dataDir: string, readonly heartbeatWindowMs: number) {}

  static async start(heartbeatWindowMs = 30_000): Promise<SessionTracker> {
    const dir = await Deno.makeTempDir({ prefix: "session-tracker-" });
    const harness = new SessionTracker(dir, heartbeatWindowMs);
    await harness.up();
    return harness;
  }

  /** Starts the tracker (again) on the same directory. */
  async up(): Promise<void> {
    const deps = { clock: this.clock, log: this.logged.log };
    this.extension = createAccountsExtension({
      mode: "optional",
      dataDir: this.dataDir,
      pbkdf2Iterations: TEST_ITERATIONS,
      heartbeatWindowMs: this.heartbeatWindowMs,
    }, deps);
    await this.extension.start();
    this.tracker = createTracker({ rateLimit: false }, { ...deps, extension: this.extension });
  }

  /** Stops the tracker: every connection closes, and `connect` fails until `up()`. */
  async down(): Promise<void> {
    const tracker = this.tracker;
    this.tracker = undefined;
    await tracker?.stop();
  }

  /** What a `SessionClient` dials. */
  connect = (): Promise<Conn> => {
    this.dials++;
    if (!this.tracker) return Promise.reject(new Error("connection refused"));
    const port = this.#ports++;
    const [client, server] = memoryConnPair(
      { hostname: "127.0.0.1", port },
      { hostname: "127.0.0.1", port: 8080 },
    );
    void this.tracker.serve(server);
    return Promise.resolve(client);
  };

  async close(): Promise<void> {
    await this.down();
    await Deno.remove(this.dataDir, { recursive: true });
  }
}

/** Lets in-memory lines and their replies flow (they cross promise and timer boundaries). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setTimeout(resolve, 1));
}
