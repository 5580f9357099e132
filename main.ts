/** p2pchat command-line entry: `p2pchat tracker ...` or `p2pchat peer ...`. */
import { VERSION } from "./lib/constants.ts";
import { invocation, UsageError } from "./lib/cli.ts";
import { didYouMean } from "./lib/suggest.ts";
import { P2pError } from "./lib/errors.ts";
import { systemClock } from "./lib/clock.ts";
import { startMemoryRelease } from "./lib/memory_release.ts";
import { runTrackerCommand } from "./tracker/mod.ts";
import { runPeerCommand } from "./peer/mod.ts";

const USAGE = `p2pchat ${VERSION}: a peer-to-peer chat, compatible with pyp2p peers and trackers

Usage:
  p2pchat tracker [options]   run a tracker (Rendezvous service)
  p2pchat peer [options]      run a chat peer with a terminal UI
  p2pchat --help              show this help ("p2pchat COMMAND --help" for a command)
  p2pchat --version           show the version
`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  tracker: runTrackerCommand,
  peer: runPeerCommand,
};

/** Runs the CLI and returns the process exit code (2 for usage errors). */
export async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    console.log(USAGE);
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-V") {
    console.log(`p2pchat ${VERSION}`);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  try {
    if (!command) {
      throw new UsageError(
        first.startsWith("-")
          ? `Unknown option "${first}"`
          : `Unknown command "${first}"${didYouMean(first, Object.keys(COMMANDS))}`,
      );
    }
    // A long-running tracker or peer gives a burst's memory back soon after it ends.
    const release = startMemoryRelease(systemClock);
    try {
      return await command(rest);
    } finally {
      release.stop();
    }
  } catch (error) {
    if (error instanceof P2pError) {
      // Start-up failures the user can act on (port taken, data file unreadable): no stack.
      console.error(`p2pchat: ${error.message}`);
      return 1;
    }
    if (!(error instanceof UsageError)) throw error;
    const help = command ? invocation(first, Deno.env.toObject()) : "p2pchat";
    console.error(`p2pchat: ${error.message}\nRun "${help} --help" for usage.`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
