/**
 * An in-memory `PeerNode` for user-interface tests: a peer table the test fills, sends that
 * are ACKed, time out or wait for the test to answer, PUBs counted over connected peers in
 * scope, and events the test emits to subscribers.
 */
import type {
  IdentityInfo,
  MessageHistory,
  NodeEvent,
  NodeStatus,
  PeerInfo,
  PeerNode,
  PublishResult,
  Scope,
  SendResult,
  Verification,
} from "../peer/api.ts";
import type { Address } from "../lib/transport.ts";

/** What the fake does with a SEND to a connected peer. */
export type SendMode = "ack" | "timeout" | "manual";

export class FakePeerNode implements PeerNode {
  readonly peerId: string;
  readonly sent: { peerId: string; text: string }[] = [];
  /** PUBs; `alsoTo` only when the caller passed extra peers (room members). */
  readonly published: { scope: Scope; text: string; alsoTo?: readonly string[] }[] = [];
  /** `publishTo()` calls, with the peers actually written to. */
  readonly publishedTo: { peerIds: string[]; dst: Scope; text: string; msgId: string }[] = [];
  /** Peers asked for by `connectPeer()`, and whether the fake connects them. */
  readonly dialled: { peerId: string; address: Address }[] = [];
  connectSucceeds = true;
  /** When true, dials wait for `finishDial()` (or their signal) instead of ending at once. */
  holdDials = false;
  #heldDials = new Map<string, (connected: boolean) => void>();
  registers = 0;
  readonly reconnects: (string | undefined)[] = [];
  /** How sends to connected peers end; "manual" waits for `answer()`. */
  sendMode: SendMode = "ack";
  /** What a send to a peer not in the table answers (`offline` for an account not online). */
  unknownReason: "unknown_peer" | "offline" = "unknown_peer";
  /** Offline room members a publish says it waits for. */
  publishWaiting = 0;
  stopped = false;
  /** The message store the interfaces see (tests set a `FakeHistory`). */
  history?: MessageHistory;
  #peers = new Map<string, PeerInfo>();
  #listeners = new Set<(event: NodeEvent) => void>();
  #waiting: ((result: SendResult) => void)[] = [];
  #nextMsg = 1;
  #statusValue: NodeStatus;

