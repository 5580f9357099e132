/**
 * The node: listener, dialer, peer table, keep-alive and reconnection, built on the protocol
 * state machine and fed by discovery.
 */
export {
  createPeerNode,
  NODE_DEFAULTS,
  type PeerNodeDeps,
  type PeerNodeOptions,
  type StartablePeerNode,
} from "./node.ts";
