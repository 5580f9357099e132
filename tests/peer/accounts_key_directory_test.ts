import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import { memoryLogger } from "../../lib/log.ts";
import { type Conn, memoryConnPair } from "../../lib/transport.ts";
import {
  KEY_CACHE_MS,
  KeyDirectory,
  KEYS_SESSION_MS,
  MAX_KEY_SESSIONS_PER_MINUTE,
  NO_ACCOUNTS_PAUSE_MS,
} from "../../peer/accounts/key_directory.ts";
import type { SessionState } from "../../peer/accounts/session_client.ts";

const ALICE_KEY = new Uint8Array(32).fill(7);

/** A session client that is logged in or not, and answers SESSION_KEYS from a table. */
class FakeClient {
  state: SessionState = "logged_in";
  readonly asked: unknown[] = [];
  keys: Record<string, string | null> = { alice: ALICE_KEY.toBase64(), bob: null };
  failWith?: P2pError;
  request(type: string, fields: Record<string, unknown> = {}) {
    this.asked.push({ type, ...fields });
    if (this.failWith) return Promise.reject(this.failWith);
    const names = fields.usernames as string[];
    return Promise.resolve({ keys: Object.fromEntries(names.map((n) => [n, this.keys[n]])) });
  }
}

/** A tracker end on an in-memory connection that answers one SESSION_KEYS line. */
function oneShotTracker(reply: Record<string, unknown>, requests: unknown[]) {
  return (_signal: AbortSignal): Promise<Conn> => {
    const [ours, theirs] = memoryConnPair();
    (async () => {
      const decoder = new LineDecoder();
      for await (const chunk of theirs.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind !== "line") continue;
          const request = JSON.parse(frame.text);
          requests.push(request);
          await theirs.write(encodeLine({ type: "SESSION_REPLY", id: request.id, ...reply }));
        }
      }
      theirs.close();
    })();
    return Promise.resolve(ours);
  };
}

function directory(client: FakeClient, connect = oneShotTracker({}, []), offersAccounts = false) {
  const clock = new ManualClock();
  const keys = new KeyDirectory(client, connect, {
    clock,
    log: memoryLogger().log,
    offersAccounts: () => offersAccounts,
  });
  return { clock, keys };
}

Deno.test("KeyDirectory asks the logged-in session once and keeps the answer", async () => {
  const client = new FakeClient();
  const { clock, keys } = directory(client);
  assert.equal(keys.cached("alice"), undefined);
  assert.deepEqual(await keys.lookup("alice"), { kind: "account", key: ALICE_KEY });
  assert.deepEqual(keys.cached("Alice"), { kind: "account", key: ALICE_KEY });
  assert.deepEqual(await keys.lookup("bob"), { kind: "none" });
  assert.deepEqual(client.asked, [
    { type: "SESSION_KEYS", usernames: ["alice"] },
    { type: "SESSION_KEYS", usernames: ["bob"] },
  ]);
  // A free name may be signed up soon: it is asked again after a short while.
  clock.advance(KEY_CACHE_MS.none + 1);
  assert.equal(keys.cached("bob"), undefined);
  assert.notEqual(keys.cached("alice"), undefined);
});

Deno.test("KeyDirectory asks over a short session of its own when logged out", async () => {
  const client = new FakeClient();
  client.state = "logged_out";
  const requests: unknown[] = [];
  const { keys } = directory(
    client,
    oneShotTracker({ status: "OK", keys: { carol: ALICE_KEY.toBase64() } }, requests),
  );
  assert.deepEqual(await keys.lookup("carol"), { kind: "account", key: ALICE_KEY });
  assert.deepEqual(requests, [{ type: "SESSION_KEYS", usernames: ["carol"], id: 1 }]);
  assert.deepEqual(client.asked, []);
});

