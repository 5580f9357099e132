/**
 * The terminal UI's costs: taking a long paste (with a direct message arriving meanwhile) and
 * printing an incoming message above the prompt. The UI runs as in a terminal, its output
 * thrown away; the keys come in reads of 4096 bytes, as a pseudo-terminal passes them on.
 */
import { Logger } from "../lib/log.ts";
import type { NodeEvent, PeerNode } from "../peer/api.ts";
import { createPeerNode, type StartablePeerNode } from "../peer/node/mod.ts";
import { runTerminal } from "../peer/tui/terminal.ts";
import { PASTE_END, PASTE_START } from "../peer/tui/keys.ts";

const quiet = () => new Logger({ level: "error", format: "human", sink: () => {} });
const encoder = new TextEncoder();
const PTY_READ_BYTES = 4096;
const PASTE_CHARS = 100_000;
const SCROLLBACK_LINES = 10_000;
const MEASURED_MESSAGES = 2_000;
const ROUNDS = 5;

/** A UI session in terminal mode over `node`; `feed` hands it one read. */
function terminalSession(node: PeerNode) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  let written = 0;
  const done = runTerminal(node, {
    log: quiet(),
    color: true,
    input,
    isTerminal: true,
    output: (text) => void (written += text.length),
    columns: () => 120,
    onResize: () => () => {},
  });
  return {
    feed: (bytes: Uint8Array) => controller.enqueue(bytes),
    get written() {
      return written;
    },
    async end() {
      controller.enqueue(encoder.encode("\x03"));
      await done;
    },
  };
}

/** Milliseconds from the first read of a bracketed paste of `chars` to its last one taken. */
async function pasteMs(session: ReturnType<typeof terminalSession>, chars: number) {
  const bytes = encoder.encode(`${PASTE_START}${"p".repeat(chars)}${PASTE_END}\x15`);
  const started = performance.now();
  for (let at = 0; at < bytes.length; at += PTY_READ_BYTES) {
    session.feed(bytes.subarray(at, at + PTY_READ_BYTES));
    // One read at a time, as a terminal delivers them: the UI takes each before the next.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return performance.now() - started;
}

async function startNode(name: string): Promise<StartablePeerNode & { port: number }> {
  const node = createPeerNode(
    { name, namespace: "bench", host: "127.0.0.1", port: 0 },
    { log: quiet() },
  );
  const { port } = await node.start();
  return Object.assign(node, { port });
}

// The round trip of one SEND (measured here: the node's figure is in whole milliseconds).
async function roundTripMs(sender: PeerNode): Promise<number> {
  const started = performance.now();
  const result = await sender.send("ui@bench", "a message");
  const ms = performance.now() - started;
  if (!result.ok) throw new Error(`not delivered: ${result.reason}`);
  return ms;
}

function median(samples: number[]): number {
  return [...samples].sort((a, b) => a - b)[samples.length >> 1];
}

async function pasteFigures() {
  const [ui, sender] = [await startNode("ui"), await startNode("sender")];
  sender.addPeer("ui", "bench", { hostname: "127.0.0.1", port: ui.port });
  while (!ui.peers().some((peer) => peer.state === "connected")) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const session = terminalSession(ui);
  const small: number[] = [];
  const large: number[] = [];
  const idle: number[] = [];
  const during: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      small.push(await pasteMs(session, 1_000));
      idle.push(await roundTripMs(sender));
      const message = roundTripMs(sender);
      large.push(await pasteMs(session, PASTE_CHARS));
      during.push(await message);
    }
  } finally {
    await session.end();
    await sender.stop();
    await ui.stop();
  }
  return { small: median(small), large: median(large), idle: median(idle), during: median(during) };
}

/** A node that only delivers events the bench emits. */
function eventNode(): PeerNode & { emit(event: NodeEvent): void } {
  const listeners = new Set<(event: NodeEvent) => void>();
  const status = {
    peerId: "ui@bench",
    name: "ui",
    namespace: "bench",
    listen: { hostname: "127.0.0.1", port: 1 },
    tracker: { address: { hostname: "127.0.0.1", port: 2 }, reachable: true },
    peers: { known: 0, connected: 0 },
    startedAt: Date.now(),
  };
  const empty = { msgId: "", reached: 0, peers: [], encrypted: 0 };
  return {
    peerId: status.peerId,
    status: () => status,
    peers: () => [],
    send: () => Promise.resolve({ ok: false, reason: "unknown_peer" }),
    publish: () => Promise.resolve(empty),
    publishTo: () => Promise.resolve(empty),
    connectPeer: () => Promise.resolve(false),
    registerNow: () => {},
    reconnect: () => 0,
    identity: () => undefined,
    verification: () => undefined,
    setVerified: () => false,
    forgetKey: () => false,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => Promise.resolve(),
    emit: (event) => listeners.forEach((listener) => listener(event)),
  };
}

/** Microseconds to print one incoming message above a prompt holding a half-typed line. */
async function redrawMicros(scrollback: number): Promise<number> {
  const node = eventNode();
  const session = terminalSession(node);
  session.feed(encoder.encode("a line being typed, ".repeat(20)));
  await new Promise((resolve) => setTimeout(resolve, 0));
  const message = (i: number): NodeEvent => ({
    type: "message",
    kind: "pub",
    msgId: String(i),
    from: "bob@bench",
    to: "#bench",
    text: `message number ${i}, of an ordinary chat length`,
    at: Date.now(),
  });
  for (let i = 0; i < scrollback; i++) node.emit(message(i));
  const started = performance.now();
  for (let i = 0; i < MEASURED_MESSAGES; i++) node.emit(message(i));
  const micros = ((performance.now() - started) * 1000) / MEASURED_MESSAGES;
  await session.end();
  return micros;
}

export async function benchTui(): Promise<void> {
  const paste = await pasteFigures();
  await redrawMicros(0); // warm-up: compiles the printing path
  const empty = await redrawMicros(0);
  const full = await redrawMicros(SCROLLBACK_LINES);
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const rows = [
    ["measure", "figure", "baseline", "target"],
    [
      `bracketed paste of ${PASTE_CHARS} chars, ${PTY_READ_BYTES}-byte reads (median of ${ROUNDS})`,
      ms(paste.large),
      `${ms(paste.small)} for 1000 chars`,
      "well under 1 s",
    ],
    [
      "SEND->ACK round trip of a message arriving during that paste",
      ms(paste.during),
      `${ms(paste.idle)} idle`,
      "not delayed by the paste",
    ],
    [
      `print one incoming message above the prompt, ${SCROLLBACK_LINES} lines printed before`,
      `${full.toFixed(1)} µs`,
      `${empty.toFixed(1)} µs with none before`,
      "independent of scrollback",
    ],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ");
  console.log(format(rows[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const row of rows.slice(1)) console.log(format(row));
  console.log(
    "Both peers in this process (the UI's node and the sender); the UI's output is discarded.",
  );
}

if (import.meta.main) await benchTui();
