/**
 * Accounts benchmark: store append path at 100,000 accounts, start-up with that store,
 * 10,000 heartbeating sessions, user listing, and a room event fanned out to 1,000 members.
 * Run: deno run -A --v8-flags=--expose-gc scripts/bench_accounts.ts (or deno task bench accounts)
 */
import { cpuUsage } from "node:process";
import { ManualClock } from "../lib/clock.ts";
import { memoryLogger } from "../lib/log.ts";
import { hashPassword } from "../lib/password.ts";
import { createAccountsExtension } from "../tracker/accounts/mod.ts";
import { AccountStore } from "../tracker/accounts/store.ts";
import type { SessionHandler, SessionLink } from "../tracker/mod.ts";
import { DEFAULT_HASH_QUEUE } from "../tracker/accounts/hash_slots.ts";
import { settledMemory } from "./settled_memory.ts";

const ACCOUNTS = 100_000;
const SESSIONS = 10_000;
const ROOM_MEMBERS = 1_000;
const IN_FLIGHT = 32;
const ITERATIONS = 1000;

type Message = Record<string, unknown>;

/** A link that keeps nothing but what the benchmark measures. */
class BenchLink implements SessionLink {
  readonly remotePort = 40000;
  // Every session proves the same profile key: the service only compares keys.
  readonly identityKey = new Uint8Array(32).fill(7);
  readonly remoteId = "bench@default";
  events = 0;
  lastEventAt = 0;
  #waiting = new Map<unknown, (reply: Message) => void>();

  constructor(readonly remoteIp: string) {}

  send(message: Message): void {
    if (message.type === "SESSION_REPLY") {
      this.#waiting.get(message.id)?.(message);
      this.#waiting.delete(message.id);
      return;
    }
    this.events++;
    this.lastEventAt = performance.now();
  }

  close(): void {}

  rendezvous(): never {
    throw new Error("The benchmark registers no names");
  }

  expect(id: unknown): Promise<Message> {
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }
}

class BenchClient {
  #id = 0;
  constructor(readonly link: BenchLink, readonly handler: SessionHandler) {}

  request(type: string, fields: Message = {}): Promise<Message> {
    const id = ++this.#id;
    const reply = this.link.expect(id);
    this.handler.receive({ ok: true, message: { type, fields: { type, id, ...fields } } });
    return reply;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const ms = (value: number) => `${value.toFixed(3)} ms`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>) {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(run));
  }
}

