/**
 * Peer benchmarks on loopback, each beside a raw baseline: SEND->ACK round trips (p50/p99),
 * pipelined SEND throughput and its CPU time per message, a PUB to 50 peers, and resident memory
 * per idle connection; then encryption beside p2pchat in clear: the same SEND figures between
 * nodes with identity keys (Noise), and the connection set-up time (bench_handshake.ts).
 * Run: deno run -A scripts/bench_peer.ts [--send-only]
 *
 * The baseline is a minimal Deno line echo: the server frames lines (one write per read, of
 * every complete line in it) without parsing JSON, and the client keeps as many lines in
 * flight as p2pchat keeps SENDs, counting echoed lines. Both SEND measurements use the layout
 * of real use, two processes: the receiving side (the p2pchat node, or the echo server) runs
 * in a child process and the sender in this one, one core each where `taskset` can pin them
 * (see cpu_placement.ts for why). After the same warm-up, baseline and p2pchat
 * take turns, round after round, so that a change in machine load hits both alike. p2pchat is
 * measured three times: as two peers of this version talk (SENDS and ACKS batches) in clear and
 * encrypted, and with one SEND and one ACK line per message, as toward a peer without the
 * p2pchat-batch feature. The receivers are bench_receiver.ts.
 *
 * Memory is measured in child processes started with `--expose-gc`, so earlier benchmarks
 * leave no garbage behind, and beside a floor: bare Deno socket pairs each holding one pending
 * read, which no Deno program can go below.
 */
import { INITIAL_READ_BUFFER_BYTES } from "../lib/transport.ts";
import * as wire from "../peer/protocol/messages.ts";
import { NODE_DEFAULTS, type StartablePeerNode } from "../peer/mod.ts";
import { type BenchNodeOptions, startNode, waitUntil } from "./bench_node.ts";
import { handshakeBenchmarks } from "./bench_handshake.ts";
import { cpuMicros, type Receiver, startReceiver, writeAll } from "./bench_receiver.ts";
import { oneCorePerSide, type Placement } from "./cpu_placement.ts";
import { settledMemory } from "./settled_memory.ts";

const ROUND_TRIPS = 3_000;
// Round trips a subject makes in one turn: short turns, so that a change in machine load lasting
// a fraction of a second hits every subject alike.
const ROUND_TRIPS_PER_TURN = 20;
const PIPELINED = 50_000;
// On this class of machine one pipelined round's rate moves by up to a third from one round to
// the next, whatever the code: with the median of 5, runs of the same code put the store's ratio
// anywhere from 42% to 57%. The median of 15 narrows that spread.
const ROUNDS = 15;
const WARM_UP = 20_000;
const WARM_UP_ROUND_TRIPS = 200;
const WINDOW = 256;
const PUB_PEERS = 50;
const PUB_ROUNDS = 20;
const IDLE_SIDE_A = 40;
const IDLE_SIDE_B = 50; // 40 x 50 = 2000 connections
const HANDSHAKES = 200;
const MEMORY_CHILD_FLAG = "--memory-child";
const SEND_ONLY_FLAG = "--send-only";
const LAYOUT = "receiver (p2pchat node or echo server) in a child process, sender in this one";

const encoder = new TextEncoder();

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

