/** Tests of the registration store (pure; time is passed in). */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { parseRegistrySnapshot, Registry } from "../../tracker/registry.ts";

const entry = (
  name: string,
  extra: Partial<{ ip: string; namespace: string; port: number; ttl: number }> = {},
) => ({
  ip: "10.0.0.1",
  namespace: "ns",
  name,
  port: 4000,
  ttl: 60,
  ...extra,
});

Deno.test("Registry.upsert() keys records by ip, namespace and name", () => {
  const clock = new ManualClock();
  const registry = new Registry();
  registry.upsert(entry("a"), clock.now());
  registry.upsert(entry("a", { port: 4001, ttl: 120 }), clock.now());
  registry.upsert(entry("a", { ip: "10.0.0.2" }), clock.now());
  registry.upsert(entry("a", { namespace: "other" }), clock.now());
  assert.equal(registry.size, 3);
  const mine = registry.discover("ns", clock.now()).filter((p) => p.ip === "10.0.0.1");
  assert.deepEqual(mine, [
    { ip: "10.0.0.1", port: 4001, name: "a", namespace: "ns", ttl: 120, expires_in: 120 },
  ]);
});

Deno.test("Registry.discover() counts whole seconds left and never lists expired records", () => {
  const clock = new ManualClock();
  const registry = new Registry();
  registry.upsert(entry("short", { ttl: 2 }), clock.now());
  registry.upsert(entry("long", { ttl: 10 }), clock.now());
  clock.advance(1500);
  assert.deepEqual(
    registry.discover("ns", clock.now()).map((p) => [p.name, p.expires_in]),
    [["short", 0], ["long", 8]],
  );
  clock.advance(500);
  assert.deepEqual(registry.discover("ns", clock.now()).map((p) => p.name), ["long"]);
  assert.deepEqual(registry.discover(undefined, clock.now()).map((p) => p.name), ["long"]);
  assert.deepEqual(registry.discover("unknown", clock.now()), []);
});

Deno.test("Registry.upsert() restarts the lifetime of a record", () => {
  const clock = new ManualClock();
  const registry = new Registry();
  registry.upsert(entry("a", { ttl: 5 }), clock.now());
  clock.advance(4000);
  registry.upsert(entry("a", { ttl: 5 }), clock.now());
  clock.advance(4000);
  assert.equal(registry.discover("ns", clock.now())[0].expires_in, 1);
});

Deno.test("Registry.unregister() matches the requester's ip and the given name and port", () => {
  const registry = new Registry();
  registry.upsert(entry("a", { port: 1 }), 0);
  registry.upsert(entry("b", { port: 2 }), 0);
  registry.upsert(entry("c", { port: 2 }), 0);
  registry.upsert(entry("a", { ip: "10.9.9.9", port: 1 }), 0);
  assert.equal(registry.unregister({ ip: "10.0.0.1", namespace: "ns", name: "a", port: 9 }), 0);
  assert.equal(registry.unregister({ ip: "10.0.0.1", namespace: "ns", name: "a", port: 1 }), 1);
  assert.equal(registry.unregister({ ip: "10.0.0.1", namespace: "ns", port: 2 }), 2);
  assert.equal(registry.unregister({ ip: "10.0.0.1", namespace: "ns" }), 0);
  assert.equal(registry.unregister({ ip: "10.0.0.1", namespace: "none" }), 0);
  assert.deepEqual(registry.discover("ns", 0).map((p) => p.ip), ["10.9.9.9"]);
  assert.equal(registry.size, 1);
});

Deno.test("Registry.prune() removes only expired records", () => {
  const clock = new ManualClock();
  const registry = new Registry();
  registry.upsert(entry("a", { ttl: 1 }), clock.now());
  registry.upsert(entry("b", { ttl: 3, namespace: "other" }), clock.now());
  clock.advance(1000);
  assert.equal(registry.prune(clock.now()), 1);
  assert.equal(registry.size, 1);
  clock.advance(5000);
  assert.equal(registry.prune(clock.now()), 1);
  assert.equal(registry.size, 0);
});

Deno.test("Registry snapshots keep absolute expiry, so a reload keeps the remaining lifetime", () => {
  const clock = new ManualClock();
  const registry = new Registry();
  registry.upsert(entry("a", { ttl: 100 }), clock.now());
  registry.upsert(entry("gone", { ttl: 1 }), clock.now());
  const json = JSON.parse(JSON.stringify(registry.snapshot()));
  clock.advance(30_000);
  const reloaded = Registry.fromSnapshot(parseRegistrySnapshot(json), clock.now());
  assert.equal(reloaded.size, 1);
  assert.deepEqual(reloaded.discover("ns", clock.now()).map((p) => [p.name, p.ttl, p.expires_in]), [
    ["a", 100, 70],
  ]);
});

Deno.test("parseRegistrySnapshot() rejects malformed snapshots with corrupt_store", () => {
  for (
    const bad of [null, [], { version: 2, registrations: [] }, { version: 1, registrations: [{}] }]
  ) {
    assert.throws(() => parseRegistrySnapshot(bad), { code: "corrupt_store" });
  }
});

Deno.test("Registry.discover() of a namespace with 10,000 records is fast", () => {
  const registry = new Registry();
  for (let i = 0; i < 10_000; i++) {
    registry.upsert(entry(`peer-${i}`, { port: 1 + (i % 60000) }), 0);
  }
  for (let i = 0; i < 1000; i++) registry.upsert(entry(`x-${i}`, { namespace: "elsewhere" }), 0);
  const started = performance.now();
  let peers = registry.discover("ns", 1000);
  for (let i = 0; i < 9; i++) peers = registry.discover("ns", 1000);
  // Generous bound (the benchmark measures the real figure): ten lookups well under a second.
  assert.ok(performance.now() - started < 1000);
  assert.equal(peers.length, 10_000);
});
