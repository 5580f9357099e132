/**
 * Files between two peer processes over loopback, encrypted, beside a raw TCP copy of the same
 * bytes between two Deno processes: throughput and its ratio (target at least 50%), the peak
 * resident memory of each peer (a 1 GiB file against a file an eighth of it: it must not grow
 * with the size), the chat round trip p99 during the transfer (target under 50 ms), and the time
 * a killed receiver takes to resume. `deno run -A scripts/bench_files.ts --mib N` for one size.
 */
import { parseArgs } from "node:util";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const WAIT_MS = 600_000;

interface Proc {
  child: Deno.ChildProcess;
  lines: string[];
  write(line: string): Promise<void>;
  waitFor(pattern: RegExp, from?: number, timeoutMs?: number): Promise<RegExpExecArray>;
}

function start(args: string[]): Proc {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const writer = child.stdin.getWriter();
  (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return {
    child,
    lines,
    write: (line) => writer.write(new TextEncoder().encode(line + "\n")),
    async waitFor(pattern, from = 0, timeoutMs = WAIT_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = from; i < lines.length; i++) {
          const match = pattern.exec(lines[i]);
          if (match) return match;
        }
        if (Date.now() > deadline) throw new Error(`No line matching ${pattern}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
}

async function stop(proc: Proc, signal: Deno.Signal = "SIGTERM"): Promise<void> {
  try {
    proc.child.kill(signal);
  } catch {
    // Gone already.
  }
  await proc.child.status;
}

/** Peak resident memory of a process so far (VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number> {
  // Through cat: reading /proc directly needs every permission (the bench task has --allow-run).
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(output.stdout);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function makeFile(path: string, mib: number): Promise<void> {
  using file = await Deno.open(path, { create: true, write: true, truncate: true });
  const block = crypto.getRandomValues(new Uint8Array(65536));
  for (let i = 0; i < mib * 16; i++) {
    block[0] = i & 0xff; // every block differs a little
    await file.write(block);
  }
}

/** The raw baseline: one Deno process sends the file over TCP, another writes it to disk. */
async function rawCopySeconds(path: string, target: string): Promise<number> {
  const receiver = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      console.log(listener.addr.port);
      const conn = await listener.accept();
      using file = await Deno.open(${
        JSON.stringify(target)
      }, { create: true, write: true, truncate: true });
      const started = performance.now();
      await conn.readable.pipeTo(file.writable);
      console.log("done " + (performance.now() - started));`,
    ],
    stdout: "piped",
  }).spawn();
  const reader = receiver.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value!.trim());
  await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
      using file = await Deno.open(${JSON.stringify(path)});
      await file.readable.pipeTo(conn.writable);`,
    ],
  }).output();
  // From the connection to the last byte written, as the receiver timed it.
  let text = "";
  while (!/done [\d.]+/.test(text)) text += (await reader.read()).value ?? "";
  await receiver.status;
  return Number(/done ([\d.]+)/.exec(text)![1]) / 1000;
}

interface Run {
  seconds: number;
  peakSenderMb: number;
  peakReceiverMb: number;
  rttP99: number;
  rttCount: number;
  resumeSeconds?: number;
}

/** One transfer of `mib` MiB between two fresh peers; optionally a kill -9 of the receiver. */
async function transfer(dir: string, mib: number, killReceiver: boolean): Promise<Run> {
  const path = `${dir}/payload-${mib}.bin`;
  await makeFile(path, mib);
  const tracker = start([
    "tracker",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--no-rate-limit",
    "--data-dir",
    `${dir}/tracker-${mib}`,
  ]);
  const port = (await tracker.waitFor(/listening on .+:(\d+)/))[1];
  const peer = (name: string) =>
    start([
      "peer",
      "--name",
      name,
      "--namespace",
      "bench",
      "--host",
      "127.0.0.1",
      "--tracker",
      `127.0.0.1:${port}`,
      "--data-dir",
      `${dir}/${name}-${mib}`,
      "--discover-interval",
      "1",
      "--auto-accept-mb",
      "1000000",
      "--log-level",
      "error",
    ]);
  const sender = peer("ann");
  let receiver = peer("bob");
  try {
    await sender.waitFor(/peer bob@bench connected/);
    await receiver.write("/add ann");
    await receiver.waitFor(/added ann@bench/);
    const from = receiver.lines.length;
    await sender.write(`/send bob ${path}`);
    // Timed from the offer (the sender hashed the file before it): bytes only, as the raw copy.
    await receiver.waitFor(/receiving payload/, from);
    const started = performance.now();
    // Chat during the transfer: a message every 50 ms, its round trip as the sender saw it.
    let chatting = true;
    const chat = (async () => {
      for (let n = 0; chatting; n++) {
        await sender.write(`/msg bob ping ${n}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    let resumeSeconds: number | undefined;
    if (killReceiver) {
      const parts = `${dir}/bob-${mib}/transfers`;
      const partSize = async () => {
        for await (const entry of Deno.readDir(parts)) {
          if (entry.name.endsWith(".part")) return (await Deno.stat(`${parts}/${entry.name}`)).size;
        }
        return 0;
      };
      while ((await partSize()) < (mib * 1024 * 1024) / 2) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await stop(receiver, "SIGKILL");
      const cut = await partSize();
      const restarted = performance.now();
      receiver = peer("bob");
      while ((await partSize()) <= cut) await new Promise((resolve) => setTimeout(resolve, 5));
      resumeSeconds = (performance.now() - restarted) / 1000;
    }
    await receiver.waitFor(/received payload.* verified/, killReceiver ? 0 : from);
    const seconds = (performance.now() - started) / 1000;
    chatting = false;
    await chat;
    const rtts = sender.lines.flatMap((line) => {
      const match = /delivered to bob@bench \((\d+) ms\)/.exec(line);
      return match ? [Number(match[1])] : [];
    }).sort((a, b) => a - b);
    return {
      seconds,
      peakSenderMb: await peakRssMb(sender.child.pid),
      peakReceiverMb: await peakRssMb(receiver.child.pid),
      rttP99: rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))] ?? NaN,
      rttCount: rtts.length,
      resumeSeconds,
    };
  } finally {
    await stop(sender);
    await stop(receiver);
    await stop(tracker);
    await Deno.remove(path).catch(() => {});
  }
}

