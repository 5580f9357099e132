/** `p2pchat tracker`: placeholder replaced by the tracker implementation. */
export function runTrackerCommand(_args: string[]): Promise<number> {
  return Promise.resolve(2);
}
