/**
 * What crosses the wire between real peer and tracker processes, seen by a proxy in the middle:
 * no secret in clear, and a proxy that alters the negotiation gets nowhere.
 *
 * Layout: each peer listens on its own loopback address (127.0.0.2, 127.0.0.3) and a proxy
 * listens on 127.0.0.1 at the same port. The tracker records the address a REGISTER came from
 * (127.0.0.1), so every peer dials the other through the proxy.
 */
import assert from "node:assert/strict";
import { E2e, type PeerProcess, WAIT_MS } from "../_peer_process.ts";
import { TcpProxy } from "../_tcp_proxy.ts";

/** A peer behind its own proxy. */
async function proxiedPeer(
  e2e: E2e,
  name: string,
  host: string,
  trackerPort: number,
  extra: string[] = [],
): Promise<{ peer: PeerProcess; proxy: TcpProxy }> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const proxy = new TcpProxy({ port, target: { hostname: host, port } });
  e2e.defer(() => proxy.close());
  const peer = await e2e.peer({
    name,
    namespace: "wire",
    trackerPort,
    args: ["--host", host, "--port", String(port), ...extra],
  });
  return { peer, proxy };
}

function connectedLine(peerId: string): RegExp {
  return new RegExp(`-- peer ${peerId.replace(".", "\\.")} connected(: \\w+)?$`);
}

Deno.test("a proxy that alters HELLO breaks the handshake: the prologue covers the negotiation", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const { peer: ann, proxy: annProxy } = await proxiedPeer(e2e, "ann", "127.0.0.2", tracker.port);
    // Whoever dials ann gets its HELLO altered on the way: one more feature.
    annProxy.rewriteFirstLine = (line) => line.replace('"features":[', '"features":["extra",');
    const { peer: bob, proxy: bobProxy } = await proxiedPeer(e2e, "bob", "127.0.0.3", tracker.port);
    bobProxy.rewriteFirstLine = annProxy.rewriteFirstLine;
    await ann.waitUntil(
      "a failed handshake in the log",
      () => /handshake_failed|decrypt_failed/.test(ann.stderr) || undefined,
    );
    assert.equal(ann.lines.some((line) => connectedLine("bob@wire").test(line)), false);
    // Without the alteration the same two peers connect.
    annProxy.rewriteFirstLine = bobProxy.rewriteFirstLine = undefined;
    await ann.waitForLine(connectedLine("bob@wire"), WAIT_MS);
    await bob.waitForLine(connectedLine("ann@wire"), WAIT_MS);
  } finally {
    await e2e.close();
  }
});

Deno.test("sign-up, login and chat put no password, token or message text on the wire", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker({ args: ["--pbkdf2-iterations", "1000"] });
    const trackerProxy = new TcpProxy({ target: { hostname: "127.0.0.1", port: tracker.port } });
    e2e.defer(() => trackerProxy.close());
    const { peer: ann, proxy: annProxy } = await proxiedPeer(
      e2e,
      "ann",
      "127.0.0.2",
      trackerProxy.port,
    );
    const { peer: bob, proxy: bobProxy } = await proxiedPeer(
      e2e,
      "bob",
      "127.0.0.3",
      trackerProxy.port,
    );
    const secrets = ["ann-password-1", "bob-password-2", "the eagle lands at midnight"];
    let mark = await ann.send(`/signup ${secrets[0]}`);
    await ann.waitForLine(/^signed up and logged in as ann$/, WAIT_MS, mark);
    mark = await bob.send(`/signup ${secrets[1]}`);
    await bob.waitForLine(/^signed up and logged in as bob$/, WAIT_MS, mark);
    mark = await bob.send("/logout");
    await bob.waitForLine(/^logged out$/, WAIT_MS, mark);
    mark = await bob.send(`/login ${secrets[1]}`);
    await bob.waitForLine(/^logged in as bob$/, WAIT_MS, mark);
    await ann.waitForLine(connectedLine("bob@wire"), WAIT_MS);
    mark = await bob.send(`/msg ann ${secrets[2]}`);
    await bob.waitForLine(/^delivered to ann@wire/, WAIT_MS, mark);
    await ann.waitForLine(/\[dm\] bob@wire: the eagle lands at midnight$/);
    const tokens = await Promise.all(
      [ann, bob].map(async (peer) =>
        (await Deno.readTextFile(`${peer.dataDir}/session-token`)).trim()
      ),
    );
    // The captures did see the traffic: the plaintext parts of the protocols are there.
    assert.ok(trackerProxy.saw("SESSION_HELLO") && trackerProxy.saw("DISCOVER"));
    assert.ok(annProxy.saw('"type":"HELLO"') || bobProxy.saw('"type":"HELLO"'));
    for (const proxy of [trackerProxy, annProxy, bobProxy]) {
      for (const secret of [...secrets, ...tokens]) {
        assert.equal(proxy.saw(secret), false, `"${secret}" crossed the wire in clear`);
      }
    }
  } finally {
    await e2e.close();
  }
});

