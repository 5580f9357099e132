/**
 * End-to-end tests of `p2pchat tracker` as a real process over loopback. One process serves
 * most cases (each uses its own namespace); rate limiting and restarts get their own.
 */
import assert from "node:assert/strict";
import {
  rawRequest,
  request,
  runTrackerCli,
  startTrackerProcess,
  type TrackerProcess,
} from "../_tracker_process.ts";

const OK = "OK";

function register(namespace: string, name: unknown, port: unknown, ttl?: unknown) {
  return { type: "REGISTER", namespace, name, port, ...(ttl === undefined ? {} : { ttl }) };
}

async function discover(tracker: TrackerProcess, namespace?: string) {
  const reply = await request(tracker.port, { type: "DISCOVER", namespace });
  assert.equal(reply.status, OK);
  return reply.peers as Record<string, unknown>[];
}

Deno.test("the tracker process answers every Rendezvous request as pyp2p does", async (t) => {
  const dataDir = await Deno.makeTempDir();
  const tracker = await startTrackerProcess([
    "--data-dir",
    dataDir,
    "--no-rate-limit",
    "--http",
    "127.0.0.1:0",
  ]);
  try {
    await t.step("REGISTER checks name, ttl, namespace, port in that order", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [register("e", "", 1), "bad_name"],
        [register("e", "x".repeat(65), 1), "bad_name"],
        [register("e", 7, 1), "bad_name"],
        // Control characters, bidirectional controls, lone surrogates: no name holds them.
        [register("e", "n\u0000x", 1), "bad_name"],
        [register("e", "\u202en", 1), "bad_name"],
        [register("e", "n\ud800", 1), "bad_name"],
        [register("e\u001b[2J", "n", 1), "bad_namespace"],
        [register("", "", 0, "zz"), "bad_name"],
        [register("e", "n", 1, "soon"), "bad_ttl"],
        [register("e", "n", 1, null), "bad_ttl"],
        [register("", "n", 0, "zz"), "bad_ttl"],
        [register("", "n", 1), "bad_namespace"],
        [register("n".repeat(65), "n", 1), "bad_namespace"],
        [register("", "n", 0), "bad_namespace"],
        [register("e", "n", 0), "bad_port"],
        [register("e", "n", 65536), "bad_port"],
        [register("e", "n", "http"), "bad_port"],
        [{ type: "REGISTER", namespace: "e", name: "n" }, "bad_port"],
      ];
      for (const [message, code] of cases) {
        assert.deepEqual(await request(tracker.port, message), { status: "ERROR", message: code });
      }
      assert.deepEqual(await discover(tracker, "e"), []);
    });

    await t.step("REGISTER defaults the ttl to 7200 and clamps it into 1..86400", async () => {
      const cases: [unknown, number][] = [
        [undefined, 7200],
        [0, 1],
        [-5, 1],
        [999999, 86400],
        [
          "300",
          300,
        ],
        [12.9, 12],
        [true, 1],
      ];
      for (const [ttl, expected] of cases) {
        const reply = await request(tracker.port, register("ttl", "t", 4000, ttl));
        assert.deepEqual(reply, { status: OK, ttl: expected, ip: "127.0.0.1", port: 4000 });
      }
    });

    await t.step(
      "REGISTER of the same key replaces the record and ignores extra fields",
      async () => {
        await request(tracker.port, register("upsert", "alice", 5000, 60));
        const reply = await request(tracker.port, {
          ...register("upsert", "alice", "5001", 120),
          peer_id: "alice@upsert",
        });
        assert.deepEqual(reply, { status: OK, ttl: 120, ip: "127.0.0.1", port: 5001 });
        const peers = await discover(tracker, "upsert");
        assert.equal(peers.length, 1);
        assert.deepEqual(Object.keys(peers[0]), [
          "ip",
          "port",
          "name",
          "namespace",
          "ttl",
          "expires_in",
        ]);
        assert.equal(peers[0].port, 5001);
        assert.equal(peers[0].ttl, 120);
        assert.ok((peers[0].expires_in as number) <= 120 && (peers[0].expires_in as number) >= 100);
      },
    );

    await t.step(
      "DISCOVER lists one namespace, every namespace, or nothing for an unknown one",
      async () => {
        await request(tracker.port, register("disc-a", "a1", 6001));
        await request(tracker.port, register("disc-b", "b1", 6002));
        assert.deepEqual((await discover(tracker, "disc-a")).map((p) => p.name), ["a1"]);
        const all = (await discover(tracker)).map((p) => `${p.name}@${p.namespace}`);
        assert.ok(all.includes("a1@disc-a") && all.includes("b1@disc-b"));
        assert.deepEqual(await discover(tracker, "no-such-namespace"), []);
      },
    );

    await t.step(
      "UNREGISTER removes by namespace, name and port, and rejects a bad port",
      async () => {
        for (const [name, port] of [["u1", 7001], ["u2", 7002], ["u3", 7002], ["u4", 7004]]) {
          await request(tracker.port, register("unreg", name, port));
        }
        const names = async () => (await discover(tracker, "unreg")).map((p) => p.name).sort();
        assert.deepEqual(
          await request(tracker.port, { type: "UNREGISTER", namespace: "unreg", port: "abc" }),
          { status: "ERROR", message: "bad_port (abc)" },
        );
        assert.deepEqual(await names(), ["u1", "u2", "u3", "u4"]);
        const unregister = (fields: Record<string, unknown>) =>
          request(tracker.port, { type: "UNREGISTER", namespace: "unreg", ...fields });
        assert.deepEqual(await unregister({ name: "u1" }), { status: OK });
        assert.deepEqual(await names(), ["u2", "u3", "u4"]);
        assert.deepEqual(await unregister({ port: "7002" }), { status: OK });
        assert.deepEqual(await names(), ["u4"]);
        assert.deepEqual(await unregister({ name: "u4", port: 1 }), { status: OK });
        assert.deepEqual(await names(), ["u4"]);
        assert.deepEqual(await unregister({}), { status: OK });
        assert.deepEqual(await names(), []);
        assert.deepEqual(await unregister({ name: "nobody" }), { status: OK });
      },
    );

    await t.step("bad lines get the reference error and one reply line", async () => {
      const cases: [string, Record<string, unknown>][] = [
        ["\n", { status: "ERROR", message: "Empty request line" }],
        ["   \r\n", { status: "ERROR", message: "Empty request line" }],
        ["{not json\n", { status: "ERROR", message: "Unknown command" }],
        ["[1,2]\n", { status: "ERROR", message: "Unknown command" }],
        ['{"type":42}\n', { status: "ERROR", message: "Unknown command" }],
        ['{"type":"HELLO"}\n', { status: "ERROR", message: "Unknown command" }],
        [
          "x".repeat(40000) + "\n",
          { status: "ERROR", message: "line_too_long", limit: 32768 },
        ],
      ];
      for (const [line, expected] of cases) {
        const reply = await rawRequest(tracker.port, line);
        assert.deepEqual(JSON.parse(reply), expected, `for ${JSON.stringify(line.slice(0, 20))}`);
        assert.ok(reply.endsWith("}\n"));
      }
      const lower = await request(tracker.port, { type: "discover", namespace: "disc-b" });
      assert.equal((lower.peers as unknown[]).length, 1);
    });

    await t.step("silent clients time out and 1-second registrations expire", async () => {
      const registered = await request(tracker.port, register("expiry", "brief", 8000, 1));
      assert.deepEqual(registered, { status: OK, ttl: 1, ip: "127.0.0.1", port: 8000 });
      const [timeoutReply] = await Promise.all([
        rawRequest(tracker.port, ""),
        new Promise((resolve) => setTimeout(resolve, 1500)),
      ]);
      assert.deepEqual(JSON.parse(timeoutReply), {
        status: "ERROR",
        message: "Timeout: no data received, closing connection",
      });
      assert.deepEqual(await discover(tracker, "expiry"), []);
    });

    await t.step("a client leaving mid-line does not disturb the tracker", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: tracker.port });
      await conn.write(new TextEncoder().encode('{"type":"REGISTER","name'));
      conn.close();
      const reply = await request(tracker.port, register("survive", "s", 9000));
      assert.equal(reply.status, OK);
    });

    await t.step(
      "a request without its newline is answered when the client half-closes",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: tracker.port });
        try {
          await conn.write(
            new TextEncoder().encode(JSON.stringify(register("halfclose", "h", 9100))),
          );
          await conn.closeWrite();
          const reply = await new Response(conn.readable).text();
          assert.deepEqual(JSON.parse(reply), {
            status: OK,
            ttl: 7200,
            ip: "127.0.0.1",
            port: 9100,
          });
          assert.ok(reply.endsWith("\n"));
        } finally {
          try {
            conn.close();
          } catch {
            // Already closed by reading to the end.
          }
        }
      },
    );

    await t.step("500 concurrent clients are all served", async () => {
      const replies = await Promise.all(
        Array.from(
          { length: 500 },
          (_, i) => request(tracker.port, register("crowd", `c${i}`, 10000 + i)),
        ),
      );
      assert.ok(replies.every((reply) => reply.status === OK));
      assert.equal((await discover(tracker, "crowd")).length, 500);
    });

    await t.step("the HTTP API reports health, registrations and metrics", async () => {
      const health = await (await fetch(`${tracker.httpUrl}/health`)).json();
      assert.equal(health.status, "ok");
      assert.ok(health.registrations >= 500);
      const listed = await (await fetch(`${tracker.httpUrl}/registrations?namespace=disc-a`))
        .json();
      assert.equal(listed.count, 1);
      assert.equal(listed.peers[0].name, "a1");
      const metrics = await fetch(`${tracker.httpUrl}/metrics`);
      assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
      const text = await metrics.text();
      assert.match(text, /^p2pchat_tracker_requests_total\{type="REGISTER",status="ok"\} \d+$/m);
      assert.match(text, /^p2pchat_tracker_registrations_active \d+$/m);
      const bad = await fetch(`${tracker.httpUrl}/registrations?namespace=`);
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).error.code, "bad_namespace");
      const missing = await fetch(`${tracker.httpUrl}/nowhere`);
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error.code, "not_found");
    });

    await t.step(
      "SIGTERM flushes the store, and a restart keeps the remaining lifetime",
      async () => {
        await request(tracker.port, register("persist", "keeper", 11000, 600));
        const { code } = await tracker.stop("SIGTERM");
        assert.equal(code, 0);
        const saved = JSON.parse(await Deno.readTextFile(`${dataDir}/registrations.json`));
        assert.ok(saved.registrations.some((r: { name: string }) => r.name === "keeper"));
        const again = await startTrackerProcess(["--data-dir", dataDir, "--no-rate-limit"]);
        try {
          const [peer] = await discover(again, "persist");
          assert.equal(peer.name, "keeper");
          assert.equal(peer.ttl, 600);
          assert.ok((peer.expires_in as number) < 600 && (peer.expires_in as number) > 500);
        } finally {
          assert.equal((await again.stop("SIGINT")).code, 0);
        }
      },
    );
  } finally {
    await tracker.stop("SIGKILL");
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the tracker process blocks an IP past its rate limit and says when it lifts", async () => {
  const dataDir = await Deno.makeTempDir();
  const tracker = await startTrackerProcess(["--data-dir", dataDir, "--rate-limit", "3/60"]);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await discover(tracker, "rl")).length, 0);
    const blocked = await request(tracker.port, { type: "DISCOVER" });
    assert.equal(blocked.status, "ERROR");
    assert.match(blocked.message as string, /blocked for 60 s, lifting in 60 s/);
    assert.equal(blocked.retry_after, 60);
    const still = await request(tracker.port, { type: "DISCOVER" });
    assert.equal(still.status, "ERROR");
  } finally {
    await tracker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the tracker process exits with status 2 on a bad option value", async () => {
  const { code, stderr } = await runTrackerCli(["--port", "99999"]);
  assert.equal(code, 2);
  assert.match(stderr, /--port must be between 0 and 65535, got "99999"/);
});

Deno.test("a second tracker on the same data folder is refused; after kill -9 of the first, it starts", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const first = await startTrackerProcess(["--data-dir", dataDir]);
    const second = await runTrackerCli(["--port", "0", "--data-dir", dataDir]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /Another p2pchat tracker is running on the data folder/);
    // The first one goes on undisturbed.
    assert.equal((await request(first.port, { type: "DISCOVER", namespace: "x" })).status, OK);
    await first.stop("SIGKILL");
    const third = await startTrackerProcess(["--data-dir", dataDir]);
    await third.stop();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
