/** Tests of crash-safe JSON persistence. */
import assert from "node:assert/strict";
import { loadJsonFile, saveJsonFile } from "../../lib/persist.ts";
import { memoryLogger } from "../../lib/log.ts";
import { P2pError } from "../../lib/errors.ts";
import { parseRegistrySnapshot } from "../../tracker/registry.ts";

const SNAPSHOT = {
  version: 1,
  registrations: [
    { ip: "10.0.0.1", namespace: "ns", name: "a", port: 1, ttl: 60, expiresAt: 1_800_000_000_000 },
  ],
};

Deno.test("saveJsonFile() and loadJsonFile() round-trip a value and leave no temp files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/registrations.json`;
    await saveJsonFile(path, SNAPSHOT);
    await saveJsonFile(path, SNAPSHOT);
    const { log } = memoryLogger();
    assert.deepEqual(await loadJsonFile(path, parseRegistrySnapshot, log), {
      kind: "loaded",
      value: SNAPSHOT,
    });
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["registrations.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadJsonFile() reports a missing file without creating it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { log, lines } = memoryLogger();
    const outcome = await loadJsonFile(`${dir}/none.json`, parseRegistrySnapshot, log);
    assert.deepEqual(outcome, { kind: "missing" });
    assert.deepEqual(lines, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadJsonFile() leaves a file it cannot read where it is and throws unreadable_store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A directory in the file's place cannot be read (root ignores file permissions).
    const path = `${dir}/registrations.json`;
    await Deno.mkdir(path);
    const { log } = memoryLogger();
    await assert.rejects(
      () => loadJsonFile(path, parseRegistrySnapshot, log),
      (error: unknown) => error instanceof P2pError && error.code === "unreadable_store",
    );
    assert.ok((await Deno.stat(path)).isDirectory, "nothing was moved aside");
    assert.equal([...Deno.readDirSync(dir)].length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (
  const [what, content] of [
    ["truncated JSON", '{"version":1,"registr'],
    ["a wrong shape", '{"version":1,"registrations":[{"ip":5}]}'],
    ["an unknown version", '{"version":9,"registrations":[]}'],
  ]
) {
  Deno.test(`loadJsonFile() moves a file with ${what} aside, logs it and does not replace it`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/registrations.json`;
      await Deno.writeTextFile(path, content);
      const { log, lines } = memoryLogger();
      const outcome = await loadJsonFile(path, parseRegistrySnapshot, log);
      assert.equal(outcome.kind, "quarantined");
      if (outcome.kind !== "quarantined") return;
      assert.equal(await Deno.readTextFile(outcome.movedTo), content);
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
      assert.equal(lines.length, 1);
      assert.match(lines[0], /ERROR.*is corrupt/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
