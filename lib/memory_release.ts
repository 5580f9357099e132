/**
 * Gives memory back to the system once a burst is over. V8 keeps the heap a burst grew to until
 * its own memory reducer runs, and that ran anywhere from 2 s to over 30 s after a flood of 1,024
 * tracker sessions ended (measured: RSS +50% meanwhile, though two thirds of the heap was
 * garbage). A full collection that also reduces memory brings RSS back within a few percent in
 * about 25 ms. Deno offers no call for it; V8's `gc()` does, made available the way Node documents
 * (the flag set at run time, the function taken from a new context), which needs no permission
 * (the inspector's collection asked for `--allow-sys` and prompted on the terminal).
 *
 * The policy is free of I/O: fed the heap's figures now and then, it says when to collect.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Clock, TimerId } from "./clock.ts";

/** The heap figures a sample needs (as `Deno.memoryUsage()` gives them). */
export interface HeapSample {
  heapTotal: number;
  heapUsed: number;
  /** Memory of ArrayBuffers (queued output, reads), freed only when the heap is collected. */
  external: number;
}

/** How the policy decides. */
export interface MemoryReleaseSettings {
  /**
   * Growth of the heap and its ArrayBuffers over their size after the last collection that is
   * worth giving back.
   */
  growthBytes: number;
  /** Below this much allocation between two samples the process counts as quiet. */
  quietBytes: number;
  /** Collections are at least this far apart, so a long flood costs one every so often. */
  minIntervalMs: number;
}

export const MEMORY_RELEASE_DEFAULTS: MemoryReleaseSettings = {
  growthBytes: 8 * 1024 * 1024,
  quietBytes: 1024 * 1024,
  minIntervalMs: 2_000,
};

/** Milliseconds between samples at the edge: a burst's memory is back about a second after. */
export const MEMORY_SAMPLE_MS = 500;

/**
 * Collect when the heap has grown well past its size after the last collection and the process
 * has gone quiet (the heap in use barely moved since the sample before): the burst is over, and
 * a collection now costs no latency to anyone busy.
 */
export class MemoryReleasePolicy {
  readonly #settings: MemoryReleaseSettings;
  #floor: number | undefined;
  #lastUsed: number | undefined;
  #lastReleaseAt = -Infinity;

  constructor(settings: Partial<MemoryReleaseSettings> = {}) {
    this.#settings = { ...MEMORY_RELEASE_DEFAULTS, ...settings };
  }

  /** Feeds a sample taken at `now`; true when memory should be released now. */
  sample(heap: HeapSample, now: number): boolean {
    const { growthBytes, quietBytes, minIntervalMs } = this.#settings;
    const size = _size(heap);
    // A heap that shrank on its own lowers the floor: growth is measured from the smallest size.
    this.#floor = Math.min(this.#floor ?? size, size);
    const quiet = this.#lastUsed !== undefined &&
      Math.abs(heap.heapUsed - this.#lastUsed) < quietBytes;
    this.#lastUsed = heap.heapUsed;
    return quiet && size - this.#floor >= growthBytes &&
      now - this.#lastReleaseAt >= minIntervalMs;
  }

  /** Records a collection at `now` that left the heap at `heap`. */
  released(heap: HeapSample, now: number): void {
    this.#floor = _size(heap);
    this.#lastUsed = heap.heapUsed;
    this.#lastReleaseAt = now;
  }
}

function _size(heap: HeapSample): number {
  return heap.heapTotal + heap.external;
}

/** A running release loop. */
export interface MemoryRelease {
  /** Collections made so far. */
  readonly releases: number;
  stop(): void;
}

/**
 * Samples the heap every `MEMORY_SAMPLE_MS` and collects when the policy says so. Its timers
 * never keep the process alive.
 */
export function startMemoryRelease(
  clock: Clock,
  policy: MemoryReleasePolicy = new MemoryReleasePolicy(),
  sampleMs: number = MEMORY_SAMPLE_MS,
): MemoryRelease {
  let timer: TimerId;
  let releases = 0;
  const check = () => {
    if (policy.sample(Deno.memoryUsage(), clock.now())) {
      _collectGarbage();
      releases++;
      policy.released(Deno.memoryUsage(), clock.now());
    }
    timer = clock.setTimeout(check, sampleMs);
  };
  timer = clock.setTimeout(check, sampleMs);
  return {
    get releases() {
      return releases;
    },
    stop: () => clock.clearTimeout(timer),
  };
}

type _Gc = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
let gc: _Gc | undefined;

// A full collection that also shrinks the heap and returns its free pages ("last-resort": all
// available garbage, as V8 does on a low-memory notification).
function _collectGarbage(): void {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as _Gc;
  }
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
}
