/**
 * A long-term identity (a peer profile's, or a tracker's): an Ed25519 key pair in
 * `<data dir>/identity.json`, readable by the owner only, created on first start. A file that cannot be read or does not hold a valid
 * key pair stops the peer with a clear error: replacing it would silently give the user a new
 * identity, which every contact would see as a changed key.
 */
import { P2pError } from "./errors.ts";
import type { Logger } from "./log.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  type Identity,
  identityFromPrivateKey,
} from "./noise/mod.ts";
import { writeFileDurably } from "./persist.ts";
import { base64, bytesFromBase64, sameBytes } from "./bytes.ts";

/** An identity with the fingerprint people compare, and where it is kept. */
export interface ProfileIdentity extends Identity {
  readonly fingerprint: string;
  readonly path: string;
}

const KEY_BYTES = 32;

/** Where the identity kept in `dataDir` lives. */
export function identityPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/identity.json`;
}

/** Reads the identity, or creates it (mode 0600) when there is no file yet. */
export async function loadOrCreateIdentity(dataDir: string, log: Logger): Promise<ProfileIdentity> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = identityPath(dataDir);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new P2pError(
        "bad_identity",
        `Cannot read the identity key "${path}" (${
          String(error)
        }); fix its permissions or move it away`,
      );
    }
  }
  if (text === undefined) {
    const pair = generateIdentityKeyPair();
    const file = {
      version: 1,
      algorithm: "Ed25519",
      public_key: base64(pair.publicKey),
      private_key: base64(pair.privateKey),
    };
    await writeFileDurably(path, new TextEncoder().encode(JSON.stringify(file, null, 1) + "\n"));
    const identity = _profileIdentity(pair.privateKey, path);
    log.debug("Created an identity key", { path, fingerprint: identity.fingerprint });
    return identity;
  }
  const privateKey = _parse(text, path);
  await _keepPrivate(path, log);
  return _profileIdentity(privateKey, path);
}

// A private key others could read is made the owner's alone again, and the user is told (as
// ssh refuses such a key; refusing here would only stop the chat without protecting the key).
async function _keepPrivate(path: string, log: Logger): Promise<void> {
  if (Deno.build.os === "windows") return;
  const mode = (await Deno.stat(path)).mode;
  if (mode === null || (mode & 0o077) === 0) return;
  await Deno.chmod(path, 0o600);
  log.warn(
    `The identity key "${path}" could be read by other users (mode ${
      (mode & 0o777).toString(8)
    }); it is now readable by you alone. If someone else may have copied it, move it away to ` +
      "start with a new identity",
    { path },
  );
}

function _parse(text: string, path: string): Uint8Array {
  const corrupt = (why: string) =>
    new P2pError(
      "bad_identity",
      `The identity key "${path}" is damaged (${why}). Restore it from a backup, or move it ` +
        `away to start with a new identity (your contacts will be told your key changed)`,
    );
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw corrupt("not JSON");
  }
  if (typeof file !== "object" || file === null) throw corrupt("not a JSON object");
  const { version, algorithm, public_key: publicText, private_key: privateText } = file as Record<
    string,
    unknown
  >;
  if (version !== 1 || algorithm !== "Ed25519") throw corrupt("unknown version or algorithm");
  const privateKey = bytesFromBase64(privateText);
  const publicKey = bytesFromBase64(publicText);
  if (privateKey?.length !== KEY_BYTES || publicKey?.length !== KEY_BYTES) {
    throw corrupt("keys of the wrong size");
  }
  let derived: Uint8Array;
  try {
    derived = identityFromPrivateKey(privateKey).publicKey;
  } catch {
    throw corrupt("not an Ed25519 key");
  }
  if (!sameBytes(derived, publicKey)) throw corrupt("the keys do not belong together");
  return privateKey;
}

function _profileIdentity(privateKey: Uint8Array, path: string): ProfileIdentity {
  const identity = identityFromPrivateKey(privateKey);
  return { ...identity, fingerprint: fingerprint(identity.publicKey), path };
}
