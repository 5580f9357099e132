/**
 * What a peer keeps of a message holds that message only: not the 64 KiB read it came in (V8
 * keeps a slice of a string as a view of the whole), nor, once merged into the table, the
 * staged row. Measured in a child process after a full collection.
 */
import assert from "node:assert/strict";

async function heapAfter(mode: "lines" | "merged"): Promise<number> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      new URL("../_retention_child.ts", import.meta.url).href,
      mode,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  return JSON.parse(new TextDecoder().decode(stdout)).heapMB;
}

// Before: ~120 MB for the lines, ~45 MB for the merged rows.
Deno.test("2,000 SENDs kept from 64 KiB reads hold their own text, not the reads", async () => {
  const heap = await heapAfter("lines");
  assert.ok(heap < 40, `${heap.toFixed(0)} MB in use`);
});

Deno.test("2,000 messages of 20,000 characters merged into the table are let go", async () => {
  const heap = await heapAfter("merged");
  assert.ok(heap < 25, `${heap.toFixed(0)} MB in use`);
});
