/** The handshake patterns of the Noise spec §7 that p2pchat and its test vectors use. */
import type { CipherName } from "./crypto.ts";

/** A token of a message pattern (psk is not supported). */
export type Token = "e" | "s" | "ee" | "es" | "se" | "ss";

/** A handshake pattern: pre-messages, then messages alternating from the initiator. */
export interface HandshakePattern {
  readonly name: string;
  readonly initiatorPreMessage: readonly ("e" | "s")[];
  readonly responderPreMessage: readonly ("e" | "s")[];
  /** Message i is written by the initiator when i is even, by the responder when odd. */
  readonly messages: readonly (readonly Token[])[];
}

/** NN, XN, XK, IK and XX as the spec §7.4-7.5 writes them. */
export const PATTERNS: Readonly<Record<string, HandshakePattern>> = {
  NN: {
    name: "NN",
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee"]],
  },
  XN: {
    name: "XN",
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee"], ["s", "se"]],
  },
  XK: {
    name: "XK",
    initiatorPreMessage: [],
    responderPreMessage: ["s"],
    messages: [["e", "es"], ["e", "ee"], ["s", "se"]],
  },
  IK: {
    name: "IK",
    initiatorPreMessage: [],
    responderPreMessage: ["s"],
    messages: [["e", "es", "s", "ss"], ["e", "ee", "se"]],
  },
  XX: {
    name: "XX",
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee", "s", "es"], ["s", "se"]],
  },
};

/** A protocol name taken apart; only 25519 and SHA256 are supported. */
export interface ProtocolName {
  readonly pattern: HandshakePattern;
  readonly cipher: CipherName;
}

/** Parses "Noise_XX_25519_ChaChaPoly_SHA256"; throws a RangeError for anything unsupported. */
export function parseProtocolName(name: string): ProtocolName {
  const match = /^Noise_([A-Z]+)_25519_(ChaChaPoly|AESGCM)_SHA256$/.exec(name);
  if (match === null || !Object.hasOwn(PATTERNS, match[1])) {
    throw new RangeError(`Unsupported Noise protocol "${name}"`);
  }
  return { pattern: PATTERNS[match[1]], cipher: match[2] as CipherName };
}
