import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import { KeyPins } from "../../peer/identity/mod.ts";
import { MAX_PINS } from "../../peer/identity/key_pins.ts";

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

Deno.test("KeyPins stops remembering new names when full, and never evicts a remembered key", () => {
  const { log: watched, lines } = memoryLogger();
  const pins = KeyPins.inMemory(watched);
  for (let i = 0; i < MAX_PINS; i++) pins.pin(`peer${i}@lobby`, KEY, i);
  const other = new Uint8Array(32).fill(2);
  assert.deepEqual(pins.pin("newcomer@lobby", other, 1).key, other);
  assert.equal(pins.get("newcomer@lobby"), undefined);
  assert.deepEqual(pins.get("peer0@lobby")?.key, KEY);
  // A remembered name can still change its pin (after /forget-key and a new first use).
  pins.unpin("peer0@lobby");
  pins.pin("peer0@lobby", other, 2);
  assert.deepEqual(pins.get("peer0@lobby")?.key, other);
  assert.equal(lines.filter((line) => line.includes("Remembered keys are full")).length, 1);
});
