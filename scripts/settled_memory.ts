/** Memory use after full collections, so that only live objects are counted. */

/** Collects three times, then reads `Deno.memoryUsage()`; needs `--v8-flags=--expose-gc`. */
export async function settledMemory(): Promise<Deno.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Run with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Deno.memoryUsage();
}
