import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import type { NodeEvent } from "../../peer/api.ts";
import { createPeerNode } from "../../peer/node/node.ts";

/** A node on loopback without a tracker, with the events it emitted. */
async function startNode(name: string, namespace: string) {
  const node = createPeerNode({ name, namespace, host: "127.0.0.1", port: 0 }, {
    log: memoryLogger("warn").log,
  });
  const events: NodeEvent[] = [];
  node.subscribe((event) => events.push(event));
  const { port } = await node.start();
  return { node, port, events };
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("PeerNode.publishTo() writes a PUB to exactly the listed connected peers, once per msg_id", async () => {
  const alice = await startNode("alice", "lobby");
  const bob = await startNode("bob", "lobby");
  const carol = await startNode("carol", "games");
  try {
    const signal = AbortSignal.timeout(5_000);
    assert.ok(
      await alice.node.connectPeer("bob@lobby", { hostname: "127.0.0.1", port: bob.port }, signal),
    );
    assert.ok(
      await alice.node.connectPeer(
        "carol@games",
        { hostname: "127.0.0.1", port: carol.port },
        signal,
      ),
    );
    // bob is in scope of #lobby but not listed: only carol (and no unknown peer) gets it.
    const first = await alice.node.publishTo(["carol@games", "nobody@x"], "#lobby", "late", "m-1");
    assert.deepEqual(first, { msgId: "m-1", reached: 1, peers: ["carol@games"], encrypted: 0 });
    const pubs = (events: NodeEvent[]) =>
      events.filter((event) => event.type === "message" && event.kind === "pub");
    await waitFor("carol's PUB", () => pubs(carol.events).length === 1);
    const [pub] = pubs(carol.events);
    assert.ok(pub.type === "message");
    assert.deepEqual([pub.msgId, pub.from, pub.to, pub.text], [
      "m-1",
      "alice@lobby",
      "#lobby",
      "late",
    ]);
    // The same msg_id again is dropped as a duplicate by the receiver; a new one is shown.
    await alice.node.publishTo(["carol@games"], "#lobby", "late", "m-1");
    await alice.node.publishTo(["carol@games"], "#lobby", "next");
    await waitFor("carol's second PUB", () => pubs(carol.events).length === 2);
    // Lines keep their order on one connection: the duplicate came before "next".
    const texts = pubs(carol.events).map((event) => event.type === "message" && event.text);
    assert.deepEqual(texts, ["late", "next"]);
    assert.deepEqual(pubs(bob.events), []);
  } finally {
    await Promise.all([alice, bob, carol].map((peer) => peer.node.stop()));
  }
});
