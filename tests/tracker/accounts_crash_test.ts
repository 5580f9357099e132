import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import { AccountStore } from "../../tracker/accounts/store.ts";

const WRITER = new URL("../_signup_writer.ts", import.meta.url).pathname;

/** Reads the child's "ack NAME" lines into `acks` until there are `count` or the pipe ends. */
async function readAcks(
  reader: ReadableStreamDefaultReader<string>,
  acks: string[],
  count: number,
): Promise<void> {
  let pending = "";
  while (acks.length < count) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) acks.push(line.replace(/^ack /, ""));
  }
}

Deno.test("A sign-up writer killed with SIGKILL loses no acknowledged account and leaves none half-written", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "accounts-crash-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", WRITER, dataDir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const acks: string[] = [];
    await readAcks(reader, acks, 600);
    child.kill("SIGKILL");
    // Acks still in the pipe when the kill landed were durable too.
    await readAcks(reader, acks, Infinity);
    await child.status;
    assert.ok(acks.length >= 600, `only ${acks.length} acks before the writer exited`);

    const { store, report } = await AccountStore.open(dataDir, memoryLogger().log);
    try {
      for (const username of acks) {
        assert.ok(store.user(username), `acknowledged ${username} is missing`);
      }
      assert.equal(report.quarantinedTo, undefined, "a crash only ever tears the last line");
      // Every account that loaded is whole (parse checks the credential's shape).
      assert.ok(store.userCount >= acks.length);
      assert.equal(store.user("user0")?.credential.iterations, 1000);
    } finally {
      await store.close();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dataDir, { recursive: true });
  }
});