/** The suite: 1 GiB (or `mib`) and an eighth of it, the raw copy, and a resume. */
export async function benchFiles(mib = 1024): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-bench-files-" });
  try {
    const raw = `${dir}/raw.bin`;
    await makeFile(raw, mib);
    const rawSeconds = await rawCopySeconds(raw, `${dir}/raw-copy.bin`);
    await Deno.remove(raw);
    await Deno.remove(`${dir}/raw-copy.bin`);
    const big = await transfer(dir, mib, false);
    const small = await transfer(dir, Math.max(1, Math.round(mib / 8)), false);
    const resumed = await transfer(dir, Math.max(1, Math.round(mib / 4)), true);
    const rate = (seconds: number) => `${(mib / seconds).toFixed(0)} MiB/s`;
    console.log(`file of ${mib} MiB between two peer processes, encrypted, over loopback`);
    console.log(
      `throughput: ${rate(big.seconds)} (raw TCP copy between two Deno processes: ` +
        `${rate(rawSeconds)}); ratio ${(rawSeconds / big.seconds * 100).toFixed(0)}% ` +
        "(target at least 50%)",
    );
    console.log(
      `peak RSS sender / receiver: ${big.peakSenderMb.toFixed(0)} / ` +
        `${big.peakReceiverMb.toFixed(0)} MB with ${mib} MiB; ${small.peakSenderMb.toFixed(0)} / ` +
        `${small.peakReceiverMb.toFixed(0)} MB with ${Math.round(mib / 8)} MiB ` +
        "(target: does not grow with the file)",
    );
    console.log(
      `chat round trip during the transfer: p99 ${big.rttP99} ms over ${big.rttCount} ` +
        "messages (target under 50 ms)",
    );
    console.log(
      `resume after kill -9 of the receiver at half of ${Math.round(mib / 4)} MiB: bytes flow ` +
        `again ${resumed.resumeSeconds!.toFixed(2)} s after its restart began (process start ` +
        `included); the whole transfer took ${resumed.seconds.toFixed(1)} s`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { mib: { type: "string" } } });
  await benchFiles(values.mib === undefined ? undefined : Number(values.mib));
}
