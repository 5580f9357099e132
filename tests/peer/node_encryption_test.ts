/**
 * Encrypted connections between real nodes on loopback: the Noise handshake, key checks
 * (account keys, keys pinned on first use, no downgrade) and hostile bytes on the wire.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
  PROLOGUE_PREFIX,
} from "../../lib/noise/mod.ts";
import { upgradeConn } from "../../lib/secure_conn.ts";
import { type Conn, dialTcp } from "../../lib/transport.ts";
import type { NodeEvent, SecurityNotice } from "../../peer/api.ts";
import { KeyPins, TrustPolicy } from "../../peer/identity/mod.ts";
import { FakeAccountKeys } from "../_fake_account_keys.ts";
import { createPeerNode, type StartablePeerNode } from "../../peer/node/node.ts";

const encoder = new TextEncoder();

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Running {
  node: StartablePeerNode;
  port: number;
  publicKey: Uint8Array;
  events: NodeEvent[];
  pins: KeyPins;
}

interface NodeSetup {
  /** Without an identity the node speaks in clear, as a plain pyp2p peer would. */
  plain?: boolean;
  accounts?: FakeAccountKeys;
  requireEncryption?: boolean;
  privateKey?: Uint8Array;
}

const nodes: Running[] = [];
const carolKey = generateIdentityKeyPair().privateKey;

async function start(name: string, setup: NodeSetup = {}): Promise<Running> {
  const key = identityFromPrivateKey(setup.privateKey ?? generateIdentityKeyPair().privateKey);
  const pins = KeyPins.inMemory();
  const trust = new TrustPolicy(pins, setup.accounts, systemClock, {
    requireEncryption: setup.requireEncryption,
  });
  const node = createPeerNode({
    name,
    namespace: "ns",
    host: "127.0.0.1",
    port: 0,
    ackTimeoutMs: 2_000,
    byeCooldownMs: 50,
    maxReconnectAttempts: 0,
    identity: setup.plain
      ? undefined
      : { key: { ...key, fingerprint: fingerprint(key.publicKey) }, trust },
  }, { log: memoryLogger("error").log });
  const events: NodeEvent[] = [];
  node.subscribe((event) => events.push(event));
  const { port } = await node.start();
  const running = { node, port, publicKey: key.publicKey, events, pins };
  nodes.push(running);
  return running;
}

async function stopAll(): Promise<void> {
  await Promise.all(nodes.splice(0).map((r) => r.node.stop()));
}

function link(from: Running, to: Running): void {
  from.node.addPeer(to.node.peerId.split("@")[0], "ns", { hostname: "127.0.0.1", port: to.port });
}

const connected = (r: Running, peerId: string) =>
  r.node.peers().some((p) => p.peerId === peerId && p.state === "connected");

const stateOf = (r: Running, peerId: string) =>
  r.node.peers().find((p) => p.peerId === peerId)?.state;

const notices = (r: Running): SecurityNotice[] =>
  r.events.flatMap((event) => event.type === "security" ? [event.notice] : []);

const texts = (r: Running) =>
  r.events.flatMap((event) => event.type === "message" ? [event.text] : []);

Deno.test("two nodes with identities chat encrypted, and see the same safety number", async () => {
  try {
    const a = await start("a");
    const b = await start("b");
    link(a, b);
    await waitFor("connected", () => connected(a, "b@ns") && connected(b, "a@ns"));
    const row = a.node.peers().find((p) => p.peerId === "b@ns")!;
    assert.deepEqual(row.security, {
      encrypted: true,
      trust: "unverified",
      accountBound: false,
      fingerprint: fingerprint(b.publicKey),
    });
    assert.equal(a.node.encryptedLink("b@ns"), true);
    assert.equal(a.node.encryptedLink("nobody@ns"), undefined);
    const sent = await a.node.send("b@ns", "secret hello");
    assert.equal(sent.ok, true);
    await waitFor("delivery", () => texts(b).includes("secret hello"));
    const published = await b.node.publish("#ns", "to everyone");
    assert.equal(published.encrypted, 1);
    const ours = a.node.verification("b@ns")!;
    const theirs = b.node.verification("a@ns")!;
    assert.equal(ours.safetyNumber, theirs.safetyNumber);
    assert.match(ours.safetyNumber, /^(\d{5} ){11}\d{5}$/);
    assert.equal(a.node.setVerified("b@ns", true), true);
    assert.equal(a.node.peers().find((p) => p.peerId === "b@ns")!.security!.trust, "verified");
  } finally {
    await stopAll();
  }
});

