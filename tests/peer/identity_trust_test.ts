import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { type AccountKey, KeyPins, TrustPolicy } from "../../peer/identity/mod.ts";

const OLD = new Uint8Array(32).fill(1);
const NEW = new Uint8Array(32).fill(2);

/** A directory whose remembered answer is stale: the tracker now holds another key. */
class StaleAccounts {
  lookups = 0;
  constructor(readonly remembered: AccountKey, readonly now: AccountKey) {}
  cached(): AccountKey {
    return this.remembered;
  }
  lookup(): Promise<AccountKey> {
    this.lookups++;
    return Promise.resolve(this.now);
  }
}

Deno.test("TrustPolicy asks the tracker again before refusing on a remembered answer", async () => {
  const accounts = new StaleAccounts({ kind: "account", key: OLD }, { kind: "account", key: NEW });
  const trust = new TrustPolicy(KeyPins.inMemory(), accounts, new ManualClock(), {});
  const verdict = await trust.check("bob@lobby", NEW);
  assert.equal(verdict.ok, true);
  assert.equal(accounts.lookups, 1);
  // The remembered answer is used as it is when it accepts.
  const same = new StaleAccounts({ kind: "account", key: NEW }, { kind: "account", key: OLD });
  const again = new TrustPolicy(KeyPins.inMemory(), same, new ManualClock(), {});
  assert.equal((again.check("bob@lobby", NEW) as { ok: boolean }).ok, true);
  assert.equal(same.lookups, 0);
});

Deno.test("TrustPolicy fails closed when a tracker with accounts does not answer", async () => {
  const down: AccountKey = { kind: "unavailable" };
  const pins = KeyPins.inMemory();
  const trust = new TrustPolicy(pins, new StaleAccounts(down, down), new ManualClock(), {});
  assert.deepEqual(await trust.check("alice@lobby", NEW), { ok: false, reason: "key_unchecked" });
  assert.deepEqual(await trust.check("pyraw@lobby"), { ok: false, reason: "key_unchecked" });
  assert.equal(pins.get("alice@lobby"), undefined);
  pins.pin("carol@lobby", OLD, 0);
  assert.equal((await trust.check("carol@lobby", OLD)).ok, true);
  assert.equal((await trust.check("carol@lobby", NEW)).ok, false);
});
