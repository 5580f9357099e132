/**
 * Whom we accept under a peer_id, and how far we trust the key: the tracker vouches for names
 * that belong to accounts (their key must be the account's), remembered keys cover the rest
 * (trust on first use), and a peer whose key is known is never accepted in clear.
 */
import { sameBytes } from "../../lib/bytes.ts";
import type { Clock } from "../../lib/clock.ts";
import { fingerprint, safetyNumber } from "../../lib/noise/mod.ts";
import type { SecurityNotice, TrustState } from "../api.ts";
import { splitPeerId } from "../protocol/mod.ts";
import type { KeyPins } from "./key_pins.ts";

/** What the tracker says about a name. */
export type AccountKey =
  /** The name is an account's, and this is its identity key. */
  | { kind: "account"; key: Uint8Array }
  /** No account has that name. */
  | { kind: "none" }
  /** A tracker without accounts (a plain pyp2p one): remembered keys are all there is. */
  | { kind: "unknown" }
  /** A tracker with accounts did not answer now (away, busy): strangers must wait. */
  | { kind: "unavailable" };

/** The tracker's directory of account keys, as the peer reaches it. */
export interface AccountKeys {
  /** A fresh answer from memory, or undefined when the tracker must be asked. */
  cached(username: string): AccountKey | undefined;
  lookup(username: string): Promise<AccountKey>;
}

/** The reasons a refusal sends to the peer (in BYE or HELLO_REJECT). */
export type TrustRefusal = "key_mismatch" | "key_changed" | "encryption_required" | "key_unchecked";

/** What `check` decides. */
export type TrustVerdict =
  | { ok: true; trust: TrustState; accountBound: boolean; notice?: SecurityNotice }
  | { ok: false; reason: TrustRefusal; notice?: SecurityNotice };

/** Options of the policy. */
export interface TrustOptions {
  /** Refuse every peer in clear (`--require-encryption`). */
  requireEncryption?: boolean;
}

/** Decides on keys; pins what it accepts. */
export class TrustPolicy {
  readonly #pins: KeyPins;
  readonly #accounts?: AccountKeys;
  readonly #clock: Clock;
  readonly #options: TrustOptions;

  constructor(
    pins: KeyPins,
    accounts: AccountKeys | undefined,
    clock: Clock,
    options: TrustOptions,
  ) {
    this.#pins = pins;
    this.#accounts = accounts;
    this.#clock = clock;
    this.#options = options;
  }

  /**
   * Decides on a peer that proved `identityKey` (undefined: it talks in clear). Answers at once
   * when the tracker's word is in memory, else after asking it.
   */
  check(peerId: string, identityKey?: Uint8Array): TrustVerdict | Promise<TrustVerdict> {
    if (!identityKey && this.#options.requireEncryption) {
      return { ok: false, reason: "encryption_required" };
    }
    const accounts = this.#accounts;
    if (!accounts) return this.#decide(peerId, identityKey, UNKNOWN);
    const cached = accounts.cached(splitPeerId(peerId).name);
    if (!cached) return this.recheck(peerId, identityKey);
    // A refusal is never made on a remembered answer alone: the account's key may have changed
    // since (refusals pin nothing, so deciding twice is harmless).
    const verdict = this.#decide(peerId, identityKey, cached);
    return verdict.ok ? verdict : this.recheck(peerId, identityKey);
  }

  /**
   * Decides as `check` does, on the tracker's word asked afresh: a remembered "no such account"
   * may be out of date (the name signed up since).
   */
  async recheck(peerId: string, identityKey?: Uint8Array): Promise<TrustVerdict> {
    const account = await this.#accounts?.lookup(splitPeerId(peerId).name) ?? UNKNOWN;
    return this.#decide(peerId, identityKey, account);
  }

  /** The safety number of our key and the key pinned for `peerId`; undefined if none is. */
  safetyNumber(ownKey: Uint8Array, peerId: string): string | undefined {
    const pinned = this.#pins.get(peerId);
    return pinned ? safetyNumber(ownKey, pinned.key) : undefined;
  }

  /** Marks the key pinned for `peerId` verified (or not); false when no key is pinned. */
  setVerified(peerId: string, verified: boolean): boolean {
    return this.#pins.setVerified(peerId, verified);
  }

  /** Forgets the key pinned for `peerId`, to accept a new one; false when none is pinned. */
  forget(peerId: string): boolean {
    return this.#pins.unpin(peerId);
  }

  /** The key pinned for `peerId`, if any. */
  pinned(peerId: string): { key: Uint8Array; verified: boolean } | undefined {
    return this.#pins.get(peerId);
  }

  #decide(peerId: string, key: Uint8Array | undefined, account: AccountKey): TrustVerdict {
    const pinned = this.#pins.get(peerId);
    if (account.kind === "unavailable" && !pinned) {
      // Fail closed: whoever could make the lookup fail must not pass as an account's owner.
      // A peer whose key we remember is judged on that key below; the others retry later.
      return { ok: false, reason: "key_unchecked" };
    }
    if (!key) {
      // No downgrade: whoever has a known key must prove it.
      if (pinned || account.kind === "account") {
        return { ok: false, reason: "encryption_required", notice: { kind: "downgrade", peerId } };
      }
      return { ok: true, trust: "unencrypted", accountBound: false };
    }
    const shown = fingerprint(key);
    if (account.kind === "account") {
      if (!sameBytes(account.key, key)) {
        return {
          ok: false,
          reason: "key_mismatch",
          notice: { kind: "impostor", peerId, fingerprint: shown },
        };
      }
      if (pinned && !sameBytes(pinned.key, key)) {
        // The tracker vouches for the new key: accept it, and say so (as Signal shows a
        // changed safety number).
        this.#pins.pin(peerId, key, this.#clock.now());
        const notice: SecurityNotice = {
          kind: "account_key_changed",
          peerId,
          fingerprint: shown,
          previous: fingerprint(pinned.key),
        };
        return { ok: true, trust: "key_changed", accountBound: true, notice };
      }
      return { ok: true, trust: this.#pinState(peerId, key), accountBound: true };
    }
    if (pinned && !sameBytes(pinned.key, key)) {
      return {
        ok: false,
        reason: "key_changed",
        notice: {
          kind: "key_changed",
          peerId,
          fingerprint: shown,
          pinned: fingerprint(pinned.key),
        },
      };
    }
    return { ok: true, trust: this.#pinState(peerId, key), accountBound: false };
  }

  // Pins a first-seen key; the trust follows the pin.
  #pinState(peerId: string, key: Uint8Array): TrustState {
    const pinned = this.#pins.get(peerId) ?? this.#pins.pin(peerId, key, this.#clock.now());
    return pinned.verified ? "verified" : "unverified";
  }
}

const UNKNOWN: AccountKey = { kind: "unknown" };
