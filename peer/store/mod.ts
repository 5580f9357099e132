/**
 * The peer's message store: history, outbox and contacts in one SQLite file per profile
 * (docs/message-store.md).
 */
export { lockProfile, openMessageStore } from "./open.ts";
export {
  DEFAULT_MAX_MESSAGES,
  DEFAULT_MAX_QUEUED,
  DEFAULT_MAX_QUEUED_PER_CONVERSATION,
  DEFAULT_RETENTION_DAYS,
  MAX_PAGE_LIMIT,
  MAX_TEXT_CHARS,
} from "./limits.ts";
export type * from "./types.ts";
