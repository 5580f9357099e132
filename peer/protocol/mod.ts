/**
 * The peer-to-peer wire protocol, free of I/O: the message vocabulary and the state machine of
 * one connection (handshake, keep-alive, SEND/ACK, batching, de-duplication).
 */
export {
  type AdmitVerdict,
  type CloseReason,
  type ConnectionHooks,
  type ConnectionIo,
  type ConnectionState,
  PeerConnection,
  type SecureRequest,
  type TextWrite,
} from "./connection.ts";
export {
  FEATURE_FILE_FRAMES,
  FEATURE_FILES,
  FEATURE_NOISE,
  FEATURE_READ,
  FEATURE_RECEIPTS,
  hello,
  isPeerId,
  OUR_FEATURES,
  type ReceiptStatus,
  splitPeerId,
  tooLongForLine,
} from "./messages.ts";
export { SendIds } from "./send_ids.ts";
export { RecentIds } from "./recent_ids.ts";
