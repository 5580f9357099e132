/** `deno task bench`: every benchmark in one run, each printing its own figures. */
import { benchTracker } from "./bench_tracker.ts";
import { benchPeer } from "./bench_peer.ts";
import { benchAccounts } from "./bench_accounts.ts";
import { benchTui } from "./bench_tui.ts";
import { benchAbuse } from "./bench_abuse.ts";
import { benchHistory } from "./bench_history.ts";
import { benchFiles } from "./bench_files.ts";

const SUITES: Record<string, () => Promise<void>> = {
  tracker: benchTracker,
  peer: benchPeer,
  accounts: benchAccounts,
  tui: benchTui,
  abuse: benchAbuse,
  history: benchHistory,
  files: () => benchFiles(),
  web: () => _inFreshProcess("bench_web.ts", 300_000),
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

/**
 * Runs a suite's script in a process of its own, ended after `timeoutMs`: the browser suite
 * starts from a clean process (in a long run, after the other suites, its second half once
 * waited forever) and a stuck browser cannot hold up the run.
 */
async function _inFreshProcess(script: string, timeoutMs: number): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, import.meta.url).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const timer = setTimeout(() => {
    console.error(`${script}: no result within ${timeoutMs / 1000} s; stopped`);
    child.kill("SIGKILL");
  }, timeoutMs);
  try {
    const status = await child.status;
    if (!status.success) console.error(`${script} failed (exit code ${status.code})`);
  } finally {
    clearTimeout(timer);
  }
}
