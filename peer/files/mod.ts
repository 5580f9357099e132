/**
 * File transfers between peers: the FILE_* lines, safe names for received files, types from
 * content, and the transfers themselves (resumable, verified end to end).
 */
export { openTransfers, type TransferOptions, Transfers } from "./transfers.ts";
export { isImageType, sniffType } from "./sniff.ts";
