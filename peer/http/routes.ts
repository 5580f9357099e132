/**
 * The peer's local HTTP API as a hono app (the CLI serves it on 127.0.0.1; tests call
 * `app.request()`). Every request needs the bearer token from `<data dir>/api-token` and a
 * loopback `Host` header: the token keeps other local users out, the Host check keeps out
 * web pages that rebind their DNS name to 127.0.0.1. Formats: docs/http-api.md.
 */
import { Hono } from "hono";
import type { NodeEvent, PeerNode, Scope, SendResult } from "../api.ts";
import { type Clock, systemClock, type TimerId } from "../../lib/clock.ts";
import { isWireName } from "../../lib/codec.ts";
import { type ErrorCode, P2pError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { tooLongForLine } from "../protocol/mod.ts";
import { mountHistoryApi } from "./history_routes.ts";
import { readJsonObject, stringField } from "./request_body.ts";
import { peerIdField, peerIdParam } from "./request_params.ts";
import type { WebAuth } from "./web_auth.ts";

/** Options of `createPeerApi`; `clock` and `heartbeatMs` exist for tests. */
export interface PeerApiOptions {
  token: string;
  log: Logger;
  clock?: Clock;
  heartbeatMs?: number;
  /** More events for the SSE stream (accounts and rooms), sent as `event: TYPE`. */
  extraEvents?: { subscribe(listener: (event: { type: string }) => void): () => void };
  /** The web chat: its page is served, and its session cookie is taken instead of the token. */
  web?: WebAuth;
}

/** SSE comment period: keeps proxies and idle-timeouts from closing a quiet stream. */
export const SSE_HEARTBEAT_MS = 15_000;

/** Events a stream may have queued for a client that does not read before it is dropped. */
const MAX_QUEUED_EVENTS = 1000;

/** HTTP status per error code; codes not listed are client errors (400). */
const STATUS_BY_CODE: Partial<
  Record<ErrorCode, 401 | 403 | 404 | 409 | 413 | 429 | 500 | 502 | 503 | 504>
> = {
  unauthorized: 401,
  forbidden_host: 403,
  forbidden_origin: 403,
  not_found: 404,
  unknown_peer: 404,
  unknown_key: 404,
  no_identity: 404,
  no_history: 404,
  not_queued: 404,
  not_contact: 404,
  no_conversation: 404,
  no_files: 409,
  bad_state: 409,
  too_many_transfers: 429,
  offline: 409,
  not_connected: 409,
  closed: 409,
  text_too_long: 413,
  queue_full: 429,
  body_too_large: 413,
  timeout: 504,
  internal_error: 500,
  // accounts and rooms (the tracker's codes, passed through)
  login_failed: 403,
  bad_token: 403,
  not_owner: 403,
  too_many_attempts: 429,
  no_such_room: 404,
  not_logged_in: 409,
  already_logged_in: 409,
  username_taken: 409,
  room_exists: 409,
  already_member: 409,
  not_member: 409,
  room_full: 409,
  too_many_rooms: 409,
  tracker_unreachable: 503,
  unknown_command: 502,
  key_mismatch: 409,
  tracker_key_changed: 502,
};

/**
 * A failed delivery: the error reply also carries the message id when one was written, and
 * the message's id in the store when it was stored.
 */
class _DeliveryError extends P2pError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly msgId: string | undefined,
    readonly id: number | undefined,
  ) {
    super(code, message);
  }
}

