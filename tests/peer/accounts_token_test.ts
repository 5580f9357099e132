import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { fileTokenStore, sessionTokenPath } from "../../peer/accounts/token_store.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A data directory whose `session-token` is a directory: present, but unreadable as a file. */
async function withBrokenToken(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "token-" });
  try {
    await Deno.mkdir(sessionTokenPath(dir));
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fileTokenStore().load() reports an unreadable session-token as unreadable_store", () =>
  withBrokenToken(async (dir) => {
    const error = await fileTokenStore(dir).load().catch((error) => error);
    assert.ok(error instanceof P2pError);
    assert.equal(error.code, "unreadable_store");
    assert.ok(error.message.includes(`"${sessionTokenPath(dir)}"`), error.message);
  }));

Deno.test("fileTokenStore() saves, loads and forgets a token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "token-" });
  try {
    const store = fileTokenStore(`${dir}/profile`);
    assert.equal(await store.load(), undefined);
    await store.save("abc");
    assert.equal(await store.load(), "abc");
    assert.equal((await Deno.stat(sessionTokenPath(`${dir}/profile`))).mode! & 0o777, 0o600);
    await store.remove();
    await store.remove();
    assert.equal(await store.load(), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("p2pchat peer with an unreadable session-token exits 1 with one line, no stack", () =>
  withBrokenToken(async (dir) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "peer",
        "--name",
        "alice",
        "--data-dir",
        dir,
        "--host",
        "127.0.0.1",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    assert.match(stderr, /^p2pchat: Cannot read the session token ".*session-token"/);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }));
