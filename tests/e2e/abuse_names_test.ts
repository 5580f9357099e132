/**
 * Names against a real tracker process: look-alikes of an owned name, control characters in
 * sign-ups, anonymous listings of a name that becomes owned, UNREGISTER without the token, and
 * what reaches the tracker's log. Each case notes what it did before this rule.
 */
import assert from "node:assert/strict";
import { newSessionIdentity, SecureLineClient } from "../_session_identity.ts";
import { request, type TrackerProcess, withTestTracker } from "../_tracker_process.ts";

const withTracker = (run: (tracker: TrackerProcess) => Promise<void>) =>
  withTestTracker(["--log-level", "debug"], run);

// The profile that signs up as alice, so that it can log in again with the same key.
const aliceProfile = newSessionIdentity("alice@games");

async function signup(port: number, username: string) {
  const client = await SecureLineClient.connect(
    port,
    username === "alice" ? aliceProfile : newSessionIdentity(`${username}@games`),
  );
  try {
    return await client.ask({
      type: "SESSION_SIGNUP",
      id: 1,
      username,
      password: "long enough",
    });
  } finally {
    client.close();
  }
}

const register = (port: number, name: string, extra: Record<string, unknown> = {}) =>
  request(port, { type: "REGISTER", namespace: "games", name, port: 7001, ...extra });

async function listed(port: number): Promise<string[]> {
  const reply = await request(port, { type: "DISCOVER", namespace: "games" });
  return (reply.peers as { name: string }[]).map((peer) => peer.name).sort();
}

// The look-alikes of "alice" the attack used; before, REGISTER answered OK to every one.
const LOOK_ALIKES = [
  "аlice", // Cyrillic а
  "alice\u200b", // zero-width space
  "alice ", // trailing space
  "ali\u00adce", // soft hyphen
  "ａｌｉｃｅ", // fullwidth
  "ALICE",
  "a1ice",
];

Deno.test("an owned name's look-alikes, anonymous listings and UNREGISTER are the owner's alone", async () => {
  await withTracker(async ({ port }) => {
    // Before sign-up the name is free: an anonymous pyp2p peer lists it (and a look-alike).
    assert.equal((await register(port, "alice")).status, "OK");
    assert.equal((await register(port, "аlice")).status, "OK");
    assert.deepEqual(await listed(port), ["alice", "аlice"]);

    const reply = await signup(port, "alice");
    assert.equal(reply?.status, "OK");
    const token = reply!.token as string;
    // Before: the anonymous listings kept the name for their TTL (up to 24 h). Now gone at once.
    assert.deepEqual(await listed(port), []);

    for (const name of LOOK_ALIKES) {
      const refused = await register(port, name);
      // Invisible characters are no wire name at all (bad_name), the others the owner's.
      const code = /[\u200b\u00ad]/.test(name) ? "bad_name" : "name_owned";
      assert.deepEqual(refused, { status: "ERROR", message: code }, JSON.stringify(name));
    }
    // The owner registers through its session; a plain UNREGISTER no longer removes it.
    const owner = await SecureLineClient.connect(port);
    try {
      const login = await owner.ask({
        type: "SESSION_RESUME",
        id: 1,
        token,
      });
      assert.equal(login?.status, "ERROR", "a token alone cannot move the key to another profile");
    } finally {
      owner.close();
    }
    const alice = await SecureLineClient.connect(port, aliceProfile);
    try {
      await alice.ask({ type: "SESSION_RESUME", id: 1, token });
      const registered = await alice.ask({
        type: "SESSION_REGISTER",
        id: 2,
        namespace: "games",
        name: "alice",
        port: 7001,
      });
      assert.equal(registered?.status, "OK");
      const unregister = { type: "UNREGISTER", namespace: "games", name: "alice", port: 7001 };
      assert.deepEqual(await request(port, unregister), { status: "ERROR", message: "name_owned" });
      assert.deepEqual(
        await request(port, { type: "UNREGISTER", namespace: "games" }),
        { status: "OK" },
        "an address-wide UNREGISTER still answers OK, as pyp2p clients expect",
      );
      assert.deepEqual(await listed(port), ["alice"]);
      const removed = await alice.ask({ type: "SESSION_UNREGISTER", id: 3, namespace: "games" });
      assert.equal(removed?.status, "OK");
      assert.deepEqual(await listed(port), []);
    } finally {
      alice.close();
    }

    // Names nobody owns stay free for pyp2p peers, whatever printable text they hold.
    assert.equal((await register(port, "ｂｏｂ ")).status, "OK");
    assert.equal((await register(port, "bob\u200b")).message, "bad_name");
  });
});

Deno.test("sign-up refuses invisible and control characters and look-alikes of an account", async () => {
  const stderr = await withTracker(async ({ port }) => {
    assert.equal((await signup(port, "alice"))?.status, "OK");
    // Before: each of these was accepted as a new account.
    for (const username of ["bob\u200b", "ev\u202eil", "nul\x00l", "esc\x1b[2J", "tab\tx"]) {
      const reply = await signup(port, username);
      assert.equal(reply?.code, "bad_username", JSON.stringify(username));
    }
    for (const username of ["аlice", "ALICE", "ａｌｉｃｅ", "a1ice"]) {
      const reply = await signup(port, username);
      assert.ok(
        reply?.code === "username_taken" || reply?.code === "bad_username",
        `${JSON.stringify(username)}: ${JSON.stringify(reply)}`,
      );
    }
    // A peer_id with a newline and ESC, and a junk REGISTER name, reach the log as data.
    const client = await SecureLineClient.connect(port);
    await client.ask({
      type: "SESSION_LOGIN",
      id: 2,
      username: "x\n2026-01-01T00:00:00.000Z INFO  [tracker] forged\x1b[2J",
      password: "long enough",
    });
    client.close();
  });
  // Before: raw ESC and NUL bytes reached the tracker's log. Now every record is one line.
  // deno-lint-ignore no-control-regex -- looking for raw control bytes
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(stderr), "no raw control byte in the log");
  assert.ok(!stderr.split("\n").some((line) => line.startsWith("2026-01-01T00:00:00.000Z")));
});

Deno.test("a peer name cannot reach outside the profile folder", async () => {
  const home = await Deno.makeTempDir({ prefix: "p2pchat-home-" });
  try {
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const run = (name: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "peer", "--name", name, "--http", "0", "--port", "0"],
        env: {
          HOME: `${home}/a/b/c`,
          XDG_DATA_HOME: "",
          NO_COLOR: "1",
          // Deno's own cache stays where it is (it lives under $HOME by default).
          DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    // Before: the API token was written to $HOME/pwned/api-token, outside the data directory.
    const output = await run("../../../../../pwned");
    assert.equal(output.code, 2);
    assert.match(new TextDecoder().decode(output.stderr), /must not contain "\/"/);
    const written: string[] = [];
    for await (const entry of Deno.readDir(home)) written.push(entry.name);
    assert.deepEqual(written, [], "nothing was written anywhere under the home folder");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
