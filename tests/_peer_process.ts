/**
 * Test helper: starts the real peer process (`deno run -A main.ts peer ...`) on loopback with
 * piped standard input and output, collects what it prints, and waits for lines with deadlines.
 * `E2e` owns every process, temporary directory and socket a test starts and releases them all
 * in `close()`, which tests call in `finally`.
 */
import { startTrackerProcess, type TrackerProcess } from "./_tracker_process.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** Process start-up includes Deno compiling main.ts on a machine running other tests. */
const STARTUP_TIMEOUT_MS = 30_000;
/** Default wait for an expected line: generous because the machine is shared and loaded. */
export const WAIT_MS = 15_000;
/** Standard error is kept for failure reports only; its tail is enough. */
const STDERR_KEEP_CHARS = 64 * 1024;

/** How to start one peer. */
export interface PeerOptions {
  name: string;
  namespace: string;
  /** Port of the tracker on 127.0.0.1 (`--tracker`). */
  trackerPort?: number;
  /** Runs a tracker in the peer (`--embed-tracker 0`) and uses it, instead of `--tracker`. */
  embedTracker?: boolean;
  /** Flags added after the defaults (later flags win). */
  args?: string[];
  /** Environment variables added to (or, with `undefined`, removed from) the test's own. */
  env?: Record<string, string | undefined>;
  /** Runs the peer in a pseudo-terminal through util-linux `script`, so its UI is interactive. */
  terminal?: boolean;
  /** Directory for the API token; a fresh temporary one by default. */
  dataDir?: string;
}

/** Where a match was found: the line (escape sequences kept), its index and the match. */
export interface LineMatch {
  line: string;
  index: number;
  match: RegExpExecArray;
}

/** A running peer process. */
export class PeerProcess {
  readonly name: string;
  readonly namespace: string;
  readonly peerId: string;
  readonly dataDir: string;
  /** Peer-protocol port, from the "Peer ... listening on" line. */
  port = 0;
  /** Base URL of the local HTTP API when started with `--http`. */
  httpUrl?: string;
  /** Path of the API token file when started with `--http`. */
  tokenFile?: string;
  /** The link that signs a browser in to the web chat (the first one printed). */
  webLink?: string;
  /** Everything written to standard output, as is. */
  output = "";
  /** Complete output lines without their "\n" (and trailing "\r"s: a terminal adds some). */
  readonly lines: string[] = [];
  /** Resolves with the exit status once the process ended. */
  readonly exited: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stderr = "";
  #drained: Promise<void>;
  #waiters = new Set<() => void>();
  #running = true;

