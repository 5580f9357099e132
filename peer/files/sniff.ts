/**
 * A file's type from its first bytes, never from its name: what the API says in
 * Content-Type, and whether a preview may be shown. Only images we can show safely are named;
 * everything else is `application/octet-stream`.
 */

/** Bytes `sniffType` needs to see. */
export const SNIFF_BYTES = 16;

const _SIGNATURES: [string, (b: Uint8Array) => boolean][] = [
  ["image/png", (b) => _starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ["image/jpeg", (b) => _starts(b, [0xff, 0xd8, 0xff])],
  ["image/gif", (b) => _ascii(b, 0, "GIF87a") || _ascii(b, 0, "GIF89a")],
  ["image/webp", (b) => _ascii(b, 0, "RIFF") && _ascii(b, 8, "WEBP")],
];

/** The media type of a file that starts with `head`. */
export function sniffType(head: Uint8Array): string {
  for (const [type, matches] of _SIGNATURES) if (matches(head)) return type;
  return "application/octet-stream";
}

/** True for the types a page may show inline as an image. */
export function isImageType(type: string): boolean {
  return _SIGNATURES.some(([known]) => known === type);
}

function _starts(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte);
}

function _ascii(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}
