/**
 * The bearer token of the peer's local HTTP API: 256 random bits in hex, kept in
 * `<data dir>/api-token` readable by the owner only, so that other local users cannot
 * drive the peer. Created on first start, reused afterwards.
 */
import type { Logger } from "../../lib/log.ts";
import { writeFileDurably } from "../../lib/persist.ts";

const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** Where the token of the peer using `dataDir` lives. */
export function apiTokenPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/api-token`;
}

/** Reads the token, or creates it (mode 0600, directory created as needed). */
export async function loadOrCreateApiToken(dataDir: string, log?: Logger): Promise<string> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = apiTokenPath(dataDir);
  const existing = await _readToken(path);
  if (existing !== undefined && TOKEN_PATTERN.test(existing)) {
    await _tighten(path, log);
    return existing;
  }
  if (existing !== undefined) {
    log?.warn("API token file is malformed; writing a new token", { path });
  }
  const token = _newToken();
  // Temp file created 0600 and renamed into place: the token is never readable by others,
  // not even for a moment, and a crash leaves the old file or the new one, never half.
  await writeFileDurably(path, new TextEncoder().encode(token + "\n"));
  await _tighten(path, log);
  log?.info("created API token", { path });
  return token;
}

async function _readToken(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Narrows the file to 0600 when group or others may read it (mode is null on Windows). */
async function _tighten(path: string, log?: Logger): Promise<void> {
  const { mode } = await Deno.stat(path);
  if (mode === null || (mode & 0o077) === 0) return;
  await Deno.chmod(path, 0o600);
  log?.warn("API token file was readable by others; narrowed it to 0600", {
    path,
    was: (mode & 0o777).toString(8),
  });
}

function _newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
