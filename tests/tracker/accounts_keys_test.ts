/**
 * Identity keys bound to accounts, through the accounts service with in-memory links that carry
 * the key a session handshake proved: binding at sign-up, the key check at login and resume,
 * replacing a key, SESSION_KEYS, and SESSION_REGISTER/UNREGISTER proving names by the login.
 */
import assert from "node:assert/strict";
import { base64 } from "../../lib/bytes.ts";
import { fingerprint } from "../../lib/noise/mod.ts";
import { hashPassword } from "../../lib/password.ts";
import { Harness, TEST_ITERATIONS, testKey } from "../_accounts_harness.ts";

async function withHarness(
  test: (harness: Harness) => Promise<void>,
  options?: Parameters<typeof Harness.start>[0],
): Promise<void> {
  const harness = await Harness.start(options);
  try {
    await test(harness);
  } finally {
    await harness.close();
  }
}

/** A session connection proving `key`. */
function from(harness: Harness, key: Uint8Array, ip = "127.0.0.1") {
  return harness.connect(ip, undefined, key);
}

Deno.test("SESSION_SIGNUP binds the session's identity key to the account and shows it", () =>
  withHarness(async (harness) => {
    const key = testKey();
    const reply = await from(harness, key).signup("alice");
    assert.equal(reply.status, "OK");
    assert.equal(reply.identity_key, base64(key));
    const viewer = from(harness, testKey());
    await viewer.signup("bob");
    const { users } = await viewer.request("SESSION_USERS");
    const alice = (users as Record<string, unknown>[]).find((user) => user.username === "alice");
    assert.equal(alice?.identity_key, base64(key));
  }));

Deno.test("SESSION_LOGIN from another key is refused with key_mismatch, after the password check", () =>
  withHarness(async (harness) => {
    const key = testKey();
    await from(harness, key).signup("alice");
    const stranger = testKey();
    const wrongPassword = await from(harness, stranger).login("alice", "not-the-password");
    assert.equal(wrongPassword.code, "login_failed", "no hint about the key without the password");
    const refused = await from(harness, stranger).login("alice");
    assert.equal(refused.code, "key_mismatch");
    assert.match(refused.message as string, new RegExp(fingerprint(key)));
    assert.match(refused.message as string, /replace_key/);
    const same = await from(harness, key).login("alice");
    assert.equal(same.status, "OK");
    assert.equal(same.identity_key, base64(key));
  }));

Deno.test("SESSION_LOGIN with replace_key changes the key, ends the old sessions and tells everyone", () =>
  withHarness(async (harness) => {
    const oldKey = testKey();
    const first = from(harness, oldKey);
    const { token } = await first.signup("alice");
    const bob = from(harness, testKey());
    await bob.signup("bob");
    const newKey = testKey();
    const moved = from(harness, newKey);
    const reply = await moved.login("alice", undefined, { replace_key: true });
    assert.equal(reply.status, "OK");
    assert.equal(reply.identity_key, base64(newKey));
    assert.ok(first.link.closedByServer, "the old key's session was closed");
    assert.equal(first.events("session_closed").length, 1);
    const changed = await bob.event("key_changed");
    assert.deepEqual(
      { username: changed.username, identity_key: changed.identity_key },
      { username: "alice", identity_key: base64(newKey) },
    );
    // Every token issued before is revoked, even when presented with the new key.
    const resumed = await from(harness, newKey).request("SESSION_RESUME", { token });
    assert.equal(resumed.code, "bad_token");
    assert.equal((await from(harness, oldKey).login("alice")).code, "key_mismatch");
    const keys = await bob.request("SESSION_KEYS", { usernames: ["alice"] });
    assert.deepEqual(keys.keys, { alice: base64(newKey) });
    // The change is in the log: a restart keeps the new key.
    await harness.restart();
    assert.equal(harness.extension.service!.store.user("alice")?.identityKey, base64(newKey));
  }));

