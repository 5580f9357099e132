/**
 * The terminal UI's identity commands: /whoami (our fingerprint), /verify (the safety number
 * with a peer, and marking it verified) and /forget-key (accepting a peer's new key after the
 * user checked that the change is real).
 */
import { type Command, type CommandContext, parseTarget } from "./commands.ts";
import { sanitize } from "./format.ts";
import { formatVerification, formatWhoami } from "./security_format.ts";

/** The identity commands. */
export function securityCommands(): Command[] {
  return [
    {
      name: "whoami",
      usage: "/whoami",
      summary: "this peer's id and the fingerprint of its identity key",
      maxArgs: 0,
      run(context) {
        const lines = formatWhoami(context.node.peerId, context.node.identity()?.fingerprint);
        for (const line of lines) context.print(line);
      },
    },
    {
      name: "verify",
      usage: "/verify PEER [yes|no]",
      summary: "show the safety number to compare with PEER; yes or no marks it verified or not",
      minArgs: 1,
      maxArgs: 2,
      run(context, args) {
        const peerId = _peerId(context, args[0]);
        if (peerId === undefined) return;
        const answer = args[1]?.toLowerCase();
        if (answer !== undefined && answer !== "yes" && answer !== "no") {
          context.error(`usage: /verify PEER [yes|no] (got "${sanitize(args[1])}")`);
          return;
        }
        if (answer === undefined) {
          const verification = context.node.verification(peerId);
          if (!verification) return _noKey(context, peerId);
          for (const line of formatVerification(verification)) context.print(line);
          return;
        }
        if (!context.node.setVerified(peerId, answer === "yes")) return _noKey(context, peerId);
        const who = sanitize(peerId);
        context.print(
          answer === "yes"
            ? context.style.good(`marked ${who} verified`)
            : `marked ${who} not verified`,
        );
      },
    },
    {
      name: "forget-key",
      usage: "/forget-key PEER",
      summary: "forget PEER's remembered key (once you checked with them that it changed)",
      minArgs: 1,
      maxArgs: 1,
      run(context, args) {
        const peerId = _peerId(context, args[0]);
        if (peerId === undefined) return;
        const who = sanitize(peerId);
        if (!context.node.forgetKey(peerId)) {
          context.error(`no key is remembered for ${who}`);
          return;
        }
        context.print(
          `forgot the key of ${who}: the key it shows on its next connection is trusted ` +
            `(/reconnect ${who} to dial it now, then compare with /verify ${who})`,
        );
      },
    },
  ];
}

function _peerId(context: CommandContext, given: string): string | undefined {
  const target = parseTarget(context.node, given);
  if (target?.kind === "peer") return target.peerId;
  context.error(`bad peer "${sanitize(given)}": use name@namespace or name`);
  return undefined;
}

// A peer that never connected encrypted (or a plain pyp2p peer) has no key to compare.
function _noKey(context: CommandContext, peerId: string): void {
  const who = sanitize(peerId);
  const peer = context.node.peers().find((known) => known.peerId === peerId);
  const why = peer?.security && !peer.security.encrypted
    ? "it talks unencrypted (a plain pyp2p peer, or an old p2pchat)"
    : "it has not connected encrypted yet";
  context.error(`no key known for ${who}: ${why}`);
}
