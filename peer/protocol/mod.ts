/**
 * The peer-to-peer wire protocol, free of I/O: the message vocabulary and the state machine of
 * one connection (handshake, keep-alive, SEND/ACK, batching, de-duplication).
 */
export {
  type CloseReason,
  type ConnectionHooks,
  type ConnectionState,
  PeerConnection,
} from "./connection.ts";
export { hello, tooLongForLine } from "./messages.ts";
export { RecentIds } from "./recent_ids.ts";
