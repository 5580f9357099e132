/**
 * Proves the single-program build: bundles main.ts into one file (the same module graph
 * `deno compile` embeds), copies it into an empty directory, and runs a tracker from it
 * that must answer REGISTER and DISCOVER on loopback. Nothing may be read from the source tree.
 */
import { dialTcp } from "../lib/transport.ts";
import { encodeLine, LineDecoder } from "../lib/framing.ts";

const deno = Deno.execPath();
const workDir = await Deno.makeTempDir({ prefix: "p2pchat-bundle-" });
const bundlePath = `${workDir}/p2pchat.js`;

try {
  await _run([deno, "bundle", "--quiet", "--platform", "deno", "-o", bundlePath, "main.ts"]);
  const runDir = await Deno.makeTempDir({ dir: workDir, prefix: "empty-" });
  await Deno.copyFile(bundlePath, `${runDir}/p2pchat.js`);
  const version = await _run([deno, "run", `${runDir}/p2pchat.js`, "--version"], runDir);
  console.log(`bundle: ${version.trim()}`);
  await _checkTracker(runDir);
  console.log(
    "bundle check: ok (bundled tracker answered REGISTER and DISCOVER from an empty directory)",
  );
} finally {
  await Deno.remove(workDir, { recursive: true });
}

async function _checkTracker(runDir: string): Promise<void> {
  const child = new Deno.Command(deno, {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "p2pchat.js",
      "tracker",
    ]
      .concat([
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        `${runDir}/data`,
        "--no-rate-limit",
      ]),
    cwd: runDir,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const port = await _listeningPort(child.stdout);
    const registered = await _request(port, {
      type: "REGISTER",
      namespace: "ci",
      name: "bundle",
      port: 4000,
    });
    if (registered.status !== "OK") {
      throw new Error(`REGISTER failed: ${JSON.stringify(registered)}`);
    }
    const found = await _request(port, { type: "DISCOVER", namespace: "ci" });
    const peers = found.peers as { name: string }[] | undefined;
    if (found.status !== "OK" || peers?.[0]?.name !== "bundle") {
      throw new Error(`DISCOVER did not return the registration: ${JSON.stringify(found)}`);
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

async function _listeningPort(stdout: ReadableStream<Uint8Array>): Promise<number> {
  const decoder = new LineDecoder();
  const deadline = AbortSignal.timeout(15_000);
  for await (const chunk of stdout) {
    for (const frame of decoder.push(chunk)) {
      const match = frame.kind === "line"
        ? /Tracker listening on .*:(\d+)$/.exec(frame.text)
        : null;
      if (match) {
        return Number(match[1]);
      }
    }
    if (deadline.aborted) break;
  }
  throw new Error("the bundled tracker never printed its address");
}

async function _request(port: number, message: unknown): Promise<Record<string, unknown>> {
  const conn = await dialTcp("127.0.0.1", port, { signal: AbortSignal.timeout(5000) });
  try {
    await conn.write(encodeLine(message));
    const decoder = new LineDecoder();
    for await (const chunk of conn.chunks()) {
      const [frame] = decoder.push(chunk);
      if (frame?.kind === "line") return JSON.parse(frame.text);
    }
    throw new Error("the tracker closed without replying");
  } finally {
    conn.close();
  }
}

async function _run(args: string[], cwd?: string): Promise<string> {
  const [command, ...rest] = args;
  const output = await new Deno.Command(command, { args: rest, cwd, stderr: "inherit" }).output();
  if (!output.success) throw new Error(`"${args.join(" ")}" failed with code ${output.code}`);
  return new TextDecoder().decode(output.stdout);
}
