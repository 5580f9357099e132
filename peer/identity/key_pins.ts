/**
 * Keys remembered on first use (TOFU), as SSH's known_hosts: peers by peer_id in
 * `known_peers.json`, trackers by address in `known_trackers.json`. A damaged file stops the
 * peer with a clear error instead of being replaced: an empty pin list would quietly accept
 * any key again.
 */
import { base64, bytesFromBase64 } from "../../lib/bytes.ts";
import { P2pError } from "../../lib/errors.ts";
import { isRecord } from "../../lib/codec.ts";
import type { Logger } from "../../lib/log.ts";
import { writeFileDurably } from "../../lib/persist.ts";

/** One remembered key. */
export interface PinnedKey {
  readonly key: Uint8Array;
  /** When the key was first seen (ms since the epoch). */
  readonly firstSeen: number;
  /** The user compared the safety number and marked it verified. */
  readonly verified: boolean;
}

const KEY_BYTES = 32;

/**
 * Pins a file holds at most. Anyone can dial with a new name, and each save writes the whole
 * file: past this, new names are trusted for the session only, and no remembered key is evicted.
 */
export const MAX_PINS = 10_000;

/** A pin file (or, without a path, pins kept in memory for tests). */
export class KeyPins {
  readonly path?: string;
  readonly #log?: Logger;
  readonly #pins = new Map<string, PinnedKey>();
  #saving: Promise<void> = Promise.resolve();
  // A save is queued and has not started: later changes ride along with it.
  #saveQueued = false;
  #toldFull = false;

  private constructor(path?: string, log?: Logger) {
    this.path = path;
    this.#log = log;
  }

  /** Pins kept in memory only. */
  static inMemory(log?: Logger): KeyPins {
    return new KeyPins(undefined, log);
  }

  /** Reads `path` (no file yet: no pins); throws `corrupt_store` for a file it cannot use. */
  static async open(path: string, log: Logger): Promise<KeyPins> {
    const pins = new KeyPins(path, log);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return pins;
      throw new P2pError("unreadable_store", `Cannot read "${path}" (${String(error)})`);
    }
    const damaged = (why: string) =>
      new P2pError(
        "corrupt_store",
        `The remembered keys in "${path}" are damaged (${why}). Restore the file, or move it ` +
          `away to trust every key anew on first use`,
      );
    let file: unknown;
    try {
      file = JSON.parse(text);
    } catch {
      throw damaged("not JSON");
    }
    if (!isRecord(file) || file.version !== 1 || !isRecord(file.keys)) {
      throw damaged("unknown format");
    }
    for (const [id, entry] of Object.entries(file.keys)) {
      const key = isRecord(entry) ? bytesFromBase64(entry.key) : undefined;
      if (!isRecord(entry) || key?.length !== KEY_BYTES || typeof entry.first_seen !== "number") {
        throw damaged(`entry "${id}"`);
      }
      pins.#pins.set(id, { key, firstSeen: entry.first_seen, verified: entry.verified === true });
    }
    return pins;
  }

  get(id: string): PinnedKey | undefined {
    return this.#pins.get(id);
  }

  /** Remembers `key` for `id` (a new key starts unverified) and saves; see `MAX_PINS`. */
  pin(id: string, key: Uint8Array, now: number): PinnedKey {
    const pinned = { key, firstSeen: now, verified: false };
    if (!this.#pins.has(id) && this.#pins.size >= MAX_PINS) {
      if (!this.#toldFull) {
        this.#toldFull = true;
        this.#log?.warn("Remembered keys are full; new peers' keys are not remembered", {
          path: this.path,
          max: MAX_PINS,
        });
      }
      return pinned;
    }
    this.#pins.set(id, pinned);
    this.#save();
    return pinned;
  }

  /** Marks the pinned key of `id` verified (or not) and saves; false when nothing is pinned. */
  setVerified(id: string, verified: boolean): boolean {
    const pinned = this.#pins.get(id);
    if (!pinned) return false;
    this.#pins.set(id, { ...pinned, verified });
    this.#save();
    return true;
  }

  /** Forgets the key of `id` (the next one is trusted on first use again); false if none. */
  unpin(id: string): boolean {
    if (!this.#pins.delete(id)) return false;
    this.#save();
    return true;
  }

  /** Resolves once every change so far is on disk. */
  flushed(): Promise<void> {
    return this.#saving;
  }

  // Saves run one after another, each writing the whole file atomically; changes made while
  // one runs share the next, so a burst of new peers costs a few writes, not one each.
  #save(): void {
    const path = this.path;
    if (path === undefined || this.#saveQueued) return;
    this.#saveQueued = true;
    this.#saving = this.#saving.then(async () => {
      this.#saveQueued = false;
      const keys: Record<string, unknown> = {};
      for (const [id, pin] of this.#pins) {
        keys[id] = { key: base64(pin.key), first_seen: pin.firstSeen, verified: pin.verified };
      }
      const text = JSON.stringify({ version: 1, keys }, null, 1) + "\n";
      await writeFileDurably(path, new TextEncoder().encode(text));
    }).catch((error) => {
      // The pin still holds in memory for this run; say that it will not survive a restart.
      this.#log?.error("Could not save remembered keys; they last until the peer stops", {
        path,
        error: String(error),
      });
    });
  }
}
