/**
 * The tracker's read-only HTTP API as a hono app (the CLI serves it; tests call
 * `app.request()`): health, registrations and Prometheus metrics.
 */
import { Hono } from "hono";
import { isWireName } from "../lib/codec.ts";
import { P2pError } from "../lib/errors.ts";
import type { Tracker } from "./server.ts";

/** Builds the HTTP API over a tracker (only its read methods are used). */
export function createTrackerHttpApi(
  tracker: Pick<Tracker, "health" | "registrations" | "metricsText">,
): Hono {
  const app = new Hono();

  app.get("/health", (c) => c.json(tracker.health()));

  app.get("/registrations", (c) => {
    const namespace = c.req.query("namespace");
    if (namespace !== undefined && !isWireName(namespace)) {
      throw new P2pError("bad_namespace", `Namespace "${namespace}" is not 1..64 characters`);
    }
    const peers = tracker.registrations(namespace);
    return c.json({ namespace: namespace ?? null, count: peers.length, peers });
  });

  app.get("/metrics", (c) =>
    c.text(tracker.metricsText(), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }));

  app.notFound((c) =>
    c.json(
      { error: { code: "not_found", message: `No route for ${c.req.method} ${c.req.path}` } },
      404,
    )
  );

  // The one place where errors become HTTP statuses: bad input is 400, the rest is 500.
  app.onError((error, c) => {
    if (error instanceof P2pError) {
      return c.json({ error: { code: error.code, message: error.message } }, 400);
    }
    return c.json({ error: { code: "internal_error", message: "Internal error" } }, 500);
  });

  return app;
}