Deno.test("a peer_id seen before with another key is refused, and both sides are told", async () => {
  try {
    const a = await start("a");
    const b = await start("b");
    link(b, a);
    await waitFor("first contact", () => connected(a, "b@ns"));
    await b.node.stop();
    const impostor = await start("b");
    link(impostor, a);
    await waitFor("refusal", () => notices(a).some((n) => n.kind === "key_changed"));
    await waitFor("told", () => notices(impostor).some((n) => n.kind === "refused"));
    assert.deepEqual(notices(impostor).find((n) => n.kind === "refused"), {
      kind: "refused",
      peerId: "a@ns",
      reason: "key_changed",
    });
    assert.equal(connected(a, "b@ns"), false);
    // Redialling cannot change the answer: the impostor marks a failed and stops dialling it.
    await waitFor("failed", () => stateOf(impostor, "a@ns") === "failed");
    const dials = () => impostor.events.filter((e) => e.type === "peer" && e.state === "connected");
    const dialsBefore = dials().length;
    link(impostor, a);
    await new Promise((resolve) => setTimeout(resolve, 300)); // six bye cooldowns
    assert.equal(dials().length, dialsBefore);
    assert.equal(stateOf(impostor, "a@ns"), "failed");
    // a finds it at its address (as from discovery) and refuses it too, for good.
    link(a, impostor);
    await waitFor("a gave up", () => stateOf(a, "b@ns") === "failed");
    // Once the user forgets the old key, a dials again and the new key is trusted on first use.
    assert.equal(a.node.forgetKey("b@ns"), true);
    await waitFor("accepted after forgetting", () => connected(a, "b@ns"));
  } finally {
    await stopAll();
  }
});

Deno.test("the tracker's account key decides: an impostor is refused, the owner connects", async () => {
  try {
    const accounts = new FakeAccountKeys();
    const alicePrivate = generateIdentityKeyPair().privateKey;
    accounts.keys.set("alice", identityFromPrivateKey(alicePrivate).publicKey);
    const bob = await start("bob", { accounts });
    const impostor = await start("alice");
    link(impostor, bob);
    await waitFor("impostor refused", () => notices(bob).some((n) => n.kind === "impostor"));
    await waitFor("impostor told", () => notices(impostor).some((n) => n.kind === "refused"));
    assert.equal(connected(bob, "alice@ns"), false);
    await impostor.node.stop();
    const alice = await start("alice", { privateKey: alicePrivate });
    link(alice, bob);
    await waitFor("owner connected", () => connected(bob, "alice@ns"));
    assert.equal(
      bob.node.peers().find((p) => p.peerId === "alice@ns")!.security!.accountBound,
      true,
    );
    await alice.node.stop();
    // The account's key changes at the tracker: the new key is accepted, with a notice.
    const newPrivate = generateIdentityKeyPair().privateKey;
    accounts.keys.set("alice", identityFromPrivateKey(newPrivate).publicKey);
    const moved = await start("alice", { privateKey: newPrivate });
    link(moved, bob);
    await waitFor("new key accepted", () => connected(bob, "alice@ns"));
    assert.equal(notices(bob).at(-1)?.kind, "account_key_changed");
    assert.equal(
      bob.node.peers().find((p) => p.peerId === "alice@ns")!.security!.trust,
      "key_changed",
    );
  } finally {
    await stopAll();
  }
});

