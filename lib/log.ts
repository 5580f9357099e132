/**
 * Leveled logger with component tags. Human lines by default, one JSON object per line
 * with `format: "json"`. The sink is pluggable so the terminal UI can print log lines
 * above its input line instead of through it.
 */
import { escapeJsonText, escapeText, quoteValue } from "./escape.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];
export type LogFormat = "human" | "json";

/** One log event, for sinks that lay it out themselves (the terminal UI). */
export interface LogRecord {
  /** Milliseconds since the Unix epoch. */
  time: number;
  level: LogLevel;
  component: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** Where finished log lines go (each without a trailing newline), with the record they show. */
export type LogSink = (line: string, record: LogRecord) => void;

/** Settings shared by a root logger and every child made from it. */
export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
}

/** A logger for one component; `child()` makes one for another component, sharing settings. */
export class Logger {
  constructor(readonly settings: LogSettings, readonly component: string = "") {}

  child(component: string): Logger {
    return new Logger(this.settings, component);
  }

  /** Changes the level for this logger and all its relatives (the `/log` command). */
  setLevel(level: LogLevel): void {
    this.settings.level = level;
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.settings.level);
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.#write("debug", message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.#write("info", message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.#write("warn", message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.#write("error", message, fields);
  }

  #write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const record = { time: Date.now(), level, component: this.component, message, fields };
    const time = new Date(record.time).toISOString();
    if (this.settings.format === "json") {
      this.settings.sink(
        escapeJsonText(
          JSON.stringify({
            time,
            level,
            component: this.component || undefined,
            message,
            ...fields,
          }),
        ),
        record,
      );
      return;
    }
    const tag = this.component ? ` [${this.component}]` : "";
    const extra = fields && Object.keys(fields).length > 0 ? " " + formatFields(fields) : "";
    // Messages and fields often carry text from the network: one record stays one line.
    this.settings.sink(
      `${time} ${level.toUpperCase().padEnd(5)}${tag} ${escapeText(message)}${extra}`,
      record,
    );
  }
}

/** `key=value` pairs, strings as they are and other values as JSON. */
export function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([key, value]) =>
      `${key}=${
        typeof value === "string"
          ? quoteValue(value)
          : escapeJsonText(String(JSON.stringify(value)))
      }`
    )
    .join(" ");
}

/** True when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

const stderrEncoder = new TextEncoder();

/** A sink writing to standard error. */
export const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(stderrEncoder.encode(line + "\n"));
};

/** A sink appending to a file (opened once, kept open; writes are synchronous so none are lost at exit). */
export function fileSink(path: string): LogSink {
  // Logs name peers and addresses: readable by the owner only.
  const file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  return (line) => {
    file.writeSync(stderrEncoder.encode(line + "\n"));
  };
}

/** Makes the root logger from command-line settings. */
export function createLogger(
  options: { level?: LogLevel; format?: LogFormat; file?: string },
): Logger {
  return new Logger({
    level: options.level ?? "info",
    format: options.format ?? "human",
    sink: options.file ? fileSink(options.file) : stderrSink,
  });
}

/** A logger that keeps its lines in memory, for tests. */
export function memoryLogger(level: LogLevel = "debug"): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level, format: "human", sink: (line) => lines.push(line) }), lines };
}
