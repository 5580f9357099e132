import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import { KeyPins } from "../../peer/identity/mod.ts";

const log = memoryLogger().log;
const KEY = new Uint8Array(32).fill(1);

Deno.test("KeyPins keeps pins and verification across a restart, in a 0600 file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pins-" });
  try {
    const path = `${dir}/known_peers.json`;
    const pins = await KeyPins.open(path, log);
    pins.pin("bob@lobby", KEY, 1000);
    pins.pin("carol@lobby", KEY, 2000);
    pins.setVerified("bob@lobby", true);
    pins.unpin("carol@lobby");
    await pins.flushed();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const again = await KeyPins.open(path, log);
    assert.deepEqual(again.get("bob@lobby"), { key: KEY, firstSeen: 1000, verified: true });
    assert.equal(again.get("carol@lobby"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KeyPins refuses a damaged file instead of trusting every key again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pins-" });
  try {
    const path = `${dir}/known_peers.json`;
    for (const text of ["[]", "{", '{"version":1,"keys":{"bob":{"key":"AAAA","first_seen":1}}}']) {
      await Deno.writeTextFile(path, text);
      const error = await KeyPins.open(path, log).catch((error) => error);
      assert.ok(error instanceof P2pError, text);
      assert.equal(error.code, "corrupt_store");
      assert.equal(await Deno.readTextFile(path), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
