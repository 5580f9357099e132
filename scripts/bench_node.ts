/** Peer nodes for the benchmarks: quiet, on loopback, in clear or encrypted. */
import { systemClock } from "../lib/clock.ts";
import { Logger } from "../lib/log.ts";
import { fingerprint, generateIdentityKeyPair, identityFromPrivateKey } from "../lib/noise/mod.ts";
import { KeyPins, TrustPolicy } from "../peer/identity/mod.ts";
import { createPeerNode, type StartablePeerNode } from "../peer/mod.ts";

/** How a benchmark node talks to other p2pchat nodes. */
export interface BenchNodeOptions {
  /** The features it lists in HELLO; by default all of this version's. */
  features?: readonly string[];
  /** With a fresh identity key (and keys pinned in memory) it talks encrypted to its kind. */
  encrypted?: boolean;
}

const quiet = new Logger({ level: "error", format: "human", sink: () => {} });

/** A started node in namespace "bench" on 127.0.0.1, with the port it listens on. */
export async function startNode(
  name: string,
  options: BenchNodeOptions = {},
): Promise<StartablePeerNode & { port: number }> {
  // Every node shares 127.0.0.1 and most are dialled before anyone discovers them: the
  // per-address fair shares, meant for strangers on the internet, would refuse the set-up.
  const node = createPeerNode({
    name,
    namespace: "bench",
    host: "127.0.0.1",
    port: 0,
    features: options.features,
    maxHandshakesPerIp: 4096,
    maxUnknownPerIp: 4096,
    maxUnknown: 4096,
    identity: options.encrypted ? benchIdentity() : undefined,
  }, { log: quiet });
  const { port } = await node.start();
  return Object.assign(node, { port });
}

function benchIdentity() {
  const key = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  return {
    key: { ...key, fingerprint: fingerprint(key.publicKey) },
    trust: new TrustPolicy(KeyPins.inMemory(), undefined, systemClock, {}),
  };
}

/** Polls `check` until it holds; throws after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("Benchmark setup timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
