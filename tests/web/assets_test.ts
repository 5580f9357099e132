/** The web chat's embedded files match their sources (run `deno task web-build` after a change). */
import assert from "node:assert/strict";
import { ASSETS_MODULE, assetsModule } from "../../scripts/web_build.ts";

Deno.test("peer/web/assets.ts is up to date with peer/web/src", async () => {
  const current = await Deno.readTextFile(ASSETS_MODULE);
  assert.ok(
    current === await assetsModule(),
    "peer/web/assets.ts is stale: run `deno task web-build`",
  );
});
