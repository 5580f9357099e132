/** Peer nodes for the benchmarks: quiet, on loopback, in clear or encrypted. */
import { systemClock } from "../lib/clock.ts";
import { Logger } from "../lib/log.ts";
import { fingerprint, generateIdentityKeyPair, identityFromPrivateKey } from "../lib/noise/mod.ts";
import { KeyPins, TrustPolicy } from "../peer/identity/mod.ts";
import { createPeerNode, type StartablePeerNode } from "../peer/mod.ts";
import type { PeerNode } from "../peer/api.ts";
import { lateInbox, Messenger } from "../peer/messaging/mod.ts";
import { openMessageStore } from "../peer/store/mod.ts";
import { LeastStore, leastStoreInbox, SENT } from "./bench_least_store.ts";

/** How a benchmark node talks to other p2pchat nodes. */
export interface BenchNodeOptions {
  /** The features it lists in HELLO; by default all of this version's. */
  features?: readonly string[];
  /** With a fresh identity key (and keys pinned in memory) it talks encrypted to its kind. */
  encrypted?: boolean;
  /** With a message store in this file: every message sent and received is kept there. */
  storePath?: string;
  /** Instead, with the least store (bench_least_store.ts) in this file. */
  leastStorePath?: string;
}

/**
 * A started bench node; `chat` sends through the store when it has one, and `settle()` moves
 * the store's staged messages into its table (what pauses in the writes do in steps).
 */
export type BenchNode = StartablePeerNode & {
  port: number;
  chat: Pick<PeerNode, "send">;
  settle(): void;
};

const quiet = new Logger({ level: "error", format: "human", sink: () => {} });

/** A started node in namespace "bench" on 127.0.0.1, with the port it listens on. */
export async function startNode(name: string, options: BenchNodeOptions = {}): Promise<BenchNode> {
  const store = options.storePath === undefined
    ? undefined
    : openMessageStore({ path: options.storePath }, { log: quiet, clock: systemClock });
  const least = options.leastStorePath === undefined
    ? undefined
    : new LeastStore(options.leastStorePath);
  let messenger: Messenger | undefined;
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
    inbox: least ? leastStoreInbox(least) : store && lateInbox(() => messenger!),
  }, { log: quiet });
  if (store) {
    messenger = new Messenger({}, { node, chat: node, store, clock: systemClock, log: quiet });
    messenger.start();
    // The store closes after the node: what the node received last is committed.
    const stop = node.stop.bind(node);
    node.stop = async (reason) => {
      await stop(reason);
      messenger!.close();
      store.close();
    };
  }
  if (least) {
    const stop = node.stop.bind(node);
    node.stop = async (reason) => {
      await stop(reason);
      least.close();
    };
  }
  const { port } = await node.start();
  return Object.assign(node, {
    port,
    chat: messenger ?? (least ? leastStoreSender(node, least) : node),
    settle: () => store?.settle(),
  });
}

// Sends as the messenger does, keeping each message in the least store first.
function leastStoreSender(node: StartablePeerNode, least: LeastStore): Pick<PeerNode, "send"> {
  return {
    send(peerId, text) {
      const msgId = node.newMsgId();
      const id = least.add(msgId, text, SENT);
      return node.send(peerId, text, msgId).then((result) => {
        if (result.ok) least.delivered(id);
        return result;
      });
    },
  };
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