Deno.test("SESSION_RESUME needs the account's key: a token cannot change it", () =>
  withHarness(async (harness) => {
    const key = testKey();
    const { token } = await from(harness, key).signup("alice");
    const other = await from(harness, testKey()).request("SESSION_RESUME", { token });
    assert.equal(other.code, "key_mismatch");
    const same = await from(harness, key).request("SESSION_RESUME", { token });
    assert.equal(same.status, "OK");
    assert.equal(same.identity_key, base64(key));
  }));

Deno.test("An account made before keys gets the key of its next password login, not of a token", () =>
  withHarness(async (harness) => {
    const store = harness.extension.service!.store;
    const credential = await hashPassword("alice-secret", TEST_ITERATIONS);
    const token = { hash: "f".repeat(64), created: 0, expires: Date.UTC(2100, 0, 1) };
    await store.commit({ op: "signup", username: "alice", credential, at: 0 });
    assert.equal(store.user("alice")?.identityKey, undefined);
    const key = testKey();
    const viewer = from(harness, testKey());
    await viewer.signup("bob");
    assert.deepEqual(
      (await viewer.request("SESSION_KEYS", { usernames: ["alice"] })).keys,
      { alice: null },
    );
    await store.commit({ op: "login", username: "alice", at: 0, token });
    assert.equal(store.tokenOwner(token.hash, 0)?.username, "alice");
    const login = await from(harness, key).login("alice");
    assert.equal(login.status, "OK");
    assert.equal(login.identity_key, base64(key));
    assert.equal(viewer.events("key_changed").length, 0, "a first key is no change");
    assert.equal(store.tokenOwner(token.hash, 0)?.username, "alice", "binding revokes nothing");
  }));

Deno.test("SESSION_RESUME on an account without a key is refused", () =>
  withHarness(async (harness) => {
    const store = harness.extension.service!.store;
    const credential = await hashPassword("alice-secret", TEST_ITERATIONS);
    await store.commit({ op: "signup", username: "alice", credential, at: 0 });
    const { hashToken } = await import("../../tracker/accounts/tokens.ts");
    const token = "old-token-from-before-keys";
    const hash = hashToken(token);
    await store.commit({
      op: "login",
      username: "alice",
      at: 0,
      token: { hash, created: 0, expires: Date.UTC(2100, 0, 1) },
    });
    const reply = await from(harness, testKey()).request("SESSION_RESUME", { token });
    assert.equal(reply.code, "key_mismatch");
    assert.equal(store.user("alice")?.identityKey, undefined);
  }));

Deno.test("SESSION_KEYS answers before a login, keyed by the names as asked", () =>
  withHarness(async (harness) => {
    const key = testKey();
    await from(harness, key).signup("Alice");
    const anonymous = from(harness, testKey());
    const reply = await anonymous.request("SESSION_KEYS", {
      usernames: ["alice", "nobody", "__proto__", "аlice"],
    });
    assert.equal(reply.status, "OK");
    // A look-alike ("аlice", Cyrillic а) answers the owner's key: whoever uses it is refused.
    assert.deepEqual(
      Object.entries(reply.keys as Record<string, unknown>),
      [["alice", base64(key)], ["nobody", null], ["__proto__", null], ["аlice", base64(key)]],
    );
    for (const usernames of [[], "alice", [42], ["x".repeat(65)], Array(101).fill("a"), null]) {
      const bad = await anonymous.request("SESSION_KEYS", { usernames });
      assert.equal(bad.code, "bad_request", JSON.stringify(usernames));
    }
  }));

