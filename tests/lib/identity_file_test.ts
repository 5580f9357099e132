import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { identityPath, loadOrCreateIdentity } from "../../lib/identity_file.ts";
import { memoryLogger } from "../../lib/log.ts";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "identity-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const log = memoryLogger().log;

Deno.test("loadOrCreateIdentity() creates a key readable by the owner only, and keeps it", () =>
  withDir(async (dir) => {
    const first = await loadOrCreateIdentity(`${dir}/profile`, log);
    assert.equal((await Deno.stat(identityPath(`${dir}/profile`))).mode! & 0o777, 0o600);
    assert.match(first.fingerprint, /^([a-z2-7]{4} ){7}[a-z2-7]{4}$/);
    const again = await loadOrCreateIdentity(`${dir}/profile`, log);
    assert.deepEqual(again.publicKey, first.publicKey);
    assert.equal(again.fingerprint, first.fingerprint);
    const data = new TextEncoder().encode("signed");
    assert.deepEqual(again.sign(data), first.sign(data));
  }));

Deno.test("loadOrCreateIdentity() makes a key others could read private again, and says so", () =>
  withDir(async (dir) => {
    const first = await loadOrCreateIdentity(dir, log);
    await Deno.chmod(identityPath(dir), 0o644);
    const { log: watched, lines } = memoryLogger();
    const again = await loadOrCreateIdentity(dir, watched);
    assert.deepEqual(again.publicKey, first.publicKey, "the same identity");
    assert.equal((await Deno.stat(identityPath(dir))).mode! & 0o777, 0o600);
    assert.ok(
      lines.some((line) => line.includes("WARN") && line.includes("mode 644")),
      lines.join(),
    );
  }));

const damaged: [string, (file: Record<string, unknown>) => string][] = [
  ["not JSON", () => "{"],
  ["another algorithm", (file) => JSON.stringify({ ...file, algorithm: "RSA" })],
  ["a short key", (file) => JSON.stringify({ ...file, private_key: "AAAA" })],
  ["keys of two pairs", (file) => JSON.stringify({ ...file, public_key: btoa("x".repeat(32)) })],
];
for (const [label, damage] of damaged) {
  Deno.test(`loadOrCreateIdentity() refuses ${label} and leaves the file as it was`, () =>
    withDir(async (dir) => {
      await loadOrCreateIdentity(dir, log);
      const path = identityPath(dir);
      const text = damage(JSON.parse(await Deno.readTextFile(path)));
      await Deno.writeTextFile(path, text);
      const error = await loadOrCreateIdentity(dir, log).catch((error) => error);
      assert.ok(error instanceof P2pError);
      assert.equal(error.code, "bad_identity");
      assert.ok(error.message.includes(path), error.message);
      assert.equal(await Deno.readTextFile(path), text);
    }));
}

Deno.test("loadOrCreateIdentity() reports an identity file it cannot read", () =>
  withDir(async (dir) => {
    await Deno.mkdir(identityPath(dir));
    const error = await loadOrCreateIdentity(dir, log).catch((error) => error);
    assert.ok(error instanceof P2pError);
    assert.equal(error.code, "bad_identity");
  }));
