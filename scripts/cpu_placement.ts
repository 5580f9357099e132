/**
 * One core per side for the SEND benchmarks, as two peers on two machines would have: this
 * process (the sender) on core 0 and each receiver on core 1, set with `taskset` (util-linux).
 *
 * Left to itself, the scheduler of some virtual machines packs light processes onto one core,
 * where a loopback round trip costs a third of one between cores (measured here: about 0.04 ms
 * against 0.12 ms). A minimal echo is light enough to be packed and a real peer is not, so with
 * free placement the round-trip ratio compares core layouts rather than programs.
 */

/** How the SEND benchmarks place their processes. */
export interface Placement {
  /** Says where the processes run, for the report. */
  readonly description: string;
  /** The command line that starts a receiver `program` with `args` where it belongs. */
  receiver(program: string, args: string[]): { command: string; args: string[] };
  /** Lets this process run on every core again. */
  release(): Promise<void>;
}

/** Pins this process to core 0 and receivers to core 1; free placement when that fails. */
export async function oneCorePerSide(): Promise<Placement> {
  const cores = navigator.hardwareConcurrency;
  const pid = String(Deno.pid);
  if (cores >= 2 && await _run("taskset", ["-a", "-p", "-c", "0", pid])) {
    return {
      description: "sender on core 0, receiver on core 1 (taskset)",
      receiver: (program, args) => ({ command: "taskset", args: ["-c", "1", program, ...args] }),
      release: async () => void await _run("taskset", ["-a", "-p", "-c", `0-${cores - 1}`, pid]),
    };
  }
  return {
    description: "placement left to the scheduler (no taskset, or a single core)",
    receiver: (command, args) => ({ command, args }),
    release: () => Promise.resolve(),
  };
}

// Runs a command quietly; true when it exists and succeeds.
async function _run(command: string, args: string[]): Promise<boolean> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return output.success;
  } catch {
    return false;
  }
}
