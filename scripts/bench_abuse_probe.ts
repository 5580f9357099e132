/**
 * The normal client of the abuse benchmark, in a worker of its own: the floods are generated in
 * the benchmark's main thread (encrypting megabytes of junk at times), and a probe that shared
 * that event loop measured the generator's stalls (3-20 ms every 20 ms) instead of the server's.
 * The main thread asks; the worker answers with p99 figures.
 */
import net from "node:net";
import { createLogger } from "../lib/log.ts";
import { createPeerNode, type StartablePeerNode } from "../peer/mod.ts";

/** Requests made in one probe. */
export const PROBES = 150;

/** What the main thread asks the worker. */
export type ProbeRequest =
  | { kind: "tracker"; port: number }
  | { kind: "peer-start"; trackerPort: number; peerPort: number }
  | { kind: "peer" }
  | { kind: "stop" };

/** A probe's answer: p99 in ms (REGISTER/DISCOVER: the larger), and how many requests failed. */
export interface ProbeResult {
  p99: number;
  failed: number;
}

/** Starts the worker; each call asks one thing and waits for its answer. */
export function startProbeWorker(): {
  ask(request: ProbeRequest): Promise<ProbeResult>;
  close(): void;
} {
  const worker = new Worker(import.meta.url, { type: "module" });
  // A message that arrives while the worker's modules still load (libsodium awaits its start)
  // finds no handler and is lost: the worker says when it listens.
  let queue = new Promise<void>((resolve) => (worker.onmessage = () => resolve()));
  return {
    ask(request) {
      const answer = queue.then(() =>
        new Promise<ProbeResult>((resolve, reject) => {
          worker.onmessage = (event) =>
            event.data.error ? reject(new Error(event.data.error)) : resolve(event.data);
          worker.postMessage(request);
        })
      );
      queue = answer.then(() => {}, () => {});
      return answer;
    },
    close: () => worker.terminate(),
  };
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))];
}

/** One request on a fresh connection from 127.0.0.1; resolves to the reply line. */
function rendezvous(port: number, message: Record<string, unknown>): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    socket.on("connect", () => socket.write(JSON.stringify(message) + "\n"));
    socket.on("data", (data) => reply += String(data));
    socket.on("error", () => resolve(reply || "error"));
    socket.on("close", () => resolve(reply));
  });
}

/** REGISTER and DISCOVER p99 of a normal client (the larger of the two). */
async function probeTracker(port: number): Promise<ProbeResult> {
  const register: number[] = [];
  const discover: number[] = [];
  let failed = 0;
  for (let index = 0; index < PROBES; index++) {
    let started = performance.now();
    const ok1 = (await rendezvous(port, {
      type: "REGISTER",
      namespace: "bench",
      name: "normal",
      port: 7001,
    })).includes('"OK"');
    register.push(performance.now() - started);
    started = performance.now();
    const ok2 = (await rendezvous(port, { type: "DISCOVER", namespace: "bench" })).includes(
      '"OK"',
    );
    discover.push(performance.now() - started);
    if (!ok1 || !ok2) failed++;
  }
  return { p99: Math.max(p99(register), p99(discover)), failed };
}

let sender: StartablePeerNode | undefined;

/** SEND->ACK p99 of a node of this worker sending to the peer under test. */
async function probePeer(node: StartablePeerNode): Promise<ProbeResult> {
  const samples: number[] = [];
  let failed = 0;
  for (let index = 0; index < PROBES; index++) {
    const started = performance.now();
    const result = await node.send("target@bench", `probe ${index}`);
    samples.push(performance.now() - started);
    if (!result.ok) failed++;
  }
  return { p99: p99(samples), failed };
}

async function answer(request: ProbeRequest): Promise<ProbeResult> {
  switch (request.kind) {
    case "tracker":
      return await probeTracker(request.port);
    case "peer-start": {
      // Registered with the tracker, so the target lists it: a known peer, not a stranger.
      sender = createPeerNode(
        {
          name: "sender",
          namespace: "bench",
          host: "127.0.0.1",
          port: 0,
          tracker: { hostname: "127.0.0.1", port: request.trackerPort },
        },
        { log: createLogger({ level: "error" }) },
      );
      await sender.start();
      sender.addPeer("target", "bench", { hostname: "127.0.0.1", port: request.peerPort });
      return await probePeer(sender); // connects and warms up
    }
    case "peer":
      if (!sender) throw new Error("peer-start first");
      return await probePeer(sender);
    case "stop":
      await sender?.stop();
      sender = undefined;
      return { p99: 0, failed: 0 };
  }
}

// In the worker: answer each request in turn.
if ("WorkerGlobalScope" in globalThis) {
  // The worker's scope (Deno's types describe a window).
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<ProbeRequest>) => void;
    postMessage(data: unknown): void;
  };
  scope.onmessage = async (event) => {
    try {
      scope.postMessage(await answer(event.data));
    } catch (error) {
      scope.postMessage({ error: String(error) });
    }
  };
  scope.postMessage({ ready: true });
}