Deno.test("no downgrade: a known peer in clear is refused; plain peers work unless refused by option", async () => {
  try {
    const a = await start("a");
    const b = await start("b");
    link(b, a);
    await waitFor("pinned", () => connected(a, "b@ns"));
    await b.node.stop();
    const plainB = await start("b", { plain: true });
    link(plainB, a);
    await waitFor("downgrade refused", () => notices(a).some((n) => n.kind === "downgrade"));
    assert.equal(connected(a, "b@ns"), false);

    const plainC = await start("c", { plain: true });
    link(plainC, a);
    await waitFor("plain peer connected", () => connected(a, "c@ns"));
    assert.equal(a.node.peers().find((p) => p.peerId === "c@ns")!.security!.trust, "unencrypted");
    assert.equal(a.node.encryptedLink("c@ns"), false);
    assert.equal(a.node.encryptedLink("b@ns"), undefined, "refused: not connected");
    const reach = await a.node.publish("#ns", "hi all");
    assert.deepEqual([reach.reached, reach.encrypted], [1, 0]);

    const strict = await start("s", { requireEncryption: true });
    const plainD = await start("d", { plain: true });
    link(plainD, strict);
    await waitFor("told", () => notices(plainD).some((n) => n.kind === "refused"));
    assert.equal(connected(strict, "d@ns"), false);
  } finally {
    await stopAll();
  }
});

Deno.test("garbage after HELLO_OK closes only that connection, and nothing is shown", async () => {
  try {
    const a = await start("a");
    const attempts: Uint8Array[] = [
      new Uint8Array([0x00, 0x00]), // an empty frame
      new Uint8Array([0xff, 0xff, ...new Uint8Array(100)]), // a length past what follows
      new Uint8Array([0x00, 0x20, ...new Uint8Array(32).fill(7)]), // not a key
      encoder.encode('{"type":"SEND","msg_id":"x","payload":"in clear"}\n'),
    ];
    for (const garbage of attempts) {
      const conn = await dialTcp("127.0.0.1", a.port);
      const hello = {
        type: "HELLO",
        peer_id: "mallory@ns",
        features: ["p2pchat", "p2pchat-noise"],
      };
      await conn.write(encoder.encode(JSON.stringify(hello) + "\n"));
      const reader = conn.chunks()[Symbol.asyncIterator]();
      await reader.next(); // HELLO_OK
      await conn.write(garbage);
      // The node closes the connection (a frame that cannot be a handshake message) or keeps
      // waiting for the rest of it; either way it never shows anything.
      await Promise.race([reader.next(), new Promise((resolve) => setTimeout(resolve, 300))]);
      conn.close();
    }
    const b = await start("b");
    link(b, a);
    await waitFor("still serving", () => connected(a, "b@ns"));
    assert.deepEqual(texts(a), []);
    assert.equal(connected(a, "mallory@ns"), false);
  } finally {
    await stopAll();
  }
});

/** A connection whose writes can be held back instead of sent, to send them altered. */
class TapConn implements Conn {
  held?: Uint8Array[];
  constructor(readonly inner: Conn) {}
  get remote() {
    return this.inner.remote;
  }
  get local() {
    return this.inner.local;
  }
  get closed() {
    return this.inner.closed;
  }
  chunks() {
    return this.inner.chunks();
  }
  write(bytes: Uint8Array): Promise<void> {
    if (!this.held) return this.inner.write(bytes);
    this.held.push(bytes.slice());
    return Promise.resolve();
  }
  close() {
    this.inner.close();
  }
}

const mallory = identityFromPrivateKey(generateIdentityKeyPair().privateKey);

