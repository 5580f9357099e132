/** Stable error codes: the same strings go on the wire and into logs and HTTP replies. */
export type ErrorCode =
  // framing and codec
  | "line_too_long"
  | "empty_line"
  | "invalid_json"
  | "not_an_object"
  | "missing_type"
  // Rendezvous request validation (pyp2p wording)
  | "bad_name"
  | "bad_ttl"
  | "bad_namespace"
  | "bad_port"
  // configuration and CLI
  | "bad_option"
  | "bad_config"
  // persistence
  | "corrupt_store"
  | "unreadable_store"
  // sockets
  | "listen_failed"
  // peer side of the Rendezvous protocol
  | "tracker_unreachable"
  | "tracker_error"
  | "bad_reply"
  // tracker session protocol (accounts, presence, rooms): see docs/protocol.md, "Tracker sessions"
  | "malformed"
  | "unknown_command"
  | "bad_request"
  | "busy"
  | "bad_username"
  | "bad_password"
  | "username_taken"
  | "login_failed"
  | "too_many_attempts"
  | "bad_token"
  | "not_logged_in"
  | "already_logged_in"
  | "bad_room_name"
  | "room_exists"
  | "no_such_room"
  | "already_member"
  | "not_member"
  | "not_owner"
  | "room_full"
  | "too_many_rooms"
  | "too_many_sessions"
  | "internal_error"
  // identity keys and encryption (docs/peer-protocol.md, "Encryption and identity")
  | "bad_identity"
  | "key_mismatch"
  | "key_changed"
  | "encryption_required"
  | "tracker_key_changed"
  | "unknown_key"
  | "no_identity"
  // REGISTER refused for names owned by accounts
  | "name_owned"
  | "name_mismatch"
  | "login_required"
  // the peer's local HTTP API (see docs/http-api.md)
  | "unauthorized"
  | "forbidden_host"
  | "forbidden_origin"
  | "not_found"
  | "missing_field"
  | "bad_field"
  | "text_too_long"
  | "body_too_large"
  // delivery of a direct message (SendResult reasons)
  | "timeout"
  | "not_connected"
  | "unknown_peer"
  | "offline"
  | "closed"
  | "queue_full"
  // another tracker holds the data folder
  | "data_in_use"
  // the message store (see docs/peer-protocol.md, "Message store")
  | "store_in_use"
  | "not_queued"
  // the HTTP API's history routes (docs/http-api.md, "History, outbox and contacts")
  | "no_history"
  | "not_contact"
  | "no_conversation"
  // file transfers (docs/peer-protocol.md "Files", docs/http-api.md "Transfers")
  | "no_files"
  | "file_unreadable"
  | "too_many_transfers"
  | "bad_state";

/** An error with a stable `code`; `message` is for people, `code` is for programs. */
export class P2pError extends Error {
  constructor(readonly code: ErrorCode, message: string = code) {
    super(message);
    this.name = "P2pError";
  }
}

/**
 * A one-line description of any thrown value for logs and notices; `withCode` prefixes the
 * stable code of errors that carry one (`bad_port: ...`).
 */
export function describeError(error: unknown, options: { withCode?: boolean } = {}): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return options.withCode && typeof code === "string" ? `${code}: ${error.message}` : error.message;
}
