import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import { exitSignals } from "../../peer/exit_signals.ts";

Deno.test("exitSignals() turns an error nothing caught into a clean stop that reports it", async () => {
  const logged = memoryLogger();
  const exit = exitSignals(logged.log);
  try {
    // A rejection nobody handles, as a bug in some background task would leave.
    Promise.reject(new Error("boom in a background task"));
    await exit.signalled;
    assert.equal(exit.failure(), "boom in a background task");
    assert.ok(logged.lines.some((line) => line.includes("Unexpected error; stopping")));
  } finally {
    exit.dispose();
  }
});

Deno.test("exitSignals() reports no failure when nothing went wrong", () => {
  const exit = exitSignals(memoryLogger().log);
  exit.dispose();
  assert.equal(exit.failure(), undefined);
});
