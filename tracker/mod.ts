/** Public names of the tracker: start one in-process with `createTracker`. */
export {
  createTracker,
  DEFAULT_MAX_CONNECTIONS,
  REGISTRATIONS_FILE,
  type Tracker,
  type TrackerDeps,
  type TrackerHealth,
  type TrackerOptions,
} from "./server.ts";
export { createTrackerHttpApi } from "./http_api.ts";
export { parseRateLimit, type RateLimitSettings } from "./rate_limit.ts";
export type { PeerEntry, Registration } from "./registry.ts";
export type {
  SessionHandler,
  SessionLink,
  SessionRendezvousCommand,
  TrackerExtension,
} from "./extension.ts";
export { runTrackerCommand } from "./cli.ts";
export { ACCOUNTS_MODES, createAccountsExtension } from "./accounts/mod.ts";
