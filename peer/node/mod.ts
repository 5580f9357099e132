/**
 * The node: listener, dialer, peer table, keep-alive and reconnection, built on the protocol
 * state machine and fed by discovery.
 */
export {
  type ArrivalSecurity,
  createPeerNode,
  type FileChannel,
  type FileWire,
  type Inbox,
  NODE_DEFAULTS,
  type PeerNodeDeps,
  type PeerNodeOptions,
  type StartablePeerNode,
} from "./node.ts";
