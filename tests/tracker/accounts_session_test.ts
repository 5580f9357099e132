import assert from "node:assert/strict";
import { Harness, TEST_ITERATIONS } from "../_accounts_harness.ts";
import { DEFAULT_PBKDF2_ITERATIONS, hashPassword, verifyPassword } from "../../lib/password.ts";
import { createAccountsExtension } from "../../tracker/accounts/mod.ts";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";

const MINUTE = 60_000;

function withoutId(reply: Record<string, unknown>) {
  const { id: _id, ...rest } = reply;
  return rest;
}

Deno.test("SESSION_SIGNUP creates an account, logs the connection in and returns a 256-bit token", async () => {
  const harness = await Harness.start();
  try {
    const reply = await harness.connect().signup("alice", { port: 7001, peer_id: "alice@lobby" });
    assert.equal(reply.status, "OK");
    assert.equal(reply.username, "alice");
    assert.match(reply.token as string, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(
      reply.token_expires_at,
      new Date(harness.clock.now() + 30 * 24 * 3600_000).toISOString(),
    );
    assert.equal(harness.extension.service!.store.userCount, 1);
  } finally {
    await harness.close();
  }
});

Deno.test("SESSION_SIGNUP refuses a taken username whatever its case, and bad names or passwords", async () => {
  const harness = await Harness.start();
  try {
    await harness.connect().signup("alice");
    const cases: [Record<string, unknown>, string][] = [
      [{ username: "ALICE", password: "long-enough" }, "username_taken"],
      [{ username: "a b", password: "long-enough" }, "bad_username"],
      [{ username: "a@b", password: "long-enough" }, "bad_username"],
      [{ username: "#room", password: "long-enough" }, "bad_username"],
      [{ username: "x".repeat(65), password: "long-enough" }, "bad_username"],
      [{ username: "bob", password: "short" }, "bad_password"],
      [{ username: "bob" }, "bad_password"],
      [{ password: "long-enough" }, "bad_request"],
      [{ username: "bob", password: "long-enough", port: 0 }, "bad_request"],
      [{ username: "bob", password: "long-enough", peer_id: "bob" }, "bad_request"],
    ];
    for (const [fields, code] of cases) {
      const reply = await harness.connect().request("SESSION_SIGNUP", fields);
      assert.equal(reply.code, code, JSON.stringify(fields));
    }
    assert.equal(harness.extension.service!.store.userCount, 1);
  } finally {
    await harness.close();
  }
});

Deno.test("SESSION_LOGIN gives the identical reply for an unknown user and for a wrong password", async () => {
  const harness = await Harness.start();
  try {
    await harness.connect().signup("alice");
    const wrong = await harness.connect().login("alice", "not-the-password");
    const unknown = await harness.connect().login("nobody", "not-the-password");
    assert.equal(wrong.code, "login_failed");
    assert.deepEqual(withoutId(wrong), withoutId(unknown));
    const right = await harness.connect().login("Alice", "alice-secret");
    assert.equal(right.status, "OK");
    assert.equal(right.username, "alice");
  } finally {
    await harness.close();
  }
});

Deno.test("Five failed logins from one address lock that address out of the account for 15 minutes", async () => {
  const harness = await Harness.start();
  try {
    await harness.connect().signup("alice");
    for (let attempt = 0; attempt < 5; attempt++) {
      const reply = await harness.connect("10.0.0.9").login("alice", "wrong-password");
      assert.equal(reply.code, "login_failed");
    }
    const locked = await harness.connect("10.0.0.9").login("alice");
    assert.equal(locked.code, "too_many_attempts");
    assert.equal(locked.retry_after_ms, 15 * MINUTE);
    // A stranger's guesses do not lock the owner out from elsewhere.
    assert.equal((await harness.connect("10.0.1.1").login("alice")).status, "OK");
    // The same lock for a name nobody has: lock-outs reveal nothing about existence.
    for (let attempt = 0; attempt < 5; attempt++) {
      await harness.connect("10.0.2.2").login("ghost", "wrong-password");
    }
    assert.equal((await harness.connect("10.0.2.2").login("ghost", "x")).code, "too_many_attempts");

    harness.clock.advance(15 * MINUTE);
    const lifted = await harness.connect("10.0.0.9").login("alice");
    assert.equal(lifted.status, "OK");
    const metrics = harness.extension.metrics().join("\n");
    assert.match(metrics, /^p2pchat_accounts_login_failures_total 10$/m);
    assert.match(metrics, /^p2pchat_accounts_lockouts_total 2$/m);
  } finally {
    await harness.close();
  }
});

Deno.test("Guessing spread over many addresses locks the account for everyone", async () => {
  const harness = await Harness.start({
    loginLimits: { accountFailures: 5, accountTotalFailures: 8, lockMs: MINUTE },
  });
  try {
    await harness.connect().signup("alice");
    for (let attempt = 0; attempt < 8; attempt++) {
      const reply = await harness.connect(`10.1.0.${attempt}`).login("alice", "wrong-password");
      assert.equal(reply.code, "login_failed");
    }
    assert.equal((await harness.connect("10.2.0.1").login("alice")).code, "too_many_attempts");
    harness.clock.advance(MINUTE);
    assert.equal((await harness.connect("10.2.0.1").login("alice")).status, "OK");
  } finally {
    await harness.close();
  }
});

Deno.test("Failures from one address lock that address for every account", async () => {
  const harness = await Harness.start({
    loginLimits: { sourceFailures: 3, accountFailures: 100, lockMs: MINUTE },
  });
  try {
    await harness.connect().signup("alice");
    for (const name of ["x1", "x2", "x3"]) {
      assert.equal(
        (await harness.connect("192.0.2.9").login(name, "wrong-pass")).code,
        "login_failed",
      );
    }
    assert.equal((await harness.connect("192.0.2.9").login("alice")).code, "too_many_attempts");
    assert.equal((await harness.connect("192.0.2.10").login("alice")).status, "OK");
    harness.clock.advance(MINUTE);
    assert.equal((await harness.connect("192.0.2.9").login("alice")).status, "OK");
  } finally {
    await harness.close();
  }
});

Deno.test("Sign-ups from one address are limited, so a flood cannot burn the tracker's CPU on hashing", async () => {
  const harness = await Harness.start({ loginLimits: { sourceSignups: 2, lockMs: MINUTE } });
  try {
    assert.equal((await harness.connect("192.0.2.9").signup("user1")).status, "OK");
    assert.equal((await harness.connect("192.0.2.9").signup("user2")).status, "OK");
    const refused = await harness.connect("192.0.2.9").signup("user3");
    assert.equal(refused.code, "too_many_attempts");
    assert.ok((refused.retry_after_ms as number) > 0);
    assert.equal((await harness.connect("192.0.2.10").signup("user3")).status, "OK");
    harness.clock.advance(MINUTE);
    assert.equal((await harness.connect("192.0.2.9").signup("user4")).status, "OK");
    assert.equal(harness.extension.service!.store.userCount, 4);
  } finally {
    await harness.close();
  }
});

Deno.test("SESSION_RESUME logs in again with a stored token until it expires", async () => {
  const harness = await Harness.start({ tokenTtlMs: 60 * MINUTE, heartbeatWindowMs: 200 * MINUTE });
  try {
    const { token } = await harness.connect().signup("alice");
    const resumed = await harness.connect().request("SESSION_RESUME", { token, port: 7002 });
    assert.equal(resumed.status, "OK");
    assert.equal(resumed.username, "alice");
    assert.equal(resumed.token, undefined, "the client keeps the token it has");
    harness.clock.advance(60 * MINUTE);
    const expired = await harness.connect().request("SESSION_RESUME", { token });
    assert.equal(expired.code, "bad_token");
    const nonsense = await harness.connect().request("SESSION_RESUME", { token: "nope" });
    assert.deepEqual(withoutId(nonsense), withoutId(expired));
  } finally {
    await harness.close();
  }
});

Deno.test("SESSION_LOGOUT revokes the token, closes the connection and every other one using it", async () => {
  const harness = await Harness.start();
  try {
    const first = harness.connect();
    const { token } = await first.signup("alice");
    const second = harness.connect();
    assert.equal((await second.request("SESSION_RESUME", { token })).status, "OK");
    const reply = await first.request("SESSION_LOGOUT");
    assert.equal(reply.status, "OK");
    assert.ok(first.link.closedByServer);
    assert.ok(second.link.closedByServer);
    assert.equal(second.events("session_closed").length, 1);
    assert.equal((await harness.connect().request("SESSION_RESUME", { token })).code, "bad_token");
  } finally {
    await harness.close();
  }
});

Deno.test("Malformed lines and unknown commands get error replies and the session keeps working", async () => {
  const harness = await Harness.start();
  try {
    const client = harness.connect();
    client.handler.receive({ ok: false, code: "invalid_json" });
    client.handler.receive({ ok: true, message: { type: "SESSION_LOGIN", fields: {} } });
    const malformed = client.link.sent[0];
    assert.equal(malformed.code, "malformed");
    assert.equal(malformed.id, null);
    assert.equal(client.link.sent[1].code, "bad_request");
    assert.equal((await client.request("SESSION_DANCE")).code, "unknown_command");
    assert.equal((await client.request("REGISTER", { name: "x" })).code, "unknown_command");
    assert.equal((await client.request("SESSION_USERS")).code, "not_logged_in");
    assert.equal((await client.request("SESSION_HEARTBEAT")).code, "not_logged_in");
    assert.equal((await client.signup("alice")).status, "OK");
    assert.equal((await client.request("SESSION_HEARTBEAT")).status, "OK");
    assert.equal((await client.signup("bob")).code, "already_logged_in");
    assert.equal(client.link.closedByServer, false);
  } finally {
    await harness.close();
  }
});

Deno.test("A session that does not log in within 30 s is closed, whatever it sends meanwhile", async () => {
  const harness = await Harness.start({ heartbeatWindowMs: 10 * MINUTE });
  try {
    const idle = harness.connect();
    const member = harness.connect();
    await member.signup("alice");
    for (let second = 0; second < 29; second++) {
      idle.handler.receive({ ok: false, code: "invalid_json" });
      harness.clock.advance(1000);
    }
    assert.equal(idle.link.closedByServer, false);
    harness.clock.advance(5_000);
    assert.equal(idle.link.closedByServer, true);
    assert.match(String(idle.events("session_expired")[0]?.reason), /No login within 30 s/);
    assert.equal(member.link.closedByServer, false, "a logged-in session stays");
  } finally {
    await harness.close();
  }
});

Deno.test("The peer_id declared at sign-up, login or resume must carry the account's name", async () => {
  const harness = await Harness.start();
  try {
    const mallory = await harness.connect().signup("mallory", { peer_id: "alice@lobby" });
    assert.equal(mallory.code, "name_mismatch");
    const { token } = await harness.connect().signup("bob", { peer_id: "BOB@lobby", port: 7000 });
    assert.equal(
      (await harness.connect().login("bob", undefined, { peer_id: "alice@lobby" })).code,
      "name_mismatch",
    );
    assert.equal(
      (await harness.connect().request("SESSION_RESUME", { token, peer_id: "alice@x" })).code,
      "name_mismatch",
    );
    assert.equal(
      (await harness.connect().request("SESSION_RESUME", { token, peer_id: "bob@x" })).status,
      "OK",
    );
  } finally {
    await harness.close();
  }
});

Deno.test("A burst of logins that fills the hashing queue does not break later logins of unknown names", async () => {
  const harness = await Harness.start({
    loginLimits: { accountFailures: 1000, sourceFailures: 1000 },
  });
  try {
    await harness.connect().signup("alice");
    const burst = Array.from(
      { length: 80 },
      (_, i) =>
        harness.connect(`10.0.${i}.1`).login(i === 79 ? "nobody" : "alice", "wrong-password"),
    );
    const codes = (await Promise.all(burst)).map((reply) => reply.code);
    assert.ok(codes.includes("busy"), "the queue was full for part of the burst");
    const later = await harness.connect("10.9.9.9").login("someone-else", "wrong-password");
    assert.equal(later.code, "login_failed");
  } finally {
    await harness.close();
  }
});

Deno.test("checkRegister and checkUnregister refuse an owned name to every plain Rendezvous request", async () => {
  const harness = await Harness.start();
  try {
    await harness.connect().signup("alice");
    const check = (name: string) => harness.extension.checkRegister(name);
    assert.equal(check("alice"), "name_owned");
    assert.equal(check("ALICE"), "name_owned");
    assert.equal(check("carol"), undefined, "names nobody owns stay free for pyp2p peers");
    assert.equal(harness.extension.checkUnregister("alice"), "name_owned");
    assert.equal(harness.extension.checkUnregister("carol"), undefined);
    assert.ok(harness.extension.opensSession("SESSION_LOGIN"));
    assert.ok(!harness.extension.opensSession("REGISTER"));
  } finally {
    await harness.close();
  }
});

Deno.test("In required mode every plain REGISTER is refused: registering needs a session", async () => {
  const harness = await Harness.start({ mode: "required" });
  try {
    const alice = harness.connect();
    await alice.signup("alice");
    const check = (name: string) => harness.extension.checkRegister(name);
    assert.equal(check("carol"), "login_required");
    assert.equal(check("alice"), "login_required");
    const register = { namespace: "lobby", port: 7001 };
    assert.equal(
      (await alice.request("SESSION_REGISTER", { ...register, name: "carol" })).code,
      "name_mismatch",
    );
    assert.equal(
      (await alice.request("SESSION_REGISTER", { ...register, name: "alice" })).status,
      "OK",
    );
  } finally {
    await harness.close();
  }
});

Deno.test("In off mode the extension opens no sessions, protects no names and writes nothing", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "accounts-off-" });
  const extension = createAccountsExtension(
    { mode: "off", dataDir: `${dataDir}/store` },
    { clock: new ManualClock(), log: memoryLogger().log },
  );
  try {
    await extension.start();
    assert.equal(extension.opensSession("SESSION_LOGIN"), false);
    assert.equal(extension.checkRegister("alice"), undefined);
    assert.equal(extension.checkUnregister("alice"), undefined);
    assert.deepEqual(extension.metrics(), []);
    assert.throws(() => extension.openSession({} as never), TypeError);
    await assert.rejects(Deno.stat(`${dataDir}/store`), Deno.errors.NotFound);
  } finally {
    await extension.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("createAccountsExtension rejects a bad mode or a non-positive setting with bad_option", () => {
  const deps = { clock: new ManualClock(), log: memoryLogger().log };
  for (
    const options of [
      { mode: "maybe" as never, dataDir: "x" },
      { mode: "optional" as const, dataDir: "x", heartbeatWindowMs: 0 },
      { mode: "optional" as const, dataDir: "x", roomMemberCap: -1 },
      { mode: "optional" as const, dataDir: "x", pbkdf2Iterations: 1.5 },
    ]
  ) {
    assert.throws(() => createAccountsExtension(options, deps), { code: "bad_option" });
  }
});

Deno.test("The default PBKDF2 cost is at least 600,000 iterations and is what new credentials use", async () => {
  assert.ok(DEFAULT_PBKDF2_ITERATIONS >= 600_000);
  const credential = await hashPassword("correct horse");
  assert.equal(credential.iterations, DEFAULT_PBKDF2_ITERATIONS);
  assert.equal(credential.algorithm, "PBKDF2-HMAC-SHA256");
  assert.equal(atob(credential.salt).length, 16);
  assert.ok(await verifyPassword("correct horse", credential));
  assert.ok(!(await verifyPassword("correct horsf", credential)));
});

Deno.test("A login re-hashes a credential weaker than the current setting and keeps it after a restart", async () => {
  const harness = await Harness.start();
  try {
    await harness.connect().signup("alice");
    assert.equal(
      harness.extension.service!.store.user("alice")!.credential.iterations,
      TEST_ITERATIONS,
    );
    await harness.restart({ pbkdf2Iterations: TEST_ITERATIONS * 2 });
    assert.equal((await harness.connect().login("alice")).status, "OK");
    assert.equal(
      harness.extension.service!.store.user("alice")!.credential.iterations,
      TEST_ITERATIONS * 2,
    );
    await harness.restart();
    assert.equal(
      harness.extension.service!.store.user("alice")!.credential.iterations,
      TEST_ITERATIONS * 2,
    );
    assert.equal((await harness.connect().login("alice")).status, "OK");
  } finally {
    await harness.close();
  }
});

Deno.test("The store keeps only a SHA-256 of tokens and a hash of passwords on disk", async () => {
  const harness = await Harness.start();
  try {
    const { token } = await harness.connect().signup("alice");
    await harness.restart();
    const onDisk = await Deno.readTextFile(`${harness.dataDir}/accounts.log`);
    assert.ok(!onDisk.includes(token as string));
    assert.ok(!onDisk.includes("alice-secret"));
    assert.equal((await harness.connect().request("SESSION_RESUME", { token })).status, "OK");
  } finally {
    await harness.close();
  }
});
