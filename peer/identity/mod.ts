/**
 * Trust in others' keys: keys remembered on first use, and the policy that decides whom we
 * accept under a peer_id (the tracker vouches for account names). Our own key: lib/identity_file.ts.
 */
export { KeyPins, type PinnedKey } from "./key_pins.ts";
export {
  type AccountKey,
  type AccountKeys,
  type TrustOptions,
  TrustPolicy,
  type TrustRefusal,
  type TrustVerdict,
} from "./trust.ts";
