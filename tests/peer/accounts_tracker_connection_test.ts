import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import { memoryLogger } from "../../lib/log.ts";
import {
  fingerprint,
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
} from "../../lib/noise/mod.ts";
import { upgradeConn } from "../../lib/secure_conn.ts";
import { sessionHelloReplyLine, sessionPrologue, TRACKER_ID } from "../../lib/secure_session.ts";
import { type Conn, memoryConnPair } from "../../lib/transport.ts";
import { trackerConnector } from "../../peer/accounts/tracker_connection.ts";
import { KeyPins } from "../../peer/identity/mod.ts";

const ADDRESS = { hostname: "127.0.0.1", port: 8080 };
const peer = identityFromPrivateKey(generateIdentityKeyPair().privateKey);

/** A tracker end that answers SESSION_HELLO and runs the handshake with `key` (or refuses). */
function fakeTracker(key: ReturnType<typeof identityFromPrivateKey>, refuse?: unknown) {
  return (): Promise<Conn> => {
    const [ours, theirs] = memoryConnPair();
    (async () => {
      const reader = theirs.chunks()[Symbol.asyncIterator]();
      const first = await reader.next();
      const text = new TextDecoder().decode(first.value!);
      const helloLine = text.slice(0, text.indexOf("\n") + 1);
      if (refuse) {
        await theirs.write(encodeLine(refuse));
        return theirs.close();
      }
      const replyLine = sessionHelloReplyLine(0);
      await theirs.write(new TextEncoder().encode(replyLine));
      const { conn } = await upgradeConn(theirs, reader, {
        initiator: false,
        prologue: sessionPrologue(helloLine, replyLine),
        identity: key,
        staticKeyPair: generateStaticKeyPair(),
        localId: TRACKER_ID,
      });
      // Echo one request so the caller can see the channel works.
      const decoder = new LineDecoder();
      for await (const chunk of conn.chunks()) {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind === "line") await conn.write(encodeLine({ echo: frame.text }));
        }
      }
    })().catch(() => theirs.close());
    return Promise.resolve(ours);
  };
}

function connector(pins: KeyPins, dial: () => Promise<Conn>, expectedFingerprint?: string) {
  return trackerConnector({
    address: ADDRESS,
    who: () => ({ identity: peer, staticKeyPair: generateStaticKeyPair(), localId: "ann@lobby" }),
    pins,
    expectedFingerprint,
    now: () => 0,
    log: memoryLogger().log,
    dial,
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (error) => error);
  assert.ok(error instanceof P2pError, String(error));
  return error.code;
}

Deno.test("trackerConnector remembers the tracker's key on first use and refuses another", async () => {
  const pins = KeyPins.inMemory();
  const tracker = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  const conn = await connector(pins, fakeTracker(tracker))(AbortSignal.timeout(5_000));
  await conn.write(encodeLine({ type: "SESSION_HEARTBEAT", id: 1 }));
  const reply = await conn.chunks()[Symbol.asyncIterator]().next();
  assert.match(new TextDecoder().decode(reply.value!), /SESSION_HEARTBEAT/);
  conn.close();
  assert.deepEqual(pins.get("127.0.0.1:8080")?.key, tracker.publicKey);

  const other = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  const connect = connector(pins, fakeTracker(other));
  assert.equal(await refusal(connect(AbortSignal.timeout(5_000))), "tracker_key_changed");
});

Deno.test("trackerConnector with --tracker-key accepts only that key, in any grouping", async () => {
  const tracker = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  const shown = fingerprint(tracker.publicKey);
  const pins = KeyPins.inMemory();
  const wrong = connector(pins, fakeTracker(tracker), "a".repeat(32));
  assert.equal(await refusal(wrong(AbortSignal.timeout(5_000))), "tracker_key_changed");
  assert.equal(pins.get("127.0.0.1:8080"), undefined);
  const right = connector(pins, fakeTracker(tracker), shown.replaceAll(" ", "").toUpperCase());
  (await right(AbortSignal.timeout(5_000))).close();
  assert.deepEqual(pins.get("127.0.0.1:8080")?.key, tracker.publicKey);
});

Deno.test("trackerConnector sends nothing secret to a tracker that cannot encrypt", async () => {
  const tracker = identityFromPrivateKey(generateIdentityKeyPair().privateKey);
  const pyp2p = connector(
    KeyPins.inMemory(),
    fakeTracker(tracker, { status: "ERROR", message: "Unknown command" }),
  );
  assert.equal(await refusal(pyp2p(AbortSignal.timeout(5_000))), "unknown_command");
  // Any other refusal in clear (a rate limit, no free slot) is a busy tracker, not one without
  // accounts: taking it for one would stop the key checks.
  const busy = connector(
    KeyPins.inMemory(),
    fakeTracker(tracker, { status: "ERROR", message: "Rate limit exceeded: more than 50" }),
  );
  assert.equal(await refusal(busy(AbortSignal.timeout(5_000))), "busy");
  const older = connector(
    KeyPins.inMemory(),
    fakeTracker(tracker, {
      type: "SESSION_REPLY",
      id: 0,
      status: "ERROR",
      code: "unknown_command",
    }),
  );
  assert.equal(await refusal(older(AbortSignal.timeout(5_000))), "encryption_required");
});
