import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import { memoryLogger } from "../../lib/log.ts";
import { type Conn, memoryConnPair } from "../../lib/transport.ts";
import {
  KEY_CACHE_MS,
  KeyDirectory,
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

function directory(client: FakeClient, connect = oneShotTracker({}, [])) {
  const clock = new ManualClock();
  const keys = new KeyDirectory(client, connect, { clock, log: memoryLogger().log });
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
  assert.deepEqual(requests, [{ type: "SESSION_KEYS", id: 1, usernames: ["carol"] }]);
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
  assert.deepEqual(await keys.lookup("eve"), { kind: "unknown" });
});

Deno.test("KeyDirectory.learn() takes a pushed key at once", () => {
  const { keys } = directory(new FakeClient());
  keys.learn("alice", ALICE_KEY.toBase64());
  keys.learn("mallory", "short");
  assert.deepEqual(keys.cached("alice"), { kind: "account", key: ALICE_KEY });
  assert.equal(keys.cached("mallory"), undefined);
});
