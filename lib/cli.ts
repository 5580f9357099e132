/** Shared command-line helpers: flag parsing with clear errors, and address/number parsing. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { isLogLevel, type LogFormat, type LogLevel } from "./log.ts";
import { didYouMean } from "./suggest.ts";

/** A mistake in the command line: printed with a hint and exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses flags strictly; unknown flags, missing values and stray arguments become UsageErrors. */
export function parseFlags<T extends Options>(
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(_describeParseError(error, Object.keys(options), args));
  }
}

function _describeParseError(error: unknown, flags: string[], args: string[]): string {
  const text = error instanceof Error ? error.message : String(error);
  // node:util messages end with advice meant for scripts ("To specify a positional argument..."):
  // keep the first sentence, which names the flag.
  const first = text.split(/\.\s|\n/)[0].replace(/\.$/, "");
  // "--keep-days -1": node:util takes the value for an option; say what the user wrote.
  const ambiguous = /^Option '(--[^']+)' argument is ambiguous/.exec(first);
  if (ambiguous) {
    const value = args[args.indexOf(ambiguous[1]) + 1] ?? "";
    return `${ambiguous[1]} got "${value}": its value may not start with "-"`;
  }
  const unknown = /^Unknown option '--([^'=]+)/.exec(first);
  return unknown ? first + didYouMean(`--${unknown[1]}`, flags.map((flag) => `--${flag}`)) : first;
}

/**
 * How the user runs `p2pchat SUBCOMMAND`, for hints such as "Run ... --help": the deno.json
 * task they typed (`deno task peer`, or through npx), else the program's own name.
 */
export function invocation(subcommand: string, env: Record<string, string | undefined>): string {
  const task = env.P2PCHAT_TASK;
  if (task === undefined || !/^[a-z-]+$/.test(task)) return `p2pchat ${subcommand}`;
  // npm sets npm_lifecycle_event=npx for what `npx -y deno@VERSION task ...` runs.
  return env.npm_lifecycle_event === "npx"
    ? `npx -y deno@${Deno.version.deno} task ${task}`
    : `deno task ${task}`;
}

/** Parses `HOST:PORT` (or `[v6]:PORT`); port 0 is allowed where `allowZero`. */
export function parseHostPort(flag: string, value: string, allowZero = false): {
  hostname: string;
  port: number;
} {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (!match) throw new UsageError(`${flag} expects HOST:PORT, got "${value}"`);
  const port = parseIntegerFlag(flag, match[3], allowZero ? 0 : 1, 65535);
  return { hostname: match[1] ?? match[2], port };
}

/** Parses a whole number flag within [min, max]. */
export function parseIntegerFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new UsageError(`${flag} expects a whole number, got "${value}"`);
  }
  const number = Number(value.trim());
  if (number < min || number > max) {
    throw new UsageError(`${flag} must be between ${min} and ${max}, got "${value}"`);
  }
  return number;
}

/** Parses `--log-level`. */
export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (!isLogLevel(value)) {
    throw new UsageError(`--log-level must be one of debug, info, warn, error; got "${value}"`);
  }
  return value;
}

/** Parses `--log-format`. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  if (value !== "human" && value !== "json") {
    throw new UsageError(`--log-format must be "human" or "json", got "${value}"`);
  }
  return value;
}

/** The logging flags every subcommand accepts. */
export const LOG_FLAGS = {
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "log-file": { type: "string" },
} as const;

/** The help flag every subcommand accepts. */
export const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;
