import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import { memoryConnPair } from "../../lib/transport.ts";
import { memoryTokenStore } from "../../peer/accounts/token_store.ts";
import { SessionClient, type SessionClientEvent } from "../../peer/accounts/session_client.ts";
import { hashToken } from "../../tracker/accounts/tokens.ts";
import { SessionTracker, settle } from "../_session_tracker.ts";

function client(tracker: SessionTracker, username: string, token?: string) {
  const tokens = memoryTokenStore(token);
  const events: SessionClientEvent[] = [];
  const logged = memoryLogger();
  const session = new SessionClient(
    { username, address: () => ({ peerId: `${username}@lobby`, port: 7001 }) },
    {
      connect: tracker.connectAs(username),
      tokens,
      clock: tracker.clock,
      log: logged.log,
      random: () => 0.5, // no jitter: the first retry comes after exactly 1 s
    },
  );
  session.subscribe((event) => events.push(event));
  return { session, tokens, events, logLines: logged.lines };
}

/** The account a token logs in to at the tracker: undefined once revoked. */
function tokenOwner(tracker: SessionTracker, token: string) {
  const store = tracker.extension!.service!.store;
  return store.tokenOwner(hashToken(token), tracker.clock.now())?.username;
}

async function withTracker(
  run: (tracker: SessionTracker) => Promise<void>,
  windowMs?: number,
): Promise<void> {
  const tracker = await SessionTracker.start(windowMs);
  try {
    await run(tracker);
  } finally {
    await tracker.close();
  }
}

Deno.test("SessionClient.signup() logs in, remembers the token and declares the peer", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    assert.equal(alice.session.state, "logged_in");
    assert.equal(alice.tokens.token?.length, 43);
    assert.equal(alice.session.token, alice.tokens.token);
    const reply = await alice.session.request("SESSION_USERS");
    const [user] = reply.users as Record<string, unknown>[];
    assert.equal(user.online, true);
    assert.deepEqual(user.addresses, [{ ip: "127.0.0.1", port: 7001, peer_id: "alice@lobby" }]);
    assert.deepEqual(alice.events.map((e) => e.kind), ["logged_in"]);
    await alice.session.stop();
  }));

Deno.test("SessionClient.login() fails the same way for a wrong password and an unknown user", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    const again = client(tracker, "alice");
    const nobody = client(tracker, "nobody");
    const wrong = await again.session.login("wrong-password").catch((error) => error);
    const unknown = await nobody.session.login("any-password").catch((error) => error);
    assert.ok(wrong instanceof P2pError && unknown instanceof P2pError);
    assert.equal(wrong.code, "login_failed");
    assert.equal(unknown.code, wrong.code);
    assert.equal(unknown.message, wrong.message);
    assert.equal(again.tokens.token, undefined);
    await again.session.login("alice-secret");
    assert.equal(again.session.state, "logged_in");
    await Promise.all([alice, again, nobody].map((c) => c.session.stop()));
  }));

Deno.test("SessionClient.request() before a login says to log in first", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await assert.rejects(alice.session.request("SESSION_ROOMS"), { code: "not_logged_in" });
    await alice.session.stop();
  }));

Deno.test("SessionClient.resume() logs in with the stored token; a revoked one is forgotten", () =>
  withTracker(async (tracker) => {
    const first = client(tracker, "alice");
    await first.session.signup("alice-secret");
    const token = first.tokens.token!;
    const second = client(tracker, "alice", token);
    assert.equal(await second.session.loadToken(), token);
    assert.equal(await second.session.resume(), true);
    assert.equal(second.session.state, "logged_in");
    assert.deepEqual(second.events[0], { kind: "logged_in", username: "alice", how: "resume" });

    // A logout on one connection revokes the token on the other one too.
    await first.session.logout();
    assert.equal(first.tokens.token, undefined);
    await settle();
    assert.equal(second.session.state, "logged_out");
    assert.equal(second.tokens.token, undefined);
    assert.equal(second.events.at(-1)?.kind, "logged_out");
    assert.equal((second.events.at(-1) as { reason: string }).reason, "session_closed");

    const third = client(tracker, "alice", token);
    await third.session.loadToken();
    await assert.rejects(third.session.resume(), { code: "bad_token" });
    assert.equal(third.tokens.token, undefined);
    assert.equal(third.session.state, "logged_out");
    assert.equal((third.events.at(-1) as { reason: string }).reason, "bad_token");
    await Promise.all([first, second, third].map((c) => c.session.stop()));
  }));

Deno.test("SessionClient.logout() revokes the token at the tracker", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    const token = alice.tokens.token!;
    assert.equal(tokenOwner(tracker, token), "alice");
    await alice.session.logout();
    assert.equal(alice.session.token, undefined);
    assert.equal(tokenOwner(tracker, token), undefined);
    await settle();
    assert.deepEqual(alice.events.map((e) => e.kind), ["logged_in", "logged_out"]);
    await alice.session.stop();
  }));

