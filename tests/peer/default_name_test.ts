/**
 * A peer started without --name keeps its name, and so its profile, from one start to the
 * next; a damaged record of it is said, never replaced.
 */
import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli.ts";
import { resolvePeerConfig } from "../../peer/config.ts";
import { rememberedSuffix } from "../../peer/default_name.ts";

Deno.test("without --name, every start takes the same name and profile folder", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-name-" });
  try {
    const start = (flags: Record<string, string> = {}) =>
      resolvePeerConfig({ flags, env: {}, file: {} }, {
        user: "ann",
        dataDir,
        randomSuffix: () => rememberedSuffix(dataDir),
      });
    const first = start();
    const second = start();
    assert.match(first.name, /^ann-[0-9a-f]{4}$/);
    assert.equal(second.name, first.name);
    assert.equal(second.dataDir, first.dataDir);
    assert.equal(start({ name: "bob" }).name, "bob");

    await Deno.writeTextFile(`${dataDir}/default-name`, "not hex");
    assert.throws(() => start(), UsageError);
    assert.equal(await Deno.readTextFile(`${dataDir}/default-name`), "not hex", "kept as it was");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
