/**
 * `deno task bench abuse`: a normal client's latency and the server's resident memory under each
 * flood of issue #10, beside the same figures without it. Real processes on loopback: a tracker
 * and a peer process; the floods come from other loopback addresses (127.0.0.5 ...) through
 * node:net, the normal client from 127.0.0.1, in a worker (bench_abuse_probe.ts). Targets: p99 under a flood at most 3x the quiet
 * one; resident memory after the flood within 20% of the start.
 */
import net from "node:net";
import { encodeLine, encodeLines, formatLine, LineDecoder } from "../lib/framing.ts";
import {
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
} from "../lib/noise/mod.ts";
import type { SecureConn } from "../lib/secure_conn.ts";
import { openSecureSession, type SessionIdentity } from "../lib/secure_session.ts";
import type { Conn } from "../lib/transport.ts";
import { type ProbeResult, PROBES, startProbeWorker } from "./bench_abuse_probe.ts";
import { connectFrom, type NetConn } from "./net_conn.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const FLOOD_SECONDS = 3;

interface Child {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** Starts `main.ts ARGS` and waits for the line that says its port. */
async function spawn(args: string[], portLine: RegExp): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let match: RegExpExecArray | null = null;
  while (!(match = portLine.exec(text))) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args[0]} exited before listening`);
    text += value;
  }
  const drained = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    pid: child.pid,
    port: Number(match[1]),
    async stop() {
      child.kill("SIGTERM");
      await child.stdin.close().catch(() => {});
      await child.status;
      await drained;
    },
  };
}

/** Resident memory of a process, in MB (through `ps`: reading /proc needs --allow-all). */
async function rssMb(pid: number): Promise<number> {
  const output = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(output.stdout).trim()) / 1024;
}

/** A flood connection from `localAddress`; `paused` ones never read. */
function floodSocket(port: number, localAddress: string, paused = false): net.Socket {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  socket.on("error", () => {});
  if (paused) socket.pause();
  else socket.on("data", () => {});
  return socket;
}

/** How long a flood or a set-up step may take to open its sessions and get its answers. */
const SETUP_MS = 20_000;

/** An encrypted tracker session over a node:net socket, and its lines as they arrive. */
interface FloodSession {
  raw: NetConn;
  conn: SecureConn;
  lines: AsyncIterator<string>;
}

/** A fresh Ed25519 identity and X25519 static key proving `localId`. */
function newIdentity(localId: string): SessionIdentity {
  return {
    identity: identityFromPrivateKey(generateIdentityKeyPair().privateKey),
    staticKeyPair: generateStaticKeyPair(),
    localId,
  };
}

/**
 * Runs `step` on `raw`; when the signal fires first, closes `raw` (which ends every read) and
 * rejects saying what did not finish in time. Any failure closes `raw`.
 */
async function _bounded<T>(
  raw: NetConn,
  signal: AbortSignal,
  what: string,
  step: () => Promise<T>,
): Promise<T> {
  const onAbort = () => raw.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) raw.close();
    return await step();
  } catch (error) {
    raw.close();
    if (signal.aborted) throw new Error(`${what}: no answer within ${SETUP_MS} ms`);
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Connects from `localAddress` and opens an encrypted session proving `who`. */
async function openSession(
  port: number,
  localAddress: string,
  who: SessionIdentity,
  signal: AbortSignal,
): Promise<FloodSession> {
  let raw: NetConn;
  try {
    raw = await connectFrom("127.0.0.1", port, localAddress, { signal });
  } catch (error) {
    if (signal.aborted) throw new Error(`Connecting from ${localAddress}: no answer in time`);
    throw error;
  }
  const { conn } = await _bounded(
    raw,
    signal,
    `Encrypted session from ${localAddress}`,
    () => openSecureSession(raw, who),
  );
  return { raw, conn, lines: _lines(conn) };
}

/** Sends `messages` in one write and reads as many replies (in the order they come). */
function ask(
  session: FloodSession,
  messages: Record<string, unknown>[],
  signal: AbortSignal,
): Promise<Record<string, unknown>[]> {
  const what = `${messages.length} replies to ${messages[0]?.type}`;
  return _bounded(session.raw, signal, what, async () => {
    await session.conn.write(encodeLines(messages.map(formatLine)));
    const replies: Record<string, unknown>[] = [];
    while (replies.length < messages.length) {
      const next = await session.lines.next();
      if (next.done) {
        throw new Error(`${what}: the tracker closed the session after ${replies.length}`);
      }
      const reply = JSON.parse(next.value);
      // Events (SESSION_EVENT) may come between the replies.
      if (reply.type === "SESSION_REPLY") replies.push(reply);
    }
    return replies;
  });
}

async function* _lines(conn: Conn): AsyncGenerator<string> {
  const decoder = new LineDecoder();
  try {
    for await (const chunk of conn.chunks()) {
      for (const frame of decoder.push(chunk)) if (frame.kind === "line") yield frame.text;
    }
  } catch {
    // A closed or failed session ends the lines.
  }
}

/** One encrypted session from 127.0.0.1 that sends `messages` and returns the replies. */
async function session(
  port: number,
  who: SessionIdentity,
  messages: Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  const signal = AbortSignal.timeout(SETUP_MS);
  const opened = await openSession(port, "127.0.0.1", who, signal);
  try {
    return await ask(opened, messages, signal);
  } finally {
    opened.raw.close();
  }
}

/** Throws unless `reply` is an OK SESSION_REPLY, saying what `what` got instead. */
function _expectOk(what: string, reply: Record<string, unknown>): void {
  if (reply.status !== "OK") throw new Error(`${what} failed: ${JSON.stringify(reply)}`);
}

/**
 * Opens `count` sessions from `localAddress` at once, each proving `who`; `first` (if any) is
 * sent on each and its reply kept. Those that cannot open (the tracker's per-address and
 * session limits refuse some, as intended) are counted; none at all fails the flood.
 */
async function openFlood(
  port: number,
  localAddress: string,
  count: number,
  who: SessionIdentity,
  first?: (index: number) => Record<string, unknown>,
): Promise<{ sessions: FloodSession[]; replies: Record<string, unknown>[]; refused: number }> {
  const signal = AbortSignal.timeout(SETUP_MS);
  const sessions: FloodSession[] = [];
  const replies: Record<string, unknown>[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: count }, async (_, index) => {
      const opened = await openSession(port, localAddress, who, signal);
      sessions.push(opened);
      if (first) replies.push(...await ask(opened, [first(index)], signal));
    }),
  );
  const failures = results.filter((result) => result.status === "rejected");
  const live = sessions.filter((opened) => !opened.raw.closed);
  if (live.length === 0) {
    sessions.forEach((opened) => opened.raw.close());
    const reason = failures.length > 0 ? String(failures[0].reason) : "no reason";
    throw new Error(`No session from ${localAddress} could be opened (${reason})`);
  }
  return { sessions, replies, refused: failures.length };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Row {
  flood: string;
  quiet: string;
  under: string;
  ratio: number;
  failed: number;
  memory: string;
}

/** Runs one flood: measures quiet, starts it, measures under it, stops it, measures memory. */
async function scenario(
  flood: string,
  pid: number,
  probe: () => Promise<ProbeResult>,
  start: () => Promise<() => void>,
): Promise<Row> {
  const quiet = await probe();
  const before = await rssMb(pid);
  const stop = await start();
  await sleep(500);
  const under = await probe();
  const peak = await rssMb(pid);
  await sleep(FLOOD_SECONDS * 1000);
  stop();
  await sleep(2000);
  const after = await rssMb(pid);
  return {
    flood,
    quiet: `${quiet.p99.toFixed(1)} ms`,
    under: `${under.p99.toFixed(1)} ms`,
    ratio: under.p99 / quiet.p99,
    failed: under.failed,
    memory: `${before.toFixed(0)} -> ${peak.toFixed(0)} -> ${after.toFixed(0)} MB (${
      ((after / before - 1) * 100).toFixed(0)
    }%)`,
  };
}

/** Every flood against a tracker process, then against a peer process. */
export async function benchAbuse(): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "p2pchat-bench-abuse-" });
  const tracker = await spawn(
    [
      "tracker",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--no-rate-limit",
      "--pbkdf2-iterations",
      "1000",
      "--data-dir",
      `${dataDir}/tracker`,
    ],
    /listening on .+:(\d+)/,
  );
  const rows: Row[] = [];
  // What each session flood managed to open, printed under the table.
  const notes: string[] = [];
  const peerParts: (() => Promise<void>)[] = [];
  const probes = startProbeWorker();
  try {
    const port = tracker.port;
    // Keys are bound to accounts: every session resuming mallory's token proves this identity.
    const mallory = newIdentity("mallory@bench");
    const [signup] = await session(port, mallory, [
      { type: "SESSION_SIGNUP", id: 1, username: "mallory", password: "long enough" },
    ]);
    _expectOk("SESSION_SIGNUP", signup);
    const token = signup.token as string;
    const trackerProbe = () => probes.ask({ kind: "tracker", port });

    rows.push(
      await scenario("1,024 SESSION_RESUME with one token", tracker.pid, trackerProbe, async () => {
        const { sessions, replies, refused } = await openFlood(
          port,
          "127.0.0.5",
          1024,
          mallory,
          (index) => ({ type: "SESSION_RESUME", id: index, token }),
        );
        const resumed = replies.filter((reply) => reply.status === "OK").length;
        if (resumed === 0) {
          sessions.forEach((opened) => opened.raw.close());
          throw new Error(`No SESSION_RESUME succeeded: ${JSON.stringify(replies[0])}`);
        }
        notes.push(
          `1,024 SESSION_RESUME: ${sessions.length} sessions opened (${refused} refused or ` +
            `closed), ${resumed} resumed, ${replies.length - resumed} refused the login`,
        );
        // Their replies are not read: dropped as they come, as a client that ignores them.
        sessions.forEach((opened) => opened.raw.discardReads());
        const heartbeat = encodeLine({ type: "SESSION_HEARTBEAT", id: 0 });
        const beat = setInterval(() => {
          for (const opened of sessions) {
            if (!opened.raw.closed) opened.conn.write(heartbeat).catch(() => {});
          }
        }, 1000);
        return () => {
          clearInterval(beat);
          sessions.forEach((opened) => opened.raw.close());
        };
      }),
    );

    rows.push(
      await scenario("1,100 slow clients (a byte per 400 ms)", tracker.pid, trackerProbe, () => {
        const sockets = Array.from({ length: 1100 }, () => floodSocket(port, "127.0.0.6"));
        const drip = setInterval(() => sockets.forEach((socket) => socket.write("{")), 400);
        return Promise.resolve(() => {
          clearInterval(drip);
          sockets.forEach((socket) => socket.destroy());
        });
      }),
    );

    rows.push(
      await scenario("50 sessions that never read", tracker.pid, trackerProbe, async () => {
        // Each sends junk lines inside its encrypted channel as fast as it can and reads none
        // of the error replies: after the handshake its socket stays paused.
        const { sessions, refused } = await openFlood(
          port,
          "127.0.0.7",
          50,
          newIdentity("mute@bench"),
        );
        notes.push(`50 sessions that never read: ${sessions.length} opened, ${refused} refused`);
        sessions.forEach((opened) => opened.raw.stopReading());
        const junk = new TextEncoder().encode('{"type":"SESSION_HEARTBEAT"}\n'.repeat(2000));
        // Each keeps up to 1 MiB waiting (far more than the tracker reads of it meanwhile), and
        // no more: the kernel takes megabytes per socket, and encrypting junk to fill them all
        // took this process's CPU from the normal client measured beside it.
        const sent = new Map<SecureConn, number>();
        const pump = setInterval(() => {
          for (const { raw, conn } of sessions) {
            const total = sent.get(conn) ?? 0;
            if (!raw.closed && raw.socket.writableLength === 0 && total < 1 << 20) {
              sent.set(conn, total + junk.length);
              conn.write(junk).catch(() => {});
            }
          }
        }, 20);
        return () => {
          clearInterval(pump);
          sessions.forEach((opened) => opened.raw.close());
        };
      }),
    );

    // 200 rooms, so that each SESSION_ROOMS lists a full page; in batches, since a session may
    // have only so many requests waiting (more are refused with `busy`).
    const creator = await openSession(port, "127.0.0.1", mallory, AbortSignal.timeout(SETUP_MS));
    try {
      const signal = AbortSignal.timeout(SETUP_MS);
      const [resumed] = await ask(creator, [{ type: "SESSION_RESUME", id: 1, token }], signal);
      _expectOk("SESSION_RESUME", resumed);
      for (let start = 0; start < 200; start += 16) {
        const batch = Array.from({ length: Math.min(16, 200 - start) }, (_, offset) => ({
          type: "SESSION_ROOM_CREATE",
          id: start + offset + 2,
          room: `room${start + offset}`,
        }));
        const replies = await ask(creator, batch, signal);
        replies.forEach((reply) => _expectOk(`SESSION_ROOM_CREATE ${reply.id}`, reply));
      }
    } finally {
      creator.raw.close();
    }
    rows.push(
      await scenario("a client pipelining SESSION_ROOMS", tracker.pid, trackerProbe, async () => {
        const signal = AbortSignal.timeout(SETUP_MS);
        const client = await openSession(port, "127.0.0.8", mallory, signal);
        try {
          const [resumed] = await ask(client, [{ type: "SESSION_RESUME", id: 0, token }], signal);
          _expectOk("SESSION_RESUME from 127.0.0.8", resumed);
        } catch (error) {
          client.raw.close();
          throw error;
        }
        // The pages are read and dropped, as they come, without decrypting them.
        client.raw.discardReads();
        const rooms = formatLine({ type: "SESSION_ROOMS", id: 1, limit: 500 });
        const batch = new TextEncoder().encode(rooms.repeat(32));
        const pump = setInterval(() => {
          if (!client.raw.closed && client.raw.socket.writableLength < 1 << 16) {
            client.conn.write(batch).catch(() => {});
          }
        }, 1);
        return () => {
          clearInterval(pump);
          client.raw.close();
        };
      }),
    );

    // The peer: a process that a node in this process sends to.
    const peer = await spawn(
      [
        "peer",
        "--name",
        "target",
        "--namespace",
        "bench",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--tracker",
        `127.0.0.1:${port}`,
        "--data-dir",
        `${dataDir}/peer`,
        "--log-level",
        "error",
        "--discover-interval",
        "1",
      ],
      /listening on .+:(\d+)/,
    );
    peerParts.push(() => peer.stop());
    // The normal sender lives in the probe's worker; its first probe connects and warms up.
    await probes.ask({ kind: "peer-start", trackerPort: port, peerPort: peer.port });
    peerParts.push(() => probes.ask({ kind: "stop" }).then(() => {}));
    const peerProbe = () => probes.ask({ kind: "peer" });
    await sleep(2500); // the target's next DISCOVER lists the sender

    const hello = (id: string) =>
      JSON.stringify({ type: "HELLO", peer_id: id, version: "1.0", features: ["ack"], ttl: 1 }) +
      "\n";
    rows.push(
      await scenario("1,024 made-up HELLO ids with PINGs", peer.pid, peerProbe, () => {
        const sockets = Array.from({ length: 1024 }, (_, index) => {
          const socket = floodSocket(peer.port, "127.0.0.9");
          socket.on("connect", () => socket.write(hello(`fake${index}@bench`)));
          return socket;
        });
        const ping = setInterval(() => {
          const line = JSON.stringify({ type: "PING", msg_id: crypto.randomUUID(), ttl: 1 }) + "\n";
          sockets.forEach((socket) => socket.write(line));
        }, 1000);
        return Promise.resolve(() => {
          clearInterval(ping);
          sockets.forEach((socket) => socket.destroy());
        });
      }),
    );

    rows.push(
      await scenario("200 peer connections that never read", peer.pid, peerProbe, () => {
        const sockets = Array.from({ length: 200 }, (_, index) => {
          const socket = floodSocket(peer.port, "127.0.0.10", true);
          socket.on("connect", () => socket.write(hello(`mute${index}@bench`)));
          return socket;
        });
        // Built by concatenation: the generator shares this process with the sender measured.
        let seq = 0;
        const pump = setInterval(() => {
          for (const socket of sockets) {
            if (socket.destroyed || socket.writableLength > 1 << 18) continue;
            let lines = "";
            for (let i = 0; i < 200; i++) {
              lines += '{"type":"SEND","msg_id":"m' + seq++ +
                '","src":"mute@bench","dst":"target@bench","payload":"x","require_ack":true,"ttl":1}\n';
            }
            socket.write(lines);
          }
        }, 20);
        return Promise.resolve(() => {
          clearInterval(pump);
          sockets.forEach((socket) => socket.destroy());
        });
      }),
    );
  } finally {
    for (const part of peerParts.reverse()) await part();
    probes.close();
    await tracker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }

  console.log(
    "Normal client under each flood (tracker: max of REGISTER and DISCOVER p99; peer: SEND->ACK " +
      "p99), target at most 3x; server RSS start -> during -> 2 s after, target within 20%",
  );
  const header = ["flood", "quiet p99", "flood p99", "ratio", "failed", "server RSS"];
  const table = rows.map((row) => [
    row.flood,
    row.quiet.trim(),
    row.under,
    `${row.ratio.toFixed(2)}x`,
    `${row.failed}/${PROBES}`,
    row.memory,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...table.map((row) => row[column].length))
  );
  for (const row of [header, ...table]) {
    console.log(row.map((cell, column) => cell.padEnd(widths[column])).join("  "));
  }
  for (const note of notes) console.log(note);
}
