/**
 * After a burst the heap is collected once the process is quiet: not while work goes on, not for
 * small growth, not twice in a row; and the real loop gives a burst's memory back.
 */
import assert from "node:assert/strict";
import { MemoryReleasePolicy } from "../../lib/memory_release.ts";

const MB = 1024 * 1024;
const heap = (totalMb: number, usedMb: number, externalMb = 0) => ({
  heapTotal: totalMb * MB,
  heapUsed: usedMb * MB,
  external: externalMb * MB,
});

Deno.test("the policy collects a burst's growth once the process goes quiet", () => {
  const policy = new MemoryReleasePolicy({ growthBytes: 16 * MB, quietBytes: MB });
  assert.equal(policy.sample(heap(20, 15), 0), false); // the floor
  // The burst: the heap grows while allocation goes on.
  assert.equal(policy.sample(heap(40, 30), 500), false);
  assert.equal(policy.sample(heap(50, 45), 1000), false);
  // Quiet now, and 30 MB over the floor: collect.
  assert.equal(policy.sample(heap(50, 45.5), 1500), true);
  policy.released(heap(21, 16), 1600);
  // Back near the floor: nothing more to give back, however quiet.
  assert.equal(policy.sample(heap(22, 16.2), 2100), false);
  assert.equal(policy.sample(heap(22, 16.2), 2600), false);
});

Deno.test("the policy leaves small growth to V8, and counts ArrayBuffers as growth", () => {
  const policy = new MemoryReleasePolicy({ growthBytes: 16 * MB, quietBytes: MB });
  policy.sample(heap(20, 15, 2), 0);
  assert.equal(policy.sample(heap(30, 25, 2), 500), false);
  assert.equal(policy.sample(heap(30, 25, 2), 1000), false, "10 MB is not worth a collection");
  // Queued output held in ArrayBuffers: the heap itself barely grew.
  assert.equal(policy.sample(heap(30, 25, 12), 1500), true);
});

Deno.test("the policy waits its minimum interval between two collections", () => {
  const policy = new MemoryReleasePolicy({ growthBytes: 16 * MB, minIntervalMs: 2000 });
  policy.sample(heap(20, 15), 0);
  policy.sample(heap(60, 50), 500);
  assert.equal(policy.sample(heap(60, 50), 1000), true);
  policy.released(heap(20, 15), 1000);
  policy.sample(heap(60, 50), 1500);
  assert.equal(policy.sample(heap(60, 50), 2500), false, "1.5 s after the last one");
  assert.equal(policy.sample(heap(60, 50), 3000), true);
});

// In a process of its own: the test runner's other modules share this one's heap.
const BURST_SCRIPT = `
import { systemClock } from "${new URL("../../lib/clock.ts", import.meta.url)}";
import { MemoryReleasePolicy, startMemoryRelease } from "${new URL(
  "../../lib/memory_release.ts",
  import.meta.url,
)}";
const MB = 1024 * 1024;
const policy = new MemoryReleasePolicy({ growthBytes: 8 * MB, minIntervalMs: 0 });
const release = startMemoryRelease(systemClock, policy, 50);
await new Promise((resolve) => setTimeout(resolve, 120)); // the floor is sampled first
// A burst: 40 MB or so of objects that are garbage as soon as it ends.
let burst = [];
for (let i = 0; i < 200; i++) burst.push(Array.from({ length: 5000 }, (_, j) => "x" + i + "-" + j));
const grown = Deno.memoryUsage().heapTotal;
burst = [];
const deadline = Date.now() + 5000;
while (release.releases === 0 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
release.stop();
console.log(JSON.stringify({ releases: release.releases, grown, after: Deno.memoryUsage().heapTotal }));
`;

Deno.test("the release loop gives a burst's garbage back to the system, with no extra permission", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(script, BURST_SCRIPT);
  // The permissions of `deno task tracker` and `deno task peer`: nothing may prompt for more.
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", script],
    stdin: "null",
    stderr: "piped",
  }).output().finally(() => Deno.remove(script));
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, stderr);
  assert.equal(stderr, "");
  const { releases, grown, after } = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.ok(releases > 0, "no collection within 5 s");
  assert.ok(after < grown - 8 * MB, `heap ${grown / MB} MB -> ${after / MB} MB`);
});
