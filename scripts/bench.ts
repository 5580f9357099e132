/** `deno task bench`: every benchmark in one run, each printing its own figures. */
import { benchTracker } from "./bench_tracker.ts";
import { benchPeer } from "./bench_peer.ts";
import { benchAccounts } from "./bench_accounts.ts";
import { benchTui } from "./bench_tui.ts";
import { benchAbuse } from "./bench_abuse.ts";
import { benchHistory } from "./bench_history.ts";
import { benchFiles } from "./bench_files.ts";
import { benchWeb } from "./bench_web.ts";

const SUITES: Record<string, () => Promise<void>> = {
  tracker: benchTracker,
  peer: benchPeer,
  accounts: benchAccounts,
  tui: benchTui,
  abuse: benchAbuse,
  history: benchHistory,
  files: () => benchFiles(),
  web: benchWeb,
};

// `deno task bench tracker` runs one suite; no argument runs them all.
const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(SUITES);
for (const name of chosen) {
  const suite = SUITES[name];
  if (!suite) {
    console.error(`Unknown benchmark "${name}"; choose from ${Object.keys(SUITES).join(", ")}`);
    Deno.exit(2);
  }
  console.log(`\n=== ${name} ===`);
  await suite();
}
