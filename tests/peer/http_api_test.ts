import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import { mountAccountApi } from "../../peer/http/account_routes.ts";
import { apiTokenPath, loadOrCreateApiToken } from "../../peer/http/api_token.ts";
import { createPeerApi, isLoopbackHost } from "../../peer/http/routes.ts";
import { FakeAccounts } from "../_fake_accounts.ts";
import { FakePeerNode } from "../_fake_node.ts";

const TOKEN = "a".repeat(64);
const AUTH = { authorization: `Bearer ${TOKEN}` };

function setup() {
  const node = new FakePeerNode("alice", "lobby");
  node.addPeer("bob@lobby", { rtt: { lastMs: 7, smoothedMs: 6 } });
  node.addPeer("dave@other", { state: "stale" });
  const clock = new ManualClock();
  const { log, lines } = memoryLogger();
  const app = createPeerApi(node, { token: TOKEN, log, clock });
  const call = (path: string, init: RequestInit = {}) =>
    app.request(`http://127.0.0.1:7001${path}`, {
      ...init,
      headers: { ...AUTH, ...init.headers as Record<string, string> },
    });
  const post = (path: string, body: unknown) =>
    call(path, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  return { node, clock, app, call, post, logLines: lines };
}

async function assertError(response: Response, status: number, code: string) {
  assert.equal(response.status, status);
  const body = await response.json();
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, "string");
  return body;
}

