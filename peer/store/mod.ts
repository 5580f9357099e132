/**
 * The peer's message store: history, outbox and contacts in one SQLite file per profile
 * (docs/message-store.md).
 */
export { openMessageStore } from "./open.ts";
export * from "./limits.ts";
export type * from "./types.ts";
