/** Public names of the peer: the `p2pchat peer` command, and a node to run in-process. */
export { runPeerCommand } from "./cli.ts";
export * from "./node/mod.ts";
export type * from "./api.ts";
