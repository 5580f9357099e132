/**
 * File data between two real nodes over loopback, encrypted: in binary records when both list
 * `p2pchat-file-frames`, in FILE_CHUNK lines when one does not (a p2pchat of before the
 * feature); the file arrives byte for byte either way.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  identityFromPrivateKey,
} from "../../lib/noise/mod.ts";
import { openTransfers, type Transfers } from "../../peer/files/mod.ts";
import { KeyPins, TrustPolicy } from "../../peer/identity/mod.ts";
import { createPeerNode, type StartablePeerNode } from "../../peer/mod.ts";
import { FEATURE_FILE_FRAMES, OUR_FEATURES } from "../../peer/protocol/mod.ts";

interface FileNode {
  node: StartablePeerNode;
  port: number;
  transfers: Transfers;
  dir: string;
}

async function fileNode(name: string, features: readonly string[]): Promise<FileNode> {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-frames-" });
  const { log } = memoryLogger("error");
  const key = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  const node = createPeerNode({
    name,
    namespace: "t",
    host: "127.0.0.1",
    port: 0,
    features,
    identity: {
      key: { ...key, fingerprint: fingerprint(key.publicKey) },
      trust: new TrustPolicy(KeyPins.inMemory(), undefined, systemClock, {}),
    },
    files: {
      // Nothing arrives before start(), after `transfers` is set.
      line: (from, kind, fields) => transfers.line(from, kind, fields),
      record: (from, body) => transfers.record(from, body),
      drained: (peerId) => transfers.drained(peerId),
    },
  }, { log });
  const transfers: Transfers = await openTransfers(
    { stateDir: `${dir}/transfers`, downloadsDir: `${dir}/downloads`, autoAcceptBytes: 1e9 },
    { node, clock: systemClock, log, isContact: () => true },
  );
  const { port } = await node.start();
  return { node, port, transfers, dir };
}

async function until<T>(what: string, probe: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

const WITHOUT_FRAMES = OUR_FEATURES.filter((feature) => feature !== FEATURE_FILE_FRAMES);

for (
  const [label, bobFeatures, agreed] of [
    ["in records when both list p2pchat-file-frames", OUR_FEATURES, true],
    ["in FILE_CHUNK lines when the receiver does not", WITHOUT_FRAMES, false],
  ] as const
) {
  Deno.test(`a file goes ${label}, byte for byte`, async () => {
    const ann = await fileNode("ann", OUR_FEATURES);
    const bob = await fileNode("bob", bobFeatures);
    try {
      ann.node.addPeer("bob", "t", { hostname: "127.0.0.1", port: bob.port });
      const row = await until("connected", () => {
        const peer = ann.node.peers().find((p) => p.peerId === "bob@t");
        return peer?.state === "connected" ? peer : undefined;
      });
      assert.equal(row.security?.encrypted, true);
      assert.equal(row.features.includes(FEATURE_FILE_FRAMES), agreed);
      const data = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
      const path = `${ann.dir}/data.bin`;
      await Deno.writeFile(path, data);
      const sent = await ann.transfers.send("bob@t", path);
      const done = await until("received", () => {
        const transfer = bob.transfers.get(sent.id);
        return transfer?.state === "done" ? transfer : undefined;
      });
      assert.deepEqual(await Deno.readFile(done.savedAs!), data);
      await until("sender done", () => ann.transfers.get(sent.id)?.state === "done");
    } finally {
      for (const side of [ann, bob]) {
        await side.node.stop();
        await side.transfers.close();
        await Deno.remove(side.dir, { recursive: true });
      }
    }
  });
}
