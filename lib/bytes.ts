/** Byte-array helpers shared by the framing, storage and HTTP edges. */

/** Joins byte arrays into one; a single part is returned as it is, without copying. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let total = 0;
  for (const part of parts) total += part.length;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** Standard base64 (padded) of `bytes`: how keys are written in files and on the wire. */
export function base64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** The bytes of a base64 string; undefined for anything that is not one. */
export function bytesFromBase64(value: unknown): Uint8Array | undefined {
  if (typeof value !== "string") return undefined;
  try {
    return Uint8Array.fromBase64(value);
  } catch {
    return undefined;
  }
}

/** True when two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
