/**
 * `deno task bench abuse`: a normal client's latency and the server's resident memory under each
 * flood of issue #10, beside the same figures without it. Real processes on loopback: a tracker
 * and a peer process; the floods come from other loopback addresses (127.0.0.5 ...) through
 * node:net, the normal client from 127.0.0.1. Targets: p99 under a flood at most 3x the quiet
 * one; resident memory after the flood within 20% of the start.
 */
import net from "node:net";
import { createLogger } from "../lib/log.ts";
import { createPeerNode } from "../peer/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PROBES = 150;
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

/** One request on a fresh connection from 127.0.0.1; resolves to the reply line. */
function rendezvous(port: number, message: Record<string, unknown>): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    socket.on("connect", () => socket.write(JSON.stringify(message) + "\n"));
    socket.on("data", (data) => reply += String(data));
    socket.on("error", () => resolve(reply || "error"));
    socket.on("close", () => resolve(reply));
  });
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))];
}

/** REGISTER and DISCOVER p99 (ms) of a normal client, and how many failed. */
async function probeTracker(port: number) {
  const register: number[] = [];
  const discover: number[] = [];
  let failed = 0;
  for (let index = 0; index < PROBES; index++) {
    let started = performance.now();
    const ok1 = (await rendezvous(port, {
      type: "REGISTER",
      namespace: "bench",
      name: "normal",
      port: 7001,
    })).includes('"OK"');
    register.push(performance.now() - started);
    started = performance.now();
    const ok2 = (await rendezvous(port, { type: "DISCOVER", namespace: "bench" })).includes(
      '"OK"',
    );
    discover.push(performance.now() - started);
    if (!ok1 || !ok2) failed++;
  }
  return { register: p99(register), discover: p99(discover), failed };
}

/** A flood connection from `localAddress`; `paused` ones never read. */
function floodSocket(port: number, localAddress: string, paused = false): net.Socket {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  socket.on("error", () => {});
  if (paused) socket.pause();
  else socket.on("data", () => {});
  return socket;
}

async function session(port: number, lines: Record<string, unknown>[]): Promise<string[]> {
  return await new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let text = "";
    socket.on("connect", () => socket.write(lines.map((l) => JSON.stringify(l) + "\n").join("")));
    socket.on("data", (data) => {
      text += String(data);
      const replies = text.split("\n").filter(Boolean);
      if (replies.length >= lines.length) {
        socket.destroy();
        resolve(replies);
      }
    });
    socket.on("error", () => resolve(text.split("\n")));
  });
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
  probe: () => Promise<{ p99: number; failed: number; label: string }>,
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
    quiet: `${quiet.label} ${quiet.p99.toFixed(1)} ms`,
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
  const peerParts: (() => Promise<void>)[] = [];
  try {
    const port = tracker.port;
    const [signup] = await session(port, [
      { type: "SESSION_SIGNUP", id: 1, username: "mallory", password: "long enough" },
    ]);
    const token = JSON.parse(signup).token as string;
    const trackerProbe = async () => {
      const result = await probeTracker(port);
      return { p99: Math.max(result.register, result.discover), failed: result.failed, label: "" };
    };

    rows.push(
      await scenario("1,024 SESSION_RESUME with one token", tracker.pid, trackerProbe, () => {
        const sockets = Array.from({ length: 1024 }, (_, index) => {
          const socket = floodSocket(port, "127.0.0.5");
          socket.on("connect", () => {
            socket.write(JSON.stringify({ type: "SESSION_RESUME", id: index, token }) + "\n");
          });
          return socket;
        });
        const beat = setInterval(() => {
          for (const socket of sockets) {
            socket.write(JSON.stringify({ type: "SESSION_HEARTBEAT", id: 0 }) + "\n");
          }
        }, 1000);
        return Promise.resolve(() => {
          clearInterval(beat);
          sockets.forEach((socket) => socket.destroy());
        });
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
      await scenario("50 sessions that never read", tracker.pid, trackerProbe, () => {
        // Each sends junk lines as fast as it can and reads none of the error replies.
        const junk = '{"type":"SESSION_HEARTBEAT"}\n'.repeat(2000);
        const sockets = Array.from({ length: 50 }, () => floodSocket(port, "127.0.0.7", true));
        const pump = setInterval(() => {
          for (const socket of sockets) if (socket.writableLength < 1 << 20) socket.write(junk);
        }, 20);
        return Promise.resolve(() => {
          clearInterval(pump);
          sockets.forEach((socket) => socket.destroy());
        });
      }),
    );

    // 200 rooms, so that each SESSION_ROOMS lists a full page.
    const roomLines = Array.from({ length: 200 }, (_, index) => ({
      type: "SESSION_ROOM_CREATE",
      id: index + 2,
      room: `room${index}`,
    }));
    await session(port, [{ type: "SESSION_RESUME", id: 1, token }, ...roomLines]);
    rows.push(
      await scenario("a client pipelining SESSION_ROOMS", tracker.pid, trackerProbe, async () => {
        const socket = floodSocket(port, "127.0.0.8");
        await new Promise((resolve) => socket.on("connect", resolve));
        socket.write(JSON.stringify({ type: "SESSION_RESUME", id: 0, token }) + "\n");
        const rooms = JSON.stringify({ type: "SESSION_ROOMS", id: 1, limit: 500 }) + "\n";
        const pump = setInterval(() => {
          if (socket.writableLength < 1 << 16) socket.write(rooms.repeat(32));
        }, 1);
        return () => {
          clearInterval(pump);
          socket.destroy();
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
    // Registered with the tracker, so the target lists it: a known peer, not a stranger.
    const sender = createPeerNode(
      {
        name: "sender",
        namespace: "bench",
        host: "127.0.0.1",
        port: 0,
        tracker: { hostname: "127.0.0.1", port },
      },
      { log: createLogger({ level: "error" }) },
    );
    await sender.start();
    peerParts.push(() => sender.stop());
    sender.addPeer("target", "bench", { hostname: "127.0.0.1", port: peer.port });
    const peerProbe = async () => {
      const samples: number[] = [];
      let failed = 0;
      for (let index = 0; index < PROBES; index++) {
        const started = performance.now();
        const result = await sender.send("target@bench", `probe ${index}`);
        samples.push(performance.now() - started);
        if (!result.ok) failed++;
      }
      return { p99: p99(samples), failed, label: "" };
    };
    await peerProbe(); // connects and warms up
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
}
