/** `p2pchat tracker`: parses flags, runs the Rendezvous service (and optional HTTP API) until a signal. */
import { systemClock } from "../lib/clock.ts";
import {
  DEFAULT_RATE_LIMIT,
  DEFAULT_TRACKER_HOST,
  DEFAULT_TRACKER_PORT,
  TRACKER_IDLE_TIMEOUT_MS,
} from "../lib/constants.ts";
import {
  HELP_FLAG,
  LOG_FLAGS,
  parseFlags,
  parseHostPort,
  parseIntegerFlag,
  parseLogFormat,
  parseLogLevel,
  UsageError,
} from "../lib/cli.ts";
import { createLogger } from "../lib/log.ts";
import { defaultDataDir } from "../lib/persist.ts";
import { createTrackerHttpApi } from "./http_api.ts";
import { serveHttp } from "../lib/http_serve.ts";
import { parseRateLimit } from "./rate_limit.ts";
import {
  createTracker,
  DEFAULT_MAX_CONNECTIONS,
  defaultMaxConnectionsPerIp,
  type TrackerOptions,
} from "./server.ts";
import {
  ACCOUNTS_MODES,
  type AccountsMode,
  type AccountsOptions,
  createAccountsExtension,
  DEFAULT_HEARTBEAT_WINDOW_MS,
} from "./accounts/mod.ts";
import { DEFAULT_PBKDF2_ITERATIONS } from "../lib/password.ts";

const HELP = `Usage: p2pchat tracker [options]

Runs a tracker: the pyp2p-compatible Rendezvous service (REGISTER, DISCOVER, UNREGISTER).

Options:
  --host HOST              address to listen on (default ${DEFAULT_TRACKER_HOST})
  --port PORT              TCP port (default ${DEFAULT_TRACKER_PORT}; 0 picks a free port)
  --data-dir DIR           where registrations, accounts and the tracker's identity key
                           (identity.json) are kept (default ~/.local/share/p2pchat/tracker,
                           or $XDG_DATA_HOME/p2pchat/tracker)
  --rate-limit N/SECONDS   per-IP limit: N connections per SECONDS, then a block of SECONDS
                           (default ${DEFAULT_RATE_LIMIT.max}/${DEFAULT_RATE_LIMIT.windowSeconds})
  --no-rate-limit          switch the per-IP limit off (tests, benchmarks, trusted networks)
  --max-connections N      open connections before new ones are refused (default ${DEFAULT_MAX_CONNECTIONS});
                           sessions never take the last eighth, kept for Rendezvous requests
  --max-connections-per-ip N  open connections from one address (default: half of
                           --max-connections, ${
  defaultMaxConnectionsPerIp(DEFAULT_MAX_CONNECTIONS)
})
  --idle-timeout MS        close a connection silent this long before its request (default ${TRACKER_IDLE_TIMEOUT_MS})
  --accounts MODE          optional (default): accounts, presence and rooms beside Rendezvous;
                           required: every registration goes through a login; off: a plain
                           pyp2p tracker
  --heartbeat-window SECONDS  a session is online while it was heard from this recently
                           (default ${DEFAULT_HEARTBEAT_WINDOW_MS / 1000})
  --room-member-cap N      most members a room may have (default: no cap)
  --pbkdf2-iterations N    password hashing cost for new passwords (default ${DEFAULT_PBKDF2_ITERATIONS};
                           lower it only for tests: it weakens stored passwords)
  --recover-accounts       start from the readable part of a damaged accounts log or snapshot,
                           keeping the damaged file aside (without it, damage stops start-up)
  --http HOST:PORT         also serve the HTTP API (/health, /registrations, /metrics); off by default
  --log-level LEVEL        debug, info, warn or error (default info)
  --log-format FORMAT      human or json (default human)
  --log-file PATH          append logs to PATH instead of standard error
  -h, --help               show this help

On start it prints "Tracker listening on HOST:PORT", then "Tracker key fingerprint: ..." (the
key peers check when they open an encrypted session; and "HTTP API on http://HOST:PORT").
SIGINT or SIGTERM saves the registrations and exits with status 0.
`;

const FLAGS = {
  ...HELP_FLAG,
  ...LOG_FLAGS,
  host: { type: "string" },
  port: { type: "string" },
  "data-dir": { type: "string" },
  "rate-limit": { type: "string" },
  "no-rate-limit": { type: "boolean" },
  "max-connections": { type: "string" },
  "max-connections-per-ip": { type: "string" },
  "idle-timeout": { type: "string" },
  http: { type: "string" },
  accounts: { type: "string" },
  "heartbeat-window": { type: "string" },
  "room-member-cap": { type: "string" },
  "pbkdf2-iterations": { type: "string" },
  "recover-accounts": { type: "boolean" },
} as const;

