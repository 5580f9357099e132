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
  | "corrupt_store";

/** An error with a stable `code`; `message` is for people, `code` is for programs. */
export class P2pError extends Error {
  constructor(readonly code: ErrorCode, message: string = code) {
    super(message);
    this.name = "P2pError";
  }
}