Deno.test("a proxy that strips the encryption feature cannot make known peers talk in clear", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const { peer: ann, proxy: annProxy } = await proxiedPeer(e2e, "ann", "127.0.0.2", tracker.port);
    const { peer: bob, proxy: bobProxy } = await proxiedPeer(e2e, "bob", "127.0.0.3", tracker.port);
    await ann.waitForLine(connectedLine("bob@wire"));
    await bob.waitForLine(connectedLine("ann@wire"));
    const marks = [ann.mark(), bob.mark()];
    const strip = (line: string) => line.replace(',"p2pchat-noise"', "");
    annProxy.rewriteFirstLine = bobProxy.rewriteFirstLine = strip;
    annProxy.cutAll();
    bobProxy.cutAll();
    const downgrade = /!! refused (ann|bob)@wire: it tried to talk unencrypted although we know/;
    const told = /!! (ann|bob)@wire refused our connection: encryption_required/;
    await Promise.any([
      ann.waitForLine(downgrade, WAIT_MS, marks[0]),
      bob.waitForLine(downgrade, WAIT_MS, marks[1]),
    ]);
    await Promise.any([
      ann.waitForLine(told, WAIT_MS, marks[0]),
      bob.waitForLine(told, WAIT_MS, marks[1]),
    ]);
    for (const [peer, mark] of [[ann, marks[0]], [bob, marks[1]]] as const) {
      assert.equal(peer.lines.slice(mark).some((line) => / connected(: \w+)?$/.test(line)), false);
    }
  } finally {
    await e2e.close();
  }
});

Deno.test("a peer_id that comes back with another key is refused, with a warning on both sides", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const options = (name: string) => ({ name, namespace: "wire", trackerPort: tracker.port });
    const [ann, carol] = await e2e.peers([options("ann"), options("carol")]);
    await ann.waitForLine(connectedLine("carol@wire"));
    const mark = ann.mark();
    carol.kill("SIGKILL");
    await carol.waitForExit();
    const other = await e2e.peer(options("carol")); // a fresh profile: another key
    await ann.waitForLine(
      /!! refused carol@wire: its key changed \(was [a-z2-7 ]+, now [a-z2-7 ]+\)\. If they set up a new profile, check with them, then \/forget-key carol@wire/,
      WAIT_MS,
      mark,
    );
    await other.waitForLine(/!! ann@wire refused our connection: key_changed: /);
    // The user checked with carol: forgetting the old key lets the new one in.
    const forget = await ann.send("/forget-key carol@wire");
    await ann.waitForLine(/forgot/i, WAIT_MS, forget);
    await ann.send("/reconnect carol@wire");
    await ann.waitForLine(connectedLine("carol@wire"), WAIT_MS, forget);
  } finally {
    await e2e.close();
  }
});
