import assert from "node:assert/strict";
import { closestMatch, didYouMean } from "../../lib/suggest.ts";
import { invocation } from "../../lib/cli.ts";

Deno.test("closestMatch() finds the name one or two edits away, and nothing for a stranger", () => {
  const keys = ["name", "namespace", "ping-interval", "discover-interval", "http"];
  assert.equal(closestMatch("nmae", keys), "name");
  assert.equal(closestMatch("namespce", keys), "namespace");
  assert.equal(closestMatch("ping-intervall", keys), "ping-interval");
  assert.equal(closestMatch("HTTP", keys), "http");
  assert.equal(closestMatch("colour", keys), undefined);
  assert.equal(didYouMean("/mgs", ["/msg", "/me"]), " (did you mean /msg?)");
  assert.equal(didYouMean("zzz", ["/msg"]), "");
});

Deno.test("invocation() names the task the user typed, through deno or npx, else the program", () => {
  assert.equal(invocation("peer", { P2PCHAT_TASK: "start" }), "deno task start");
  assert.equal(
    invocation("peer", { P2PCHAT_TASK: "peer", npm_lifecycle_event: "npx" }),
    `npx -y deno@${Deno.version.deno} task peer`,
  );
  assert.equal(invocation("tracker", {}), "p2pchat tracker");
  assert.equal(invocation("peer", { P2PCHAT_TASK: "x; rm -rf" }), "p2pchat peer");
});
