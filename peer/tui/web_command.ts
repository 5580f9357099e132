/** `/web`: a fresh link that signs a browser in to this peer's web chat. */
import type { Command } from "./commands.ts";

/** The command; `newLink` is undefined when the peer serves no web chat. */
export function webCommand(newLink: (() => string) | undefined): Command {
  return {
    name: "web",
    usage: "/web",
    summary: "print a new link that opens the web chat (each link works once)",
    maxArgs: 0,
    run(context) {
      if (newLink === undefined) {
        context.error("no web chat: start the peer with --web (or --http PORT)");
        return;
      }
      context.print(`web chat: open ${newLink()}`);
    },
  };
}