Deno.test("The peer API refuses requests without the bearer token or with a wrong one", async () => {
  const { app } = setup();
  const url = "http://127.0.0.1:7001/api/status";
  const missing = await app.request(url);
  assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="p2pchat"');
  await assertError(missing, 401, "unauthorized");
  for (
    const header of [
      `Bearer ${"b".repeat(64)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      `Basic ${TOKEN}`,
      "Bearer",
    ]
  ) {
    await assertError(
      await app.request(url, { headers: { authorization: header } }),
      401,
      "unauthorized",
    );
  }
  const ok = await app.request(url, { headers: { authorization: `bearer  ${TOKEN}` } });
  assert.equal(ok.status, 200);
});

Deno.test("The peer API refuses a Host header that is not a loopback name", async () => {
  const { app } = setup();
  for (const host of ["evil.example:7001", "127.0.0.2", "localhost.evil.example", "[::2]:80"]) {
    const response = await app.request("http://127.0.0.1:7001/api/status", {
      headers: { ...AUTH, host },
    });
    await assertError(response, 403, "forbidden_host");
  }
  const fromUrl = await app.request("http://attacker.example/api/status", { headers: AUTH });
  await assertError(fromUrl, 403, "forbidden_host");
  for (const host of ["127.0.0.1:7001", "localhost", "LOCALHOST:9", "[::1]:7001", "[::1]"]) {
    assert.ok(isLoopbackHost(host), host);
    const response = await app.request("http://127.0.0.1/api/status", {
      headers: { ...AUTH, host },
    });
    assert.equal(response.status, 200, host);
  }
});

Deno.test("GET /api/status returns the node status", async () => {
  const { call } = setup();
  const response = await call("/api/status");
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.peerId, "alice@lobby");
  assert.deepEqual(body.peers, { known: 2, connected: 1 });
  assert.equal(body.tracker.reachable, true);
});

Deno.test("GET /api/peers lists the peer table, optionally for one scope", async () => {
  const { call } = setup();
  const all = await (await call("/api/peers")).json();
  assert.equal(all.scope, "*");
  assert.equal(all.count, 2);
  assert.deepEqual(all.peers.map((p: { peerId: string }) => p.peerId), ["bob@lobby", "dave@other"]);
  const other = await (await call("/api/peers?scope=%23other")).json();
  assert.deepEqual(other.peers.map((p: { state: string }) => p.state), ["stale"]);
  await assertError(await call("/api/peers?scope=lobby"), 400, "bad_field");
});

Deno.test("POST /api/messages answers 200 once the message is ACKed", async () => {
  const { node, post } = setup();
  const response = await post("/api/messages", { to: "bob@lobby", text: "hi bob", extra: 1 });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual(body, { delivered: true, msgId: body.msgId, to: "bob@lobby", roundTripMs: 7 });
  assert.deepEqual(node.sent, [{ peerId: "bob@lobby", text: "hi bob" }]);
});

Deno.test("POST /api/messages waits for the outcome and answers 504 on timeout", async () => {
  const { node, post } = setup();
  node.sendMode = "manual";
  const pending = post("/api/messages", { to: "bob@lobby", text: "are you there" });
  for (let i = 0; i < 100 && node.waitingSends === 0; i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  node.answer({ ok: false, msgId: "m-9", reason: "timeout" });
  const body = await assertError(await pending, 504, "timeout");
  assert.equal(body.error.msgId, "m-9");
});

Deno.test("POST /api/messages maps other delivery failures to 409 and 404", async () => {
  const { post } = setup();
  await assertError(
    await post("/api/messages", { to: "dave@other", text: "x" }),
    409,
    "not_connected",
  );
  const unknown = await assertError(
    await post("/api/messages", { to: "zed@lobby", text: "x" }),
    404,
    "unknown_peer",
  );
  assert.equal("msgId" in unknown.error, false, "no message was written, so no id");
});

Deno.test("POST /api/messages takes a bare name as a peer of our namespace, as /msg does", async () => {
  const { node, post } = setup();
  const response = await post("/api/messages", { to: "bob", text: "short" });
  assert.equal(response.status, 200);
  assert.equal((await response.json()).to, "bob@lobby");
  assert.deepEqual(node.sent, [{ peerId: "bob@lobby", text: "short" }]);
  await assertError(await post("/api/messages", { to: "bob@", text: "x" }), 400, "bad_field");
});

Deno.test("POST /api/publish answers how many peers the PUB reached", async () => {
  const { node, post } = setup();
  const response = await post("/api/publish", { scope: "#lobby", text: "hello all" });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual({ ...body, msgId: undefined }, {
    msgId: undefined,
    scope: "#lobby",
    reached: 1,
    encrypted: 0,
    clear: 1,
    peers: ["bob@lobby"],
    waiting: 0,
  });
  node.publishWaiting = 3;
  const nobody = await (await post("/api/publish", { scope: "#other", text: "x" })).json();
  assert.equal(nobody.reached, 0);
  assert.equal(nobody.waiting, 3);
  assert.deepEqual(node.published.map((p) => p.scope), ["#lobby", "#other"]);
});

Deno.test("POST /api/reconnect dials failed and stale peers and says how many", async () => {
  const { node, post, call } = setup();
  assert.deepEqual(await (await post("/api/reconnect", { peerId: "bob@lobby" })).json(), {
    reconnecting: 0,
  });
  const response = await call("/api/reconnect", { method: "POST" });
  assert.deepEqual(await response.json(), { reconnecting: 1 });
  assert.deepEqual(node.reconnects, ["bob@lobby", undefined]);
});

Deno.test("The peer API refuses bad bodies with a stable error code", async () => {
  const { node, post } = setup();
  const cases: [unknown, number, string][] = [
    ["{not json", 400, "invalid_json"],
    ["[1,2]", 400, "not_an_object"],
    [{ text: "x" }, 400, "missing_field"],
    [{ to: "bob@lobby" }, 400, "missing_field"],
    [{ to: 42, text: "x" }, 400, "bad_field"],
    [{ to: "bob@lobby", text: "" }, 400, "bad_field"],
    [{ to: "@lobby", text: "x" }, 400, "bad_field"],
    [{ to: "bob@lobby", text: "é".repeat(16_400) }, 413, "text_too_long"],
  ];
  for (const [body, status, code] of cases) {
    await assertError(await post("/api/messages", body), status, code);
  }
  await assertError(await post("/api/publish", { scope: "lobby", text: "x" }), 400, "bad_field");
  await assertError(
    await post("/api/publish", { scope: "#lobby", text: "\u0000".repeat(5500) }),
    413,
    "text_too_long",
  );
  await assertError(await post("/api/messages", "x".repeat(300 * 1024)), 413, "body_too_large");
  assert.deepEqual(node.sent, []);
  assert.deepEqual(node.published, []);
});

Deno.test("A text just under the line limit is accepted", async () => {
  const { node, post } = setup();
  // SEND line overhead with these ids is well under 200 bytes.
  const response = await post("/api/messages", { to: "bob@lobby", text: "x".repeat(32_768 - 200) });
  assert.equal(response.status, 200);
  assert.equal(node.sent.length, 1);
});

Deno.test("Unknown endpoints and methods get a JSON 404", async () => {
  const { call } = setup();
  await assertError(await call("/api/nothing"), 404, "not_found");
  await assertError(await call("/api/status", { method: "DELETE" }), 404, "not_found");
});

Deno.test("A failure inside the node becomes a logged 500 internal_error", async () => {
  const { node, post, logLines } = setup();
  node.publish = () => Promise.reject(new Error("disk on fire"));
  await assertError(await post("/api/publish", { scope: "*", text: "x" }), 500, "internal_error");
  assert.ok(logLines.some((line) => line.includes("disk on fire")));
});

Deno.test("GET /api/events streams node events, heartbeats, and unsubscribes on cancel", async () => {
  const { node, clock, call } = setup();
  const response = await call("/api/events");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, ": events of alice@lobby\n\n");
  assert.equal(node.listenerCount, 1);
  const event = {
    type: "message",
    kind: "direct",
    msgId: "m1",
    from: "bob@lobby",
    to: "alice@lobby",
    text: "hi\nthere",
    at: 1767225600000,
  } as const;
  node.emit(event);
  assert.equal((await reader.read()).value, `event: message\ndata: ${JSON.stringify(event)}\n\n`);
  node.emit({ type: "peer", peerId: "bob@lobby", state: "stale", at: 1 });
  assert.equal(
    (await reader.read()).value,
    'event: peer\ndata: {"type":"peer","peerId":"bob@lobby","state":"stale","at":1}\n\n',
  );
  clock.advance(15_000);
  assert.equal((await reader.read()).value, ": heartbeat\n\n");
  await reader.cancel();
  assert.equal(node.listenerCount, 0);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("apiTokenPath() names the api-token file in the data directory", () => {
  assert.equal(apiTokenPath("/data/peer-alice/"), "/data/peer-alice/api-token");
});

Deno.test("loadOrCreateApiToken() creates a 0600 file with 256 random bits and reuses it", async () => {
  const base = await Deno.makeTempDir();
  try {
    const dataDir = `${base}/nested/peer-alice`;
    const token = await loadOrCreateApiToken(dataDir);
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal((await Deno.stat(apiTokenPath(dataDir))).mode! & 0o777, 0o600);
    assert.equal((await Deno.readTextFile(apiTokenPath(dataDir))).trim(), token);
    assert.equal(await loadOrCreateApiToken(dataDir), token);
    const other = await loadOrCreateApiToken(`${base}/peer-bob`);
    assert.notEqual(other, token);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("loadOrCreateApiToken() narrows a token file readable by others to 0600", async () => {
  const base = await Deno.makeTempDir();
  try {
    const token = "0123456789abcdef".repeat(4);
    await Deno.writeTextFile(apiTokenPath(base), token + "\n", { mode: 0o644 });
    await Deno.chmod(apiTokenPath(base), 0o644);
    const { log, lines } = memoryLogger();
    assert.equal(await loadOrCreateApiToken(base, log), token);
    assert.equal((await Deno.stat(apiTokenPath(base))).mode! & 0o777, 0o600);
    assert.ok(lines.some((line) => line.includes("narrowed it to 0600")));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("loadOrCreateApiToken() replaces a malformed token file", async () => {
  const base = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(apiTokenPath(base), "half-writ");
    const { log, lines } = memoryLogger();
    const token = await loadOrCreateApiToken(base, log);
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal((await Deno.readTextFile(apiTokenPath(base))).trim(), token);
    assert.ok(lines.some((line) => line.includes("malformed")));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

const BOB_KEY = {
  peerId: "bob@lobby",
  fingerprint: "mfrg gzdf mztw q2lk nnwg 23tp obyx e3ll",
  safetyNumber: "01234 12345 23456 34567 45678 56789 67890 78901 89012 90123 11111 22222",
  verified: false,
};

/** The set-up above, with identity keys: ours, and bob's remembered. */
function secureSetup() {
  const context = setup();
  context.node.identityInfo = { publicKey: "cHVibGlj", fingerprint: "aaaa bbbb cccc dddd" };
  context.node.verifications.set("bob@lobby", BOB_KEY);
  context.node.addPeer("bob@lobby", {
    security: { encrypted: true, trust: "unverified", accountBound: true, fingerprint: "f" },
  });
  context.node.addPeer("pyraw@lobby", {
    security: { encrypted: false, trust: "unencrypted", accountBound: false },
  });
  return context;
}

Deno.test("GET /api/identity answers our peer id, public key and fingerprint", async () => {
  const { call } = secureSetup();
  assert.deepEqual(await (await call("/api/identity")).json(), {
    peerId: "alice@lobby",
    publicKey: "cHVibGlj",
    fingerprint: "aaaa bbbb cccc dddd",
  });
  await assertError(await setup().call("/api/identity"), 404, "no_identity");
});

Deno.test("GET /api/peers rows carry each peer's encryption and trust", async () => {
  const { call } = secureSetup();
  const body = await (await call("/api/peers?scope=%23lobby")).json();
  assert.deepEqual(
    body.peers.map((peer: { peerId: string; security?: unknown }) => [peer.peerId, peer.security]),
    [
      ["bob@lobby", { encrypted: true, trust: "unverified", accountBound: true, fingerprint: "f" }],
      ["pyraw@lobby", { encrypted: false, trust: "unencrypted", accountBound: false }],
    ],
  );
});

Deno.test("GET /api/peers/{peerId}/verification answers the safety number, or 404 unknown_key", async () => {
  const { call } = secureSetup();
  assert.deepEqual(await (await call("/api/peers/bob@lobby/verification")).json(), BOB_KEY);
  assert.deepEqual(await (await call("/api/peers/bob%40lobby/verification")).json(), BOB_KEY);
  await assertError(await call("/api/peers/pyraw@lobby/verification"), 404, "unknown_key");
  // A bare name is a peer of our namespace, as in /msg.
  assert.deepEqual(await (await call("/api/peers/bob/verification")).json(), BOB_KEY);
  await assertError(await call("/api/peers/bob@/verification"), 400, "bad_field");
  await assertError(await call("/api/peers/a@b@c/verification"), 400, "bad_field");
  // A bare name follows the names rule; a full id may hold what a pyp2p peer's name holds.
  await assertError(await call("/api/peers/%23games/verification"), 400, "bad_field");
  await assertError(await call("/api/peers/bad%20name/verification"), 400, "bad_field");
  await assertError(await call("/api/peers/odd%20one@lobby/verification"), 404, "unknown_key");
});

Deno.test("POST /api/peers/{peerId}/verify marks the key verified or not", async () => {
  const { node, post } = secureSetup();
  const yes = await post("/api/peers/bob@lobby/verify", { verified: true });
  assert.deepEqual(await yes.json(), { ...BOB_KEY, verified: true });
  assert.equal(node.verifications.get("bob@lobby")?.verified, true);
  const no = await post("/api/peers/bob@lobby/verify", { verified: false });
  assert.deepEqual(await no.json(), BOB_KEY);
  await assertError(
    await post("/api/peers/bob@lobby/verify", { verified: "yes" }),
    400,
    "bad_field",
  );
  await assertError(await post("/api/peers/bob@lobby/verify", {}), 400, "bad_field");
  await assertError(
    await post("/api/peers/pyraw@lobby/verify", { verified: true }),
    404,
    "unknown_key",
  );
});

Deno.test("DELETE /api/peers/{peerId}/key forgets a remembered key, once", async () => {
  const { node, call } = secureSetup();
  const forget = () => call("/api/peers/bob@lobby/key", { method: "DELETE" });
  assert.deepEqual(await (await forget()).json(), { peerId: "bob@lobby", forgotten: true });
  assert.deepEqual(node.forgotten, ["bob@lobby"]);
  await assertError(await forget(), 404, "unknown_key");
});

Deno.test("POST /api/publish counts the peers reached encrypted and in clear", async () => {
  const { post } = secureSetup();
  const body = await (await post("/api/publish", { scope: "#lobby", text: "hi" })).json();
  assert.deepEqual([body.reached, body.encrypted, body.clear], [2, 1, 1]);
  assert.deepEqual(body.peers, ["bob@lobby", "pyraw@lobby"]);
});

Deno.test("GET /api/events carries security notices as security events", async () => {
  const { node, call } = secureSetup();
  const response = await call("/api/events");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read();
  const event = {
    type: "security",
    notice: { kind: "downgrade", peerId: "bob@lobby" },
    at: 1767225600000,
  } as const;
  node.emit(event);
  assert.equal((await reader.read()).value, `event: security\ndata: ${JSON.stringify(event)}\n\n`);
  await reader.cancel();
});

Deno.test("POST /api/account/login passes replaceKey, and maps key_mismatch to 409", async () => {
  const { app, post } = setup();
  const accounts = new FakeAccounts();
  mountAccountApi(app, accounts.asPeerAccounts);
  const replaced = await post("/api/account/login", { password: "pw-123456", replaceKey: true });
  assert.deepEqual(await replaced.json(), { username: "alice", state: "logged_in" });
  await post("/api/account/login", { password: "pw-123456" });
  await assertError(
    await post("/api/account/login", { password: "pw-123456", replaceKey: "yes" }),
    400,
    "bad_field",
  );
  accounts.failure = new P2pError("key_mismatch", "Not the key of account alice");
  await assertError(
    await post("/api/account/login", { password: "pw-123456" }),
    409,
    "key_mismatch",
  );
  assert.deepEqual(accounts.logins, [
    { password: "pw-123456", replaceKey: true },
    { password: "pw-123456", replaceKey: false },
    { password: "pw-123456", replaceKey: false },
  ]);
});