Deno.test("KeyDirectory stops asking a tracker without accounts, and a key it cannot read is unknown", async () => {
  const client = new FakeClient();
  client.failWith = new P2pError("unknown_command", "The tracker does not offer accounts");
  const { clock, keys } = directory(client);
  assert.deepEqual(await keys.lookup("alice"), { kind: "unknown" });
  assert.deepEqual(keys.cached("dave"), { kind: "unknown" });
  clock.advance(NO_ACCOUNTS_PAUSE_MS + 1);
  assert.equal(keys.cached("dave"), undefined);
  client.failWith = undefined;
  client.keys = { eve: "not base64!" };
  assert.deepEqual(await keys.lookup("eve"), { kind: "unavailable" });
});

Deno.test("KeyDirectory never takes a refusal for 'no accounts' from a tracker known to have them", async () => {
  const client = new FakeClient();
  const clock = new ManualClock();
  const keys = new KeyDirectory(client, oneShotTracker({}, []), {
    clock,
    log: memoryLogger().log,
    offersAccounts: () => true,
  });
  for (const code of ["unknown_command", "busy", "timeout", "too_many_attempts"] as const) {
    client.failWith = new P2pError(code, code);
    assert.deepEqual(await keys.lookup(`n-${code}`), { kind: "unavailable" }, code);
  }
  // A name the tracker refuses to look up (not a valid username) can be no account's.
  client.failWith = new P2pError("bad_request", "bad name");
  assert.deepEqual(await keys.lookup(""), { kind: "none" });
  // Another name is still asked: one odd name does not stop the lookups of the others.
  client.failWith = undefined;
  assert.deepEqual(await keys.lookup("alice"), { kind: "account", key: ALICE_KEY });
});

Deno.test("KeyDirectory carries its lookups on one session of its own, and bounds new ones", async () => {
  const client = new FakeClient();
  client.state = "logged_out";
  const requests: unknown[] = [];
  let sessions = 0;
  const tracker = oneShotTracker({ status: "OK", keys: {} }, requests);
  const { clock, keys } = directory(client, (signal) => {
    sessions++;
    return tracker(signal);
  });
  for (let index = 0; index < 30; index++) await keys.lookup(`stranger${index}`);
  assert.deepEqual([requests.length, sessions], [30, 1]);
  // A session is not kept past the tracker's deadline for sessions without a login.
  clock.advance(KEYS_SESSION_MS + 1);
  await keys.lookup("later");
  assert.equal(sessions, 2);
  keys.close();
});

Deno.test("KeyDirectory opens a bounded number of sessions a minute, then strangers wait", async () => {
  const client = new FakeClient();
  client.state = "logged_out";
  let sessions = 0;
  // A tracker that answers, then closes: every lookup needs a new session.
  const { keys } = directory(client, () => {
    sessions++;
    const [ours, theirs] = memoryConnPair();
    (async () => {
      const decoder = new LineDecoder();
      for await (const chunk of theirs.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind !== "line") continue;
          const { id, usernames } = JSON.parse(frame.text);
          const keys = Object.fromEntries(usernames.map((name: string) => [name, null]));
          await theirs.write(encodeLine({ type: "SESSION_REPLY", id, status: "OK", keys }));
          theirs.close();
        }
      }
    })();
    return Promise.resolve(ours);
  }, true);
  for (let index = 0; index < MAX_KEY_SESSIONS_PER_MINUTE; index++) {
    assert.deepEqual(await keys.lookup(`stranger${index}`), { kind: "none" }, `${index}`);
  }
  assert.deepEqual(await keys.lookup("one-more"), { kind: "unavailable" });
  assert.equal(sessions, MAX_KEY_SESSIONS_PER_MINUTE);
  keys.close();
});

Deno.test("KeyDirectory.learn() takes a pushed key at once", () => {
  const { keys } = directory(new FakeClient());
  keys.learn("alice", ALICE_KEY.toBase64());
  keys.learn("mallory", "short");
  assert.deepEqual(keys.cached("alice"), { kind: "account", key: ALICE_KEY });
  assert.equal(keys.cached("mallory"), undefined);
});
