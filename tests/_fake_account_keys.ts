/** Test helper: what a tracker says about account names and their keys, without a tracker. */
import type { AccountKey } from "../peer/identity/mod.ts";

export class FakeAccountKeys {
  readonly keys = new Map<string, Uint8Array>();
  /** True while the tracker does not answer. */
  down = false;
  /** Answers remembered from earlier, out of date (`cached` gives them, `lookup` asks afresh). */
  readonly remembered = new Map<string, AccountKey>();

  cached(username: string): AccountKey | undefined {
    return this.remembered.get(username) ?? this.#answer(username);
  }

  lookup(username: string): Promise<AccountKey> {
    const answer = this.#answer(username);
    this.remembered.delete(username);
    return Promise.resolve(answer);
  }

  #answer(username: string): AccountKey {
    if (this.down) return { kind: "unavailable" };
    const key = this.keys.get(username);
    return key ? { kind: "account", key } : { kind: "none" };
  }
}
