/**
 * Tracker benchmark: REGISTER and DISCOVER throughput and latency with a fresh connection per
 * request (as pyp2p clients do), against a baseline TCP server that answers every line with a
 * fixed reply, plus DISCOVER of a namespace holding 10,000 registrations.
 *
 * Both servers run in this process on 127.0.0.1 with rate limiting off, so client and server
 * share the same event loop in both cases and the ratio compares like with like. Then, on a
 * tracker with accounts: opening an encrypted session (SESSION_HELLO and the Noise XX
 * handshake) on a fresh connection, and a request's round trip inside an open session.
 */
import { systemClock } from "../lib/clock.ts";
import { LineDecoder } from "../lib/framing.ts";
import { Logger } from "../lib/log.ts";
import {
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
} from "../lib/noise/mod.ts";
import { openSecureSession, type SessionIdentity } from "../lib/secure_session.ts";
import { TcpConn } from "../lib/transport.ts";
import { createAccountsExtension, createTracker } from "../tracker/mod.ts";

const MEASURE_MS = 500;
const ROUNDS = 3;
const WARMUP_MS = 100;
const BIG_NAMESPACE_SIZE = 10_000;
const BIG_DISCOVER_MAX_MS = 3000;
const BIG_DISCOVER_MAX_REQUESTS = 300;
const SESSION_MEASURE_MS = 1500;
const MAX_SESSION_SAMPLES = 1000;
const encoder = new TextEncoder();

interface Result {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/** Runs the benchmark and prints a table. */
export async function benchTracker(): Promise<void> {
  const log = new Logger({ level: "error", format: "human", sink: () => {} });
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false, maxConnections: 4096 },
    { clock: systemClock, log },
  );
  const { port } = await tracker.start();
  const baseline = _startBaseline();
  try {
    for (let i = 0; i < 10; i++) {
      await _request(
        port,
        _line({ type: "REGISTER", namespace: "bench-small", name: `s${i}`, port: 1000 + i }),
      );
    }
    let counter = 0;
    const register = () =>
      _line({
        type: "REGISTER",
        namespace: "bench",
        name: `n${counter++ % 1000}`,
        port: 4000,
        ttl: 600,
      });
    const discover = () => _line({ type: "DISCOVER", namespace: "bench-small" });

    // Short interleaved rounds so load from other processes hits every scenario alike.
    const rows: string[][] = [];
    for (const concurrency of [1, 32]) {
      const scenarios = [
        { label: "baseline (fixed reply)", port: baseline.port, make: register },
        { label: "REGISTER", port, make: register },
        { label: "DISCOVER (10 peers)", port, make: discover },
      ];
      const samples = scenarios.map(() => ({ latencies: [] as number[], elapsed: 0 }));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, scenario] of scenarios.entries()) {
          const sample = await _measure(scenario.port, scenario.make, concurrency);
          samples[i].latencies.push(...sample.latencies);
          samples[i].elapsed += sample.elapsed;
        }
      }
      const results = samples.map((sample) => _summarize(sample.latencies, sample.elapsed));
      for (const [i, scenario] of scenarios.entries()) {
        const ratio = i === 0 ? undefined : results[i].perSecond / results[0].perSecond;
        rows.push(_row(scenario.label, concurrency, results[i], ratio));
      }
    }

    await _fill(port, "bench-big", BIG_NAMESPACE_SIZE);
    const bigSample = await _measure(
      port,
      () => _line({ type: "DISCOVER", namespace: "bench-big" }),
      1,
      { maxMs: BIG_DISCOVER_MAX_MS, maxRequests: BIG_DISCOVER_MAX_REQUESTS },
    );
    const big = _summarize(bigSample.latencies, bigSample.elapsed);
    rows.push(_row(`DISCOVER (${BIG_NAMESPACE_SIZE} peers)`, 1, big, undefined));
    rows.push(...await _sessionRows(log));

    _print(rows);
    const worst = Math.min(
      ...rows.filter((row) => row[6] !== "").map((row) => Number.parseFloat(row[6]) / 100),
    );
    console.log(
      `\nTargets: >= 60% of baseline (worst ${(worst * 100).toFixed(0)}%: ${
        worst >= 0.6 ? "met" : "MISSED"
      }); ` +
        `DISCOVER of ${BIG_NAMESPACE_SIZE} p99 < 20 ms (${big.p99.toFixed(2)} ms: ${
          big.p99 < 20 ? "met" : "MISSED"
        })`,
    );
  } finally {
    await baseline.stop();
    await tracker.stop();
  }
}