/** `count` SEND-shaped lines, built as p2pchat builds them (fresh id, JSON), in one buffer. */
function sendLines(first: number, count: number): Uint8Array {
  const lines: string[] = [];
  for (let i = first; i < first + count; i++) {
    lines.push(
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
  }
  return encoder.encode(lines.join(""));
}

/** One side of the SEND comparison: the raw baseline or a p2pchat pair. */
interface SendSubject {
  /** Sends one message and waits for its answer (echo or ACK). */
  roundTrip(i: number): Promise<void>;
  /** Sends `total` messages with WINDOW in flight; resolves when all were answered. */
  pipelined(total: number): Promise<void>;
  /** The child process that receives. */
  receiver: Receiver;
  /** Moves what the stores of both sides staged into their tables (nothing without a store). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** The raw baseline: a line echo server and a client counting echoed lines. */
async function echoSubject(placement: Placement): Promise<SendSubject> {
  const server = await startReceiver("echo", placement);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  client.setNoDelay(true);
  const buffer = new Uint8Array(65536);
  // Reads once; returns how many echoed lines it completed.
  const readLines = async () => {
    const count = await client.read(buffer);
    if (count === null) throw new Error("echo server closed");
    let lines = 0;
    for (let i = buffer.indexOf(0x0a); i !== -1 && i < count; i = buffer.indexOf(0x0a, i + 1)) {
      lines++;
    }
    return lines;
  };
  return {
    async roundTrip(i) {
      await writeAll(client, sendLines(i, 1));
      let lines = 0;
      while (lines < 1) lines += await readLines();
    },
    // A sliding window: each read's echoed lines are replaced by as many new ones, in one write.
    async pipelined(total) {
      await writeAll(client, sendLines(0, Math.min(WINDOW, total)));
      let written = Math.min(WINDOW, total);
      let echoed = 0;
      while (echoed < total) {
        const lines = await readLines();
        echoed += lines;
        const more = Math.min(lines, total - written);
        if (more > 0) await writeAll(client, sendLines(written, more));
        written += more;
      }
    },
    receiver: server,
    settle: () => server.settle(),
    async close() {
      client.close();
      await server.stop();
    },
  };
}

/** p2pchat: node "a" here sends to node "b" in a child process; both encrypted or neither. */
async function peerSubject(
  options: BenchNodeOptions & { store?: "stored" | "least" },
  placement: Placement,
): Promise<SendSubject> {
  const encrypted = options.encrypted ?? false;
  const b = await startReceiver(options.store ?? (encrypted ? "noise" : "peer"), placement);
  const storeDir = options.store ? await Deno.makeTempDir() : undefined;
  const a = await startNode("a", {
    ...options,
    storePath: options.store === "stored" ? `${storeDir}/messages.db` : undefined,
    leastStorePath: options.store === "least" ? `${storeDir}/least.db` : undefined,
  }).catch(async (error) => {
    await b.stop();
    throw error;
  });
  try {
    a.addPeer("b", "bench", { hostname: "127.0.0.1", port: b.port });
    await waitUntil(() => a.peers()[0]?.state === "connected");
    if (a.peers()[0].security?.encrypted !== encrypted) {
      throw new Error(`The connection is ${encrypted ? "not " : ""}encrypted`);
    }
  } catch (error) {
    await a.stop();
    await b.stop();
    throw error;
  }
  const chat = a.chat;
  const send = async (i: number) => {
    const result = await chat.send("b@bench", `message ${i}`);
    if (!result.ok) throw new Error(`SEND failed: ${result.reason}`);
  };
  return {
    roundTrip: send,
    // A sliding window keeps WINDOW SENDs in flight, well under the per-connection queue bound.
    // Each worker awaits the node directly: no helper's promise is added to every message.
    async pipelined(total) {
      let next = 0;
      let failure: string | undefined;
      const worker = async () => {
        while (next < total) {
          const result = await chat.send("b@bench", `message ${next++}`);
          if (!result.ok) failure = result.reason;
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
      if (failure) throw new Error(`SEND failed: ${failure}`);
    },
    receiver: b,
    async settle() {
      a.settle();
      await b.settle();
    },
    async close() {
      await a.stop();
      await b.stop();
      if (storeDir) await Deno.remove(storeDir, { recursive: true });
    },
  };
}

interface SendFigures {
  p50: number;
  p99: number;
  /** Median of the pipelined rounds. */
  perSecond: number;
  /** The same, counting the time after each round until the stores hold it all in their tables. */
  settledPerSecond: number;
  /** CPU time per message of the sending and the receiving process over the pipelined rounds. */
  senderCpuMicros: number;
  receiverCpuMicros: number;
}

/**
 * What is measured: the baseline, p2pchat as it talks to p2pchat (in clear, as nodes without an
 * identity do, and encrypted), and one line per message.
 */
type SubjectName = "base" | "peer" | "lines" | "noise" | "stored" | "least";

/** Starts every subject; stops those already started if one fails. */
async function startSubjects(placement: Placement): Promise<Map<SubjectName, SendSubject>> {
  const subjects = new Map<SubjectName, SendSubject>();
  try {
    subjects.set("base", await echoSubject(placement));
    subjects.set("peer", await peerSubject({}, placement));
    const withoutBatches = wire.OUR_FEATURES.filter((feature) => feature !== wire.FEATURE_BATCH);
    subjects.set("lines", await peerSubject({ features: withoutBatches }, placement));
    subjects.set("noise", await peerSubject({ encrypted: true }, placement));
    subjects.set("stored", await peerSubject({ store: "stored" }, placement));
    subjects.set("least", await peerSubject({ store: "least" }, placement));
    return subjects;
  } catch (error) {
    await stopSubjects(subjects);
    throw error;
  }
}

async function stopSubjects(subjects: Map<SubjectName, SendSubject>): Promise<void> {
  await Promise.all([...subjects.values()].map((subject) => subject.close()));
}

/**
 * Every subject gets the same untimed warm-up, then they take turns (a few round trips each, turn
 * after turn; then a pipelined run each, round after round), so that a change in machine load
 * hits all alike.
 * Round trips are reported as percentiles of all samples, throughput as the median round.
 */
async function sendBenchmarks(placement: Placement): Promise<Record<SubjectName, SendFigures>> {
  const subjects = await startSubjects(placement);
  try {
    const rtts = new Map([...subjects.keys()].map((name) => [name, [] as number[]]));
    const rates = new Map([...subjects.keys()].map((name) => [name, [] as number[]]));
    const settledRates = new Map([...subjects.keys()].map((name) => [name, [] as number[]]));
    const cpu = new Map([...subjects.keys()].map((name) => [name, { sender: 0, receiver: 0 }]));
    for (const subject of subjects.values()) {
      for (let i = 0; i < WARM_UP_ROUND_TRIPS; i++) await subject.roundTrip(i);
      await subject.pipelined(WARM_UP);
    }
    for (let turn = 0; turn < ROUND_TRIPS / ROUND_TRIPS_PER_TURN; turn++) {
      for (const [name, subject] of subjects) {
        for (let i = 0; i < ROUND_TRIPS_PER_TURN; i++) {
          const started = performance.now();
          await subject.roundTrip(i);
          rtts.get(name)!.push(performance.now() - started);
        }
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, subject] of subjects) {
        const [sender, receiver] = [cpuMicros(), await subject.receiver.cpuMicros()];
        const started = performance.now();
        await subject.pipelined(PIPELINED);
        rates.get(name)!.push(PIPELINED / ((performance.now() - started) / 1000));
        // Work a store put off (staged rows) is done now, inside this subject's CPU figure.
        await subject.settle();
        settledRates.get(name)!.push(PIPELINED / ((performance.now() - started) / 1000));
        const used = cpu.get(name)!;
        used.sender += cpuMicros() - sender;
        used.receiver += await subject.receiver.cpuMicros() - receiver;
      }
    }
    const figures = (name: SubjectName) => ({
      p50: percentile(rtts.get(name)!, 50),
      p99: percentile(rtts.get(name)!, 99),
      perSecond: percentile(rates.get(name)!, 50),
      settledPerSecond: percentile(settledRates.get(name)!, 50),
      senderCpuMicros: cpu.get(name)!.sender / (PIPELINED * ROUNDS),
      receiverCpuMicros: cpu.get(name)!.receiver / (PIPELINED * ROUNDS),
    });
    return {
      base: figures("base"),
      peer: figures("peer"),
      lines: figures("lines"),
      noise: figures("noise"),
      stored: figures("stored"),
      least: figures("least"),
    };
  } finally {
    await stopSubjects(subjects);
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

/**
 * Growth per connection (both ends in one process), after a full GC, between the first and
 * the second half of the connections: what one more connection costs. Growth from none to
 * half also carries one-off costs (V8 enlarges its young generation under the set-up load,
 * up to tens of MB per process, whatever the number of connections), so it is shown apart.
 */
interface MemoryResult {
  connections: number;
  rss: number;
  /** RSS growth from no connection to the first half, per connection. */
  firstHalfRss: number;
  heap: number;
  external: number;
}

type MemoryKind = "peer" | "floor";

/** Runs one memory measurement in a fresh process with `--expose-gc`. */
async function measureMemory(kind: MemoryKind): Promise<MemoryResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--v8-flags=--expose-gc",
      import.meta.filename!,
      MEMORY_CHILD_FLAG,
      kind,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`Memory benchmark "${kind}" failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

function _growth(
  before: Deno.MemoryUsage,
  half: Deno.MemoryUsage,
  after: Deno.MemoryUsage,
  connections: number,
): MemoryResult {
  const added = connections / 2;
  return {
    connections,
    firstHalfRss: (half.rss - before.rss) / added,
    rss: (after.rss - half.rss) / added,
    heap: (after.heapUsed - half.heapUsed) / added,
    external: (after.external - half.external) / added,
  };
}

/** IDLE_SIDE_A x IDLE_SIDE_B idle p2pchat connections; node start-up is not counted. */
async function idlePeers(): Promise<MemoryResult> {
  const sideA = await Promise.all(
    Array.from({ length: IDLE_SIDE_A }, (_, i) => startNode(`idle-a${i}`)),
  );
  const sideB = await Promise.all(
    Array.from({ length: IDLE_SIDE_B }, (_, i) => startNode(`idle-b${i}`)),
  );
  const connections = IDLE_SIDE_A * IDLE_SIDE_B;
  try {
    const connected = (node: StartablePeerNode) =>
      node.peers().filter((p) => p.state === "connected").length;
    // Side A's first half dials every node of side B, then its second half does.
    const connectHalf = async (dialers: StartablePeerNode[]) => {
      for (const a of dialers) {
        for (const b of sideB) {
          a.addPeer(b.peerId.split("@")[0], "bench", { hostname: "127.0.0.1", port: b.port });
        }
      }
      await waitUntil(() => dialers.every((a) => connected(a) === IDLE_SIDE_B));
      // Steady state: each dial's timeout (a timer and two signals) has run out by then.
      await new Promise((resolve) => setTimeout(resolve, NODE_DEFAULTS.dialTimeoutMs + 500));
      return settledMemory();
    };
    const before = await settledMemory();
    const half = await connectHalf(sideA.slice(0, IDLE_SIDE_A / 2));
    const after = await connectHalf(sideA.slice(IDLE_SIDE_A / 2));
    if (!sideB.every((b) => connected(b) === IDLE_SIDE_A)) throw new Error("Missing connections");
    return _growth(before, half, after, connections);
  } finally {
    await Promise.all([...sideA, ...sideB].map((node) => node.stop()));
  }
}

/** The floor: bare accepted/dialled socket pairs, each end with one pending read. */
async function idleSockets(): Promise<MemoryResult> {
  const connections = IDLE_SIDE_A * IDLE_SIDE_B;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ends: Deno.TcpConn[] = [];
  const reading: Promise<unknown>[] = [];
  const hold = (conn: Deno.TcpConn) => {
    ends.push(conn);
    reading.push(conn.read(new Uint8Array(INITIAL_READ_BUFFER_BYTES)).catch(() => null));
  };
  try {
    const connectHalf = async () => {
      const accepting = (async () => {
        for (let i = 0; i < connections / 2; i++) hold(await listener.accept());
      })();
      for (let i = 0; i < connections / 2; i++) {
        hold(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
      }
      await accepting;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return settledMemory();
    };
    const before = await settledMemory();
    const half = await connectHalf();
    return _growth(before, half, await connectHalf(), connections);
  } finally {
    for (const conn of ends) conn.close();
    await Promise.all(reading);
    listener.close();
  }
}

/** Runs every peer benchmark (or only the SEND ones) and prints a table. */
export async function benchPeer(sendOnly = false): Promise<void> {
  const placement = await oneCorePerSide();
  const { base, peer, lines, noise, stored, least, handshakes } = await (async () => {
    try {
      const send = await sendBenchmarks(placement);
      // The set-up benchmark opens hundreds of connections: not part of a quick SEND run.
      return {
        ...send,
        handshakes: sendOnly ? undefined : await handshakeBenchmarks(placement, HANDSHAKES),
      };
    } finally {
      await placement.release();
    }
  })();
  const ms = (value: number) => `${value.toFixed(3)} ms`;
  const times = (value: number, baseline: number) => `${(value / baseline).toFixed(2)}x`;
  const share = (value: number, baseline: number) => `${((value / baseline) * 100).toFixed(0)}%`;
  const rate = (figures: SendFigures) => `${Math.round(figures.perSecond)} msg/s`;
  const cpu = (figures: SendFigures) =>
    `${(figures.senderCpuMicros + figures.receiverCpuMicros).toFixed(1)} us (sender ${
      figures.senderCpuMicros.toFixed(1)
    } + receiver ${figures.receiverCpuMicros.toFixed(1)})`;
  const cpuTotal = (figures: SendFigures) => figures.senderCpuMicros + figures.receiverCpuMicros;
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  const perEnd = (result: MemoryResult) =>
    `${kb(result.rss / 2)} per end (JS heap ${kb(result.heap / 2)}, buffers ${
      kb(result.external / 2)
    })`;
  const rows: Row[] = [
    {
      measure: `SEND->ACK p50 (${ROUND_TRIPS} sequential)`,
      p2pchat: ms(peer.p50),
      baseline: ms(base.p50),
      ratio: times(peer.p50, base.p50),
      target: "<= 2x",
    },
    {
      measure: "SEND->ACK p99",
      p2pchat: ms(peer.p99),
      baseline: ms(base.p99),
      ratio: times(peer.p99, base.p99),
      target: "",
    },
    {
      measure: `pipelined SEND (${PIPELINED}, ${WINDOW} in flight, median of ${ROUNDS})`,
      p2pchat: rate(peer),
      baseline: rate(base),
      ratio: share(peer.perSecond, base.perSecond),
      target: ">= 50%",
    },
    {
      measure: "  the same, one SEND and one ACK line per message",
      p2pchat: rate(lines),
      baseline: rate(base),
      ratio: share(lines.perSecond, base.perSecond),
      target: "",
    },
    {
      measure: "CPU per pipelined message, in clear",
      p2pchat: cpu(peer),
      baseline: cpu(base),
      ratio: times(cpuTotal(peer), cpuTotal(base)),
      target: "",
    },
    {
      measure: "encrypted SEND->ACK p50 (baseline: in clear)",
      p2pchat: ms(noise.p50),
      baseline: ms(peer.p50),
      ratio: times(noise.p50, peer.p50),
      target: "<= 1.2x",
    },
    {
      measure: "encrypted SEND->ACK p99",
      p2pchat: ms(noise.p99),
      baseline: ms(peer.p99),
      ratio: times(noise.p99, peer.p99),
      target: "",
    },
    {
      measure: "encrypted pipelined SEND",
      p2pchat: rate(noise),
      baseline: rate(peer),
      ratio: share(noise.perSecond, peer.perSecond),
      target: ">= 70%",
    },
    {
      measure: "CPU per pipelined message, encrypted",
      p2pchat: cpu(noise),
      baseline: cpu(peer),
      ratio: times(cpuTotal(noise), cpuTotal(peer)),
      target: "",
    },
    {
      measure: "SEND->ACK p50 with the message store on both sides (baseline: store off)",
      p2pchat: ms(stored.p50),
      baseline: ms(peer.p50),
      ratio: times(stored.p50, peer.p50),
      target: "",
    },
    {
      measure: "pipelined SEND with the message store on both sides",
      p2pchat: rate(stored),
      baseline: rate(peer),
      ratio: share(stored.perSecond, peer.perSecond),
      target: ">= 70%",
    },
    {
      measure: "  the same, until both stores hold the burst in their tables (not staged)",
      p2pchat: `${Math.round(stored.settledPerSecond)} msg/s`,
      baseline: rate(peer),
      ratio: share(stored.settledPerSecond, peer.perSecond),
      target: "",
    },
    {
      measure: "CPU per pipelined message, store on",
      p2pchat: cpu(stored),
      baseline: cpu(peer),
      ratio: times(cpuTotal(stored), cpuTotal(peer)),
      target: "",
    },
    {
      measure: "pipelined SEND with the least store on both sides (bench_least_store.ts)",
      p2pchat: rate(least),
      baseline: rate(peer),
      ratio: share(least.perSecond, peer.perSecond),
      target: "",
    },
    {
      measure: "CPU per pipelined message, least store",
      p2pchat: cpu(least),
      baseline: cpu(peer),
      ratio: times(cpuTotal(least), cpuTotal(peer)),
      target: "",
    },
  ];
  const notes = [
    `SEND layout: ${LAYOUT}; ${placement.description}. Encrypted rows compare with p2pchat ` +
    `in clear (nodes without an identity) in the baseline column. CPU: user + system time ` +
    `of each process over the ${ROUNDS} pipelined rounds, per message, with the store's ` +
    `work after each burst (moving its staged rows into the table).`,
  ];
  if (handshakes) {
    rows.push(
      {
        measure: `connection set-up p50, encrypted (${HANDSHAKES} dials; baseline: in clear)`,
        p2pchat: ms(percentile(handshakes.noise, 50)),
        baseline: ms(percentile(handshakes.plain, 50)),
        ratio: times(percentile(handshakes.noise, 50), percentile(handshakes.plain, 50)),
        target: "",
      },
      {
        measure: "connection set-up p99, encrypted",
        p2pchat: ms(percentile(handshakes.noise, 99)),
        baseline: ms(percentile(handshakes.plain, 99)),
        ratio: times(percentile(handshakes.noise, 99), percentile(handshakes.plain, 99)),
        target: "",
      },
    );
    notes.push(
      'Set-up: from the dial to "connected" on both sides (HELLO/HELLO_OK, then the Noise XX ' +
        "handshake and the key checks when encrypted), a fresh dialling node each time.",
    );
  }
  if (!sendOnly) {
    const pub = await pubFanOut();
    const memory = await measureMemory("peer");
    const floor = await measureMemory("floor");
    rows.push(
      {
        measure: `PUB to ${PUB_PEERS} peers x${PUB_ROUNDS} (${pub.delivered} deliveries)`,
        p2pchat: `p50 ${ms(pub.p50)}, p99 ${ms(pub.p99)}`,
        baseline: "",
        ratio: "",
        target: "p99 < 50 ms",
      },
      {
        measure: `RSS per idle connection (${memory.connections}, both ends in one process)`,
        p2pchat: `${kb(memory.rss)} (first half: ${kb(memory.firstHalfRss)})`,
        baseline: `${kb(floor.rss)} (bare Deno sockets; first half: ${kb(floor.firstHalfRss)})`,
        ratio: `${(memory.rss / floor.rss).toFixed(2)}x`,
        target: "",
      },
      {
        measure: "RSS per connection end (what one peer process holds)",
        p2pchat: perEnd(memory),
        baseline: perEnd(floor),
        ratio: "",
        target: "<= 16 KB",
      },
    );
    notes.push(
      `Memory: growth after a full GC from ${memory.connections / 2} to ${memory.connections} ` +
        `connections, per TCP connection between two peers of the same process (so both of ` +
        `its ends), then halved per end; node start-up is not counted, and "first half" (0 to ` +
        `${memory.connections / 2}) includes one-off growth of V8's young generation. The ` +
        `baseline column is the floor: bare Deno socket pairs with one pending ` +
        `${INITIAL_READ_BUFFER_BYTES}-byte read per end.`,
    );
  }
  const widths = (Object.keys(rows[0]) as (keyof Row)[]).map((key) =>
    Math.max(key.length, ...rows.map((row) => row[key].length))
  );
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ");
  console.log(format(["measure", "p2pchat", "baseline", "ratio", "target"]));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const row of rows) console.log(format(Object.values(row)));
  for (const note of notes) console.log(note);
}

if (import.meta.main) {
  if (Deno.args[0] === MEMORY_CHILD_FLAG) {
    const result = Deno.args[1] === "floor" ? await idleSockets() : await idlePeers();
    console.log(JSON.stringify(result));
  } else {
    await benchPeer(Deno.args.includes(SEND_ONLY_FLAG));
  }
}
