/**
 * A safe local name for a file a peer sent: nothing of the sender's path is trusted. The
 * result is one path component, printable, not hidden, not a device name, at most
 * `MAX_NAME_BYTES` of UTF-8, and never empty.
 */

/** Longest file name we write, in UTF-8 bytes (most file systems allow 255). */
export const MAX_NAME_BYTES = 200;

const _FALLBACK = "file";

// Names Windows reserves whatever the extension (a share or a copy to Windows must not break).
const _DEVICE_NAMES = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/** The name to save an offered file under (before making it unique in its folder). */
export function safeFileName(offered: string): string {
  // Only what follows the last separator of either kind: no folder from the sender.
  let name = offered.split(/[\\/]/).pop() ?? "";
  // Control and format characters (NUL, ESC, bidi overrides, zero-width) become "_".
  name = name.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, "_");
  // Characters Windows refuses, and trailing dots and spaces it drops.
  name = name.replace(/[<>:"|?*]/g, "_").replace(/[. ]+$/, "");
  // No hidden files and no "." or "..".
  name = name.replace(/^[. ]+/, "");
  if (_DEVICE_NAMES.test(name)) name = `_${name}`;
  name = _capBytes(name, MAX_NAME_BYTES);
  return name === "" ? _FALLBACK : name;
}

/** `name`, or `stem (N).ext` for the first N whose `exists` is false. */
export function uniqueName(name: string, exists: (candidate: string) => boolean): string {
  if (!exists(name)) return name;
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : "";
  for (let n = 1;; n++) {
    const suffix = ` (${n})${ext}`;
    const candidate = _capBytes(stem, MAX_NAME_BYTES - _utf8Bytes(suffix)) + suffix;
    if (!exists(candidate)) return candidate;
  }
}

// Cuts whole characters (never half a UTF-8 sequence) until `text` fits in `max` bytes,
// keeping the extension when there is a short one.
function _capBytes(text: string, max: number): string {
  if (_utf8Bytes(text) <= max) return text;
  const dot = text.lastIndexOf(".");
  const ext = dot > 0 && text.length - dot <= 16 ? text.slice(dot) : "";
  const chars = [...text.slice(0, text.length - ext.length)];
  const room = max - _utf8Bytes(ext);
  let out = "";
  for (const char of chars) {
    if (_utf8Bytes(out + char) > room) break;
    out += char;
  }
  return out + ext;
}

function _utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}
