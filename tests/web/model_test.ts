/** The web chat's naming of conversations (peer/web/src/model.js), run as it is in the page. */
import assert from "node:assert/strict";
import { model, titleOf } from "../../peer/web/src/model.js";

Deno.test("titleOf() drops only our own namespace, and never lets one peer pass for another", () => {
  Object.assign(model, { status: { namespace: "lobby" } });
  assert.equal(titleOf("bob@lobby"), "bob");
  assert.equal(titleOf("bob@games"), "bob@games");
  // A pyp2p peer may call itself `bob`, or `bob@x@lobby`: neither reads as our bob.
  assert.equal(titleOf("bob"), "bob (no namespace)");
  assert.equal(titleOf("bob@x@lobby"), "bob@x@lobby");
  assert.equal(titleOf("#games"), "#games");
  assert.equal(titleOf("*"), "Everyone (broadcast)");
});
