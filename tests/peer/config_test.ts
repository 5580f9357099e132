import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli.ts";
import { loadPeerConfig } from "../../peer/cli.ts";
import type { PeerConfig } from "../../peer/config.ts";

async function load(args: string[], env: Record<string, string> = {}): Promise<PeerConfig> {
  const config = await loadPeerConfig(args, { USER: "ann", ...env });
  assert.notEqual(config, "help");
  return config as PeerConfig;
}

async function withConfigFile<T>(text: string, run: (file: string) => Promise<T>): Promise<T> {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, text);
    return await run(file);
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("peer config defaults: a unique name from $USER, namespace default, port 0", async () => {
  const config = await load([]);
  assert.match(config.name, /^ann-[0-9a-f]{4}$/);
  assert.equal(config.namespace, "default");
  assert.equal(config.port, 0);
  assert.equal(config.tracker, undefined);
  assert.equal(config.ttlSeconds, 7200);
  assert.equal(config.pingIntervalSeconds, 30);
  assert.equal(config.discoverIntervalSeconds, 15);
  assert.equal(config.maxReconnectAttempts, 10);
  assert.ok(config.dataDir.endsWith(`/peer-${config.name}`));
  assert.equal(config.http, undefined);
  assert.equal(config.embedTracker, undefined);
  assert.equal(config.requireEncryption, false);
});

Deno.test("peer config: an embedded tracker is the machine's, unless the profile is given", async () => {
  const shared = await load(["--name", "ann", "--embed-tracker"]);
  const machine = shared.dataDir.replace(/\/peer-ann$/, "");
  assert.equal(shared.embeddedTrackerDir, `${machine}/tracker`);
  // Two `task start` runs under different names meet the same tracker, and so the same key.
  assert.equal((await load(["--name", "alice"])).embeddedTrackerDir, `${machine}/tracker`);
  const own = await load(["--data-dir", "/tmp/profile-x"]);
  assert.equal(own.embeddedTrackerDir, "/tmp/profile-x/embedded-tracker");
});

Deno.test("peer config: --require-encryption and --tracker-key", async () => {
  const config = await load([
    "--require-encryption",
    "--tracker-key",
    "ABCD efgh ijkl mnop qrst uvwx yz23 4567",
  ]);
  assert.equal(config.requireEncryption, true);
  assert.equal(config.trackerKey, "ABCD efgh ijkl mnop qrst uvwx yz23 4567");
  await assert.rejects(load(["--tracker-key", "not a fingerprint"]), UsageError);
});

Deno.test("peer config default name sanitizes $USER", async () => {
  const config = await load([], { USER: "Jo Ann@home" });
  assert.match(config.name, /^Jo-Ann-home-[0-9a-f]{4}$/);
});

Deno.test("peer config precedence is flags, then environment, then config file", async () => {
  await withConfigFile(
    JSON.stringify({ name: "file", namespace: "file-ns", ttl: 60, pingInterval: 9, "http": 0 }),
    async (file) => {
      const fromFile = await load(["--config", file]);
      assert.deepEqual(
        [fromFile.name, fromFile.namespace, fromFile.ttlSeconds, fromFile.pingIntervalSeconds],
        ["file", "file-ns", 60, 9],
      );
      assert.equal(fromFile.http, 0);
      const env = { P2PCHAT_NAME: "env", P2PCHAT_TTL: "120", P2PCHAT_CONFIG: file };
      const fromEnv = await load([], env);
      assert.deepEqual([fromEnv.name, fromEnv.namespace, fromEnv.ttlSeconds], [
        "env",
        "file-ns",
        120,
      ]);
      const fromFlags = await load(["--name", "flag", "--tracker", "10.0.0.5:9000"], env);
      assert.equal(fromFlags.name, "flag");
      assert.deepEqual(fromFlags.tracker, { hostname: "10.0.0.5", port: 9000 });
    },
  );
});

Deno.test("peer config --embed-tracker takes an optional port", async () => {
  assert.equal((await load(["--embed-tracker"])).embedTracker, 8080);
  assert.equal((await load(["--embed-tracker", "--name", "x"])).embedTracker, 8080);
  assert.equal((await load(["--embed-tracker", "9001"])).embedTracker, 9001);
  assert.equal((await load(["--embed-tracker=0"])).embedTracker, 0);
});

for (
  const [label, args, env] of [
    ["a name with white space", ["--name", "a b"], {}],
    ["a name with @", ["--name", "a@b"], {}],
    ["a namespace with #", ["--namespace", "#x"], {}],
    ["a name over 64 characters", ["--name", "n".repeat(65)], {}],
    ["a port out of range", ["--port", "65536"], {}],
    ["a TTL of 0", ["--ttl", "0"], {}],
    ["a TTL over a day", ["--ttl", "86401"], {}],
    ["a tracker without port", ["--tracker", "localhost"], {}],
    ["a bad env value", [], { P2PCHAT_PORT: "eighty" }],
    ["an unknown flag", ["--colour"], {}],
    ["a bad log level", ["--log-level", "loud"], {}],
  ] as [string, string[], Record<string, string>][]
) {
  Deno.test(`peer config rejects ${label} as a usage error`, async () => {
    await assert.rejects(() => load(args, env), UsageError);
  });
}

for (
  const [label, text, pattern] of [
    ["invalid JSON", "{name:", /not valid JSON/],
    ["a JSON array", "[]", /JSON object/],
    ["an unknown key", '{"nmae":"x"}', /unknown key "nmae"/],
    ["a wrong type", '{"port":[1]}', /"port" must be a number, got \[1\]/],
    ["a bad value", '{"port":-1}', /"port" in .* expects a whole number/],
    ["a number as a string", '{"http":"8700"}', /"http" must be a number, got "8700"/],
    ["a name as a number", '{"name":7}', /"name" must be a string, got 7/],
    ["a mistyped key", '{"namespce":"x"}', /unknown key "namespce" \(did you mean namespace\?\)/],
    ["a bad notify mode", '{"notify":"loud"}', /notify.* must be one of bell, title, off/],
  ] as [string, string, RegExp][]
) {
  Deno.test(`peer config reports a config file with ${label}`, async () => {
    await withConfigFile(text, async (file) => {
      await assert.rejects(() => load(["--config", file]), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, pattern);
        return true;
      });
    });
  });
}

Deno.test("peer config names the flag and the value for --keep-days -1", async () => {
  await assert.rejects(
    () => load(["--keep-days", "-1"]),
    (error: Error) =>
      error instanceof UsageError && error.message === '--keep-days got "-1": its value may not ' +
          'start with "-"',
  );
  await assert.rejects(() => load(["--keep-days=-1"]), /--keep-days/);
});

Deno.test("peer config reports a missing config file", async () => {
  await assert.rejects(() => load(["--config", "/nonexistent/p2pchat.json"]), /does not exist/);
});

Deno.test("--web serves the web chat on port 8765, or on the --http port", async () => {
  assert.equal((await load(["--web"])).http, 8765);
  assert.equal((await load(["--web", "--http", "9100"])).http, 9100);
  assert.equal((await load([], { P2PCHAT_WEB: "true" })).http, 8765);
  assert.equal((await load(["--name", "ann"])).http, undefined);
});
