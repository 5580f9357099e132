/**
 * One core per side for the SEND benchmarks, as two peers on two machines would have: this
 * process (the sender) on one core and each receiver on another, set with `taskset`
 * (util-linux).
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
  /** Gives this process back the cores it had before. */
  release(): Promise<void>;
}

const FREE: Placement = {
  description: "placement left to the scheduler (taskset could not pin two cores)",
  receiver: (command, args) => ({ command, args }),
  release: () => Promise.resolve(),
};

/**
 * Pins this process to the first core it may use and receivers to the second; free placement
 * when `taskset` is missing, fails, or fewer than two cores are allowed.
 */
export async function oneCorePerSide(): Promise<Placement> {
  const pid = String(Deno.pid);
  // "pid 123's current affinity mask: 3"
  const mask = (await _run("taskset", ["-p", pid]))?.trim().split(" ").at(-1);
  const cores = mask === undefined ? [] : _coresOf(mask);
  if (cores.length < 2) return FREE;
  const [sender, receiver] = cores;
  if (await _run("taskset", ["-a", "-p", "-c", String(sender), pid]) === undefined) return FREE;
  return {
    description: `sender on core ${sender}, receiver on core ${receiver} (taskset)`,
    receiver: (program, args) => ({
      command: "taskset",
      args: ["-c", String(receiver), program, ...args],
    }),
    async release() {
      if (await _run("taskset", ["-a", "-p", mask!, pid]) === undefined) {
        console.error(`Could not give this process back its cores (taskset -a -p ${mask})`);
      }
    },
  };
}

// The core numbers set in a hexadecimal affinity mask, lowest first.
function _coresOf(mask: string): number[] {
  let bits: bigint;
  try {
    bits = BigInt(`0x${mask.replaceAll(",", "")}`);
  } catch {
    return [];
  }
  const cores: number[] = [];
  for (let core = 0; bits > 0n; core++, bits >>= 1n) {
    if (bits & 1n) cores.push(core);
  }
  return cores;
}

// Runs a command; its standard output when it exists and succeeds, else undefined.
async function _run(command: string, args: string[]): Promise<string | undefined> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
      .output();
    return output.success ? new TextDecoder().decode(output.stdout) : undefined;
  } catch {
    return undefined;
  }
}
