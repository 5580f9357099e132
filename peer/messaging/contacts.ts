/** A contact as interfaces see it: the stored row, with presence and keys from the node. */
import type { Contact, PeerInfo, Verification } from "../api.ts";
import type { Address } from "../../lib/transport.ts";

/** What the store keeps of a contact. */
export interface ContactRow {
  peerId: string;
  addedAt: number;
  lastSeenAt?: number;
  address?: Address;
}

/** Merges a stored contact with the peer table's row and the remembered key. */
export function liveContact(
  row: ContactRow,
  peer: PeerInfo | undefined,
  verification: Verification | undefined,
): Contact {
  const lastSeenAt = Math.max(row.lastSeenAt ?? 0, peer?.lastSeenAt ?? 0) || undefined;
  return {
    peerId: row.peerId,
    addedAt: row.addedAt,
    online: peer?.state === "connected",
    lastSeenAt,
    address: peer?.address ?? row.address,
    fingerprint: verification?.fingerprint ?? peer?.security?.fingerprint,
    verified: verification?.verified ?? false,
    trust: peer?.security?.trust,
  };
}