/** Runs `p2pchat tracker ARGS` until SIGINT/SIGTERM; returns the exit code. */
export async function runTrackerCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const options = _trackerOptions(values);
  const http = values.http === undefined ? undefined : parseHostPort("--http", values.http, true);
  const log = createLogger({
    level: parseLogLevel(values["log-level"]),
    format: parseLogFormat(values["log-format"]),
    file: values["log-file"],
  });

  const extension = createAccountsExtension(
    trackerAccountsOptions(values, options.dataDir!),
    { clock: systemClock, log },
  );
  const tracker = createTracker(options, { clock: systemClock, log, extension });
  const address = await tracker.start();
  console.log(`Tracker listening on ${address.hostname}:${address.port}`);
  console.log(`Tracker key fingerprint: ${tracker.health().fingerprint}`);

  let server: Deno.HttpServer | undefined;
  try {
    if (http) {
      const app = createTrackerHttpApi(tracker);
      const serving = await serveHttp(http, app.fetch, {
        what: "the HTTP API",
        flag: "--http",
      });
      server = serving.server;
      console.log(`HTTP API on http://${serving.address.hostname}:${serving.address.port}`);
    }
    await _waitForSignal();
    log.child("tracker").info("Shutting down");
  } finally {
    // A failed start (the HTTP port taken) still saves the registrations and closes the port.
    await server?.shutdown();
    await tracker.stop();
  }
  return 0;
}

function _trackerOptions(
  values: {
    host?: string;
    port?: string;
    "data-dir"?: string;
    "rate-limit"?: string;
    "no-rate-limit"?: boolean;
    "max-connections"?: string;
    "max-connections-per-ip"?: string;
    "idle-timeout"?: string;
  },
): TrackerOptions {
  if (values["rate-limit"] !== undefined && values["no-rate-limit"]) {
    throw new UsageError("--rate-limit and --no-rate-limit cannot be used together");
  }
  let rateLimit: TrackerOptions["rateLimit"];
  if (values["no-rate-limit"]) rateLimit = false;
  else if (values["rate-limit"] !== undefined) {
    rateLimit = parseRateLimit(values["rate-limit"]);
    if (!rateLimit) {
      throw new UsageError(
        `--rate-limit expects N/SECONDS with both at least 1 (e.g. 50/60), got "${
          values["rate-limit"]
        }"`,
      );
    }
  }
  const host = values.host ?? DEFAULT_TRACKER_HOST;
  if (host.trim() === "") throw new UsageError(`--host expects an address, got "${host}"`);
  return {
    host,
    port: values.port === undefined
      ? DEFAULT_TRACKER_PORT
      : parseIntegerFlag("--port", values.port, 0, 65535),
    dataDir: values["data-dir"] ?? `${defaultDataDir()}/tracker`,
    rateLimit,
    maxConnections: values["max-connections"] === undefined
      ? undefined
      : parseIntegerFlag("--max-connections", values["max-connections"], 1, 1_000_000),
    maxConnectionsPerIp: values["max-connections-per-ip"] === undefined
      ? undefined
      : parseIntegerFlag(
        "--max-connections-per-ip",
        values["max-connections-per-ip"],
        1,
        1_000_000,
      ),
    idleTimeoutMs: values["idle-timeout"] === undefined
      ? undefined
      : parseIntegerFlag("--idle-timeout", values["idle-timeout"], 1, 3_600_000),
  };
}

/** Reads the accounts flags (shared with the peer's `--embed-tracker`). */
export function trackerAccountsOptions(
  values: {
    accounts?: string;
    "heartbeat-window"?: string;
    "room-member-cap"?: string;
    "pbkdf2-iterations"?: string;
    "recover-accounts"?: boolean;
  },
  dataDir: string,
): AccountsOptions {
  const mode = values.accounts ?? "optional";
  if (!(ACCOUNTS_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`--accounts must be required, optional or off; got "${mode}"`);
  }
  const optionalInteger = (flag: string, value: string | undefined, max: number) =>
    value === undefined ? undefined : parseIntegerFlag(flag, value, 1, max);
  const windowSeconds = optionalInteger("--heartbeat-window", values["heartbeat-window"], 86_400);
  return {
    mode: mode as AccountsMode,
    dataDir,
    heartbeatWindowMs: windowSeconds === undefined ? undefined : windowSeconds * 1000,
    roomMemberCap: optionalInteger("--room-member-cap", values["room-member-cap"], 1_000_000),
    pbkdf2Iterations: optionalInteger(
      "--pbkdf2-iterations",
      values["pbkdf2-iterations"],
      100_000_000,
    ),
    recoverDamagedStore: values["recover-accounts"] ?? false,
  };
}

/** Resolves on the first SIGINT or SIGTERM (SIGTERM is not available on Windows). */
function _waitForSignal(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    resolve();
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return promise;
}
