/**
 * The peer's settings from three layers, strongest first: command-line flags, `P2PCHAT_*`
 * environment variables, a JSON config file; then defaults. Every layer uses the same keys
 * (the long flag names; the file also accepts them in camelCase), and every value is checked
 * with an error that names where it came from.
 */
import { isRecord } from "../lib/codec.ts";
import { checkName, safePathComponent } from "../lib/names.ts";
import {
  DEFAULT_TRACKER_PORT,
  DEFAULT_TTL_SECONDS,
  MAX_TTL_SECONDS,
  MIN_TTL_SECONDS,
  PING_INTERVAL_MS,
} from "../lib/constants.ts";
import {
  parseHostPort,
  parseIntegerFlag,
  parseLogFormat,
  parseLogLevel,
  UsageError,
} from "../lib/cli.ts";
import type { LogFormat, LogLevel } from "../lib/log.ts";
import type { Address } from "../lib/transport.ts";
import { NODE_DEFAULTS } from "./node/mod.ts";
import { type Notify, NOTIFY_MODES } from "./tui/mod.ts";
import { didYouMean } from "../lib/suggest.ts";

/** Every setting, by its long flag name. */
/** Where `--web` serves the web chat when `--http` does not say. */
export const DEFAULT_WEB_PORT = 8765;

export const SETTING_KEYS = [
  "name",
  "namespace",
  "host",
  "port",
  "tracker",
  "ttl",
  "ping-interval",
  "discover-interval",
  "max-reconnect-attempts",
  "data-dir",
  "http",
  "web",
  "embed-tracker",
  "require-encryption",
  "tracker-key",
  "log-level",
  "log-format",
  "log-file",
  "notify",
  "no-history",
  "no-read-receipts",
  "queue-days",
  "keep-days",
  "recover-accounts",
  "downloads",
  "auto-accept-mb",
] as const;
export type SettingKey = typeof SETTING_KEYS[number];

/** Settings that are numbers: in a config file they must be JSON numbers, not strings. */
const NUMBER_KEYS: ReadonlySet<SettingKey> = new Set([
  "port",
  "ttl",
  "ping-interval",
  "discover-interval",
  "max-reconnect-attempts",
  "http",
  "embed-tracker",
  "queue-days",
  "keep-days",
  "auto-accept-mb",
]);

/** Settings that are switches: in a config file, `true` or `false` (or the text of one). */
const BOOLEAN_KEYS: ReadonlySet<SettingKey> = new Set([
  "require-encryption",
  "no-history",
  "no-read-receipts",
  "recover-accounts",
  "web",
]);

/** Raw values of one layer, as text (`embed-tracker` may be "" for "the default port"). */
export type SettingValues = Partial<Record<SettingKey, string>>;

/** The resolved peer settings. */
export interface PeerConfig {
  name: string;
  namespace: string;
  host: string;
  port: number;
  /** Undefined: 127.0.0.1 on the embedded tracker's port, else 127.0.0.1:8080. */
  tracker?: Address;
  ttlSeconds: number;
  pingIntervalSeconds: number;
  discoverIntervalSeconds: number;
  maxReconnectAttempts: number;
  dataDir: string;
  /**
   * Port of the local HTTP API and the web chat on 127.0.0.1 (0 = any free port); undefined =
   * off. `--web` alone means DEFAULT_WEB_PORT.
   */
  http?: number;
  /** Port of the in-process tracker (0 = any free port); undefined = none. */
  embedTracker?: number;
  /** Where the in-process tracker keeps its key, accounts and registrations. */
  embeddedTrackerDir: string;
  /** Refuse peers that cannot encrypt (plain pyp2p peers). */
  requireEncryption: boolean;
  /** The tracker key fingerprint to expect, instead of the one remembered on first use. */
  trackerKey?: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  logFile?: string;
  /** How a direct message is signalled while the terminal window is in the background. */
  notify: Notify;
  /** Keep the message store in `dataDir/messages.db` (false: in memory only). */
  history: boolean;
  /** Send and ask for read receipts. */
  readReceipts: boolean;
  /** The embedded tracker starts from the readable part of a damaged accounts log. */
  recoverAccounts: boolean;
  /** Where received files are saved (default DATA-DIR/downloads). */
  downloads: string;
  /** Files from contacts up to this many MB are accepted without asking (0: always ask). */
  autoAcceptMb: number;
  /** A queued direct message fails as expired after this many days. */
  queueDays: number;
  /** Messages older than this many days are deleted (0: kept forever). */
  keepDays: number;
}

/** Defaults of the message store's settings. */
export const HISTORY_DEFAULTS = { queueDays: 7, keepDays: 365 } as const;

/** Files from contacts up to this many MB are accepted without asking, by default. */
export const DEFAULT_AUTO_ACCEPT_MB = 25;

