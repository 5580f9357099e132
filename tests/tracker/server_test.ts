/**
 * In-process tests of the tracker server with a manual clock and in-memory connections:
 * idle timeouts, the connection cap, rate-limit replies, coalesced saves, the extension seam,
 * and that stop() leaves no timer behind.
 */
import assert from "node:assert/strict";
import type { DecodeResult } from "../../lib/codec.ts";
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import { type Conn, type MemoryConn, memoryConnPair } from "../../lib/transport.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { createSecureChannel, fingerprint } from "../../lib/noise/mod.ts";
import {
  sessionHelloLine,
  sessionHelloReplyLine,
  sessionPrologue,
} from "../../lib/secure_session.ts";
import type { SessionLink, TrackerExtension } from "../../tracker/extension.ts";
import { newSessionIdentity, secureSession } from "../_session_identity.ts";
import { createTracker, type Tracker, type TrackerOptions } from "../../tracker/server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Harness {
  tracker: Tracker;
  clock: ManualClock;
  lines: string[];
}

async function withTracker(
  options: TrackerOptions,
  run: (harness: Harness) => Promise<void>,
  extension?: TrackerExtension,
): Promise<void> {
  const clock = new ManualClock();
  const { log, lines } = memoryLogger();
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false, ...options },
    { clock, log, extension },
  );
  await tracker.start();
  try {
    await run({ tracker, clock, lines });
  } finally {
    await tracker.stop();
  }
  assert.equal(clock.pendingTimers, 0, "stop() clears every timer");
}

/** Connects an in-memory client from `ip`; the server side is handed to the tracker. */
function connect(tracker: Tracker, ip = "127.0.0.1"): MemoryConn {
  const [client, server] = memoryConnPair(
    { hostname: ip, port: 50000 },
    { hostname: "127.0.0.1", port: 8080 },
  );
  tracker.serve(server);
  return client;
}

/** Reads everything the server writes until it closes the connection. */
async function readAll(client: Conn): Promise<string> {
  let text = "";
  for await (const chunk of client.chunks()) text += decoder.decode(chunk, { stream: true });
  return text;
}

async function exchange(tracker: Tracker, line: string, ip?: string): Promise<unknown> {
  const client = connect(tracker, ip);
  const reply = readAll(client);
  await client.write(encoder.encode(line));
  return JSON.parse(await reply);
}

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("createTracker() closes a silent connection after the idle timeout with the reference error", async () => {
  await withTracker({}, async ({ tracker, clock }) => {
    const client = connect(tracker);
    const reply = readAll(client);
    clock.advance(999);
    await tick();
    assert.equal(client.closed, false);
    clock.advance(1);
    assert.equal(
      await reply,
      '{"status":"ERROR","message":"Timeout: no data received, closing connection"}\n',
    );
    assert.match(tracker.metricsText(), /^p2pchat_tracker_idle_timeouts_total 1$/m);
  });
});

Deno.test("createTracker() measures idle time between chunks, not from the connection start", async () => {
  await withTracker({ idleTimeoutMs: 500 }, async ({ tracker, clock }) => {
    const client = connect(tracker);
    const reply = readAll(client);
    for (const part of ['{"type":', '"DISCOVER"', "}"]) {
      await client.write(encoder.encode(part));
      await tick();
      clock.advance(400);
    }
    await client.write(encoder.encode("\n"));
    assert.deepEqual(JSON.parse(await reply), { status: "OK", peers: [] });
  });
});

Deno.test("createTracker() closes a connection whose first line trickles in past the total deadline", async () => {
  await withTracker(
    { idleTimeoutMs: 1000, firstLineTimeoutMs: 10_000 },
    async ({ tracker, clock }) => {
      const client = connect(tracker);
      let ended = false;
      const reply = readAll(client).finally(() => ended = true);
      for (let step = 0; step < 12 && !ended; step++) {
        await client.write(encoder.encode(" ")).catch(() => {});
        await tick();
        clock.advance(900);
      }
      await tick();
      assert.ok(ended, "the tracker closed the connection within 10.8 s");
      assert.deepEqual(JSON.parse(await reply), {
        status: "ERROR",
        message: "Timeout: request line not complete in time, closing connection",
      });
    },
  );
});

