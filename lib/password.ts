/**
 * Password hashing with PBKDF2-HMAC-SHA256 from Web Crypto. Each credential keeps its own
 * algorithm, iteration count and salt, so the cost can be raised later and old records
 * re-hashed at their next successful login.
 */
import { timingSafeEqual } from "node:crypto";

/** OWASP's 2023 floor for PBKDF2-HMAC-SHA256; the default for new credentials. */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/** Password length bounds: 8 is NIST's floor; the upper bound keeps lines small. */
export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 1024;

/** The only algorithm written today; the field exists so another can be added later. */
export const PASSWORD_ALGORITHM = "PBKDF2-HMAC-SHA256";

const SALT_BYTES = 16;
const HASH_BITS = 256;
const encoder = new TextEncoder();

/** A stored password: never the password itself, only what is needed to check one. */
export interface PasswordCredential {
  algorithm: typeof PASSWORD_ALGORITHM;
  iterations: number;
  /** base64 of the random per-user salt. */
  salt: string;
  /** base64 of the derived key. */
  hash: string;
}

/** Hashes a password with a fresh random salt. */
export async function hashPassword(
  password: string,
  iterations: number = DEFAULT_PBKDF2_ITERATIONS,
): Promise<PasswordCredential> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await _derive(password, salt, iterations);
  return {
    algorithm: PASSWORD_ALGORITHM,
    iterations,
    salt: _toBase64(salt),
    hash: _toBase64(hash),
  };
}

/** Checks a password against a credential in constant time (for a given credential). */
export async function verifyPassword(
  password: string,
  credential: PasswordCredential,
): Promise<boolean> {
  const expected = _fromBase64(credential.hash);
  const actual = await _derive(password, _fromBase64(credential.salt), credential.iterations);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** True when a credential is weaker than the current setting and should be re-hashed. */
export function needsRehash(credential: PasswordCredential, iterations: number): boolean {
  return credential.algorithm !== PASSWORD_ALGORITHM || credential.iterations < iterations;
}

/** Parses a stored credential, throwing a TypeError when its shape is wrong. */
export function parseCredential(value: unknown): PasswordCredential {
  const record = value as Partial<PasswordCredential> | null;
  if (
    typeof record !== "object" || record === null ||
    record.algorithm !== PASSWORD_ALGORITHM ||
    !Number.isSafeInteger(record.iterations) || (record.iterations ?? 0) < 1 ||
    !_isBase64(record.salt) || !_isBase64(record.hash)
  ) {
    throw new TypeError("Malformed password credential");
  }
  return {
    algorithm: record.algorithm,
    iterations: record.iterations!,
    salt: record.salt,
    hash: record.hash,
  };
}

async function _derive(password: string, salt: Uint8Array, iterations: number) {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    HASH_BITS,
  );
  return new Uint8Array(bits);
}

function _isBase64(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9+/]+={0,2}$/.test(value);
}

function _toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function _fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
