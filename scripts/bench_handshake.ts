/**
 * Connection set-up on loopback, from the dial to "connected" on both sides: HELLO/HELLO_OK and
 * admission in clear, and the same plus the Noise XX handshake and the key checks when both
 * nodes have identities. The dialler is a fresh node in this process each time (its start and
 * stop are not timed), the listener a node in a child process on the other core, as in the SEND
 * benchmarks; clear and encrypted take turns. Each side stamps its own "connected" event on a
 * clock both processes share, and the later of the two ends the sample.
 */
import { startNode } from "./bench_node.ts";
import type { Placement } from "./cpu_placement.ts";
import { type Receiver, startReceiver, wallClock } from "./bench_receiver.ts";
import type { StartablePeerNode } from "../peer/mod.ts";

const WARM_UP = 20;
const CONNECT_TIMEOUT_MS = 5_000;

/** Set-up times in milliseconds, in clear and encrypted, `count` of each. */
export interface HandshakeSamples {
  plain: number[];
  noise: number[];
}

/** Measures `count` connection set-ups of each kind after an untimed warm-up. */
export async function handshakeBenchmarks(
  placement: Placement,
  count: number,
): Promise<HandshakeSamples> {
  const plain = await startReceiver("peer", placement);
  const noise = await startReceiver("noise", placement).catch(async (error) => {
    await plain.stop();
    throw error;
  });
  try {
    const samples: HandshakeSamples = { plain: [], noise: [] };
    for (let i = 0; i < WARM_UP + count; i++) {
      const timedPlain = await setUp(`hp${i}`, plain, false);
      const timedNoise = await setUp(`hn${i}`, noise, true);
      if (i < WARM_UP) continue;
      samples.plain.push(timedPlain);
      samples.noise.push(timedNoise);
    }
    return samples;
  } finally {
    await Promise.all([plain.stop(), noise.stop()]);
  }
}

/** One dial from a fresh node `name` to the receiver's node: milliseconds until both see it up. */
async function setUp(name: string, receiver: Receiver, encrypted: boolean): Promise<number> {
  const node = await startNode(name, { encrypted });
  try {
    const here = connectedHere(node, "b@bench");
    const started = wallClock();
    node.addPeer("b", "bench", { hostname: "127.0.0.1", port: receiver.port });
    const [ours, theirs] = await Promise.all([here, receiver.connectedAt(node.peerId)]);
    return Math.max(ours, theirs) - started;
  } finally {
    await node.stop();
  }
}

/** When `node` reports `peerId` connected, on the `wallClock()` scale. */
function connectedHere(node: StartablePeerNode, peerId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`${node.peerId} did not connect to ${peerId}`));
    }, CONNECT_TIMEOUT_MS);
    const unsubscribe = node.subscribe((event) => {
      if (event.type !== "peer" || event.peerId !== peerId || event.state !== "connected") return;
      const at = wallClock();
      clearTimeout(timer);
      unsubscribe();
      resolve(at);
    });
  });
}