/** Where defaults that depend on the machine come from. */
export interface ConfigEnvironment {
  /** `$USER` (or `$USERNAME`). */
  user?: string;
  /** Base data directory (`defaultDataDir()`). */
  dataDir: string;
  /** Four random hex characters for the default name. */
  randomSuffix: () => string;
}

/** Environment variable for a setting: `P2PCHAT_` and the key in upper snake case. */
export function envName(key: SettingKey | "config"): string {
  return `P2PCHAT_${key.toUpperCase().replaceAll("-", "_")}`;
}

/** Reads the `P2PCHAT_*` variables into a layer. */
export function settingsFromEnv(env: Record<string, string | undefined>): SettingValues {
  const values: SettingValues = {};
  for (const key of SETTING_KEYS) {
    const value = env[envName(key)];
    if (value !== undefined) values[key] = value;
  }
  return values;
}

/**
 * Checks a parsed config file: a JSON object whose keys are setting names (kebab-case or
 * camelCase) and whose values have the setting's type: a number for numeric settings (also
 * `true` or `false` for `embed-tracker`), a string for the others.
 */
export function settingsFromFile(json: unknown, file: string): SettingValues {
  if (!isRecord(json)) throw new UsageError(`Config file "${file}" must hold a JSON object`);
  const values: SettingValues = {};
  for (const [rawKey, value] of Object.entries(json)) {
    const key = rawKey.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) as SettingKey;
    if (!SETTING_KEYS.includes(key)) {
      throw new UsageError(
        `Config file "${file}" has an unknown key "${rawKey}"${didYouMean(rawKey, SETTING_KEYS)}`,
      );
    }
    const numeric = NUMBER_KEYS.has(key);
    if (key === "embed-tracker" && value === true) values[key] = "";
    else if (key === "embed-tracker" && value === false) continue;
    else if (BOOLEAN_KEYS.has(key) && typeof value === "boolean") values[key] = `${value}`;
    else if (!numeric && typeof value === "string") values[key] = value;
    else if (numeric && typeof value === "number" && Number.isFinite(value)) {
      values[key] = String(value);
    } else {
      throw new UsageError(
        `Config file "${file}": "${rawKey}" must be ${numeric ? "a number" : "a string"}, got ${
          JSON.stringify(value)
        }`,
      );
    }
  }
  return values;
}

