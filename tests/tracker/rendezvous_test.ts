/** Tests of the pure Rendezvous handler: decoded request in, reply object out. */
import assert from "node:assert/strict";
import { decodeMessage } from "../../lib/codec.ts";
import { handleRendezvous, type RendezvousContext } from "../../tracker/rendezvous.ts";
import { Registry } from "../../tracker/registry.ts";

const NOW = Date.UTC(2026, 0, 1);

function ask(context: RendezvousContext, line: string | Record<string, unknown>) {
  return handleRendezvous(
    decodeMessage(typeof line === "string" ? line : JSON.stringify(line)),
    context,
  );
}

function context(overrides: Partial<RendezvousContext> = {}): RendezvousContext {
  return { registry: new Registry(), ip: "192.0.2.7", now: NOW, ...overrides };
}

Deno.test("handleRendezvous() registers and reports the requester's ip, ttl and port", () => {
  const ctx = context();
  const outcome = ask(ctx, {
    type: "Register",
    namespace: "ns",
    name: "a",
    port: "4000",
    ttl: "60",
  });
  assert.deepEqual(outcome, {
    reply: { status: "OK", ttl: 60, ip: "192.0.2.7", port: 4000 },
    command: "REGISTER",
    changed: true,
  });
  assert.deepEqual(ask(ctx, { type: "DISCOVER", namespace: "ns" }).reply, {
    status: "OK",
    peers: [{ ip: "192.0.2.7", port: 4000, name: "a", namespace: "ns", ttl: 60, expires_in: 60 }],
  });
});

Deno.test("handleRendezvous() reports the first failing REGISTER check", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ namespace: "", name: null, port: "x", ttl: "x" }, "bad_name"],
    [{ namespace: "", name: "a", port: "x", ttl: "x" }, "bad_ttl"],
    [{ namespace: "", name: "a", port: "x", ttl: 5 }, "bad_namespace"],
    [{ namespace: ["ns"], name: "a", port: 1 }, "bad_namespace"],
    [{ namespace: "ns", name: "a", port: "x", ttl: 5 }, "bad_port"],
    [{ namespace: "ns", name: "a", port: 4.5e9 }, "bad_port"],
  ];
  for (const [fields, message] of cases) {
    const outcome = ask(context(), { type: "REGISTER", ...fields });
    assert.deepEqual(outcome.reply, { status: "ERROR", message }, JSON.stringify(fields));
    assert.equal(outcome.changed, false);
  }
});

Deno.test("handleRendezvous() clamps a ttl of any size, as Python's int() converts it", () => {
  const cases: [unknown, number][] = [["0", 1], [-5, 1], ["99999999999999999999", 86400], [
    12.9,
    12,
  ]];
  for (const [ttl, granted] of cases) {
    const outcome = ask(context(), { type: "REGISTER", namespace: "ns", name: "a", port: 1, ttl });
    assert.equal(outcome.reply.ttl, granted, JSON.stringify(ttl));
  }
});

Deno.test("handleRendezvous() runs the extension's check after the pyp2p checks", () => {
  const seen: string[] = [];
  const ctx = context({
    checkRegister: (name) => {
      seen.push(name);
      return name === "owned" ? "name_reserved" : undefined;
    },
  });
  assert.deepEqual(ask(ctx, { type: "REGISTER", name: "owned", namespace: "ns", port: 0 }).reply, {
    status: "ERROR",
    message: "bad_port",
  });
  assert.equal(seen.length, 0);
  const refused = ask(ctx, {
    type: "REGISTER",
    name: "owned",
    namespace: "ns",
    port: 1,
    token: "t",
  });
  assert.deepEqual(refused.reply, { status: "ERROR", message: "name_reserved" });
  assert.deepEqual(seen, ["owned"]);
  assert.equal(ctx.registry.size, 0);
  assert.equal(
    ask(ctx, { type: "REGISTER", name: "free", namespace: "ns", port: 1 }).reply.status,
    "OK",
  );
});

Deno.test("handleRendezvous() UNREGISTER keeps an owned listing: by name refused, address-wide skipped", () => {
  const ctx = context({
    checkUnregister: (name) => (name === "owned" ? "name_owned" : undefined),
  });
  for (const name of ["owned", "free", "other"]) {
    ctx.registry.upsert({ ip: ctx.ip, namespace: "ns", name, port: 1, ttl: 60 }, ctx.now);
  }
  assert.deepEqual(ask(ctx, { type: "UNREGISTER", namespace: "ns", name: "owned" }).reply, {
    status: "ERROR",
    message: "name_owned",
  });
  assert.deepEqual(ask(ctx, { type: "UNREGISTER", namespace: "ns", name: "free" }).reply, {
    status: "OK",
  });
  // Without a name the anonymous listings go and the owned one stays; OK, as pyp2p clients expect.
  const all = ask(ctx, { type: "UNREGISTER", namespace: "ns" });
  assert.deepEqual(all.reply, { status: "OK" });
  assert.equal(all.changed, true);
  assert.deepEqual(ctx.registry.discover("ns", ctx.now).map((peer) => peer.name), ["owned"]);
});

Deno.test("handleRendezvous() answers bad lines and unknown types like the reference", () => {
  const cases: [string, string, string][] = [
    ["", "Empty request line", "INVALID"],
    ["  ", "Empty request line", "INVALID"],
    ["nope", "Unknown command", "INVALID"],
    ['"REGISTER"', "Unknown command", "INVALID"],
    ['{"name":"a"}', "Unknown command", "INVALID"],
    ['{"type":"PING"}', "Unknown command", "UNKNOWN"],
  ];
  for (const [line, message, command] of cases) {
    const outcome = ask(context(), line);
    assert.deepEqual(outcome.reply, { status: "ERROR", message });
    assert.equal(outcome.command, command);
  }
});

Deno.test("handleRendezvous() DISCOVER with a null or missing namespace lists every namespace", () => {
  const ctx = context();
  ask(ctx, { type: "REGISTER", name: "a", namespace: "one", port: 1 });
  ask(ctx, { type: "REGISTER", name: "b", namespace: "two", port: 2 });
  const names = (fields: Record<string, unknown>) =>
    ((ask(ctx, { type: "DISCOVER", ...fields }).reply.peers) as { name: string }[]).map((p) =>
      p.name
    );
  assert.deepEqual(names({}), ["a", "b"]);
  assert.deepEqual(names({ namespace: null }), ["a", "b"]);
  assert.deepEqual(names({ namespace: "two" }), ["b"]);
  assert.deepEqual(names({ namespace: 5 }), []);
});

Deno.test("handleRendezvous() UNREGISTER only touches the requester's own records", () => {
  const mine = context();
  const theirs = context({ registry: mine.registry, ip: "198.51.100.1" });
  ask(mine, { type: "REGISTER", name: "a", namespace: "ns", port: 1 });
  ask(theirs, { type: "REGISTER", name: "a", namespace: "ns", port: 1 });
  const outcome = ask(theirs, { type: "UNREGISTER", namespace: "ns", name: "a", port: "1" });
  assert.deepEqual(outcome, { reply: { status: "OK" }, command: "UNREGISTER", changed: true });
  assert.equal(mine.registry.size, 1);
  assert.deepEqual(ask(mine, { type: "UNREGISTER", namespace: "ns", port: [1] }).reply, {
    status: "ERROR",
    message: "bad_port ([1])",
  });
  assert.deepEqual(ask(mine, { type: "UNREGISTER" }), {
    reply: { status: "OK" },
    command: "UNREGISTER",
    changed: false,
  });
});
