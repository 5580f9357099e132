/**
 * A shared budget for bytes queued toward clients that do not read: past it, the largest
 * consumers are shed first, so a few stalled readers cannot grow memory without bound, and
 * everyone else keeps their connection. Free of I/O: the owner keeps the running total and
 * closes what this returns.
 */

/** The consumers to shed, largest first, until `total` minus what they hold fits `budget`. */
export function shedLargest<T>(
  consumers: Iterable<T>,
  sizeOf: (consumer: T) => number,
  total: number,
  budget: number,
): T[] {
  if (total <= budget) return [];
  const bySize = [...consumers].sort((a, b) => sizeOf(b) - sizeOf(a));
  const shed: T[] = [];
  for (const consumer of bySize) {
    if (total <= budget) break;
    const size = sizeOf(consumer);
    if (size <= 0) break;
    shed.push(consumer);
    total -= size;
  }
  return shed;
}