/** Reads and checks a config file; a missing file or invalid JSON is a clear error. */
export async function readConfigFile(file: string): Promise<SettingValues> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : String(error);
    throw new UsageError(`Config file "${file}" ${why}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `Config file "${file}" is not valid JSON (${error instanceof Error ? error.message : error})`,
    );
  }
  return settingsFromFile(json, file);
}

/** Merges the layers (flags > env > file > defaults) and validates every value. */
export function resolvePeerConfig(
  layers: { flags: SettingValues; env: SettingValues; file: SettingValues; fileName?: string },
  environment: ConfigEnvironment,
): PeerConfig {
  const pick = (key: SettingKey): { value: string; label: string } | undefined => {
    if (layers.flags[key] !== undefined) return { value: layers.flags[key]!, label: `--${key}` };
    if (layers.env[key] !== undefined) return { value: layers.env[key]!, label: envName(key) };
    if (layers.file[key] !== undefined) {
      return { value: layers.file[key]!, label: `"${key}" in ${layers.fileName ?? "config file"}` };
    }
    return undefined;
  };
  const integer = (key: SettingKey, min: number, max: number, fallback: number) => {
    const setting = pick(key);
    return setting ? parseIntegerFlag(setting.label, setting.value, min, max) : fallback;
  };
  const optionalPort = (key: SettingKey, emptyMeans?: number) => {
    const setting = pick(key);
    if (!setting) return undefined;
    if (setting.value.trim() === "" && emptyMeans !== undefined) return emptyMeans;
    return parseIntegerFlag(setting.label, setting.value, 0, 65535);
  };

  const name = pick("name");
  const resolvedName = name ? _checkName(name.label, name.value) : defaultPeerName(environment);
  const namespace = pick("namespace");
  const tracker = pick("tracker");
  const host = pick("host")?.value ?? NODE_DEFAULTS.host;
  if (host.trim() === "") throw new UsageError(`--host expects an address, got "${host}"`);
  const logLevel = pick("log-level");
  const logFormat = pick("log-format");
  const notify = pick("notify");
  const dataDir = pick("data-dir")?.value ??
    `${environment.dataDir}/peer-${safePathComponent(resolvedName)}`;
  return {
    name: resolvedName,
    namespace: namespace ? _checkName(namespace.label, namespace.value) : "default",
    host,
    port: integer("port", 0, 65535, NODE_DEFAULTS.port),
    tracker: tracker ? _address(parseHostPort(tracker.label, tracker.value)) : undefined,
    ttlSeconds: integer("ttl", MIN_TTL_SECONDS, MAX_TTL_SECONDS, DEFAULT_TTL_SECONDS),
    pingIntervalSeconds: integer("ping-interval", 1, 86400, PING_INTERVAL_MS / 1000),
    discoverIntervalSeconds: integer(
      "discover-interval",
      1,
      86400,
      NODE_DEFAULTS.discoverIntervalMs / 1000,
    ),
    maxReconnectAttempts: integer(
      "max-reconnect-attempts",
      0,
      1_000_000,
      NODE_DEFAULTS.maxReconnectAttempts,
    ),
    dataDir,
    // The machine's tracker (as `p2pchat tracker` keeps it), whichever peer embeds it: its key,
    // which peers remember, and its accounts stay the same. A profile of its own keeps its own.
    embeddedTrackerDir: pick("data-dir") === undefined
      ? `${environment.dataDir}/tracker`
      : `${pick("data-dir")!.value}/embedded-tracker`,
    // The web chat needs the HTTP server on a port that stays the same across restarts, so
    // that an open page finds its peer again.
    http: optionalPort("http") ?? (_boolean(pick("web")) ? DEFAULT_WEB_PORT : undefined),
    embedTracker: optionalPort("embed-tracker", DEFAULT_TRACKER_PORT),
    requireEncryption: _boolean(pick("require-encryption")),
    trackerKey: _fingerprint(pick("tracker-key")),
    logLevel: logLevel ? _labelled(logLevel.label, () => parseLogLevel(logLevel.value)) : undefined,
    logFormat: logFormat
      ? _labelled(logFormat.label, () => parseLogFormat(logFormat.value))
      : undefined,
    logFile: pick("log-file")?.value,
    notify: notify ? _notifyMode(notify.label, notify.value) : "bell",
    history: !_boolean(pick("no-history")),
    readReceipts: !_boolean(pick("no-read-receipts")),
    recoverAccounts: _boolean(pick("recover-accounts")),
    queueDays: integer("queue-days", 1, 3650, HISTORY_DEFAULTS.queueDays),
    keepDays: integer("keep-days", 0, 36500, HISTORY_DEFAULTS.keepDays),
    downloads: pick("downloads")?.value ?? `${dataDir}/downloads`,
    autoAcceptMb: integer("auto-accept-mb", 0, 1_000_000, DEFAULT_AUTO_ACCEPT_MB),
  };
}

function _boolean(setting: { value: string; label: string } | undefined): boolean {
  if (!setting) return false;
  const value = setting.value.trim().toLowerCase();
  if (["true", "1", "yes", ""].includes(value)) return true;
  if (["false", "0", "no"].includes(value)) return false;
  throw new UsageError(`${setting.label} expects true or false, got "${setting.value}"`);
}

// 32 base32 characters in any grouping, as `/whoami` and the tracker print them.
function _fingerprint(setting: { value: string; label: string } | undefined): string | undefined {
  if (!setting) return undefined;
  const plain = setting.value.replace(/\s+/g, "").toLowerCase();
  if (!/^[a-z2-7]{32}$/.test(plain)) {
    throw new UsageError(
      `${setting.label} expects a key fingerprint (32 letters and digits, as the tracker prints ` +
        `it), got "${setting.value}"`,
    );
  }
  return setting.value;
}

/** `$USER` made into a valid name, plus `-` and 4 hex characters, so two peers never clash. */
export function defaultPeerName(environment: ConfigEnvironment): string {
  const base = (environment.user ?? "").normalize("NFKC")
    .replace(/[^\p{L}\p{N}\p{M}._-]+/gu, "-")
    .replace(/^[^\p{L}\p{N}]+|-+$/gu, "")
    .slice(0, 59) || "peer";
  return `${base}-${environment.randomSuffix()}`;
}

/** Four random hex characters. */
export function randomHexSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(2));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function _checkName(label: string, value: string): string {
  const problem = checkName(label, value);
  if (problem) throw new UsageError(problem);
  return value;
}

function _notifyMode(label: string, value: string): Notify {
  const mode = NOTIFY_MODES.find((mode) => mode === value);
  if (mode === undefined) {
    throw new UsageError(`${label} must be one of ${NOTIFY_MODES.join(", ")}; got "${value}"`);
  }
  return mode;
}

function _address(hostPort: { hostname: string; port: number }): Address {
  return { hostname: hostPort.hostname, port: hostPort.port };
}

// The log parsers name the flag; say where the value came from when it was not a flag.
function _labelled<T>(label: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError && !label.startsWith("--")) {
      throw new UsageError(`${label}: ${error.message}`);
    }
    throw error;
  }
}