Deno.test("SessionClient heartbeats every third of the announced window and stays online", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    const bob = client(tracker, "bob");
    await alice.session.signup("alice-secret");
    await bob.session.signup("bob-secret-1");
    assert.equal(alice.session.heartbeatWindowMs, 3_000);
    // Ten windows pass in 500 ms steps: only heartbeats keep both sessions alive.
    for (let i = 0; i < 60; i++) {
      tracker.clock.advance(500);
      await settle(2);
    }
    const reply = await bob.session.request("SESSION_USERS", { online: true });
    assert.deepEqual((reply.users as { username: string }[]).map((u) => u.username), [
      "alice",
      "bob",
    ]);
    assert.equal(alice.session.state, "logged_in");
    await Promise.all([alice, bob].map((c) => c.session.stop()));
  }, 3_000));

Deno.test("SessionClient tells a lost session once, retries quietly and resumes after a restart", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    await tracker.down();
    await settle();
    assert.equal(alice.session.state, "reconnecting");
    assert.deepEqual(alice.events.at(-1), {
      kind: "reconnecting",
      detail: "the tracker connection closed",
      delayMs: 1000,
    });
    // Ten failed retries: no event and no warning each, and the delay stops growing at 20 s.
    const warnings = alice.logLines.filter((line) => /WARN/.test(line)).length;
    for (let i = 0; i < 10; i++) {
      tracker.clock.advance(25_000);
      await settle();
    }
    assert.equal(alice.session.state, "reconnecting");
    assert.equal(alice.events.filter((e) => e.kind === "reconnecting").length, 1);
    assert.equal(alice.logLines.filter((line) => /WARN/.test(line)).length, warnings);
    await tracker.up();
    tracker.clock.advance(20_000);
    await settle(10);
    assert.equal(alice.session.state, "logged_in");
    assert.deepEqual(alice.events.map((e) => e.kind), ["logged_in", "reconnecting", "logged_in"]);
    assert.deepEqual(alice.events.at(-1), {
      kind: "logged_in",
      username: "alice",
      how: "reconnect",
    });
    const rooms = await alice.session.request("SESSION_ROOMS");
    assert.deepEqual(rooms.rooms, []);
    await alice.session.stop();
  }));

Deno.test("SessionClient.retryNow() resumes at once instead of waiting for the backoff", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    await tracker.down();
    await settle();
    await tracker.up();
    alice.session.retryNow();
    await settle(10);
    assert.equal(alice.session.state, "logged_in");
    await alice.session.stop();
  }));

Deno.test("SessionClient.logout() while reconnecting logs out at once and revokes the token later", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    const token = alice.tokens.token!;
    await tracker.down();
    await settle();
    assert.deepEqual(await alice.session.logout(), { revoked: false });
    assert.equal(alice.session.state, "logged_out");
    assert.equal(alice.session.token, undefined);
    assert.equal(alice.tokens.token, undefined);
    assert.deepEqual(alice.events.at(-1), { kind: "logged_out", reason: "logout" });
    await tracker.up();
    assert.equal(tokenOwner(tracker, token), "alice"); // not revoked yet
    tracker.clock.advance(1_000); // the first retry: exactly then, or the tracker's idle timer runs
    await settle(10);
    assert.equal(tokenOwner(tracker, token), undefined);
    assert.equal(alice.session.state, "logged_out");
    assert.equal(alice.events.at(-1)?.kind, "logged_out");
    // Nothing left to do: no more connections.
    const dials = tracker.dials;
    tracker.clock.advance(60_000);
    await settle();
    assert.equal(tracker.dials, dials);
    await alice.session.stop();
  }));

Deno.test("SessionClient drops a resume reply that arrives after /logout and revokes its token", () =>
  withTracker(async (tracker) => {
    const alice = client(tracker, "alice");
    await alice.session.signup("alice-secret");
    const token = alice.tokens.token!;
    await tracker.down();
    await settle();
    await tracker.up();
    tracker.clock.advance(1_000); // the retry starts: SESSION_RESUME is on its way
    await alice.session.logout();
    await settle(10);
    assert.equal(alice.session.state, "logged_out");
    assert.deepEqual(alice.events.map((e) => e.kind), ["logged_in", "reconnecting", "logged_out"]);
    assert.equal(tokenOwner(tracker, token), undefined);
    await alice.session.stop();
  }));

Deno.test("SessionClient reports a plain pyp2p tracker as offering no accounts", async () => {
  const tokens = memoryTokenStore();
  const session = new SessionClient(
    { username: "alice", address: () => ({ peerId: "alice@lobby", port: 7001 }) },
    {
      connect: () => {
        const [ours, theirs] = memoryConnPair();
        (async () => {
          for await (const _chunk of theirs.chunks()) {
            await theirs.write(
              new TextEncoder().encode('{"status":"ERROR","message":"Unknown command"}\n'),
            );
            theirs.close();
          }
        })();
        return Promise.resolve(ours);
      },
      tokens,
      clock: new ManualClock(),
      log: memoryLogger().log,
    },
  );
  await assert.rejects(session.login("alice-secret"), { code: "unknown_command" });
  assert.equal(session.state, "logged_out");
  await session.stop();
});
