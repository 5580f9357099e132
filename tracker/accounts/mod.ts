/**
 * Accounts, presence and chat rooms for the tracker, plugged in through the
 * `TrackerExtension` seam. Protocol: docs/protocol.md, "Tracker sessions".
 */
import type { Clock, TimerId } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { type FolderLock, lockFolder } from "../../lib/folder_lock.ts";
import type { Logger } from "../../lib/log.ts";
import { DEFAULT_PBKDF2_ITERATIONS } from "../../lib/password.ts";
import type { TrackerExtension } from "../extension.ts";
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, type LoginLimits } from "./limits.ts";
import { SESSION_PREFIX } from "./protocol.ts";
import { type AccountsMode, AccountsService } from "./service.ts";
import { Session } from "./session.ts";
import { AccountStore } from "./store.ts";

export type { AccountsMode } from "./service.ts";
export type { LoginLimits } from "./limits.ts";
export { DEFAULT_LOGIN_LIMITS } from "./limits.ts";

/** A session is online while some line arrived within this window. */
export const DEFAULT_HEARTBEAT_WINDOW_MS = 30_000;

/** Tokens expire this long after the login that issued them (absolute, not sliding). */
export const DEFAULT_TOKEN_TTL_MS = 30 * 24 * 3600_000;

/** The modes `--accounts` accepts. */
export const ACCOUNTS_MODES: readonly AccountsMode[] = ["required", "optional", "off"];

/** Options of `createAccountsExtension`. */
export interface AccountsOptions {
  mode: AccountsMode;
  /** Directory of `accounts.log` and `accounts.log.snapshot`. */
  dataDir: string;
  heartbeatWindowMs?: number;
  /** Most members a room may have; no cap when absent. */
  roomMemberCap?: number;
  pbkdf2Iterations?: number;
  tokenTtlMs?: number;
  loginLimits?: Partial<LoginLimits>;
  /** Log size that triggers compaction (at least the snapshot size); see lib/append_log.ts. */
  compactMinBytes?: number;
  /** Start from the readable part of a damaged store, keeping the damaged file aside. */
  recoverDamagedStore?: boolean;
}

/** The flag that asks for `recoverDamagedStore`, named in the refusal to start. */
const RECOVER_FLAG = "--recover-accounts";

/** The extension, plus its service for tests and benchmarks (undefined until started). */
export interface AccountsExtension extends TrackerExtension {
  readonly service: AccountsService | undefined;
}

/** Creates the accounts extension; `start()` loads the store. */
export function createAccountsExtension(
  options: AccountsOptions,
  deps: { clock: Clock; log: Logger },
): AccountsExtension {
  const settings = _settings(options);
  const log = deps.log.child("accounts");
  const limiter = new LoginLimiter({ ...DEFAULT_LOGIN_LIMITS, ...options.loginLimits });
  let service: AccountsService | undefined;
  let timer: TimerId | undefined;
  let lock: FolderLock | undefined;
  const unlock = () => {
    lock?.release();
    lock = undefined;
  };
  let nameOwned: (covers: (name: string) => boolean) => void = () => {};
  // Often enough that a silent session goes offline within a quarter window of its deadline.
  const tickMs = Math.max(100, Math.min(settings.heartbeatWindowMs / 4, 5_000));

  const scheduleTick = () => {
    timer = deps.clock.setTimeout(() => {
      service?.tick();
      scheduleTick();
    }, tickMs);
  };

  return {
    get service() {
      return service;
    },
    opensSession: (type) => service !== undefined && type.startsWith(SESSION_PREFIX),
    openSession(link) {
      if (!service) throw new TypeError("The accounts extension is off or not started");
      const session = new Session(link, service, deps.clock);
      if (!service.sessionOpened(session)) session.refuse();
      return session;
    },
    checkRegister: (name) => service?.checkRegister(name),
    checkUnregister: (name) => service?.checkUnregister(name),
    onNameOwned(listener) {
      nameOwned = listener;
    },
    metrics: () => (service ? _metrics(service) : []),
    async start() {
      if (settings.mode === "off" || service) return;
      const started = performance.now();
      // Two trackers on one folder would both append to its accounts log.
      lock = lockFolder(options.dataDir, "tracker.lock");
      if (!lock) {
        throw new P2pError(
          "data_in_use",
          `Another p2pchat tracker is running on the data folder "${options.dataDir}"; stop ` +
            "it, or start this one with another --data-dir",
        );
      }
      const { store, report } = await AccountStore.open(options.dataDir, log, {
        compactMinBytes: options.compactMinBytes,
        recoverDamaged: options.recoverDamagedStore,
        // Both `p2pchat tracker` and a peer with --embed-tracker take the flag.
        recoveryHint: `start once with ${RECOVER_FLAG}`,
      }).catch((error) => {
        unlock();
        throw error;
      });
      service = new AccountsService(
        store,
        settings,
        limiter,
        deps.clock,
        log,
        (covers) => nameOwned(covers),
      );
      log.info(
        `Accounts ${settings.mode}: ${store.userCount} user(s), ${store.roomCount} room(s) ` +
          `loaded in ${Math.round(performance.now() - started)} ms`,
        { ...report },
      );
      scheduleTick();
    },
    async stop() {
      if (timer !== undefined) deps.clock.clearTimeout(timer);
      timer = undefined;
      const stopping = service;
      service = undefined;
      await stopping?.stop();
      unlock();
    },
  };
}

function _settings(options: AccountsOptions) {
  const { mode } = options;
  if (mode !== "required" && mode !== "optional" && mode !== "off") {
    throw new P2pError(
      "bad_option",
      `Accounts mode must be required, optional or off, got "${mode}"`,
    );
  }
  const positive = (name: string, value: number | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new P2pError("bad_option", `${name} must be a whole number from 1, got "${value}"`);
    }
    return value;
  };
  return {
    mode,
    heartbeatWindowMs: positive(
      "heartbeatWindowMs",
      options.heartbeatWindowMs,
      DEFAULT_HEARTBEAT_WINDOW_MS,
    ),
    roomMemberCap: positive("roomMemberCap", options.roomMemberCap, Infinity),
    pbkdf2Iterations: positive(
      "pbkdf2Iterations",
      options.pbkdf2Iterations,
      DEFAULT_PBKDF2_ITERATIONS,
    ),
    tokenTtlMs: positive("tokenTtlMs", options.tokenTtlMs, DEFAULT_TOKEN_TTL_MS),
  };
}

function _metrics(service: AccountsService): string[] {
  const gauge = (name: string, help: string, value: number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} gauge`,
    `${name} ${value}`,
  ];
  const counter = (name: string, help: string, value: number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} counter`,
    `${name} ${value}`,
  ];
  return [
    ...gauge("p2pchat_accounts_users", "Registered accounts.", service.store.userCount),
    ...gauge("p2pchat_accounts_users_online", "Accounts with a live session.", service.onlineUsers),
    ...gauge(
      "p2pchat_accounts_sessions_online",
      "Logged-in session connections.",
      service.onlineSessions,
    ),
    ...gauge("p2pchat_accounts_rooms", "Chat rooms.", service.store.roomCount),
    ...counter(
      "p2pchat_accounts_login_failures_total",
      "Failed logins (unknown user or wrong password).",
      service.limiter.failures,
    ),
    ...counter(
      "p2pchat_accounts_lockouts_total",
      "Account or address lock-outs after repeated failures.",
      service.limiter.lockouts,
    ),
  ];
}