/** Runs every measurement and prints a table. */
export async function benchAccounts(): Promise<void> {
  const rows: [string, string][] = [];
  const dataDir = await Deno.makeTempDir({ prefix: "bench-accounts-" });
  const { log } = memoryLogger("error");
  try {
    // 1. Sign-up append path (the password hash is computed once, outside the timing).
    const credential = await hashPassword("benchmark-password", ITERATIONS);
    const { store } = await AccountStore.open(dataDir, log);
    const latencies: number[] = [];
    const signupStart = performance.now();
    const names = Array.from({ length: ACCOUNTS }, (_, index) => `user${index}`);
    await inBatches(names, IN_FLIGHT, async (username) => {
      const started = performance.now();
      await store.commit({ op: "signup", username, credential, at: Date.now() });
      latencies.push(performance.now() - started);
    });
    const signupSeconds = (performance.now() - signupStart) / 1000;
    await store.close();
    rows.push([
      `sign-up append p50 / p99 (${IN_FLIGHT} in flight, fsync each)`,
      `${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))}`,
    ]);
    rows.push([
      `sign-up throughput (${ACCOUNTS.toLocaleString("en")} accounts)`,
      `${Math.round(ACCOUNTS / signupSeconds).toLocaleString("en")} /s`,
    ]);
    const firstThousand = latencies.slice(0, 1000);
    const lastThousand = latencies.slice(-1000);
    rows.push([
      "sign-up p99, first vs last 1,000 (does not grow)",
      `${ms(percentile(firstThousand, 99))} / ${ms(percentile(lastThousand, 99))}`,
    ]);

    // 2. Tracker start-up with that store.
    const clock = new ManualClock(Date.now());
    const extension = createAccountsExtension(
      { mode: "optional", dataDir, pbkdf2Iterations: ITERATIONS, heartbeatWindowMs: 60_000 },
      { clock, log },
    );
    const startupStart = performance.now();
    await extension.start();
    rows.push([
      `start-up: load ${ACCOUNTS.toLocaleString("en")} accounts`,
      ms(performance.now() - startupStart),
    ]);

    // 3. 10,000 logged-in sessions (sign-ups through the protocol, hashed at test cost).
    const before = await settledMemory();
    const clients: BenchClient[] = [];
    const sessionNames = Array.from({ length: SESSIONS }, (_, index) => `online${index}`);
    // As many sign-ups at once as the tracker queues for hashing (more are answered `busy`).
    await inBatches(sessionNames, DEFAULT_HASH_QUEUE, async (username) => {
      const link = new BenchLink(`10.${(clients.length >> 8) & 255}.${clients.length & 255}.1`);
      const client = new BenchClient(link, extension.openSession(link));
      clients.push(client);
      const reply = await client.request("SESSION_SIGNUP", {
        username,
        password: "benchmark-password",
        port: 7000,
        peer_id: `${username}@bench`,
      });
      if (reply.status !== "OK") throw new Error(`Sign-up failed: ${JSON.stringify(reply)}`);
    });
    const after = await settledMemory();
    const rounds = 5;
    const cpuBefore = cpuUsage();
    const heartbeatStart = performance.now();
    for (let round = 0; round < rounds; round++) {
      clock.advance(10_000);
      await Promise.all(clients.map((client) => client.request("SESSION_HEARTBEAT")));
    }
    const heartbeatMs = performance.now() - heartbeatStart;
    const cpu = cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    // Live JS heap and buffers after full collections (resident size would also count the
    // garbage of the sign-ups above, and V8 keeps freed pages). It holds the sessions, their
    // accounts and the bench's own clients (about 0.4 KB each, measured apart).
    const added = after.heapUsed + after.external - before.heapUsed - before.external;
    rows.push([
      `memory: ${SESSIONS.toLocaleString("en")} sign-ups with sessions (JS heap + buffers)`,
      `${mib(added)} (${(added / SESSIONS / 1024).toFixed(1)} KB each)`,
    ]);
    rows.push([
      `CPU per heartbeat round of ${SESSIONS.toLocaleString("en")} (every 10 s)`,
      `${ms(cpuMs / rounds)} (${((cpuMs / rounds / 10_000) * 100).toFixed(2)}% of a core)`,
    ]);
    rows.push(["heartbeat round wall time", ms(heartbeatMs / rounds)]);
    rows.push([
      "online sessions after heartbeats",
      String(extension.service!.onlineSessions),
    ]);

    // 4. User-list latency.
    const viewer = clients[0];
    for (
      const [label, fields] of [["page of 100", {}], ["online only", { online: true }]] as const
    ) {
      const times: number[] = [];
      for (let index = 0; index < 100; index++) {
        const started = performance.now();
        await viewer.request("SESSION_USERS", { ...fields, after: `user${index * 997}` });
        times.push(performance.now() - started);
      }
      rows.push([
        `SESSION_USERS ${label} p50 / p99 (${(ACCOUNTS + SESSIONS).toLocaleString("en")} users)`,
        `${ms(percentile(times, 50))} / ${ms(percentile(times, 99))}`,
      ]);
    }

    // 5. A room event pushed to 1,000 online members.
    const members = clients.slice(0, ROOM_MEMBERS);
    await members[0].request("SESSION_ROOM_CREATE", { room: "bench" });
    await inBatches(members.slice(1), 100, async (client) => {
      await client.request("SESSION_ROOM_JOIN", { room: "bench" });
    });
    const mover = clients[ROOM_MEMBERS];
    const fanout: number[] = [];
    for (let index = 0; index < 100; index++) {
      const type = index % 2 === 0 ? "SESSION_ROOM_JOIN" : "SESSION_ROOM_LEAVE";
      const counts = members.map((client) => client.link.events);
      const started = performance.now();
      await mover.request(type, { room: "bench" });
      if (members.some((client, at) => client.link.events !== counts[at] + 1)) {
        throw new Error("A member missed a room event");
      }
      fanout.push(Math.max(...members.map((client) => client.link.lastEventAt)) - started);
    }
    rows.push([
      `room event to ${ROOM_MEMBERS.toLocaleString("en")} online members: p50 / p99 to the last`,
      `${ms(percentile(fanout, 50))} / ${ms(percentile(fanout, 99))}`,
    ]);
    await extension.stop();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }

  const width = Math.max(...rows.map(([label]) => label.length));
  console.log("\naccounts benchmark");
  console.log("-".repeat(width + 24));
  for (const [label, value] of rows) console.log(`${label.padEnd(width)}  ${value}`);
}

if (import.meta.main) await benchAccounts();