Deno.test("createTracker() refuses connections over --max-connections with an ERROR", async () => {
  await withTracker({ maxConnections: 2 }, async ({ tracker, clock }) => {
    const silent = [connect(tracker), connect(tracker)];
    const replies = silent.map(readAll);
    await tick();
    const refused = (await exchange(tracker, '{"type":"DISCOVER"}\n')) as Record<string, string>;
    assert.equal(refused.status, "ERROR");
    assert.match(refused.message, /Too many connections \(limit 2\)/);
    assert.match(
      tracker.metricsText(),
      /^p2pchat_tracker_connections_rejected_total\{reason="max_connections"\} 1$/m,
    );
    clock.advance(1000);
    await Promise.all(replies);
    assert.deepEqual(await exchange(tracker, '{"type":"DISCOVER"}\n'), { status: "OK", peers: [] });
  });
});

Deno.test("createTracker() answers a rate-limited IP with when the block lifts", async () => {
  const rateLimit = { max: 2, windowSeconds: 30, blockSeconds: 30 };
  await withTracker({ rateLimit }, async ({ tracker, clock, lines }) => {
    const discover = '{"type":"DISCOVER"}\n';
    for (let i = 0; i < 2; i++) await exchange(tracker, discover, "203.0.113.5");
    assert.deepEqual(await exchange(tracker, discover, "203.0.113.5"), {
      status: "ERROR",
      message: "Rate limit exceeded: more than 2 connections in 30 s; " +
        "this IP is blocked for 30 s, lifting in 30 s",
      retry_after: 30,
    });
    assert.deepEqual(await exchange(tracker, discover, "203.0.113.6"), { status: "OK", peers: [] });
    assert.ok(lines.some((line) => line.includes("Rate limit: blocking IP")));
    clock.advance(30_000);
    assert.deepEqual(await exchange(tracker, discover, "203.0.113.5"), { status: "OK", peers: [] });
    assert.match(tracker.metricsText(), /^p2pchat_tracker_rate_limit_blocks_total 1$/m);
  });
});

