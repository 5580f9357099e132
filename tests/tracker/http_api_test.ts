/** Tests of the tracker HTTP API through `app.request()`, over a stub tracker. */
import assert from "node:assert/strict";
import { createTrackerHttpApi } from "../../tracker/http_api.ts";
import type { PeerEntry } from "../../tracker/registry.ts";
import type { TrackerHealth } from "../../tracker/server.ts";

const PEER: PeerEntry = {
  ip: "10.0.0.1",
  port: 4000,
  name: "alice",
  namespace: "chat",
  ttl: 60,
  expires_in: 42,
};

function api(overrides: { registrations?: (namespace?: string) => PeerEntry[] } = {}) {
  const asked: (string | undefined)[] = [];
  const app = createTrackerHttpApi({
    health: (): TrackerHealth => ({
      status: "ok",
      registrations: 1,
      connectionsOpen: 0,
      uptimeSeconds: 5,
      fingerprint: "abcd efgh",
    }),
    registrations: overrides.registrations ?? ((namespace) => {
      asked.push(namespace);
      return namespace === undefined || namespace === "chat" ? [PEER] : [];
    }),
    metricsText: () => "p2pchat_tracker_connections_total 3\n",
  });
  return { app, asked };
}

Deno.test("GET /health reports the tracker's health as JSON", async () => {
  const response = await api().app.request("/health");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    status: "ok",
    registrations: 1,
    connectionsOpen: 0,
    uptimeSeconds: 5,
    fingerprint: "abcd efgh",
  });
});

Deno.test("GET /registrations lists one namespace or all of them", async () => {
  const { app, asked } = api();
  assert.deepEqual(await (await app.request("/registrations?namespace=chat")).json(), {
    namespace: "chat",
    count: 1,
    peers: [PEER],
  });
  assert.deepEqual(await (await app.request("/registrations?namespace=other")).json(), {
    namespace: "other",
    count: 0,
    peers: [],
  });
  assert.equal((await (await app.request("/registrations")).json()).count, 1);
  assert.deepEqual(asked, ["chat", "other", undefined]);
});

Deno.test("GET /registrations refuses an invalid namespace with a stable code", async () => {
  const response = await api().app.request(`/registrations?namespace=${"x".repeat(65)}`);
  assert.equal(response.status, 400);
  assert.equal((await response.json()).error.code, "bad_namespace");
});

Deno.test("GET /metrics serves Prometheus text", async () => {
  const response = await api().app.request("/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  assert.equal(await response.text(), "p2pchat_tracker_connections_total 3\n");
});

Deno.test("the HTTP API answers unknown routes and failures with JSON error codes", async () => {
  const missing = await api().app.request("/nope");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "not_found");
  const failing = api({
    registrations: () => {
      throw new Error("boom");
    },
  });
  const response = await failing.app.request("/registrations");
  assert.equal(response.status, 500);
  assert.deepEqual(await response.json(), {
    error: { code: "internal_error", message: "Internal error" },
  });
});