Deno.test("SESSION_REGISTER registers the logged-in name for the session's address", () =>
  withHarness(async (harness) => {
    const alice = harness.connect("10.0.0.1");
    const anonymous = harness.connect("10.0.0.1");
    const register = { namespace: "lobby", name: "alice", port: 7001, ttl: 999_999 };
    assert.equal((await anonymous.request("SESSION_REGISTER", register)).code, "not_logged_in");
    await alice.signup("alice");
    const ok = await alice.request("SESSION_REGISTER", register);
    assert.deepEqual(
      { status: ok.status, ttl: ok.ttl, ip: ok.ip, port: ok.port },
      { status: "OK", ttl: 86400, ip: "10.0.0.1", port: 7001 },
    );
    assert.equal(
      (await alice.request("SESSION_REGISTER", { ...register, name: "ALICE" })).status,
      "OK",
    );
    const now = harness.clock.now();
    assert.deepEqual(
      harness.registry.discover("lobby", now).map((peer) => [peer.ip, peer.name, peer.port]),
      [["10.0.0.1", "alice", 7001], ["10.0.0.1", "ALICE", 7001]],
    );
    // The Rendezvous checks come first, in their order, with their strings as codes.
    const cases: [Record<string, unknown>, string][] = [
      [{ ...register, name: "" }, "bad_name"],
      [{ ...register, ttl: "soon" }, "bad_ttl"],
      [{ ...register, namespace: 7 }, "bad_namespace"],
      [{ ...register, port: 0 }, "bad_port"],
      [{ ...register, name: "bob" }, "name_mismatch"],
    ];
    for (const [fields, code] of cases) {
      const reply = await alice.request("SESSION_REGISTER", fields);
      assert.deepEqual([reply.code, reply.message], [code, code], JSON.stringify(fields));
    }
  }));

Deno.test("SESSION_UNREGISTER removes only the user's own listing", () =>
  withHarness(async (harness) => {
    const now = harness.clock.now();
    harness.registry.upsert(
      { ip: "10.0.0.1", namespace: "lobby", name: "neighbour", port: 7002, ttl: 60 },
      now,
    );
    const alice = harness.connect("10.0.0.1");
    await alice.signup("alice");
    await alice.request("SESSION_REGISTER", { namespace: "lobby", name: "alice", port: 7001 });
    const other = await alice.request("SESSION_UNREGISTER", {
      namespace: "lobby",
      name: "neighbour",
    });
    assert.equal(other.code, "name_mismatch");
    const badPort = await alice.request("SESSION_UNREGISTER", { namespace: "lobby", port: "x" });
    assert.deepEqual([badPort.code, badPort.message], ["bad_port", "bad_port (x)"]);
    assert.equal(
      (await alice.request("SESSION_UNREGISTER", { namespace: "lobby" })).status,
      "OK",
    );
    assert.deepEqual(harness.registry.discover("lobby", now).map((peer) => peer.name), [
      "neighbour",
    ]);
  }));

Deno.test("Identity keys survive a restart from the snapshot as well as from the log", () =>
  withHarness(async (harness) => {
    const keys = [testKey(), testKey()];
    await from(harness, keys[0]).signup("alice");
    await from(harness, keys[1]).signup("bob");
    await from(harness, testKey()).login("bob", undefined, { replace_key: true });
    const bobKey = harness.extension.service!.store.user("bob")?.identityKey;
    // A tiny compaction threshold: the restart reads a snapshot.
    await harness.restart({ compactMinBytes: 1 });
    await from(harness, testKey()).signup("carol");
    await harness.restart();
    await Deno.stat(`${harness.dataDir}/accounts.log.snapshot`);
    const store = harness.extension.service!.store;
    assert.equal(store.user("alice")?.identityKey, base64(keys[0]));
    assert.equal(store.user("bob")?.identityKey, bobKey);
    assert.notEqual(bobKey, base64(keys[1]));
  }));

Deno.test("AccountStore.parse() refuses a key record whose key is not 32 bytes of base64", () =>
  withHarness(async (harness) => {
    const store = harness.extension.service!.store;
    const key = base64(testKey());
    const record = { op: "key", username: "alice", identity_key: key, at: 1 };
    assert.deepEqual(store.parse(record), { ...record, revoke_tokens: undefined });
    for (const bad of ["c2hvcnQ=", "not base64!", 42, undefined]) {
      assert.throws(() => store.parse({ ...record, identity_key: bad }), TypeError, String(bad));
    }
    const credential = await hashPassword("alice-secret", TEST_ITERATIONS);
    const signup = { op: "signup", username: "alice", credential, at: 1 };
    assert.equal((store.parse(signup) as { identity_key?: string }).identity_key, undefined);
    assert.throws(() => store.parse({ ...signup, identity_key: "c2hvcnQ=" }), TypeError);
  }));
