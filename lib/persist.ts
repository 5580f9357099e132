/**
 * Crash-safe JSON files: a save writes a temporary file, fsyncs it, renames it over the
 * old one and fsyncs the directory, so a crash leaves either the old or the new file.
 * A file that cannot be read or parsed is moved aside and reported, never replaced by
 * an empty store behind the user's back.
 */
import { describeError, P2pError } from "./errors.ts";
import type { Logger } from "./log.ts";

/** What `loadJsonFile` found: the value, nothing yet, or a corrupt file it moved aside. */
export type LoadOutcome<T> =
  | { kind: "loaded"; value: T }
  | { kind: "missing" }
  | { kind: "quarantined"; movedTo: string; reason: string };

/**
 * Reads and validates a JSON file. `parse` turns the parsed JSON into a value and throws
 * when its shape is wrong. A corrupt file is renamed to `PATH.corrupt-TIMESTAMP`; a file that
 * cannot be read at all (permissions, I/O error) is left alone and the error is thrown, since
 * its content may be fine.
 */
export async function loadJsonFile<T>(
  path: string,
  parse: (json: unknown) => T,
  log: Logger,
): Promise<LoadOutcome<T>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "missing" };
    throw new P2pError(
      "unreadable_store",
      `Cannot read data file "${path}": ${describeError(error)}`,
    );
  }
  try {
    return { kind: "loaded", value: parse(JSON.parse(text)) };
  } catch (error) {
    return await quarantineFile(path, error instanceof Error ? error.message : String(error), log);
  }
}

/** Moves a bad data file aside with a timestamp and logs it loudly; returns where it went. */
export async function quarantineFile(
  path: string,
  reason: string,
  log: Logger,
): Promise<{ kind: "quarantined"; movedTo: string; reason: string }> {
  const stamp = new Date().toISOString().replaceAll(":", "-");
  const movedTo = `${path}.corrupt-${stamp}`;
  await Deno.rename(path, movedTo);
  log.error(`Data file "${path}" is corrupt (${reason}); kept aside as "${movedTo}"`, {
    file: path,
    movedTo,
  });
  return { kind: "quarantined", movedTo, reason };
}

/** Writes JSON to `path` atomically and durably (temp file, fsync, rename, fsync dir). */
export async function saveJsonFile(path: string, value: unknown): Promise<void> {
  await writeFileDurably(path, new TextEncoder().encode(JSON.stringify(value) + "\n"));
}

/** Replaces `path` with `bytes` atomically and durably. */
export async function writeFileDurably(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    // A full disk must not also fill up with half-written temporary files.
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** fsyncs a directory so a rename in it survives a power cut (best effort where unsupported). */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some platforms cannot open or fsync directories; the rename itself is still atomic.
  }
}

/** The directory part of a `/`-separated path ("." for a bare name). */
export function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? (slash === 0 ? "/" : ".") : path.slice(0, slash);
}

/** The default per-user data directory: $XDG_DATA_HOME/p2pchat or ~/.local/share/p2pchat. */
export function defaultDataDir(): string {
  const xdg = Deno.env.get("XDG_DATA_HOME");
  if (xdg) return `${xdg}/p2pchat`;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return `${home}/.local/share/p2pchat`;
}
