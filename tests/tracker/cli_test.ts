/** Tests of `p2pchat tracker` flag handling (in-process; the real process is in tracker_process_test). */
import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli.ts";
import { runTrackerCommand } from "../../tracker/cli.ts";

Deno.test("runTrackerCommand() rejects bad values with a UsageError quoting them", async () => {
  const cases: [string[], RegExp][] = [
    [["--port", "http"], /--port expects a whole number, got "http"/],
    [["--port", "70000"], /--port must be between 0 and 65535, got "70000"/],
    [["--rate-limit", "fast"], /--rate-limit expects N\/SECONDS .* got "fast"/],
    [["--rate-limit", "0/60"], /got "0\/60"/],
    [["--rate-limit", "5/60", "--no-rate-limit"], /cannot be used together/],
    [["--max-connections", "0"], /--max-connections must be between 1 and 1000000, got "0"/],
    [["--idle-timeout=-5"], /--idle-timeout expects a whole number, got "-5"/],
    [["--http", "localhost"], /--http expects HOST:PORT, got "localhost"/],
    [["--log-level", "loud"], /--log-level must be one of .* got "loud"/],
    [["--log-format", "xml"], /--log-format must be "human" or "json", got "xml"/],
    [["--host", ""], /--host expects an address, got ""/],
    [["--bogus"], /bogus/],
    [["stray"], /stray/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(runTrackerCommand(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")} gives a UsageError`);
      assert.match(error.message, message);
      return true;
    });
  }
});
