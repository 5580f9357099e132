/**
 * History, outbox and contact routes of the local HTTP API over the node's message store,
 * mounted by `createPeerApi` (after its token and Host checks, under its error mapping).
 * Shaped for a web page as much as for scripts: cursor paging by message id, read marking,
 * and the store's changes arrive on `/api/events`. Formats: docs/http-api.md.
 */
import type { Context, Hono } from "hono";
import { P2pError } from "../../lib/errors.ts";
import type { MessageHistory, PeerNode } from "../api.ts";
import { readJsonObject, stringField } from "./request_body.ts";
import {
  conversationParam,
  limitParam,
  messageIdField,
  messageIdParam,
  optionalMessageId,
  peerIdField,
  peerIdParam,
  searchParam,
} from "./request_params.ts";

/** Adds `/api/conversations...`, `/api/search`, `/api/outbox...`, `/api/contacts...`, `/api/storage`. */
export function mountHistoryApi(app: Hono, node: PeerNode): void {
  // Read per request: the routes exist on every peer and say `no_history` where there is none.
  const history = (): MessageHistory => {
    if (node.history) return node.history;
    throw new P2pError("no_history", "This peer keeps no message store");
  };

  const conversationOf = (c: Context) =>
    conversationParam(
      c.req.param("conversation")!,
      node.status().namespace,
      c.req.query("exact") === "1",
    );

  app.get("/api/conversations", (c) => {
    const conversations = history().conversations();
    const unread = conversations.reduce((sum, summary) => sum + summary.unread, 0);
    return c.json({ conversations, unread });
  });

  app.get("/api/conversations/:conversation/messages", (c) => {
    const store = history();
    const conversation = conversationOf(c);
    const before = optionalMessageId("before", c.req.query("before"));
    const after = optionalMessageId("after", c.req.query("after"));
    const limit = limitParam(c.req.query("limit"));
    if (before !== undefined && after !== undefined && after >= before) {
      throw new P2pError(
        "bad_field",
        `Field "after" (${after}) must be below "before" (${before})`,
      );
    }
    const page = store.page(conversation, { before, after, limit });
    return c.json({ conversation, messages: page.messages, more: page.more });
  });

  app.post("/api/conversations/:conversation/read", async (c) => {
    const store = history();
    const conversation = conversationOf(c);
    const body = await readJsonObject(c.req.raw, true);
    const upTo = body.upTo === undefined ? undefined : messageIdField("upTo", body.upTo);
    return c.json({ conversation, marked: store.markRead(conversation, upTo) });
  });

  app.delete("/api/conversations/:conversation", (c) => {
    const store = history();
    const conversation = conversationOf(c);
    const deleted = store.forget(conversation);
    if (deleted === undefined) {
      throw new P2pError("no_conversation", `There is no conversation "${conversation}"`);
    }
    return c.json({ conversation, deleted });
  });

  app.get("/api/search", (c) => {
    const store = history();
    const q = searchParam(c.req.query("q"));
    return c.json({ q, messages: store.search(q, limitParam(c.req.query("limit"))) });
  });

  app.get("/api/outbox", (c) => {
    const store = history();
    return c.json({ messages: store.queued(), waiting: store.waiting() });
  });

  app.delete("/api/outbox/:id", (c) => {
    const store = history();
    const id = messageIdParam("id", c.req.param("id"));
    const cancelled = store.cancel(id);
    if (!cancelled) throw new P2pError("not_queued", `Message ${id} is not waiting in the outbox`);
    return c.json({ cancelled });
  });

  app.get("/api/contacts", (c) => c.json({ contacts: history().contacts() }));

  app.post("/api/contacts", async (c) => {
    const store = history();
    const given = stringField(await readJsonObject(c.req.raw), "peer");
    const peerId = peerIdField(given, "peer", node.status().namespace);
    if (peerId.toLowerCase() === node.peerId.toLowerCase()) {
      throw new P2pError("bad_field", `Field "peer" names this peer itself ("${peerId}")`);
    }
    const known = store.contacts().some((contact) => contact.peerId === peerId);
    // 201 when the contact is new, 200 when it was one already (adding is idempotent).
    return c.json(store.addContact(peerId), known ? 200 : 201);
  });

  app.delete("/api/contacts/:peerId", (c) => {
    const store = history();
    const peerId = peerIdParam(c.req.param("peerId"), node.status().namespace);
    if (!store.removeContact(peerId)) {
      throw new P2pError("not_contact", `"${peerId}" is not in the contacts`);
    }
    return c.json({ peerId, removed: true });
  });

  app.get("/api/storage", (c) => c.json(history().storage()));
}
