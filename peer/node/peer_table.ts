/** Pure rules about peers: identities, scopes, and which of two connections survives. */
import type { Scope } from "../api.ts";

/** Splits `name@namespace` at its last `@` (a pyp2p id without `@` has an empty namespace). */
export function splitPeerId(peerId: string): { name: string; namespace: string } {
  const at = peerId.lastIndexOf("@");
  if (at === -1) return { name: peerId, namespace: "" };
  return { name: peerId.slice(0, at), namespace: peerId.slice(at + 1) };
}

/** True when a peer of `namespace` is addressed by `scope` (`*` or `#namespace`). */
export function inScope(scope: Scope, namespace: string): boolean {
  return scope === "*" || scope.slice(1) === namespace;
}

/**
 * When two connections link the same pair of peers, both sides keep the one dialled by the
 * smaller peer_id (compared as JavaScript strings), so they agree without talking. Returns
 * the direction, as seen locally, of the connection to keep.
 */
export function survivingDirection(
  localPeerId: string,
  remotePeerId: string,
): "inbound" | "outbound" {
  return localPeerId < remotePeerId ? "outbound" : "inbound";
}
