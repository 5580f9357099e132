/**
 * How the terminal UI writes encryption and trust: the short labels of /peers, /conn and the
 * prompt, the /verify and /whoami blocks, and one warning sentence per security notice (what
 * happened, and what to do). Pure, like format.ts.
 */
import type { NodeEvent, PeerInfo, PeerSecurity, SecurityNotice, Verification } from "../api.ts";
import { splitPeerId } from "../protocol/mod.ts";
import { formatClock, sanitize, securityLabel, type Style } from "./format.ts";

/** The /conn cells: how the connection is protected, and how far its key is trusted. */
export function connectionSecurity(security: PeerSecurity | undefined): [string, string] {
  if (!security?.encrypted) return ["clear", "-"];
  return ["encrypted", securityLabel(security)];
}

/** The mark after a peer conversation in the prompt: a lock and the trust, or "unencrypted". */
export function conversationMark(peer: PeerInfo | undefined): string {
  if (peer?.state !== "connected" || !peer.security) return "";
  const security = peer.security;
  if (!security.encrypted) return "unencrypted";
  return `🔒 ${security.trust === "key_changed" ? "key changed" : security.trust}`;
}

/** The /whoami lines. */
export function formatWhoami(peerId: string, fingerprint: string | undefined): string[] {
  if (fingerprint === undefined) {
    return [`you are ${sanitize(peerId)}`, "no identity key: this peer talks unencrypted"];
  }
  return [
    `you are ${sanitize(peerId)}`,
    `fingerprint: ${fingerprint}`,
    "others see this fingerprint when they /verify you; read it to them to prove it is you",
  ];
}

/** The /verify lines: the safety number in 3 rows of 4 groups, the fingerprint, what to do. */
export function formatVerification(verification: Verification): string[] {
  const who = sanitize(verification.peerId);
  const groups = verification.safetyNumber.split(" ");
  const rows = [0, 4, 8].map((start) => `  ${groups.slice(start, start + 4).join(" ")}`);
  return [
    `safety number with ${who} (${verification.verified ? "verified" : "not verified yet"}):`,
    ...rows,
    `fingerprint of ${who}: ${verification.fingerprint}`,
    verification.verified
      ? `you marked this key verified; /verify ${who} no takes that back`
      : `compare the safety number with ${who} over another channel (in person, by phone): ` +
        `theirs must be the same. If it is, type /verify ${who} yes`,
  ];
}

/** The line for a security event: `HH:MM:SS !! ` and the warning sentence. */
export function formatSecurityEvent(
  event: Extract<NodeEvent, { type: "security" }>,
  style: Style,
  ownPeerId: string,
): string {
  const text = `!! ${formatSecurityNotice(event.notice, ownPeerId)}`;
  return `${style.dim(formatClock(event.at))} ${style.warn(text)}`;
}

/** One warning sentence for a security notice: what happened and what to do. */
export function formatSecurityNotice(notice: SecurityNotice, ownPeerId: string): string {
  const who = sanitize(notice.peerId);
  switch (notice.kind) {
    case "impostor":
      return `refused ${who}: its key is not the key the tracker holds for account ${
        sanitize(splitPeerId(notice.peerId).name)
      }; someone may be posing as them`;
    case "key_changed":
      return `refused ${who}: its key changed (was ${notice.pinned}, now ${notice.fingerprint}). ` +
        `If they set up a new profile, check with them, then /forget-key ${who}; ` +
        "otherwise someone may be posing as them";
    case "downgrade":
      return `refused ${who}: it tried to talk unencrypted although we know its key; ` +
        "someone may be posing as them or stripping the encryption on the way. Nothing was sent " +
        "in clear; if it goes on, check with them over another channel";
    case "account_key_changed":
      return `${who}'s key changed at the tracker (new profile?): it was ${notice.previous}, ` +
        `now ${notice.fingerprint}; verify it again with /verify ${who}`;
    case "refused":
      return _refusal(who || "a peer", notice.reason, sanitize(ownPeerId));
  }
}

// What the other side's reason means for us, and what we can do about it.
function _refusal(who: string, reason: string, us: string): string {
  const start = `${who} refused our connection: ${sanitize(reason)}: `;
  switch (reason) {
    case "key_mismatch":
      return start + "our key is not the one the tracker holds for our name; " +
        "if the account is yours and this is a new profile, /login --replace-key, " +
        "else the name is taken: start again with another --name";
    case "key_changed":
      return start + `it remembers another key for ${us}; if this is a new profile, ` +
        `ask them to check with you, then /forget-key ${us} on their side`;
    case "encryption_required":
      return start + "it accepts only encrypted connections and this one was not " +
        "(it requires encryption, or something on the way stripped it)";
    case "key_unchecked":
      return start + "it could not check our key with the tracker just now (the tracker is away " +
        "or busy); we dial it again by ourselves";
    default:
      return start + "see its log for why";
  }
}
