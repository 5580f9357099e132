/** Test helper: what a tracker says about account names and their keys, without a tracker. */
import type { AccountKey } from "../peer/identity/mod.ts";

export class FakeAccountKeys {
  readonly keys = new Map<string, Uint8Array>();
  /** True while the tracker does not answer. */
  down = false;

  cached(username: string): AccountKey | undefined {
    if (this.down) return { kind: "unavailable" };
    const key = this.keys.get(username);
    return key ? { kind: "account", key } : { kind: "none" };
  }

  lookup(username: string): Promise<AccountKey> {
    return Promise.resolve(this.cached(username)!);
  }
}