/** Builds the local HTTP API over a running peer. */
export function createPeerApi(node: PeerNode, options: PeerApiOptions): Hono {
  const log = options.log;
  const clock = options.clock ?? systemClock;
  const heartbeatMs = options.heartbeatMs ?? SSE_HEARTBEAT_MS;
  const expectedToken = new TextEncoder().encode(options.token);
  const web = options.web;
  const app = new Hono();

  app.use("*", async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (!isLoopbackHost(host)) {
      throw new P2pError("forbidden_host", `Host "${host}" is not a loopback name`);
    }
    // The web chat's page and its files are public; the page signs in by itself.
    if (web && !c.req.path.startsWith("/api/")) return await next();
    const authorization = c.req.header("authorization");
    if (authorization === undefined && web?.hasSession(c.req.header("cookie"))) {
      _checkBrowserRequest(c.req.raw, host);
      return await next();
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match || !_sameBytes(new TextEncoder().encode(match[1]), expectedToken)) {
      c.header("WWW-Authenticate", 'Bearer realm="p2pchat"');
      throw new P2pError("unauthorized", "Missing or wrong bearer token");
    }
    await next();
  });

  // With a message store, the status also says whether history is being saved.
  app.get("/api/status", (c) => {
    const storage = node.history?.storage();
    return c.json(storage ? { ...node.status(), storage } : node.status());
  });

  app.get("/api/peers", (c) => {
    const scope = c.req.query("scope") ?? "*";
    if (!_isScope(scope)) throw _badScope("scope", scope);
    const peers = node.peers(scope);
    return c.json({ scope, count: peers.length, peers });
  });

  app.post("/api/messages", async (c) => {
    const body = await readJsonObject(c.req.raw);
    // A bare name is a peer of our namespace, as in the terminal's /msg.
    const to = peerIdField(stringField(body, "to"), "to", node.status().namespace);
    const text = stringField(body, "text");
    _refuseTooLong(tooLongForLine("SEND", node.peerId, to, text));
    const result = await node.send(to, text);
    if (!result.ok && result.queued) {
      // Not an error: the store delivers it when the peer is back (message_state events).
      return c.json({
        delivered: false,
        queued: true,
        msgId: result.msgId,
        id: result.id,
        to,
        reason: result.reason,
      }, 202);
    }
    if (!result.ok) throw _deliveryError(to, result);
    return c.json({
      delivered: true,
      msgId: result.msgId,
      ...(result.id === undefined ? {} : { id: result.id }),
      to,
      roundTripMs: result.roundTripMs,
    });
  });

  app.post("/api/publish", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const scope = stringField(body, "scope");
    if (!_isScope(scope)) throw _badScope("scope", scope);
    const text = stringField(body, "text");
    _refuseTooLong(tooLongForLine("PUB", node.peerId, scope, text));
    const result = await node.publish(scope, text);
    return c.json({
      msgId: result.msgId,
      scope,
      reached: result.reached,
      encrypted: result.encrypted,
      clear: result.reached - result.encrypted,
      peers: result.peers,
      waiting: result.waiting ?? 0,
      ...(result.id === undefined ? {} : { id: result.id }),
    });
  });

  app.get("/api/identity", (c) => {
    const identity = node.identity();
    if (!identity) throw new P2pError("no_identity", "This peer runs without an identity key");
    return c.json({ peerId: node.peerId, ...identity });
  });

  app.get("/api/peers/:peerId/verification", (c) => {
    const peerId = peerIdParam(c.req.param("peerId"), node.status().namespace);
    return c.json(node.verification(peerId) ?? _throwUnknownKey(peerId));
  });

  app.post("/api/peers/:peerId/verify", async (c) => {
    const peerId = peerIdParam(c.req.param("peerId"), node.status().namespace);
    const verified = (await readJsonObject(c.req.raw)).verified;
    if (typeof verified !== "boolean") {
      throw new P2pError("bad_field", 'Field "verified" must be true or false');
    }
    if (!node.setVerified(peerId, verified)) _throwUnknownKey(peerId);
    return c.json(node.verification(peerId) ?? _throwUnknownKey(peerId));
  });

  app.delete("/api/peers/:peerId/key", (c) => {
    const peerId = peerIdParam(c.req.param("peerId"), node.status().namespace);
    if (!node.forgetKey(peerId)) _throwUnknownKey(peerId);
    return c.json({ peerId, forgotten: true });
  });

  app.post("/api/reconnect", async (c) => {
    const body = await readJsonObject(c.req.raw, true);
    const peerId = body.peerId === undefined ? undefined : stringField(body, "peerId");
    return c.json({ reconnecting: node.reconnect(peerId) });
  });

  app.get("/api/events", () => {
    const encoder = new TextEncoder();
    let stop = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let timer: TimerId | undefined;
        let ended = false;
        const push = (text: string) => {
          if (ended) return;
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_EVENTS) {
            log.warn("dropping an event stream whose client does not read");
            stop();
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(text));
        };
        const forward = (event: NodeEvent | { type: string }) => {
          push(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        };
        const unsubscribeNode = node.subscribe(forward);
        const unsubscribeExtra = options.extraEvents?.subscribe(forward) ?? (() => {});
        const unsubscribe = () => {
          unsubscribeNode();
          unsubscribeExtra();
        };
        const beat = () => {
          push(": heartbeat\n\n");
          if (!ended) timer = clock.setTimeout(beat, heartbeatMs);
        };
        stop = () => {
          ended = true;
          unsubscribe();
          if (timer !== undefined) clock.clearTimeout(timer);
        };
        push(`: events of ${node.peerId}\n\n`);
        timer = clock.setTimeout(beat, heartbeatMs);
      },
      // Called when the client disconnects (or a test cancels the body).
      cancel() {
        stop();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  });

  mountHistoryApi(app, node);

  app.notFound(() => {
    throw new P2pError("not_found", "No such endpoint");
  });

  // The one place where errors become HTTP replies.
  app.onError((error, c) => {
    if (error instanceof P2pError) {
      const status = STATUS_BY_CODE[error.code] ?? 400;
      const ids = error instanceof _DeliveryError
        ? {
          ...(error.msgId === undefined ? {} : { msgId: error.msgId }),
          ...(error.id === undefined ? {} : { id: error.id }),
        }
        : {};
      return c.json({ error: { code: error.code, message: error.message, ...ids } }, status);
    }
    log.error("HTTP API request failed", { path: c.req.path, error: String(error) });
    return c.json({ error: { code: "internal_error", message: "Internal error" } }, 500);
  });

  return app;
}

