/**
 * Holds a data folder for one process: an advisory lock on a file in it, which the system
 * drops when the process ends, however it ends (kill -9 included), so a crash never leaves the
 * folder held.
 */

/** A held lock. */
export interface FolderLock {
  release(): void;
}

/**
 * Takes the lock file `name` in `folder` (made if missing, owner-only). Undefined when another
 * process holds it. A folder where the file cannot be made (a read-only disk) is not held: what
 * then fails to write there says so itself.
 */
export function lockFolder(folder: string, name: string): FolderLock | undefined {
  let file: Deno.FsFile;
  try {
    Deno.mkdirSync(folder, { recursive: true, mode: 0o700 });
    file = Deno.openSync(`${folder}/${name}`, { create: true, write: true, mode: 0o600 });
  } catch {
    return { release() {} };
  }
  if (!file.tryLockSync(true)) {
    file.close();
    return undefined;
  }
  return { release: () => file.close() };
}
