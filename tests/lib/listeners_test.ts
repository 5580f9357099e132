import assert from "node:assert/strict";
import { Listeners } from "../../lib/listeners.ts";
import { memoryLogger } from "../../lib/log.ts";

Deno.test("Listeners: a throwing listener is logged and the others still get the event", () => {
  const { log, lines } = memoryLogger();
  const listeners = new Listeners<string>(log, "Event listener");
  const got: string[] = [];
  listeners.add(() => {
    throw new Error("boom");
  });
  const remove = listeners.add((event) => got.push(event));
  listeners.emit("one");
  remove();
  listeners.emit("two");
  assert.deepEqual(got, ["one"]);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /Event listener failed.*boom/);
});
