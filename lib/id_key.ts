/**
 * How an id from the network is kept in memory: itself, or a digest when it is long. V8 hashes
 * a string of 16,384 characters or more by its length alone, so a Set of such ids is searched
 * one by one (measured: 3,000 adds of 32,000-character ids took 32 s), and each kept id would
 * hold its whole length in memory. Free of I/O.
 */

/** Ids longer than this are kept by a digest. */
export const MAX_KEPT_ID_CHARS = 128;

/** `id` itself, or its digest when longer than `MAX_KEPT_ID_CHARS`. */
export function idKey(id: string): string {
  return id.length <= MAX_KEPT_ID_CHARS ? id : _digest(id);
}

// A long id's length and 53 bits of two FNV-1a style hashes, which no honest peer collides
// with; ids are kept per sender, so crafted collisions only touch the crafter's own messages.
function _digest(id: string): string {
  let high = 0x811c9dc5;
  let low = 0x050c5d1f;
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    high = Math.imul(high ^ code, 0x01000193) >>> 0;
    low = Math.imul(low ^ (code + i), 0x01000193) >>> 0;
  }
  return `#${id.length}:${(high & 0x1fffff).toString(36)}.${low.toString(36)}`;
}