  constructor(name = "alice", namespace = "lobby") {
    this.peerId = `${name}@${namespace}`;
    this.#statusValue = {
      peerId: this.peerId,
      name,
      namespace,
      listen: { hostname: "127.0.0.1", port: 4001 },
      publicIp: "127.0.0.1",
      tracker: { address: { hostname: "127.0.0.1", port: 8080 }, reachable: true },
      peers: { known: 0, connected: 0 },
      startedAt: Date.now(),
    };
  }

  /** Adds or replaces a peer; `peerId` is `name@namespace`. */
  addPeer(peerId: string, fields: Partial<PeerInfo> = {}): PeerInfo {
    const [name, namespace] = peerId.split("@");
    const peer: PeerInfo = {
      peerId,
      name,
      namespace,
      state: "connected",
      direction: "outbound",
      features: ["ack", "metrics"],
      reconnectAttempts: 0,
      address: { hostname: "127.0.0.1", port: 5000 + this.#peers.size },
      ...fields,
    };
    this.#peers.set(peerId, peer);
    return peer;
  }

  /** Changes the tracker part of the status. */
  setTracker(fields: Partial<NodeStatus["tracker"]>): void {
    this.#statusValue.tracker = { ...this.#statusValue.tracker, ...fields };
  }

  status(): NodeStatus {
    const peers = [...this.#peers.values()];
    return {
      ...this.#statusValue,
      peers: {
        known: peers.length,
        connected: peers.filter((peer) => peer.state === "connected").length,
      },
    };
  }

  peers(scope: Scope = "*"): PeerInfo[] {
    return [...this.#peers.values()].filter((peer) => _inScope(peer, scope));
  }

  send(peerId: string, text: string): Promise<SendResult> {
    this.sent.push({ peerId, text });
    const msgId = `msg-${this.#nextMsg++}`;
    const peer = this.#peers.get(peerId);
    // As the node: a message never written has no id.
    if (!peer) return Promise.resolve({ ok: false, reason: this.unknownReason });
    if (peer.state !== "connected") return Promise.resolve({ ok: false, reason: "not_connected" });
    if (this.sendMode === "ack") {
      return Promise.resolve({ ok: true, msgId, roundTripMs: peer.rtt?.lastMs ?? 3 });
    }
    if (this.sendMode === "timeout") {
      return Promise.resolve({ ok: false, msgId, reason: "timeout" });
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Number of sends waiting in "manual" mode. */
  get waitingSends(): number {
    return this.#waiting.length;
  }

  /** Ends the oldest waiting send with `result` ("manual" mode). */
  answer(result: SendResult): void {
    const resolve = this.#waiting.shift();
    if (!resolve) throw new Error("No send is waiting");
    resolve(result);
  }

  publish(scope: Scope, text: string, alsoTo: readonly string[] = []): Promise<PublishResult> {
    this.published.push(alsoTo.length > 0 ? { scope, text, alsoTo } : { scope, text });
    const peers = [...this.#peers.values()].filter((peer) =>
      peer.state === "connected" && (_inScope(peer, scope) || alsoTo.includes(peer.peerId))
    );
    const serial = this.#nextMsg++;
    const result = this.#reached(`msg-${serial}`, peers);
    // A message kept for offline members has its id in the store (here, its serial).
    const stored = this.publishWaiting > 0 ? { id: serial } : {};
    return Promise.resolve({ ...result, waiting: this.publishWaiting, ...stored });
  }

  /** Writes to the listed connected peers, as `publish` does. */
  publishTo(
    peerIds: readonly string[],
    dst: Scope,
    text: string,
    msgId = `msg-${this.#nextMsg++}`,
  ): Promise<PublishResult> {
    const peers = peerIds.filter((peerId) => this.#peers.get(peerId)?.state === "connected");
    this.publishedTo.push({ peerIds: peers, dst, text, msgId });
    return Promise.resolve(this.#reached(msgId, peers.map((peerId) => this.#peers.get(peerId)!)));
  }

  // Peers whose `security` says encrypted count as reached in encrypted form.
  #reached(msgId: string, peers: PeerInfo[]): PublishResult {
    return {
      msgId,
      reached: peers.length,
      peers: peers.map((peer) => peer.peerId),
      encrypted: peers.filter((peer) => peer.security?.encrypted).length,
    };
  }

  /** The identity `identity()` reports; undefined as a node without one. */
  identityInfo?: IdentityInfo;
  /** What `verification()` reports, by peer_id; `setVerified` updates it. */
  readonly verifications = new Map<string, Verification>();

  identity(): IdentityInfo | undefined {
    return this.identityInfo;
  }

  verification(peerId: string): Verification | undefined {
    return this.verifications.get(peerId);
  }

  /** Peers whose key `forgetKey` forgot. */
  readonly forgotten: string[] = [];

  forgetKey(peerId: string): boolean {
    if (!this.verifications.delete(peerId)) return false;
    this.forgotten.push(peerId);
    return true;
  }

  setVerified(peerId: string, verified: boolean): boolean {
    const known = this.verifications.get(peerId);
    if (!known) return false;
    this.verifications.set(peerId, { ...known, verified });
    return true;
  }

  /**
   * Records the dial; connects the peer at once unless `connectSucceeds` is false (then it is
   * left in backoff, as the node leaves a peer whose dial failed) or `holdDials` is set.
   */
  connectPeer(peerId: string, address: Address, signal: AbortSignal): Promise<boolean> {
    this.dialled.push({ peerId, address });
    if (this.holdDials) {
      const { promise, resolve } = Promise.withResolvers<boolean>();
      this.#heldDials.set(peerId, resolve);
      signal.addEventListener("abort", () => resolve(false), { once: true });
      return promise.then((connected) => this.#dialEnded(peerId, address, connected));
    }
    return Promise.resolve(this.#dialEnded(peerId, address, this.connectSucceeds));
  }

  /** Ends a held dial of `peerId`. */
  finishDial(peerId: string, connected: boolean): void {
    const resolve = this.#heldDials.get(peerId);
    if (!resolve) throw new Error(`No dial of ${peerId} is held`);
    this.#heldDials.delete(peerId);
    resolve(connected);
  }

  #dialEnded(peerId: string, address: Address, connected: boolean): boolean {
    this.#heldDials.delete(peerId);
    if (connected) this.addPeer(peerId, { address, state: "connected" });
    else this.addPeer(peerId, { address, state: "connecting", nextAttemptAt: Date.now() + 1000 });
    return connected;
  }

  registerNow(): void {
    this.registers++;
  }

  reconnect(peerId?: string): number {
    this.reconnects.push(peerId);
    let count = 0;
    for (const peer of this.#peers.values()) {
      if (peerId !== undefined && peer.peerId !== peerId) continue;
      if (peer.state !== "failed" && peer.state !== "stale") continue;
      peer.state = "connecting";
      peer.reconnectAttempts = 0;
      count++;
    }
    return count;
  }

  subscribe(listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Number of current subscribers. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Delivers an event to every subscriber. */
  emit(event: NodeEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

function _inScope(peer: PeerInfo, scope: Scope): boolean {
  return scope === "*" || peer.namespace === scope.slice(1);
}
