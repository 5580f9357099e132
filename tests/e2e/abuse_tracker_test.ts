/**
 * Floods against a real tracker process, each beside a normal client that must still be served.
 * The caps are configured small (--max-connections 64) so the mechanism shows in seconds; the
 * full-scale figures are in `deno task bench tracker`.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { newSessionIdentity, SecureLineClient } from "../_session_identity.ts";
import { request, withTestTracker } from "../_tracker_process.ts";

/** Opens a session from `localAddress` and resolves with its first reply line. */
function firstReply(port: number, localAddress: string) {
  return new Promise<{ socket: net.Socket; reply: string }>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    let reply = "";
    socket.on("error", () => {});
    socket.on(
      "connect",
      () =>
        socket.write('{"type":"SESSION_HELLO","id":1,"version":1,"features":["p2pchat-noise"]}\n'),
    );
    socket.on("data", (data) => {
      reply += String(data);
      if (reply.includes("\n")) resolve({ socket, reply });
    });
    socket.on("close", () => resolve({ socket, reply }));
  });
}

const normalRegister = (port: number) =>
  request(port, { type: "REGISTER", namespace: "ns", name: "normal", port: 7001 });

Deno.test("one account's sessions cannot lock REGISTER and DISCOVER out of the tracker", async () => {
  await withTestTracker(["--max-connections", "64"], async ({ port }, cleanup) => {
    // One profile (one identity key) resumes its account's token from many connections.
    const mallory = newSessionIdentity("mallory@ns");
    const first = await SecureLineClient.connect(port, mallory);
    cleanup(() => first.close());
    const signup = await first.ask({
      type: "SESSION_SIGNUP",
      id: 0,
      username: "mallory",
      password: "long enough",
    });
    const token = signup?.token as string;
    // Before: 1,024 SESSION_RESUMEs with one token all succeeded, and every REGISTER or
    // DISCOVER from anyone got "Too many connections" while they stayed.
    const codes: string[] = [];
    for (let index = 1; index < 24; index++) {
      const client = await SecureLineClient.connect(port, mallory);
      cleanup(() => client.close());
      const reply = await client.ask({ type: "SESSION_RESUME", id: index, token });
      codes.push(reply?.status === "OK" ? "OK" : String(reply?.code));
    }
    assert.equal(codes.filter((code) => code === "OK").length, 15, codes.join(" "));
    assert.ok(codes.slice(15).every((code) => code === "too_many_sessions"), codes.join(" "));

    // Sessions not logged in yet (held up to 30 s before a login is due): 16 per address. The
    // 8 refused resumes above still hold theirs, so 8 more fit from 127.0.0.1.
    const replies: string[] = [];
    for (let index = 0; index < 20; index++) {
      const client = await SecureLineClient.connect(port);
      cleanup(() => client.close());
      replies.push(String((await client.ask({ type: "SESSION_HEARTBEAT", id: index }))?.code));
    }
    assert.deepEqual(replies, [...Array(8).fill("not_logged_in"), ...Array(12).fill("busy")]);

    // From other addresses, sessions stop short of the slots kept for Rendezvous requests:
    // 64 - 8 = 56 sessions at most; 24 + 8 are open, so 24 of these 64 fit. Before: 1,024
    // sessions took every slot and each REGISTER got "Too many connections".
    const others = await Promise.all(
      Array.from({ length: 64 }, (_, index) => firstReply(port, `127.0.0.${11 + index % 4}`)),
    );
    cleanup(() => others.forEach(({ socket }) => socket.destroy()));
    const refused = others.map(({ reply }) => reply).filter((reply) => !reply.includes("SESSION_"));
    assert.equal(refused.length, 40);
    // (Opened all at once, some find the 64 slots full before the sessions close theirs.)
    assert.ok(refused.some((reply) => reply.includes("Too many sessions (limit 56)")));
    assert.ok(
      refused.every((reply) =>
        /Too many (sessions \(limit 56\)|connections \(limit 64\))/.test(reply)
      ),
    );
    assert.equal((await normalRegister(port)).status, "OK", "a normal REGISTER still gets in");
    assert.equal((await request(port, { type: "DISCOVER" })).status, "OK");
  });
});

Deno.test("slow clients from one address cannot shut another address out", async () => {
  await withTestTracker(
    ["--max-connections", "64", "--max-connections-per-ip", "32"],
    async ({ port }, cleanup) => {
      // 60 connections from 127.0.0.5 each drip one byte every 200 ms (never a whole line).
      const sockets: net.Socket[] = [];
      const refusedReplies: string[] = [];
      for (let index = 0; index < 60; index++) {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.5" });
        socket.on("error", () => {});
        socket.on("data", (data) => refusedReplies.push(String(data)));
        sockets.push(socket);
      }
      const drip = setInterval(() => {
        for (const socket of sockets) if (!socket.destroyed) socket.write("{");
      }, 200);
      cleanup(() => {
        clearInterval(drip);
        for (const socket of sockets) socket.destroy();
      });
      await new Promise((resolve) => setTimeout(resolve, 600));
      // Before: with every slot dripping, REGISTERs were shut out until the drips timed out.
      const started = performance.now();
      assert.equal((await normalRegister(port)).status, "OK");
      assert.ok(performance.now() - started < 1000, "served at once, not after a drip timed out");
      assert.ok(
        refusedReplies.some((reply) => reply.includes("Too many connections from this address")),
        "the address over its share is told why",
      );
    },
  );
});
