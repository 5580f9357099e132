/**
 * Test helper: starts the real tracker process (`deno run main.ts tracker ...`), waits for its
 * "Tracker listening on" line, and talks to it over loopback one request per connection.
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const STARTUP_TIMEOUT_MS = 20_000;

/** A running tracker process. */
export interface TrackerProcess {
  port: number;
  /** The fingerprint it printed after "Tracker listening on". */
  fingerprint: string;
  /** Base URL of the HTTP API when started with `--http`. */
  httpUrl?: string;
  /** Sends a signal and waits for the exit; returns the exit code and everything written to stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

/** Runs `p2pchat tracker ARGS` to completion (for bad command lines); returns code and output. */
export async function runTrackerCli(args: string[]): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "tracker", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

/** Starts a tracker on 127.0.0.1 port 0 with `args` added; resolves once it listens. */
export async function startTrackerProcess(args: string[]): Promise<TrackerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "tracker", "--host", "127.0.0.1", "--port", "0", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both pipes are drained to the end so the child never blocks on a full pipe.
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let port: number | undefined;
  let fingerprint: string | undefined;
  let httpUrl: string | undefined;
  let buffered = "";
  const wantsHttp = args.includes("--http");
  const deadline = setTimeout(() => child.kill("SIGKILL"), STARTUP_TIMEOUT_MS);
  try {
    while (
      port === undefined || fingerprint === undefined || (wantsHttp && httpUrl === undefined)
    ) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`tracker exited before listening: ${await stderr}`);
      buffered += value;
      port ??= _match(buffered, /^Tracker listening on .+:(\d+)$/m, Number);
      fingerprint ??= _match(buffered, /^Tracker key fingerprint: (.+)$/m, String);
      httpUrl ??= _match(buffered, /^HTTP API on (http:\/\/\S+)$/m, String);
    }
  } finally {
    clearTimeout(deadline);
  }
  const stdoutDone = (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  return {
    port,
    fingerprint,
    httpUrl,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
      const status = await child.status;
      await stdoutDone;
      return { code: status.code, stderr: await stderr };
    },
  };
}

function _match<T>(text: string, pattern: RegExp, convert: (text: string) => T): T | undefined {
  const match = pattern.exec(text);
  return match ? convert(match[1]) : undefined;
}

/** Opens a connection, writes `text` as is, and reads the reply until the server closes. */
export async function rawRequest(port: number, text: string | Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    if (bytes.length > 0) await _writeAll(conn, bytes);
    return await _readToEnd(conn);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server already.
    }
  }
}

/** Sends one message as a JSON line and parses the single reply line. */
export async function request(
  port: number,
  message: unknown,
): Promise<Record<string, unknown>> {
  const reply = await rawRequest(port, JSON.stringify(message) + "\n");
  if (!reply.endsWith("\n") || reply.indexOf("\n") !== reply.length - 1) {
    throw new Error(`expected exactly one reply line, got ${JSON.stringify(reply)}`);
  }
  return JSON.parse(reply);
}

async function _writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

async function _readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    let count: number | null;
    try {
      count = await conn.read(buffer);
    } catch (error) {
      // A reset after the reply (server closed with our bytes unread) still ends the reply.
      if (error instanceof Deno.errors.ConnectionReset) break;
      throw error;
    }
    if (count === null) break;
    chunks.push(buffer.slice(0, count));
  }
  return new TextDecoder().decode(await new Blob(chunks).arrayBuffer());
}

/**
 * Runs `run` against a tracker process with a fresh data directory, no rate limit and cheap
 * password hashing, plus `args`; `cleanup` registers what to close before the tracker stops.
 * Returns the tracker's standard error (its log).
 */
export async function withTestTracker(
  args: string[],
  run: (tracker: TrackerProcess, cleanup: (close: () => void) => void) => Promise<void>,
): Promise<string> {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-tracker-" });
  const closers: (() => void)[] = [];
  let logs = "";
  try {
    const tracker = await startTrackerProcess([
      "--data-dir",
      dataDir,
      "--no-rate-limit",
      "--pbkdf2-iterations",
      "1000",
      ...args,
    ]);
    try {
      await run(tracker, (close) => closers.push(close));
    } finally {
      for (const close of closers) close();
      logs = (await tracker.stop()).stderr;
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
  return logs;
}