/** A hand-driven client that completes a real handshake as mallory, then writes what it likes. */
async function handshakeAsMallory(port: number) {
  const tap = new TapConn(await dialTcp("127.0.0.1", port));
  const reader = tap.chunks()[Symbol.asyncIterator]();
  const helloLine = JSON.stringify({
    type: "HELLO",
    peer_id: "mallory@ns",
    features: ["p2pchat", "p2pchat-noise"],
  }) + "\n";
  await tap.write(encoder.encode(helloLine));
  const first = await reader.next();
  const text = new TextDecoder().decode(first.value!);
  const { conn: secure } = await upgradeConn(tap, reader, {
    initiator: true,
    prologue: encoder.encode(PROLOGUE_PREFIX + helloLine + text.slice(0, text.indexOf("\n") + 1)),
    identity: mallory,
    staticKeyPair: generateStaticKeyPair(),
    localId: "mallory@ns",
  });
  return { tap, secure };
}

const sendLine = (text: string) =>
  encoder.encode(
    JSON.stringify({
      type: "SEND",
      msg_id: crypto.randomUUID(),
      src: "mallory@ns",
      dst: "a@ns",
      payload: text,
      require_ack: true,
      ttl: 1,
    }) + "\n",
  );

Deno.test("an encrypted frame that is tampered, replayed or cut closes the connection unshown", async () => {
  try {
    const a = await start("a");
    // Control: a frame as the channel makes it is shown.
    const honest = await handshakeAsMallory(a.port);
    await honest.secure.write(sendLine("honest"));
    await waitFor("honest message", () => texts(a).includes("honest"));
    honest.tap.close();
    await waitFor("honest closed", () => !connected(a, "mallory@ns"));

    const attacks: [string, (frame: Uint8Array) => Uint8Array[]][] = [
      ["a flipped bit", (f) => [f.map((byte, i) => i === f.length - 3 ? byte ^ 1 : byte)]],
      ["a replayed frame", (f) => [f, f]],
      ["a cut frame", (f) => [f.subarray(0, f.length - 5)]],
      ["a wrong length", (f) => [new Uint8Array([f[0], f[1] - 1, ...f.subarray(2)])]],
    ];
    for (const [label, mangle] of attacks) {
      const { tap, secure } = await handshakeAsMallory(a.port);
      await waitFor(`${label}: admitted`, () => connected(a, "mallory@ns"));
      tap.held = [];
      await secure.write(sendLine(label));
      const [frame] = tap.held;
      tap.held = undefined;
      for (const bytes of mangle(frame)) await tap.write(bytes);
      if (label === "a cut frame") tap.close();
      await waitFor(`${label}: closed`, () => !connected(a, "mallory@ns"));
      tap.close();
    }
    // Nothing altered is shown. Of the replayed frame the first copy was genuine, but it may
    // arrive in one read with its copy, and a read that fails is dropped whole: at most once.
    const shown = texts(a).filter((text) => text !== "honest");
    assert.ok(shown.length <= 1 && shown.every((text) => text === "a replayed frame"), `${shown}`);
    const b = await start("b");
    link(b, a);
    await waitFor("still serving", () => connected(a, "b@ns"));
  } finally {
    await stopAll();
  }
});

Deno.test("while the tracker does not answer, strangers wait and remembered keys still connect", async () => {
  try {
    const accounts = new FakeAccountKeys();
    const bob = await start("bob", { accounts });
    const carol = await start("carol", { privateKey: carolKey });
    link(carol, bob);
    await waitFor("carol remembered", () => connected(bob, "carol@ns"));
    await carol.node.stop();
    accounts.down = true;
    // Anyone may make a lookup fail: a name must not pass as an account's meanwhile.
    const impostor = await start("alice");
    link(impostor, bob);
    await waitFor(
      "told to retry",
      () => notices(impostor).some((n) => n.kind === "refused" && n.reason === "key_unchecked"),
    );
    assert.equal(connected(bob, "alice@ns"), false);
    assert.equal(bob.pins.get("alice@ns"), undefined, "nothing is remembered under no answer");
    // A peer whose key we remember comes back on that key.
    const carolAgain = await start("carol", { privateKey: carolKey });
    link(carolAgain, bob);
    await waitFor("carol back", () => connected(bob, "carol@ns"));
  } finally {
    await stopAll();
  }
});
