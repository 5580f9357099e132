/** Pure rules about peers: identities, scopes, and which of two connections survives. */
import type { Scope } from "../api.ts";

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
