/** The web chat's sign-in: one-time links, the session cookie, and the checks on its requests. */
import assert from "node:assert/strict";
import { memoryLogger } from "../../lib/log.ts";
import { createPeerApi } from "../../peer/http/routes.ts";
import { WebAuth } from "../../peer/http/web_auth.ts";
import { mountWebPage } from "../../peer/web/mod.ts";
import { FakePeerNode } from "../_fake_node.ts";

const TOKEN = "b".repeat(64);
const ORIGIN = "http://127.0.0.1:7001";

function setup(now = () => 1_000) {
  const web = new WebAuth(TOKEN, now);
  const app = createPeerApi(new FakePeerNode("alice", "lobby"), {
    token: TOKEN,
    log: memoryLogger().log,
    web,
  });
  mountWebPage(app, web);
  const request = (path: string, init: RequestInit = {}) => app.request(`${ORIGIN}${path}`, init);
  const signIn = async () => {
    const link = new URL(web.newLink(7001));
    const response = await request(`/?${link.searchParams}`);
    assert.equal(response.status, 303);
    assert.equal(response.headers.get("location"), "/");
    return response.headers.get("set-cookie")!.split(";")[0];
  };
  return { web, request, signIn };
}

async function assertCode(response: Response, status: number, code: string) {
  assert.equal(response.status, status);
  assert.equal((await response.json()).error.code, code);
}

Deno.test("a printed link signs in once, into a cookie scripts cannot read", async () => {
  const { web, request } = setup();
  const link = new URL(web.newLink(7001));
  assert.equal(link.origin, ORIGIN);
  const response = await request(`/?${link.searchParams}`);
  assert.equal(response.status, 303);
  const cookie = response.headers.get("set-cookie")!;
  assert.match(cookie, /^p2pchat-[0-9a-f]{16}=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict;/);
  assert.ok(!cookie.includes(TOKEN), "the API token itself is never in the cookie");
  // The same link again: spent.
  const again = await request(`/?${link.searchParams}`);
  assert.equal(again.status, 403);
  assert.match(await again.text(), /id="link-used"/); // the page, which tells the user why
  assert.equal((await request("/?token=" + "0".repeat(64))).status, 403);
});

Deno.test("a link is good for a day, and only the 16 newest wait", async () => {
  let now = 0;
  const { web, request } = setup(() => now);
  const old = new URL(web.newLink(7001)).searchParams;
  now += 24 * 60 * 60_000 + 1;
  assert.equal((await request(`/?${old}`)).status, 403);
  const links = Array.from({ length: 17 }, () => new URL(web.newLink(7001)).searchParams);
  assert.equal((await request(`/?${links[0]}`)).status, 403);
  assert.equal((await request(`/?${links[16]}`)).status, 303);
});

Deno.test("each profile has a cookie of its own, stable across restarts", () => {
  const first = new WebAuth(TOKEN).setCookie();
  assert.equal(new WebAuth(TOKEN).setCookie(), first);
  const other = new WebAuth("c".repeat(64)).setCookie();
  assert.notEqual(other.split("=")[0], first.split("=")[0]);
  assert.equal(new WebAuth(TOKEN).hasSession(other.split(";")[0]), false);
});

Deno.test("the cookie opens the API to the page, and only to the page", async () => {
  const { request, signIn } = setup();
  const cookie = await signIn();
  const status = await request("/api/status", { headers: { cookie } });
  assert.equal(status.status, 200);
  assert.equal((await status.json()).peerId, "alice@lobby");
  const write = (headers: Record<string, string>) =>
    request("/api/reconnect", { method: "POST", headers: { cookie, ...headers } });
  assert.equal((await write({ origin: ORIGIN })).status, 200);
  await assertCode(await write({}), 403, "forbidden_origin");
  await assertCode(await write({ origin: "http://127.0.0.1:9999" }), 403, "forbidden_origin");
  await assertCode(await write({ origin: "null" }), 403, "forbidden_origin");
  // Another site's request (the browser says so), even a read.
  await assertCode(
    await request("/api/status", { headers: { cookie, "sec-fetch-site": "same-site" } }),
    403,
    "forbidden_origin",
  );
  // A wrong cookie is no cookie.
  await assertCode(
    await request("/api/status", { headers: { cookie: cookie.replace(/=./, "=0") } }),
    401,
    "unauthorized",
  );
});

Deno.test("the page and its files are served with a strict policy; nothing else is", async () => {
  const { request } = setup();
  const page = await request("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(
    page.headers.get("content-security-policy")!,
    /default-src 'none'; script-src 'self'/,
  );
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  assert.match(await page.text(), /<script type="module" src="\/app\/main\.js">/);
  const script = await request("/app/main.js");
  assert.match(script.headers.get("content-type")!, /^text\/javascript/);
  await script.body?.cancel();
  assert.equal((await request("/app/../api-token")).status, 404);
  assert.equal((await request("/app/nothing.js")).status, 404);
  const rebound = await request("/", { headers: { host: "attacker.example:7001" } });
  assert.equal(rebound.status, 403);
  await rebound.body?.cancel();
});

Deno.test("without the web chat, every path needs the token as before", async () => {
  const app = createPeerApi(new FakePeerNode("alice", "lobby"), {
    token: TOKEN,
    log: memoryLogger().log,
  });
  await assertCode(await app.request(`${ORIGIN}/`), 401, "unauthorized");
});
