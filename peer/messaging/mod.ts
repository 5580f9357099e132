/**
 * Messages that last: the store behind sending and receiving, the outbox, receipts, contacts.
 */
export {
  DEFAULT_QUEUE_DAYS,
  lateInbox,
  Messenger,
  type MessengerDeps,
  type MessengerOptions,
} from "./messenger.ts";