/** True for `127.0.0.1`, `localhost` and `[::1]`, with or without a port. */
export function isLoopbackHost(host: string): boolean {
  return /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i.test(host);
}

/**
 * A request signed in by the cookie must come from the page itself: browsers send the cookie
 * with requests that other pages of this host (any port) start, so the page's origin is
 * checked: `Sec-Fetch-Site` when the browser sends it, and `Origin` for every write.
 */
function _checkBrowserRequest(request: Request, host: string): void {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    throw new P2pError("forbidden_origin", `A request from another site (${site}) is refused`);
  }
  if (request.method === "GET" || request.method === "HEAD") return;
  const origin = request.headers.get("origin");
  if (origin !== `http://${host}`) {
    throw new P2pError("forbidden_origin", `Origin "${origin ?? "none"}" is not this page's`);
  }
}

/** Compares in time that depends only on the expected token's length. */
function _sameBytes(given: Uint8Array, expected: Uint8Array): boolean {
  let difference = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    difference |= (given.length > 0 ? given[i % given.length] : 0) ^ expected[i];
  }
  return difference === 0;
}

function _throwUnknownKey(peerId: string): never {
  throw new P2pError("unknown_key", `No key is known for peer "${peerId}"`);
}

function _isScope(value: string): value is Scope {
  return value === "*" || (value.startsWith("#") && isWireName(value.slice(1)));
}

function _badScope(field: string, value: string): P2pError {
  return new P2pError("bad_field", `Field "${field}" must be "*" or "#namespace", got "${value}"`);
}

function _refuseTooLong(problem: string | undefined): void {
  if (problem !== undefined) throw new P2pError("text_too_long", problem);
}

function _deliveryError(to: string, result: Extract<SendResult, { ok: false }>): P2pError {
  const messages: Record<typeof result.reason, string> = {
    timeout: `No ACK from "${to}" within the delivery timeout`,
    not_connected: `Peer "${to}" is not connected`,
    unknown_peer: `Peer "${to}" is not known (the tracker does not list it)`,
    offline: `"${to}" is an account that is not online`,
    closed: `The connection to "${to}" closed before the ACK`,
    queue_full: `Too many messages wait for "${to}" already`,
  };
  return new _DeliveryError(result.reason, messages[result.reason], result.msgId, result.id);
}