Deno.test("createTracker() coalesces saves after changes and flushes on stop", async () => {
  const dataDir = await Deno.makeTempDir();
  const file = `${dataDir}/registrations.json`;
  const register = (name: string) =>
    `{"type":"REGISTER","namespace":"ns","name":"${name}","port":1,"ttl":60}\n`;
  try {
    await withTracker({ dataDir }, async ({ tracker, clock }) => {
      await exchange(tracker, register("a"));
      await exchange(tracker, register("b"));
      await assert.rejects(
        Deno.stat(file),
        Deno.errors.NotFound,
        "nothing written before the delay",
      );
      clock.advance(1000);
      for (let i = 0; i < 200 && (await _names(file)).length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(await _names(file), ["a", "b"]);
      await exchange(tracker, register("c"));
    });
    assert.deepEqual(await _names(file), ["a", "b", "c"]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

async function _names(file: string): Promise<string[]> {
  try {
    const json = JSON.parse(await Deno.readTextFile(file));
    return json.registrations.map((r: { name: string }) => r.name).sort();
  } catch {
    return [];
  }
}

Deno.test("createTracker() moves a corrupt store aside, logs it and starts empty", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dataDir}/registrations.json`, "{oops");
    await withTracker({ dataDir }, ({ tracker, lines }) => {
      assert.deepEqual(tracker.registrations(), []);
      assert.ok(lines.some((line) => /ERROR .*registrations\.json" is corrupt/.test(line)));
      return Promise.resolve();
    });
    const names = [];
    for await (const entry of Deno.readDir(dataDir)) {
      // The tracker's identity key is created beside it on first start.
      if (entry.name !== "identity.json") names.push(entry.name);
    }
    assert.equal(names.length, 1);
    assert.match(names[0], /^registrations\.json\.corrupt-/);
    assert.equal(await Deno.readTextFile(`${dataDir}/${names[0]}`), "{oops");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** A tiny extension: an encrypted session echoes what it receives. */
function echoExtension() {
  const events: string[] = [];
  const links: SessionLink[] = [];
  const extension: TrackerExtension = {
    opensSession: (type) => type.startsWith("SESSION_"),
    openSession(opened) {
      events.push(`open ${opened.remoteIp} ${opened.remoteId}`);
      links.push(opened);
      return {
        receive(result: DecodeResult) {
          const what = result.ok ? result.message.type : result.code;
          events.push(`receive ${what}`);
          opened.send({ type: "ECHO", what });
          if (what === "QUIT") opened.close();
        },
        closed: () => void events.push("closed"),
      };
    },
    checkRegister: (name) => name === "admin" ? "name_taken" : undefined,
    checkUnregister: () => undefined,
    onNameOwned: () => {},
    metrics: () => ["p2pchat_accounts_sessions 7"],
    start: () => Promise.resolve(void events.push("start")),
    stop: () => Promise.resolve(void events.push("stop")),
  };
  return { extension, events, links };
}

Deno.test("createTracker() hands an encrypted session to the extension, without an idle timeout", async () => {
  const { extension, events, links } = echoExtension();
  const who = newSessionIdentity("alice@lobby");
  await withTracker({}, async ({ tracker, clock }) => {
    const { conn, trackerKey } = await secureSession(connect(tracker), who);
    assert.equal(fingerprint(trackerKey), tracker.health().fingerprint);
    const replies = readAll(conn);
    await conn.write(encoder.encode('{"type":"CHAT"}\n'));
    await tick();
    clock.advance(10_000);
    await tick();
    assert.equal(conn.closed, false);
    await conn.write(encoder.encode('not json\n{"type":"QUIT"}\n'));
    const lines = (await replies).trimEnd().split("\n").map((line) => JSON.parse(line).what);
    assert.deepEqual(lines, ["CHAT", "invalid_json", "QUIT"]);
    assert.deepEqual(links[0].identityKey, who.identity.publicKey);
    assert.match(tracker.metricsText(), /^p2pchat_accounts_sessions 7$/m);
    assert.match(
      tracker.metricsText(),
      /^p2pchat_tracker_session_handshakes_total\{result="ok"\} 1$/m,
    );
  }, extension);
  assert.deepEqual(events, [
    "start",
    "open 127.0.0.1 alice@lobby",
    "receive CHAT",
    "receive invalid_json",
    "receive QUIT",
    "closed",
    "stop",
  ]);
});

Deno.test("createTracker() closes a session on a line over 32768 bytes, answering inside the channel", async () => {
  const { extension, events } = echoExtension();
  await withTracker({}, async ({ tracker }) => {
    const { conn } = await secureSession(connect(tracker), newSessionIdentity());
    const replies = readAll(conn);
    await conn.write(encoder.encode('{"type":"SESSION_X"}\n' + "x".repeat(40_000) + "\n"));
    const lines = (await replies).trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines, [
      { type: "ECHO", what: "SESSION_X" },
      { status: "ERROR", message: "line_too_long", limit: 32768 },
    ]);
  }, extension);
  assert.ok(events.includes("closed"));
});

Deno.test("createTracker() refuses a session opened in clear with encryption_required", async () => {
  const { extension, events } = echoExtension();
  await withTracker({}, async ({ tracker }) => {
    const line = '{"type":"SESSION_LOGIN","id":4,"username":"alice","password":"secret-pw"}\n';
    assert.deepEqual(await exchange(tracker, line), {
      type: "SESSION_REPLY",
      id: 4,
      status: "ERROR",
      code: "encryption_required",
      message: "Sessions are encrypted: open the connection with SESSION_HELLO " +
        "(docs/protocol.md, Encrypted session opening)",
    });
    const noId = (await exchange(tracker, '{"type":"SESSION_RESUME","id":[1]}\n')) as {
      id: unknown;
    };
    assert.equal(noId.id, null);
  }, extension);
  assert.ok(!events.some((event) => event.startsWith("open")), "no session was opened");
});

Deno.test("createTracker() without accounts answers SESSION_HELLO as pyp2p does", async () => {
  await withTracker({}, async ({ tracker }) => {
    assert.deepEqual(await exchange(tracker, sessionHelloLine()), {
      status: "ERROR",
      message: "Unknown command",
    });
  });
});

Deno.test("createTracker() reads a handshake message sent in the same write as SESSION_HELLO", async () => {
  const { extension, events } = echoExtension();
  const who = newSessionIdentity("bob@lobby");
  await withTracker({}, async ({ tracker }) => {
    const client = connect(tracker);
    const reader = client.chunks()[Symbol.asyncIterator]();
    const hello = sessionHelloLine();
    const replyLine = sessionHelloReplyLine(0);
    const channel = createSecureChannel({
      initiator: true,
      prologue: sessionPrologue(hello, replyLine),
      ...who,
    });
    await client.write(concatBytes([encoder.encode(hello), ...channel.start()]));
    let received: Uint8Array = new Uint8Array(0);
    let replied = false;
    let established = false;
    while (!established) {
      const next = await reader.next();
      assert.ok(!next.done, "the tracker answered the handshake");
      received = concatBytes([received, next.value.slice()]);
      if (!replied) {
        const newline = received.indexOf(0x0a);
        if (newline === -1) continue;
        assert.equal(decoder.decode(received.subarray(0, newline + 1)), replyLine);
        received = received.subarray(newline + 1);
        replied = true;
      }
      const result = channel.push(received);
      received = new Uint8Array(0);
      for (const frame of result.write) await client.write(frame);
      established = result.established !== undefined;
    }
    await client.write(concatBytes(channel.encrypt(encoder.encode('{"type":"QUIT"}\n'))));
    for (;;) if ((await reader.next()).done) break;
  }, extension);
  assert.deepEqual(events.slice(1, 3), ["open 127.0.0.1 bob@lobby", "receive QUIT"]);
});

Deno.test("createTracker() closes a session whose handshake is garbage, late, or whose frame is forged", async () => {
  const { extension, events } = echoExtension();
  await withTracker({ handshakeTimeoutMs: 5_000 }, async ({ tracker, clock, lines }) => {
    const hello = encoder.encode(sessionHelloLine());
    // Garbage where handshake message 1 should be: a frame of 7 bytes is no X25519 key.
    const garbage = connect(tracker);
    const garbageReply = readAll(garbage);
    await garbage.write(concatBytes([hello, new Uint8Array([0, 7, 1, 2, 3, 4, 5, 6, 7])]));
    assert.equal(await garbageReply, sessionHelloReplyLine(0));
    // Silence after SESSION_HELLO: closed at the handshake deadline.
    const silent = connect(tracker);
    const silentReply = readAll(silent);
    await silent.write(hello);
    await tick();
    clock.advance(5_000);
    assert.equal(await silentReply, sessionHelloReplyLine(0));
    // An established session that receives a frame with a bad tag ends, and nothing is read.
    const raw = connect(tracker);
    const { conn } = await secureSession(raw, newSessionIdentity());
    const rest = readAll(conn);
    await raw.write(new Uint8Array([0, 20, ...new Uint8Array(20).fill(9)]));
    assert.equal(await rest, "");
    assert.ok(lines.some((line) => line.includes("Closing an encrypted session")));
    const metrics = tracker.metricsText();
    assert.match(metrics, /^p2pchat_tracker_session_handshakes_total\{result="failed"\} 2$/m);
    assert.ok(lines.some((line) => line.includes("Session handshake failed")));
  }, extension);
  assert.equal(events.filter((event) => event.startsWith("open")).length, 1);
  assert.ok(!events.some((event) => event.startsWith("receive")), "no forged line was read");
});

Deno.test("createTracker() proves the identity it is given and reports its fingerprint", async () => {
  const { extension } = echoExtension();
  const given = newSessionIdentity().identity;
  const identity = { ...given, fingerprint: fingerprint(given.publicKey), path: "" };
  const clock = new ManualClock();
  const tracker = createTracker(
    { host: "127.0.0.1", port: 0, rateLimit: false },
    { clock, log: memoryLogger().log, extension, identity },
  );
  await tracker.start();
  try {
    assert.equal(tracker.health().fingerprint, identity.fingerprint);
    const { conn, trackerKey } = await secureSession(connect(tracker), newSessionIdentity());
    conn.close();
    assert.deepEqual(trackerKey, given.publicKey);
  } finally {
    await tracker.stop();
  }
});

Deno.test("createTracker() lets the extension refuse a REGISTER after the pyp2p checks", async () => {
  const { extension } = echoExtension();
  await withTracker({}, async ({ tracker }) => {
    const line = (name: string, port: number) =>
      JSON.stringify({ type: "REGISTER", namespace: "ns", name, port }) + "\n";
    assert.deepEqual(await exchange(tracker, line("admin", 0)), {
      status: "ERROR",
      message: "bad_port",
    });
    assert.deepEqual(await exchange(tracker, line("admin", 1)), {
      status: "ERROR",
      message: "name_taken",
    });
    assert.deepEqual(await exchange(tracker, line("guest", 1)), {
      status: "OK",
      ttl: 7200,
      ip: "127.0.0.1",
      port: 1,
    });
    assert.deepEqual(tracker.registrations("ns").map((p) => p.name), ["guest"]);
  }, extension);
});
