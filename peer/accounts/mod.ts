/**
 * The tracker account client: the SESSION_* connection (login, presence, reconnection), rooms on
 * top of it, and the remembered login token.
 */
export {
  type AccountsEvent,
  checkPassword,
  type MemberAddress,
  memberConnected,
  PeerAccounts,
  type RoomMember,
  type RoomSummary,
  type UserSummary,
} from "./peer_accounts.ts";
export { KeyDirectory } from "./key_directory.ts";
export { SessionClient } from "./session_client.ts";
export { sessionRegistrar } from "./session_registrar.ts";
export { sameFingerprint, trackerConnector } from "./tracker_connection.ts";
export { fileTokenStore } from "./token_store.ts";
