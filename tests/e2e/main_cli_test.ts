/** The program's entry point as a user runs it: help, version, and mistakes on the command line. */
import assert from "node:assert/strict";
import { VERSION } from "../../lib/constants.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "null",
    // Not the test runner's own: run through npx, npm marks every child process so.
    env: { npm_lifecycle_event: "", ...env },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("p2pchat --version prints the version and exits 0", async () => {
  const { code, stdout } = await run(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), `p2pchat ${VERSION}`);
});

Deno.test("p2pchat --help and COMMAND --help print usage and exit 0", async () => {
  for (const args of [["--help"], ["tracker", "--help"], ["peer", "--help"]]) {
    const { code, stdout } = await run(args);
    assert.equal(code, 0, args.join(" "));
    assert.match(stdout, /Usage:/, args.join(" "));
  }
});

Deno.test("p2pchat exits 2 with a clear message for an unknown command or option", async () => {
  for (
    const [args, message] of [[["chat"], 'Unknown command "chat"'], [
      ["--bogus"],
      'Unknown option "--bogus"',
    ], [["peer", "--port", "x"], "--port"]] as const
  ) {
    const { code, stderr } = await run([...args]);
    assert.equal(code, 2, args.join(" "));
    assert.ok(stderr.includes(message), stderr);
  }
});

Deno.test("p2pchat exits 1 and names the address when its port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dataDir = await Deno.makeTempDir();
  try {
    const port = String(taken.addr.port);
    for (const args of [["tracker", "--host", "127.0.0.1"], ["peer", "--host", "127.0.0.1"]]) {
      const { code, stderr } = await run([...args, "--port", port, "--data-dir", dataDir]);
      assert.equal(code, 1, args[0]);
      assert.ok(stderr.includes(`Cannot listen on 127.0.0.1:${port}`), stderr);
      assert.ok(stderr.includes("already in use"), stderr);
      assert.ok(stderr.includes("choose another with --port"), stderr);
    }
    // The same for the HTTP API of either role: no stack trace, and the other port is closed.
    for (
      const args of [
        ["tracker", "--host", "127.0.0.1", "--port", "0", "--http", `127.0.0.1:${port}`],
        ["peer", "--host", "127.0.0.1", "--http", port],
      ]
    ) {
      const { code, stderr } = await run([...args, "--data-dir", dataDir]);
      assert.equal(code, 1, args[0]);
      assert.match(
        stderr,
        new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port} for the (web chat and )?HTTP API`),
      );
      assert.ok(stderr.includes("choose another with --http"), stderr);
      assert.ok(!stderr.includes("Uncaught") && !stderr.includes("    at "), stderr);
    }
  } finally {
    taken.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("p2pchat's usage errors name the task the user ran and the option they meant", async () => {
  const { code, stderr } = await run(["peer", "--nmae", "ann"], { P2PCHAT_TASK: "peer" });
  assert.equal(code, 2);
  assert.ok(stderr.includes("Unknown option '--nmae' (did you mean --name?)"), stderr);
  assert.ok(stderr.includes('Run "deno task peer --help" for usage.'), stderr);
  const npx = await run(["peer", "--nmae", "ann"], {
    P2PCHAT_TASK: "peer",
    npm_lifecycle_event: "npx",
  });
  assert.ok(npx.stderr.includes('Run "npx -y deno@2.9.6 task peer --help"'), npx.stderr);
  const typo = await run(["peeer"]);
  assert.ok(typo.stderr.includes('Unknown command "peeer" (did you mean peer?)'), typo.stderr);
});

Deno.test("deno.json runs the program quietly, so a first download cannot erase its first lines", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const task of ["start", "peer", "tracker"]) {
    const command: string = config.tasks[task];
    assert.match(command, new RegExp(`^P2PCHAT_TASK=${task} deno run --quiet `), task);
  }
});
