/**
 * Peer benchmarks on loopback, each beside a raw baseline: SEND->ACK round trips (p50/p99),
 * pipelined SEND throughput, a PUB to 50 peers, and resident memory per idle connection.
 * Run: deno run -A scripts/bench_peer.ts
 */
import { Logger } from "../lib/log.ts";
import { createPeerNode, type StartablePeerNode } from "../peer/node.ts";

const ROUND_TRIPS = 500;
const PIPELINED = 5_000;
const WINDOW = 256;
const PUB_PEERS = 50;
const PUB_ROUNDS = 20;
const IDLE_SIDE_A = 25;
const IDLE_SIDE_B = 40; // 25 x 40 = 1000 connections

const encoder = new TextEncoder();
const quiet = new Logger({ level: "error", format: "human", sink: () => {} });

interface Row {
  measure: string;
  p2pchat: string;
  baseline: string;
  ratio: string;
  target: string;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function startNode(name: string): Promise<StartablePeerNode & { port: number }> {
  const node = createPeerNode({ name, namespace: "bench", host: "127.0.0.1", port: 0 }, {
    log: quiet,
  });
  const { port } = await node.start();
  return Object.assign(node, { port });
}

async function waitUntil(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("Benchmark setup timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A line echo server and a client that counts echoed lines: the raw baseline. */
async function baseline(): Promise<{ p50: number; p99: number; perSecond: number }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(65536);
    for (;;) {
      const count = await conn.read(buffer).catch(() => null);
      if (count === null) break;
      await conn.write(buffer.subarray(0, count)).catch(() => {});
    }
    conn.close();
  })();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  client.setNoDelay(true);
  const buffer = new Uint8Array(65536);
  let pendingNewlines = 0;
  const readLines = async (wanted: number) => {
    while (pendingNewlines < wanted) {
      const count = await client.read(buffer);
      if (count === null) throw new Error("echo server closed");
      for (let i = 0; i < count; i++) if (buffer[i] === 0x0a) pendingNewlines++;
    }
    pendingNewlines -= wanted;
  };
  const line = (i: number) =>
    encoder.encode(
      JSON.stringify({
        type: "SEND",
        msg_id: crypto.randomUUID(),
        src: "a@bench",
        dst: "b@bench",
        payload: `message ${i}`,
        require_ack: true,
        ttl: 1,
      }) + "\n",
    );
  const rtts: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const started = performance.now();
    await client.write(line(i));
    await readLines(1);
    rtts.push(performance.now() - started);
  }
  const started = performance.now();
  let sent = 0;
  while (sent < PIPELINED) {
    const batch = Math.min(WINDOW, PIPELINED - sent);
    // The whole window in one write: the best a raw pipelined sender can do.
    const lines = Array.from({ length: batch }, (_, i) => line(sent + i));
    const joined = new Uint8Array(lines.reduce((n, bytes) => n + bytes.length, 0));
    let offset = 0;
    for (const bytes of lines) {
      joined.set(bytes, offset);
      offset += bytes.length;
    }
    for (let written = 0; written < joined.length;) {
      written += await client.write(joined.subarray(written));
    }
    await readLines(batch);
    sent += batch;
  }
  const perSecond = PIPELINED / ((performance.now() - started) / 1000);
  client.close();
  await serving;
  listener.close();
  return { p50: percentile(rtts, 50), p99: percentile(rtts, 99), perSecond };
}

async function peerPair(): Promise<{ p50: number; p99: number; perSecond: number }> {
  const a = await startNode("a");
  const b = await startNode("b");
  try {
    a.addPeer("b", "bench", { hostname: "127.0.0.1", port: b.port });
    await waitUntil(() => a.peers()[0]?.state === "connected");
    const rtts: number[] = [];
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const started = performance.now();
      const result = await a.send("b@bench", `message ${i}`);
      if (!result.ok) throw new Error(`SEND failed: ${result.reason}`);
      rtts.push(performance.now() - started);
    }
    const started = performance.now();
    let acked = 0;
    let next = 0;
    // A sliding window keeps WINDOW SENDs in flight, well under the per-connection queue bound.
    const worker = async () => {
      while (next < PIPELINED) {
        next++;
        if ((await a.send("b@bench", `message ${next}`)).ok) acked++;
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
    const perSecond = acked / ((performance.now() - started) / 1000);
    if (acked !== PIPELINED) throw new Error(`Only ${acked} of ${PIPELINED} SENDs were ACKed`);
    return { p50: percentile(rtts, 50), p99: percentile(rtts, 99), perSecond };
  } finally {
    await a.stop();
    await b.stop();
  }
}

async function pubFanOut(): Promise<{ p50: number; p99: number; delivered: number }> {
  const hub = await startNode("hub");
  const leaves = await Promise.all(
    Array.from({ length: PUB_PEERS }, (_, i) => startNode(`leaf${i}`)),
  );
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  for (const leaf of leaves) {
    leaf.subscribe((event) => {
      if (event.type !== "message") return;
      const at = sentAt.get(event.text);
      if (at !== undefined) latencies.push(performance.now() - at);
    });
  }
  try {
    for (const leaf of leaves) {
      hub.addPeer(leaf.peerId.split("@")[0], "bench", {
        hostname: "127.0.0.1",
        port: leaf.port,
      });
    }
    await waitUntil(() => hub.peers().filter((p) => p.state === "connected").length === PUB_PEERS);
    for (let round = 0; round < PUB_ROUNDS; round++) {
      const text = `pub ${round}`;
      sentAt.set(text, performance.now());
      const result = await hub.publish("*", text);
      if (result.reached !== PUB_PEERS) throw new Error(`PUB reached ${result.reached}`);
      await waitUntil(() => latencies.length === (round + 1) * PUB_PEERS, 5_000);
    }
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      delivered: latencies.length,
    };
  } finally {
    await Promise.all([hub, ...leaves].map((node) => node.stop()));
  }
}

