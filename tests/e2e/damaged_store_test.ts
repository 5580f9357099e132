/**
 * Damaged accounts data against the real tracker process: damage stops start-up with a
 * message naming the file and the recovery flag; the flag starts from what could be read and
 * keeps the damaged file aside; a torn last record from a crash is still recovered silently.
 */
import assert from "node:assert/strict";
import { SecureLineClient } from "../_session_identity.ts";
import { runTrackerCli, startTrackerProcess } from "../_tracker_process.ts";

const BASE = [
  "--host",
  "127.0.0.1",
  "--port",
  "0",
  "--no-rate-limit",
  "--pbkdf2-iterations",
  "1000",
];
const USERS = ["ann", "bob", "cyd", "dee", "eve", "fay"];

/** A data directory holding an accounts log with USERS signed up. */
async function dataDirWithAccounts(): Promise<string> {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-damaged-" });
  const tracker = await startTrackerProcess(["--data-dir", dataDir, ...BASE.slice(4)]);
  try {
    for (const [index, username] of USERS.entries()) {
      const client = await SecureLineClient.connect(tracker.port);
      const reply = await client.ask({
        type: "SESSION_SIGNUP",
        id: index,
        username,
        password: "long enough",
      });
      client.close();
      assert.equal(reply?.status, "OK");
    }
  } finally {
    await tracker.stop();
  }
  return dataDir;
}

async function userCount(dataDir: string, extra: string[] = []): Promise<number> {
  const tracker = await startTrackerProcess(["--data-dir", dataDir, ...BASE.slice(4), ...extra]);
  const { stderr } = await tracker.stop();
  const match = /Accounts optional: (\d+) user\(s\)/.exec(stderr);
  assert.ok(match, stderr);
  return Number(match[1]);
}

function keptAside(dataDir: string): string[] {
  return [...Deno.readDirSync(dataDir)].map((entry) => entry.name).filter((name) =>
    name.startsWith("accounts.log.corrupt-")
  );
}

Deno.test("an accounts log of random bytes stops start-up; --recover-accounts starts from what was readable", async () => {
  const dataDir = await dataDirWithAccounts();
  try {
    const log = `${dataDir}/accounts.log`;
    const random = crypto.getRandomValues(new Uint8Array(4096));
    await Deno.writeFile(log, random);
    // Before: the tracker started with 0 users and one ERROR line; every name was free.
    const refused = await runTrackerCli(["--data-dir", dataDir, ...BASE]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.ok(refused.stderr.includes(`"${log}" is damaged`), refused.stderr);
    assert.ok(refused.stderr.includes("--recover-accounts"), refused.stderr);
    assert.deepEqual(await Deno.readFile(log), random, "nothing was changed");
    assert.deepEqual(keptAside(dataDir), []);

    assert.equal(await userCount(dataDir, ["--recover-accounts"]), 0);
    assert.equal(keptAside(dataDir).length, 1, "the damaged file is kept aside");
    assert.equal(await userCount(dataDir), 0, "and the next start is clean");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("an accounts log damaged in the middle stops start-up; recovery keeps every readable account", async () => {
  const dataDir = await dataDirWithAccounts();
  try {
    const log = `${dataDir}/accounts.log`;
    const lines = (await Deno.readTextFile(log)).split("\n");
    const bob = lines.findIndex((line) => line.includes('"op":"signup","username":"bob"'));
    lines[bob] = lines[bob].slice(0, 20) + "\u0000garbage"; // bob's sign-up, mid-file
    await Deno.writeTextFile(log, lines.join("\n"));
    const refused = await runTrackerCli(["--data-dir", dataDir, ...BASE]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /1 unreadable line\(s\) before the end/);
    assert.match(refused.stderr, /with --recover-accounts to start from the \d+ readable record/);
    assert.equal(await userCount(dataDir, ["--recover-accounts"]), USERS.length - 1);
    assert.equal(keptAside(dataDir).length, 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("an accounts log that is a directory is a clear start-up error, not a crash", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-damaged-" });
  try {
    await Deno.mkdir(`${dataDir}/accounts.log`);
    const refused = await runTrackerCli(["--data-dir", dataDir, ...BASE]);
    // Before: "Uncaught (in promise) IsADirectory" and a stack trace.
    assert.equal(refused.code, 1, refused.stderr);
    assert.ok(!refused.stderr.includes("Uncaught"), refused.stderr);
    assert.match(
      refused.stderr,
      /p2pchat: Cannot read ".*accounts\.log" \(.*\); it must be a readable file/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a torn last record from a crash is still cut off and the tracker starts", async () => {
  const dataDir = await dataDirWithAccounts();
  try {
    const log = `${dataDir}/accounts.log`;
    const text = await Deno.readTextFile(log);
    // A crash during the append of one more sign-up: half a line, no newline, and no mark of
    // a clean stop.
    await Deno.remove(`${log}.clean`);
    await Deno.writeTextFile(log, text + '{"seq":99,"r":{"op":"signup","username":"gu');
    assert.equal(await userCount(dataDir), USERS.length);
    assert.deepEqual(keptAside(dataDir), []);
    assert.equal(await Deno.readTextFile(log), text);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a log cut in half after a clean stop is refused, not taken for a crash; recovery keeps what was readable", async () => {
  const dataDir = await dataDirWithAccounts();
  try {
    const log = `${dataDir}/accounts.log`;
    const bytes = await Deno.readFile(log);
    let cut = Math.floor(bytes.length / 2);
    while (bytes[cut - 1] === 0x0a) cut++; // mid-record, as the attack cut it
    await Deno.writeFile(log, bytes.subarray(0, cut));
    // Before: recovered as a torn crash tail, with a WARN, and half the accounts gone. The
    // clean stop's mark says how long the log was: a shorter one was cut while stopped.
    const refused = await runTrackerCli(["--data-dir", dataDir, ...BASE]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /shorter than at the last clean stop .*not by a crash/);
    assert.deepEqual(await Deno.readFile(log), bytes.subarray(0, cut), "nothing was changed");
    const users = await userCount(dataDir, ["--recover-accounts"]);
    assert.ok(users > 0 && users < USERS.length, `${users} users`);
    assert.equal(keptAside(dataDir).length, 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a peer's embedded tracker names --recover-accounts, and the peer takes it; it listens on --host", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-damaged-" });
  try {
    const trackerDir = `${dataDir}/embedded-tracker`;
    await Deno.mkdir(trackerDir, { recursive: true });
    await Deno.writeFile(`${trackerDir}/accounts.log`, crypto.getRandomValues(new Uint8Array(512)));
    const peer = (extra: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../main.ts", import.meta.url).pathname,
          "peer",
          "--name",
          "ann",
          "--host",
          "127.0.0.1",
          "--embed-tracker",
          "0",
          "--data-dir",
          dataDir,
          ...extra,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
    const refused = await peer([]);
    const stderr = new TextDecoder().decode(refused.stderr);
    assert.equal(refused.code, 1, stderr);
    assert.match(stderr, /is damaged .*start once with --recover-accounts/);
    // Input ends at once, so the recovered peer starts, then quits by itself.
    const recovered = await peer(["--recover-accounts"]);
    const out = new TextDecoder().decode(recovered.stdout);
    assert.equal(recovered.code, 0, new TextDecoder().decode(recovered.stderr));
    // On the peer's --host only, not every interface.
    assert.match(out, /^Tracker listening on 127\.0\.0\.1:\d+$/m);
    assert.equal(keptAside(trackerDir).length, 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
