/**
 * A crash-safe store that never rewrites a whole file per change: each change is one
 * JSON line appended and fsynced, and now and then the state is compacted into a
 * snapshot (temp + fsync + rename) and the log restarted.
 *
 * Files: `PATH` holds a header line `{"log":1,"base":SEQ}` then `{"seq":N,"r":RECORD}`
 * lines; `PATH.snapshot` holds `{"snapshot":1,"seq":SEQ,"state":STATE}`. Records whose
 * seq is covered by the snapshot are skipped on load, which makes a crash between writing
 * the snapshot and restarting the log harmless.
 *
 * On load, a torn last line (crash in the middle of an append, never acknowledged) is cut
 * off and reported. A clean close leaves `PATH.clean` (`{"seq":N,"bytes":B}`): a log found
 * shorter than that, with nothing appended since, was cut while stopped, not by a crash, and
 * is damage. Damage anywhere else means the disk lied: the load stops with
 * `corrupt_store` (nothing is changed), unless the owner asked to recover, in which case the
 * log is moved aside, every readable record is kept, and the state is compacted at once. A
 * missing or corrupt snapshot that the log depends on is damage too: damaged data never turns
 * into empty data without an explicit choice.
 */
import { concatBytes } from "./bytes.ts";
import { P2pError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { loadJsonFile, quarantineFile, writeFileDurably } from "./persist.ts";

/** How the owner of the state plugs into the log. */
export interface LogState<R> {
  /** Replaces the state with a snapshot's; throws when its shape is wrong. */
  restore(state: unknown): void;
  /** Validates one record read back from disk; throws when its shape is wrong. */
  parse(json: unknown): R;
  /** Applies one record to the state (the same function serves live changes and replay). */
  apply(record: R): void;
  /** The whole state as JSON-able data, for compaction. */
  snapshot(): unknown;
}

/** What loading found, for logs and tests. */
export interface LoadReport {
  /** Records replayed from the log (after the snapshot). */
  replayed: number;
  /** Bytes cut off the end of the log: an append a crash interrupted. */
  tornBytes: number;
  /** Where a damaged log was moved, if it was. */
  quarantinedTo?: string;
  /** Unreadable lines skipped while recovering a damaged log. */
  skippedLines: number;
}

/** Options of `AppendLog.open`. */
export interface AppendLogOptions<R> {
  /** The log file; the snapshot is `PATH.snapshot`. */
  path: string;
  state: LogState<R>;
  log: Logger;
  /** Compact once the log grows past max(this, last snapshot size): amortized O(1) per append. */
  compactMinBytes?: number;
  /**
   * Start from what can be read of a damaged log (moved aside first) instead of refusing.
   * Off by default: the operator chooses it, told how by `recoveryHint`.
   */
  recoverDamaged?: boolean;
  /** How the operator asks for recovery, ending the refusal message (e.g. a flag to add). */
  recoveryHint?: string;
}

const DEFAULT_COMPACT_MIN_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface _Pending {
  bytes: Uint8Array;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** An append-only JSON-lines log with snapshots; appends are batched into one fsync. */
export class AppendLog<R> {
  #file: Deno.FsFile;
  #seq: number;
  #logBytes: number;
  #snapshotBytes: number;
  #pending: _Pending[] = [];
  #draining?: Promise<void>;
  #failure?: unknown;
  #closed = false;

  private constructor(
    readonly path: string,
    readonly state: LogState<R>,
    readonly log: Logger,
    readonly compactMinBytes: number,
    file: Deno.FsFile,
    seq: number,
    logBytes: number,
    snapshotBytes: number,
  ) {
    this.#file = file;
    this.#seq = seq;
    this.#logBytes = logBytes;
    this.#snapshotBytes = snapshotBytes;
  }

  /** Loads the snapshot and the log into `state`, repairing what a crash left behind. */
  static async open<R>(
    options: AppendLogOptions<R>,
  ): Promise<{ appendLog: AppendLog<R>; report: LoadReport }> {
    const { path, state, log } = options;
    const snapshotPath = `${path}.snapshot`;
    const recovery = _recovery(options);
    const loaded = await loadJsonFile(snapshotPath, (json) => _restoreSnapshot(json, state), log);
    if (loaded.kind === "quarantined") {
      throw new P2pError(
        "corrupt_store",
        `Snapshot "${snapshotPath}" is corrupt (${loaded.reason}); it was kept as ` +
          `"${loaded.movedTo}". Restore it from a backup, or ${recovery.hint} to start from ` +
          `the records of "${path}" alone`,
      );
    }
    const snapshotSeq = loaded.kind === "loaded" ? loaded.value.seq : 0;
    const snapshotBytes = loaded.kind === "loaded" ? loaded.value.bytes : 0;
    const report: LoadReport = { replayed: 0, tornBytes: 0, skippedLines: 0 };
    const clean = await _readCleanMark(path);

    let bytes: Uint8Array | undefined;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new P2pError(
          "unreadable_store",
          `Cannot read "${path}" (${error instanceof Error ? error.message : String(error)}); ` +
            `it must be a readable file: fix or move it, then start again`,
        );
      }
    }
    let position: _Position;
    if (bytes === undefined) {
      await _writeFreshLog(path, snapshotSeq);
      position = { seq: snapshotSeq, logBytes: _header(snapshotSeq).length, snapshotBytes };
    } else {
      const snapshot = {
        seq: snapshotSeq,
        bytes: snapshotBytes,
        described: loaded.kind === "missing" ? "missing" : `at ${snapshotSeq}`,
      };
      position = await _replay(path, bytes, state, log, snapshot, report, recovery, clean);
    }
    // Appends follow: from now on, only a new clean close may vouch for the length.
    await Deno.remove(_cleanPath(path)).catch(() => {});
    const file = await _openForAppend(path);
    await file.sync();
    const appendLog = new AppendLog(
      path,
      state,
      log,
      options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES,
      file,
      position.seq,
      position.logBytes,
      position.snapshotBytes,
    );
    return { appendLog, report };
  }

  /** Sequence number of the last record accepted. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Appends a record the caller has already applied to the state (in the same synchronous
   * step, so a snapshot taken later always matches its seq). Resolves once it is on disk.
   */
  append(record: R): Promise<void> {
    if (this.#closed) return Promise.reject(new P2pError("corrupt_store", "Log is closed"));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const seq = ++this.#seq;
    const bytes = encoder.encode(JSON.stringify({ seq, r: record }) + "\n");
    return new Promise((resolve, reject) => {
      this.#pending.push({ bytes, resolve, reject });
      this.#startDrain();
    });
  }

  /** Writes the whole state as a snapshot and restarts the log after it. */
  async compact(): Promise<void> {
    await this.#settled();
    await this.#compactNow();
  }

  /** Waits for every pending append, closes the file and marks the clean stop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#settled();
    this.#closed = true;
    this.#file.close();
    if (this.#failure !== undefined) return;
    const mark = JSON.stringify({ seq: this.#seq, bytes: this.#logBytes }) + "\n";
    await writeFileDurably(_cleanPath(this.path), encoder.encode(mark)).catch((error) =>
      this.log.warn(`Could not mark "${this.path}" as cleanly closed: ${String(error)}`)
    );
  }

  #startDrain(): void {
    if (this.#draining) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      // An append may have slipped in after the loop's last check.
      if (this.#pending.length > 0) this.#startDrain();
    });
  }

  async #settled(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      // Everything queued while the previous fsync ran goes out in one write and one fsync.
      const batch = this.#pending.splice(0);
      try {
        const bytes = concatBytes(batch.map((item) => item.bytes));
        let written = 0;
        while (written < bytes.length) written += await this.#file.write(bytes.subarray(written));
        await this.#file.syncData();
        this.#logBytes += bytes.length;
      } catch (error) {
        this.#fail(error, batch);
        return;
      }
      for (const item of batch) item.resolve();
      if (this.#logBytes > Math.max(this.compactMinBytes, this.#snapshotBytes)) {
        try {
          await this.#compactNow();
        } catch (error) {
          // The old log is still whole and keeps growing; only start-up gets slower.
          this.log.error(`Compacting "${this.path}" failed: ${String(error)}`, { file: this.path });
        }
      }
    }
  }

  #fail(error: unknown, batch: _Pending[]): void {
    this.#failure = new P2pError(
      "corrupt_store",
      `Writing "${this.path}" failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    this.log.error(`Store "${this.path}" can no longer be written; refusing changes`, {
      file: this.path,
      error: String(error),
    });
    for (const item of [...batch, ...this.#pending.splice(0)]) item.reject(this.#failure);
  }

  async #compactNow(): Promise<void> {
    if (this.#closed || this.#failure !== undefined) return;
    const seq = this.#seq;
    const snapshotBytes = await _writeSnapshot(this.path, seq, this.state);
    // Records still queued with seq <= this one are in the snapshot; replay skips them.
    await _writeFreshLog(this.path, seq);
    const file = await _openForAppend(this.path);
    this.#file.close();
    this.#file = file;
    this.#logBytes = _header(seq).length;
    this.#snapshotBytes = snapshotBytes;
    this.log.debug(`Compacted "${this.path}" at seq ${seq}`, { bytes: snapshotBytes });
  }
}

/** Where a log stands once loaded: its last seq and the sizes that decide compaction. */
interface _Position {
  seq: number;
  logBytes: number;
  snapshotBytes: number;
}

/**
 * Replays an existing log after its snapshot into `state`. A torn last line (a crash during an
 * append) is cut off; damage before the end moves the log aside and writes what was readable
 * as a new snapshot, so nothing readable is lost and nothing is silently dropped.
 */
async function _replay<R>(
  path: string,
  bytes: Uint8Array,
  state: LogState<R>,
  log: Logger,
  snapshot: { seq: number; bytes: number; described: string },
  report: LoadReport,
  recovery: { allowed: boolean; hint: string },
  clean: _CleanMark | undefined,
): Promise<_Position> {
  const scan = _scan(bytes, state);
  if (scan.base !== undefined && scan.base > snapshot.seq && !recovery.allowed) {
    throw new P2pError(
      "corrupt_store",
      `Log "${path}" continues snapshot ${scan.base} but the snapshot ` +
        `"${path}.snapshot" is ${snapshot.described}. Restore the snapshot from a backup, or ` +
        `${recovery.hint} to start from the records of the log alone`,
    );
  }
  const problems = _problems(scan, snapshot.seq);
  const cut = _cutWhileStopped(scan, snapshot.seq, bytes.length, clean);
  if (cut) problems.push(cut);
  if (problems.length > 0 && !recovery.allowed) {
    // Nothing is applied or moved: the operator decides, with the file as it is.
    throw new P2pError(
      "corrupt_store",
      `Log "${path}" is damaged (${problems.join("; ")}); nothing was changed. Restore it ` +
        `from a backup, or ${recovery.hint} to start from the ${scan.records.length} readable ` +
        `record(s), keeping the damaged file aside`,
    );
  }
  let seq = snapshot.seq;
  for (const { seq: recordSeq, record } of scan.records) {
    if (recordSeq <= seq) continue;
    state.apply(record);
    seq = recordSeq;
    report.replayed++;
  }
  if (problems.length > 0) {
    const moved = await quarantineFile(path, problems.join("; "), log);
    report.quarantinedTo = moved.movedTo;
    report.skippedLines = scan.bad.length;
    // The recovered state lives only in memory until it is written whole again.
    const snapshotBytes = await _writeSnapshot(path, seq, state);
    await _writeFreshLog(path, seq);
    return { seq, logBytes: _header(seq).length, snapshotBytes };
  }
  if (scan.tornBytes > 0) {
    await Deno.truncate(path, bytes.length - scan.tornBytes);
    report.tornBytes = scan.tornBytes;
    log.warn(
      `Log "${path}" ended in a torn line (a crash during an append); ` +
        `cut ${scan.tornBytes} byte(s)`,
      { file: path, bytes: scan.tornBytes },
    );
  }
  return { seq, logBytes: bytes.length - scan.tornBytes, snapshotBytes: snapshot.bytes };
}

function _recovery(options: AppendLogOptions<unknown>): { allowed: boolean; hint: string } {
  return {
    allowed: options.recoverDamaged ?? false,
    hint: options.recoveryHint ?? "open it with recovery",
  };
}

/** The length a clean close vouched for. */
interface _CleanMark {
  seq: number;
  bytes: number;
}

function _cleanPath(path: string): string {
  return `${path}.clean`;
}

async function _readCleanMark(path: string): Promise<_CleanMark | undefined> {
  try {
    const mark = JSON.parse(await Deno.readTextFile(_cleanPath(path)));
    return Number.isSafeInteger(mark?.seq) && Number.isSafeInteger(mark?.bytes) ? mark : undefined;
  } catch {
    return undefined; // none (the last stop was a crash), or unreadable: vouches for nothing
  }
}

/** Why a log is shorter than its last clean close left it, or undefined. */
function _cutWhileStopped<R>(
  scan: _Scan<R>,
  snapshotSeq: number,
  length: number,
  clean: _CleanMark | undefined,
): string | undefined {
  if (!clean) return undefined;
  const last = Math.max(snapshotSeq, scan.base ?? 0, ...scan.records.map((entry) => entry.seq));
  // Records after the mark: it is stale (the program ran and maybe crashed since).
  if (last > clean.seq) return undefined;
  if (last < clean.seq || length < clean.bytes) {
    return `it is shorter than at the last clean stop (${length} of ${clean.bytes} bytes, up ` +
      `to record ${last} of ${clean.seq}): it was cut while stopped, not by a crash`;
  }
  if (scan.tornBytes > 0) return "it ends in a partial line written after the last clean stop";
  return undefined;
}

/** What is wrong with a scanned log beyond a torn last line, in words (empty when whole). */
function _problems<R>(scan: _Scan<R>, snapshotSeq: number): string[] {
  const problems: string[] = [];
  if (scan.base === undefined) problems.push("its header is unreadable");
  else if (scan.base > snapshotSeq) problems.push(`it continues a snapshot that is missing`);
  if (scan.bad.length > 0) {
    problems.push(`${scan.bad.length} unreadable line(s) before the end`);
    return problems; // the records they held leave a gap: no need to say it twice
  }
  let seq = Math.max(snapshotSeq, scan.base ?? 0);
  for (const { seq: recordSeq } of scan.records) {
    if (recordSeq <= seq) continue;
    if (recordSeq !== seq + 1) {
      problems.push(`records ${seq + 1}..${recordSeq - 1} are missing`);
      break;
    }
    seq = recordSeq;
  }
  return problems;
}

/** Writes the snapshot durably (it must land before the log restarts); returns its size. */
async function _writeSnapshot<R>(path: string, seq: number, state: LogState<R>): Promise<number> {
  const bytes = encoder.encode(
    JSON.stringify({ snapshot: 1, seq, state: state.snapshot() }) + "\n",
  );
  await writeFileDurably(`${path}.snapshot`, bytes);
  return bytes.length;
}

function _restoreSnapshot<R>(json: unknown, state: LogState<R>): { seq: number; bytes: number } {
  const envelope = json as { snapshot?: unknown; seq?: unknown; state?: unknown } | null;
  if (
    typeof envelope !== "object" || envelope === null || envelope.snapshot !== 1 ||
    !Number.isSafeInteger(envelope.seq) || (envelope.seq as number) < 0
  ) {
    throw new TypeError("not a snapshot of this format");
  }
  state.restore(envelope.state);
  return { seq: envelope.seq as number, bytes: JSON.stringify(json).length };
}

interface _Scan<R> {
  /** The header's base seq; undefined when the header itself is unreadable. */
  base?: number;
  records: { seq: number; record: R }[];
  /** Indexes of unreadable complete lines that are not the last one. */
  bad: number[];
  tornBytes: number;
}

function _scan<R>(bytes: Uint8Array, state: LogState<R>): _Scan<R> {
  const scan: _Scan<R> = { records: [], bad: [], tornBytes: 0 };
  const lines: { start: number; end: number }[] = [];
  let start = 0;
  for (
    let newline = bytes.indexOf(NEWLINE);
    newline !== -1;
    newline = bytes.indexOf(NEWLINE, start)
  ) {
    lines.push({ start, end: newline });
    start = newline + 1;
  }
  // Only newline-terminated lines were ever acknowledged.
  scan.tornBytes = bytes.length - start;
  let lastBad: { index: number; start: number } | undefined;
  lines.forEach((line, index) => {
    const text = decoder.decode(bytes.subarray(line.start, line.end));
    if (index === 0) {
      scan.base = _parseHeader(text);
      return;
    }
    try {
      const entry = JSON.parse(text) as { seq?: unknown; r?: unknown } | null;
      if (typeof entry !== "object" || entry === null || !Number.isSafeInteger(entry.seq)) {
        throw new TypeError("not a log entry");
      }
      scan.records.push({ seq: entry.seq as number, record: state.parse(entry.r) });
    } catch {
      if (lastBad) scan.bad.push(lastBad.index);
      lastBad = { index, start: line.start };
    }
  });
  if (lastBad) {
    if (lastBad.index === lines.length - 1) {
      // Garbage only on the last line (a torn write that happened to contain a newline).
      scan.tornBytes = bytes.length - lastBad.start;
    } else {
      scan.bad.push(lastBad.index);
    }
  }
  return scan;
}

function _parseHeader(text: string): number | undefined {
  try {
    const header = JSON.parse(text) as { log?: unknown; base?: unknown } | null;
    if (header?.log === 1 && Number.isSafeInteger(header.base)) return header.base as number;
  } catch {
    // Reported by the caller as damage.
  }
  return undefined;
}

function _header(base: number): Uint8Array {
  return encoder.encode(JSON.stringify({ log: 1, base }) + "\n");
}

async function _writeFreshLog(path: string, base: number): Promise<void> {
  await writeFileDurably(path, _header(base));
}

async function _openForAppend(path: string): Promise<Deno.FsFile> {
  return await Deno.open(path, { append: true, create: true, mode: 0o600 });
}