interface MemoryResult {
  connections: number;
  rssPerConnection: number;
  heapPerConnection: number;
  externalPerConnection: number;
}

async function idleMemory(): Promise<MemoryResult> {
  const sideA = await Promise.all(
    Array.from({ length: IDLE_SIDE_A }, (_, i) => startNode(`idle-a${i}`)),
  );
  const sideB = await Promise.all(
    Array.from({ length: IDLE_SIDE_B }, (_, i) => startNode(`idle-b${i}`)),
  );
  const before = Deno.memoryUsage();
  try {
    for (const a of sideA) {
      for (const b of sideB) {
        a.addPeer(b.peerId.split("@")[0], "bench", { hostname: "127.0.0.1", port: b.port });
      }
    }
    const connections = IDLE_SIDE_A * IDLE_SIDE_B;
    await waitUntil(() =>
      sideA.every((a) => a.peers().filter((p) => p.state === "connected").length === IDLE_SIDE_B)
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = Deno.memoryUsage();
    return {
      connections,
      rssPerConnection: (after.rss - before.rss) / connections,
      heapPerConnection: (after.heapUsed - before.heapUsed) / connections,
      externalPerConnection: (after.external - before.external) / connections,
    };
  } finally {
    await Promise.all([...sideA, ...sideB].map((node) => node.stop()));
  }
}

/** Runs every peer benchmark and prints a table. */
export async function benchPeer(): Promise<void> {
  const base = await baseline();
  const peer = await peerPair();
  const pub = await pubFanOut();
  const memory = await idleMemory();
  const ms = (value: number) => `${value.toFixed(3)} ms`;
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  const rows: Row[] = [
    {
      measure: `SEND->ACK p50 (${ROUND_TRIPS} sequential)`,
      p2pchat: ms(peer.p50),
      baseline: ms(base.p50),
      ratio: `${(peer.p50 / base.p50).toFixed(2)}x`,
      target: "<= 2x",
    },
    {
      measure: "SEND->ACK p99",
      p2pchat: ms(peer.p99),
      baseline: ms(base.p99),
      ratio: `${(peer.p99 / base.p99).toFixed(2)}x`,
      target: "",
    },
    {
      measure: `pipelined SEND (${PIPELINED}, ${WINDOW} in flight)`,
      p2pchat: `${Math.round(peer.perSecond)} msg/s`,
      baseline: `${Math.round(base.perSecond)} msg/s`,
      ratio: `${((peer.perSecond / base.perSecond) * 100).toFixed(0)}%`,
      target: ">= 50%",
    },
    {
      measure: `PUB to ${PUB_PEERS} peers x${PUB_ROUNDS} (${pub.delivered} deliveries)`,
      p2pchat: `p50 ${ms(pub.p50)}, p99 ${ms(pub.p99)}`,
      baseline: "",
      ratio: "",
      target: "p99 < 50 ms",
    },
    {
      measure: `RSS per idle connection (${memory.connections}, both ends)`,
      p2pchat: `${kb(memory.rssPerConnection)} (JS heap ${kb(memory.heapPerConnection)}, buffers ${
        kb(memory.externalPerConnection)
      })`,
      baseline: "",
      ratio: "",
      target: "<= 16 KB",
    },
  ];
  const widths = (Object.keys(rows[0]) as (keyof Row)[]).map((key) =>
    Math.max(key.length, ...rows.map((row) => row[key].length))
  );
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ");
  console.log(format(["measure", "p2pchat", "baseline", "ratio", "target"]));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const row of rows) console.log(format(Object.values(row)));
}

if (import.meta.main) await benchPeer();
