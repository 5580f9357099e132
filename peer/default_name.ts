/**
 * The name of a peer started without `--name` stays the same from one start to the next: it
 * names the profile folder, so a new random part each time would start a new profile (a new
 * key, no history) at every `task start`. The random part is made once and kept in the data
 * folder.
 */
import { UsageError } from "../lib/cli.ts";
import { randomHexSuffix } from "./config.ts";

const _SUFFIX = /^[0-9a-f]{4}$/;

/** The kept random part of the default name, made (and kept) on first use. */
export function rememberedSuffix(dataDir: string): string {
  const path = `${dataDir}/default-name`;
  let kept: string | undefined;
  try {
    kept = Deno.readTextFileSync(path).trim();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (kept !== undefined) {
    if (_SUFFIX.test(kept)) return kept;
    // Never replaced: it says which profile is this user's default one.
    throw new UsageError(
      `"${path}" should hold the 4 hex characters of the default peer name; fix or delete it, ` +
        "or start with --name",
    );
  }
  const suffix = randomHexSuffix();
  Deno.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(path, `${suffix}\n`, { mode: 0o600 });
  return suffix;
}
