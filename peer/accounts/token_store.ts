/**
 * Where the peer remembers its tracker login: `<data dir>/session-token`, mode 0600, written
 * durably (temp file, fsync, rename) so a crash never leaves half a token behind. A token file
 * that exists but cannot be read stops the peer with `unreadable_store`: starting logged out
 * would hide the problem, and the next login would overwrite the file.
 */
import { describeError, P2pError } from "../../lib/errors.ts";
import { writeFileDurably } from "../../lib/persist.ts";

/** Loads, saves and forgets the session token of one profile. */
export interface TokenStore {
  load(): Promise<string | undefined>;
  save(token: string): Promise<void>;
  remove(): Promise<void>;
}

/** The token file of a data directory. */
export function sessionTokenPath(dataDir: string): string {
  return `${dataDir}/session-token`;
}

/** A token store on disk; the directory is created (0700) on the first save. */
export function fileTokenStore(dataDir: string): TokenStore {
  const path = sessionTokenPath(dataDir);
  return {
    async load() {
      try {
        const text = (await Deno.readTextFile(path)).trim();
        return text === "" ? undefined : text;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw new P2pError(
          "unreadable_store",
          `Cannot read the session token "${path}" (${describeError(error)}); fix or remove it`,
        );
      }
    },
    async save(token) {
      await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
      await writeFileDurably(path, new TextEncoder().encode(token + "\n"));
    },
    async remove() {
      await Deno.remove(path).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    },
  };
}

/** A token store in memory (tests, or a peer without a data directory). */
export function memoryTokenStore(initial?: string): TokenStore & { token?: string } {
  const store = {
    token: initial,
    load: () => Promise.resolve(store.token),
    save: (token: string) => {
      store.token = token;
      return Promise.resolve();
    },
    remove: () => {
      store.token = undefined;
      return Promise.resolve();
    },
  };
  return store;
}
