/**
 * Is our peer_id already used by a live peer? The tracker may list our name@namespace at an
 * address that is not ours: a peer started earlier under the same name (every other peer then
 * refuses our connections as `duplicate_connection`), or only the record of one that crashed.
 * We dial each such address and say HELLO: a live peer answers with its peer_id, a dead one
 * does not answer at all.
 */
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import type { Address, Conn } from "../../lib/transport.ts";
import type { RendezvousRecord } from "../discovery/mod.ts";
import { hello } from "../protocol/mod.ts";

/** How long a probed address has to connect and answer. */
export const NAME_PROBE_TIMEOUT_MS = 3_000;

/**
 * The address of a live peer that answers as `name@namespace` among the tracker's `records`
 * (a record on our own port is ours and left out), if any.
 */
export async function findNameInUse(
  us: { name: string; namespace: string; port: number },
  records: readonly RendezvousRecord[],
  dial: (address: Address, signal: AbortSignal) => Promise<Conn>,
): Promise<Address | undefined> {
  const peerId = `${us.name}@${us.namespace}`;
  const others = records.filter((record) =>
    record.name === us.name && record.namespace === us.namespace && record.port !== us.port
  );
  for (const record of others) {
    const address = { hostname: record.ip, port: record.port };
    if (await _answersAs(peerId, address, dial)) return address;
  }
  return undefined;
}

// Dials, says HELLO as `peerId` and reads the first line: HELLO_OK or HELLO_REJECT naming
// `peerId` means a live peer uses that id (it refuses us as "self" or as a duplicate).
async function _answersAs(
  peerId: string,
  address: Address,
  dial: (address: Address, signal: AbortSignal) => Promise<Conn>,
): Promise<boolean> {
  const signal = AbortSignal.timeout(NAME_PROBE_TIMEOUT_MS);
  let conn: Conn;
  try {
    conn = await dial(address, signal);
  } catch {
    return false; // nothing listens there: a stale record
  }
  const stop = () => conn.close();
  signal.addEventListener("abort", stop);
  try {
    await conn.write(encodeLine(hello(peerId, [])));
    const lines = new LineDecoder();
    for await (const chunk of conn.chunks()) {
      const frame = lines.push(chunk)[0];
      if (frame === undefined) continue;
      if (frame.kind !== "line") return false;
      return _namesPeer(frame.text, peerId);
    }
    return false;
  } catch {
    return false;
  } finally {
    signal.removeEventListener("abort", stop);
    conn.close();
  }
}

function _namesPeer(line: string, peerId: string): boolean {
  try {
    const message = JSON.parse(line);
    return typeof message === "object" && message !== null && message.peer_id === peerId;
  } catch {
    return false;
  }
}