  constructor(options: PeerOptions, dataDir: string) {
    this.name = options.name;
    this.namespace = options.namespace;
    this.peerId = `${options.name}@${options.namespace}`;
    this.dataDir = dataDir;
    const peerArgs = [
      "run",
      "-A",
      MAIN,
      "peer",
      "--name",
      options.name,
      "--namespace",
      options.namespace,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      "--ping-interval",
      "1",
      "--discover-interval",
      "1",
      // Without a tracker of the test's own, a port where nothing listens: never whatever
      // tracker the user runs on the default port.
      ...(options.embedTracker
        ? ["--embed-tracker", "0"]
        : ["--tracker", `127.0.0.1:${options.trackerPort ?? 1}`]),
      ...(options.args ?? []),
    ];
    const env = { ...Deno.env.toObject() };
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    const [command, args] = options.terminal
      ? ["/usr/bin/script", ["-qfec", _shellCommand([Deno.execPath(), ...peerArgs]), "/dev/null"]]
      : [Deno.execPath(), peerArgs];
    this.#child = new Deno.Command(command, {
      args,
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.exited = this.#child.status.then((status) => {
      this.#running = false;
      this.#notify();
      return status;
    });
    this.#drained = Promise.all([
      this.#collect(this.#child.stdout, (text) => this.#onStdout(text)),
      this.#collect(this.#child.stderr, (text) => {
        this.#stderr = (this.#stderr + text).slice(-STDERR_KEEP_CHARS);
        this.#notify();
      }),
    ]).then(() => {});
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.#running;
  }

  /** The tail of standard error (logs), for failure messages. */
  get stderr(): string {
    return this.#stderr;
  }

  /** The number of complete lines so far: pass it to `waitForLine` to look only at newer ones. */
  mark(): number {
    return this.lines.length;
  }

  /** Waits until a line from index `from` on matches `pattern`; throws after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs = WAIT_MS, from = 0): Promise<LineMatch> {
    return this.#waitFor(`a line matching ${pattern}`, timeoutMs, () => {
      for (let index = from; index < this.lines.length; index++) {
        const match = pattern.exec(this.lines[index]);
        if (match) return { line: this.lines[index], index, match };
      }
      return undefined;
    });
  }

  /** Waits until the raw output from character `from` on matches `pattern`. */
  waitForOutput(pattern: RegExp, timeoutMs = WAIT_MS, from = 0): Promise<RegExpExecArray> {
    return this.#waitFor(`output matching ${pattern}`, timeoutMs, () => {
      const match = pattern.exec(this.output.slice(from));
      if (match) match.index += from;
      return match ?? undefined;
    });
  }

  /** Waits until `probe` finds something in the output (re-checked on every chunk). */
  waitUntil<T>(what: string, probe: () => T | undefined, timeoutMs = WAIT_MS): Promise<T> {
    return this.#waitFor(what, timeoutMs, probe);
  }

  /** Runs a command (a line on standard input) and returns the mark taken just before it. */
  async send(line: string): Promise<number> {
    const mark = this.mark();
    await this.write(line + "\n");
    return mark;
  }

  /** Writes bytes to standard input as they are (keys, in a terminal). */
  async write(text: string): Promise<void> {
    try {
      await this.#stdin.write(new TextEncoder().encode(text));
    } catch (error) {
      // It ended: what it said last tells why.
      throw new Error(`${error}; the peer's last output: ${this.output.slice(-2_000)}`);
    }
  }

  /** Closes standard input (end of the commands, in pipe mode). */
  async closeInput(): Promise<void> {
    await this.#stdin.close().catch(() => {});
  }

  /** Sends a signal; a process that already ended is left alone. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (!this.#running) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Ended in the meantime.
    }
  }

  /** Waits for the exit (bounded), then for the end of its output. */
  async waitForExit(timeoutMs = WAIT_MS): Promise<Deno.CommandStatus> {
    await this.#waitFor("the process to exit", timeoutMs, () => this.#running ? undefined : true);
    const status = await this.exited;
    await this.#drained;
    return status;
  }

  /** Kills the process if it still runs and releases its pipes. */
  async close(): Promise<void> {
    this.kill("SIGKILL");
    await this.exited;
    await this.#stdin.close().catch(() => {});
    await this.#drained;
  }

  #onStdout(text: string): void {
    const start = this.output.lastIndexOf("\n") + 1;
    this.output += text;
    const parts = this.output.slice(start).split("\n");
    parts.pop(); // the incomplete last line
    for (const part of parts) this.lines.push(part.replace(/\r+$/, ""));
    if (this.port === 0) {
      const listening = /^Peer \S+ listening on .+:(\d+)\r*$/m.exec(this.output);
      if (listening) this.port = Number(listening[1]);
    }
    if (this.httpUrl === undefined) {
      const http = /^HTTP API on (http:\/\/\S+) \(token in (.+)\)\r?$/m.exec(this.output);
      if (http) [this.httpUrl, this.tokenFile] = [http[1], http[2]];
    }
    if (this.webLink === undefined) {
      this.webLink = /^Web chat: open (http:\/\/\S+)\r?$/m.exec(this.output)?.[1];
    }
    this.#notify();
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  async #collect(stream: ReadableStream<Uint8Array>, onText: (text: string) => void) {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) onText(text);
  }

  // Re-checks `probe` whenever output arrives or the process ends, until the deadline.
  async #waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    const done = Promise.withResolvers<T>();
    const check = () => {
      const found = probe();
      if (found !== undefined) done.resolve(found);
      else if (!this.#running) done.reject(this.#failure(`exited before ${what}`));
    };
    this.#waiters.add(check);
    const timer = setTimeout(
      () => done.reject(this.#failure(`no ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      check();
      return await done.promise;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(check);
    }
  }

  #failure(message: string): Error {
    return new Error(
      `${this.peerId}: ${message}\n--- stdout ---\n${this.lines.slice(-40).join("\n")}` +
        `\n--- stderr (tail) ---\n${this.#stderr.slice(-4000)}`,
    );
  }
}

/** Owns the processes, directories and sockets of one test; `close()` releases them all. */
export class E2e {
  #cleanups: (() => Promise<void> | void)[] = [];

  /** Starts a tracker process (rate limit off, fresh data directory unless `dataDir`; `args` after). */
  async tracker(
    options: { port?: number; dataDir?: string; args?: string[] } = {},
  ): Promise<TrackerProcess> {
    const dataDir = options.dataDir ?? await this.tempDir();
    const tracker = await startTrackerProcess([
      "--data-dir",
      dataDir,
      "--no-rate-limit",
      ...(options.port === undefined ? [] : ["--port", String(options.port)]),
      ...(options.args ?? []),
    ]);
    this.#cleanups.push(() => tracker.stop("SIGKILL").then(() => {}));
    return tracker;
  }

  /** Starts a peer and waits for its listening line (and HTTP API line with `--http`). */
  async peer(options: PeerOptions): Promise<PeerProcess> {
    const dataDir = options.dataDir ?? await this.tempDir();
    const peer = new PeerProcess(options, dataDir);
    this.#cleanups.push(() => peer.close());
    await peer.waitForLine(/Peer \S+ listening on /, STARTUP_TIMEOUT_MS);
    if (options.args?.includes("--http")) {
      await peer.waitForLine(/Web chat: open http:/, STARTUP_TIMEOUT_MS);
    }
    return peer;
  }

  /** Starts several peers at once. */
  peers(options: PeerOptions[]): Promise<PeerProcess[]> {
    return Promise.all(options.map((one) => this.peer(one)));
  }

  /** A temporary directory removed by `close()`. */
  async tempDir(): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix: "p2pchat-e2e-" });
    this.#cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    return dir;
  }

  /** Registers anything else to release (a listener, a socket). */
  defer(cleanup: () => Promise<void> | void): void {
    this.#cleanups.push(cleanup);
  }

  /** Releases everything, newest first; every cleanup runs even if one fails. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.#cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    this.#cleanups = [];
    if (errors.length > 0) throw new AggregateError(errors, "e2e cleanup failed");
  }
}

/** Waits until `probe` returns a value, calling it every `everyMs`, or throws after `timeoutMs`. */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = WAIT_MS,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Quotes arguments for `sh -c` (what `script -c` runs). */
function _shellCommand(args: string[]): string {
  return args.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
}
