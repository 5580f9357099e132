import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";

Deno.test("ManualClock fires due timers in time order, including ones set while advancing", () => {
  const clock = new ManualClock(1_000);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push(`b@${clock.now()}`), 200);
  clock.setTimeout(() => {
    fired.push(`a@${clock.now()}`);
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 50);
  }, 100);
  const cancelled = clock.setTimeout(() => fired.push("never"), 150);
  clock.clearTimeout(cancelled);
  clock.advance(199);
  assert.deepEqual(fired, ["a@1100", "c@1150"]);
  assert.equal(clock.now(), 1_199);
  clock.advance(1);
  assert.deepEqual(fired, ["a@1100", "c@1150", "b@1200"]);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("systemClock fires a timer whose deadline passed at once, without a warning on the terminal", async () => {
  const clock = new URL("../../lib/clock.ts", import.meta.url).href;
  const script = `import { systemClock } from "${clock}";
    await new Promise((resolve) => systemClock.setTimeout(() => resolve(console.log("fired")), -4));`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(decoder.decode(output.stdout), "fired\n");
  assert.equal(decoder.decode(output.stderr), "");
});
