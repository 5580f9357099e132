/**
 * End-to-end test of the peer's local HTTP API (`p2pchat peer --http 0`): a real peer process
 * chatting with another one, driven over HTTP on loopback.
 */
import assert from "node:assert/strict";
import { E2e, WAIT_MS } from "../_peer_process.ts";

Deno.test("the HTTP API of a running peer authenticates, reports, sends, publishes and streams events", async () => {
  const e2e = new E2e();
  const events = new AbortController();
  try {
    const tracker = await e2e.tracker();
    const [a, b] = await e2e.peers([
      { name: "a", namespace: "web", trackerPort: tracker.port, args: ["--http", "0"] },
      { name: "b", namespace: "web", trackerPort: tracker.port },
    ]);
    assert.ok(a.httpUrl && a.tokenFile);
    assert.equal((await Deno.stat(a.tokenFile)).mode! & 0o777, 0o600);
    const token = (await Deno.readTextFile(a.tokenFile)).trim();
    const api = (path: string, init: RequestInit = {}, bearer = token) =>
      fetch(`${a.httpUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      });
    const json = async (response: Response) => ({
      status: response.status,
      body: await response.json(),
    });

    // Authentication and the Host check.
    const anonymous = await fetch(`${a.httpUrl}/api/status`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    assert.equal((await json(await api("/api/status", {}, "0".repeat(64)))).status, 401);
    const rebound = await rawHttp(
      new URL(a.httpUrl).port,
      `GET /api/status HTTP/1.1\r\nHost: evil.example:${new URL(a.httpUrl).port}\r\n` +
        `Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(rebound, /^HTTP\/1\.1 403 /);
    assert.match(rebound, /"forbidden_host"/);

    const status = await json(await api("/api/status"));
    assert.equal(status.status, 200);
    assert.equal(status.body.peerId, "a@web");
    assert.equal(status.body.listen.port, a.port);

    // Wait until b is connected (the table is fed by discovery every second).
    const deadline = Date.now() + WAIT_MS;
    let peers;
    do {
      peers = await json(await api("/api/peers?scope=%23web"));
      assert.equal(peers.status, 200);
      if (peers.body.peers[0]?.state === "connected") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    assert.equal(peers.body.count, 1);
    assert.equal(peers.body.peers[0].peerId, "b@web");
    assert.equal(peers.body.peers[0].state, "connected");

    // POST /api/messages answers once b ACKed.
    const sent = await json(
      await api("/api/messages", {
        method: "POST",
        body: JSON.stringify({ to: "b@web", text: "over http" }),
      }),
    );
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(sent.body.delivered, true);
    assert.equal(typeof sent.body.roundTripMs, "number");
    await b.waitForLine(/ \[dm\] a@web: over http$/);

    const published = await json(
      await api("/api/publish", {
        method: "POST",
        body: JSON.stringify({ scope: "*", text: "to everyone" }),
      }),
    );
    assert.equal(published.status, 200);
    assert.equal(published.body.reached, 1);
    assert.deepEqual(published.body.peers, ["b@web"]);
    await b.waitForLine(/ \[\*\] a@web: to everyone$/);

    // The event stream delivers a message b sends once the stream is open.
    const stream = await fetch(`${a.httpUrl}/api/events`, {
      headers: { authorization: `Bearer ${token}` },
      signal: events.signal,
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    const timer = setTimeout(() => events.abort(), WAIT_MS);
    try {
      let text = (await reader.read()).value ?? "";
      assert.match(text, /^: /);
      await b.send("/msg a@web via sse");
      while (!/event: message\ndata: .*\n\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const data = /event: message\ndata: (.*)\n\n/.exec(text);
      assert.ok(data, text);
      const event = JSON.parse(data[1]);
      assert.equal(event.kind, "direct");
      assert.equal(event.from, "b@web");
      assert.equal(event.text, "via sse");
    } finally {
      clearTimeout(timer);
    }

    // Shutting down with an event stream still open: BYE, then a clean exit.
    const mark = b.mark();
    a.kill("SIGTERM");
    assert.equal((await a.waitForExit()).code, 0);
    await b.waitForLine(/-- peer a@web gone: /, WAIT_MS, mark);
  } finally {
    events.abort();
    await e2e.close();
  }
});

/** Sends a raw HTTP/1.1 request (fetch would not let us forge the Host header) and reads the reply. */
async function rawHttp(port: string, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  try {
    await conn.write(new TextEncoder().encode(text));
    const reply = await new Response(conn.readable).text();
    return reply;
  } finally {
    try {
      conn.close();
    } catch {
      // The reply stream closed it already.
    }
  }
}