/** Encrypted sessions on a tracker with accounts: opening one, and a request inside one. */
async function _sessionRows(log: Logger): Promise<string[][]> {
  const dataDir = await Deno.makeTempDir({ prefix: "bench-sessions-" });
  const deps = { clock: systemClock, log };
  const extension = createAccountsExtension({ mode: "optional", dataDir }, deps);
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false },
    { ...deps, extension },
  );
  const { port } = await tracker.start();
  const who: SessionIdentity = {
    identity: identityFromPrivateKey(generateIdentityKeyPair().privateKey),
    staticKeyPair: generateStaticKeyPair(),
    localId: "bench@default",
  };
  const open = async () =>
    (await openSecureSession(
      new TcpConn(await Deno.connect({ hostname: "127.0.0.1", port })),
      who,
    )).conn;
  try {
    const opening = await _timed(async () => (await open()).close());
    const conn = await open();
    const reader = conn.chunks()[Symbol.asyncIterator]();
    const decoder = new LineDecoder();
    const request = _line({ type: "SESSION_KEYS", id: 1, usernames: ["alice"] });
    const inSession = await _timed(async () => {
      await conn.write(request);
      while (true) {
        const next = await reader.next();
        if (next.done) throw new Error("the session closed");
        if (decoder.push(next.value).length > 0) return;
      }
    });
    conn.close();
    return [
      _row("session opening (HELLO + Noise XX)", 1, opening, undefined),
      _row("SESSION_KEYS in an open session", 1, inSession, undefined),
    ];
  } finally {
    await tracker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Runs `step` one at a time for SESSION_MEASURE_MS (after a warm-up); its latencies. */
async function _timed(step: () => Promise<void>): Promise<Result> {
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) await step();
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + SESSION_MEASURE_MS;
  while (performance.now() < deadline && latencies.length < MAX_SESSION_SAMPLES) {
    const t0 = performance.now();
    await step();
    latencies.push(performance.now() - t0);
  }
  return _summarize(latencies, performance.now() - started);
}

function _line(message: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/** One request on a fresh connection: connect, write, read until the server closes. */
async function _request(
  port: number,
  bytes: Uint8Array,
  buffer = new Uint8Array(65536),
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let received = 0;
  try {
    await conn.write(bytes);
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) break;
      received += count;
    }
  } finally {
    conn.close();
  }
  if (received === 0) throw new Error("empty reply");
  return received;
}

async function _measure(
  port: number,
  make: () => Uint8Array,
  concurrency: number,
  limits: { maxMs: number; maxRequests: number } = { maxMs: MEASURE_MS, maxRequests: Infinity },
): Promise<{ latencies: number[]; elapsed: number }> {
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) await _request(port, make());
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + limits.maxMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    const buffer = new Uint8Array(65536);
    while (performance.now() < deadline && latencies.length < limits.maxRequests) {
      const t0 = performance.now();
      await _request(port, make(), buffer);
      latencies.push(performance.now() - t0);
    }
  }));
  return { latencies, elapsed: performance.now() - started };
}

function _summarize(latencies: number[], elapsed: number): Result {
  const sorted = latencies.toSorted((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return {
    requests: sorted.length,
    perSecond: sorted.length / (elapsed / 1000),
    p50: pick(0.5),
    p99: pick(0.99),
  };
}

async function _fill(port: number, namespace: string, count: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < count) {
      const i = next++;
      await _request(
        port,
        _line({ type: "REGISTER", namespace, name: `peer-${i}`, port: 1 + (i % 65535), ttl: 3600 }),
      );
    }
  }));
}

/** The baseline: the least a line server can do (read once, write a fixed reply, close). */
function _startBaseline(): { port: number; stop(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const reply = encoder.encode('{"status":"OK","ttl":600,"ip":"127.0.0.1","port":4000}\n');
  const open = new Set<Deno.TcpConn>();
  const loop = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          while (true) {
            const count = await conn.read(buffer);
            if (count === null) break;
            if (buffer.subarray(0, count).includes(0x0a)) {
              await conn.write(reply);
              break;
            }
          }
        } catch {
          // Client went away.
        } finally {
          open.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async stop() {
      listener.close();
      for (const conn of open) conn.close();
      await loop;
    },
  };
}

function _row(
  label: string,
  concurrency: number,
  result: Result,
  ratio: number | undefined,
): string[] {
  return [
    label,
    String(concurrency),
    String(result.requests),
    result.perSecond.toFixed(0),
    result.p50.toFixed(2),
    result.p99.toFixed(2),
    ratio === undefined ? "" : `${(ratio * 100).toFixed(0)}%`,
  ];
}

function _print(rows: string[][]): void {
  const header = ["scenario", "conc", "requests", "req/s", "p50 ms", "p99 ms", "vs baseline"];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i].length))
  );
  const format = (row: string[]) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
  console.log("Tracker benchmark (fresh TCP connection per request, 127.0.0.1, rate limit off)\n");
  console.log(format(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(format(row));
}

if (import.meta.main) await benchTracker();
