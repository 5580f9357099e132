/**
 * Test helper: the real tracker (Rendezvous server plus the accounts extension) in process,
 * on a ManualClock, served over in-memory connections; it can be stopped and restarted on
 * the same data directory, or be down. Connections arrive already encrypted: `connectAs(name)`
 * opens the session (SESSION_HELLO and the handshake) with that name's profile identity.
 */
import { ManualClock } from "../lib/clock.ts";
import { memoryLogger } from "../lib/log.ts";
import type { SessionIdentity } from "../lib/secure_session.ts";
import { type Conn, memoryConnPair } from "../lib/transport.ts";
import { type AccountsExtension, createAccountsExtension } from "../tracker/accounts/mod.ts";
import { createTracker, type Tracker } from "../tracker/mod.ts";
import { TEST_ITERATIONS } from "./_accounts_harness.ts";
import { newSessionIdentity, secureSession } from "./_session_identity.ts";

export class SessionTracker {
  readonly clock = new ManualClock();
  readonly logged = memoryLogger();
  tracker?: Tracker;
  extension?: AccountsExtension;
  /** Connections asked for through `connect`, including refused ones. */
  dials = 0;
  #ports = 41000;
  readonly #identities = new Map<string, SessionIdentity>();

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

  /** What a `SessionClient` of `name` dials: an encrypted session proving name's identity. */
  connectAs(name: string): () => Promise<Conn> {
    let identity = this.#identities.get(name);
    if (!identity) this.#identities.set(name, identity = newSessionIdentity(`${name}@lobby`));
    const who = identity;
    return async () => {
      this.dials++;
      if (!this.tracker) throw new Error("connection refused");
      const port = this.#ports++;
      const [client, server] = memoryConnPair(
        { hostname: "127.0.0.1", port },
        { hostname: "127.0.0.1", port: 8080 },
      );
      void this.tracker.serve(server);
      return (await secureSession(client, who)).conn;
    };
  }

  async close(): Promise<void> {
    await this.down();
    await Deno.remove(this.dataDir, { recursive: true });
  }
}

/** Lets in-memory lines and their replies flow (they cross promise and timer boundaries). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setTimeout(resolve, 1));
}
