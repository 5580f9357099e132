/**
 * End to end, real processes on loopback: a tracker with accounts and three peers driven
 * through standard input (pipe mode), plus a hand-written pyp2p-style peer. Covers sign-up,
 * login failures, the remembered login, the room life cycle with every push, room messages,
 * presence after kill -9, owned names, `#room` reaching a pyp2p peer of that namespace, and room
 * messages between connected members while the tracker is gone.
 */
import assert from "node:assert/strict";
import { request, startTrackerProcess, type TrackerProcess } from "../_tracker_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const WAIT_MS = 20_000;

/** A peer process in pipe mode: lines in, output lines collected. */
class PeerProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #output = "";
  #done: Promise<unknown>;
  #exited = false;

  constructor(readonly name: string, args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "peer", "--name", name, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const child = this.#child;
    this.#writer = child.stdin.getWriter();
    const stdout = (async () => {
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.#output += text;
      }
    })();
    const stderr = new Response(child.stderr).text();
    this.#done = Promise.all([stdout, stderr, child.status.then(() => this.#exited = true)]);
  }

  /** Everything it printed so far. */
  text(): string {
    return this.#output;
  }

  /** Where the output ends now: later waits look only past it. */
  mark(): number {
    return this.#output.length;
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Waits for a line matching `pattern` after `from`; returns it. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#output.slice(from).split("\n").find((text) => pattern.test(text));
      if (line !== undefined) return line;
      if (Date.now() > deadline || this.#exited) {
        throw new Error(`${this.name}: no line matching ${pattern}; output:\n${this.#output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends a command and waits for its answer. */
  async run(line: string, pattern: RegExp): Promise<string> {
    const from = this.mark();
    await this.send(line);
    return await this.waitFor(pattern, from);
  }

  /** Ends the process (SIGKILL by default) and waits for its pipes. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
    }
    await this.#writer.close().catch(() => {});
    await this.#done;
  }

  /** Quits through the UI and waits for the exit. */
  async quit(): Promise<void> {
    await this.send("/quit");
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.kill(), WAIT_MS);
    await this.#done;
    clearTimeout(timer);
  }
}

/** A pyp2p-style peer: registers in a namespace, answers HELLO, records PUBs. */
async function startRawPeer(trackerPort: number, namespace: string, name: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const pubs: Record<string, unknown>[] = [];
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        let buffer = "";
        try {
          for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
            buffer += chunk;
            let newline: number;
            while ((newline = buffer.indexOf("\n")) >= 0) {
              const message = JSON.parse(buffer.slice(0, newline));
              buffer = buffer.slice(newline + 1);
              if (message.type === "HELLO") {
                const reply = { type: "HELLO_OK", peer_id: `${name}@${namespace}`, version: "1.0" };
                await conn.write(new TextEncoder().encode(JSON.stringify(reply) + "\n"));
              } else if (message.type === "PUB") pubs.push(message);
            }
          }
        } catch {
          // Closed.
        } finally {
          conns.delete(conn);
        }
      })();
    }
  })();
  const reply = await request(trackerPort, { type: "REGISTER", namespace, name, port, ttl: 60 });
  assert.equal(reply.status, "OK");
  return {
    pubs,
    async close() {
      listener.close();
      for (const conn of conns) conn.close();
      await serving;
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("three peers sign up, log in and chat in a room, end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "e2e-rooms-" });
  let tracker: TrackerProcess | undefined;
  const peers: PeerProcess[] = [];
  let raw: Awaited<ReturnType<typeof startRawPeer>> | undefined;
  try {
    tracker = await startTrackerProcess([
      "--data-dir",
      `${dir}/tracker`,
      "--no-rate-limit",
      "--pbkdf2-iterations",
      "1000",
      "--heartbeat-window",
      "3",
    ]);
    const start = (name: string, dataDir = `${dir}/${name}`) => {
      const peer = new PeerProcess(name, [
        "--tracker",
        `127.0.0.1:${tracker!.port}`,
        "--host",
        "127.0.0.1",
        "--data-dir",
        dataDir,
        "--discover-interval",
        "1",
      ]);
      peers.push(peer);
      return peer;
    };
    const alice = start("alice");
    const bob = start("bob");
    let carol = start("carol");

    // Sign-up, and the same answer for a wrong password and an unknown user.
    await alice.run("/signup alice-secret", /^signed up and logged in as alice$/);
    await bob.run("/signup bob-secret", /^signed up and logged in as bob$/);
    await carol.run("/signup carol-secret", /^signed up and logged in as carol$/);
    await bob.run("/logout", /^logged out$/);
    const wrong = await bob.run("/login not-bobs-password", /^error: /);
    const nobody = start("nobody");
    const unknown = await nobody.run("/login whatever-password", /^error: /);
    assert.match(wrong, /login_failed/);
    assert.equal(unknown, wrong);
    await bob.run("/login bob-secret", /^logged in as bob$/);

    // A name owned by an account: anonymous REGISTER refused, and an impostor is told.
    const refused = await request(tracker.port, {
      type: "REGISTER",
      namespace: "default",
      name: "alice",
      port: 4000,
    });
    assert.deepEqual(refused, { status: "ERROR", message: "name_owned" });
    const impostor = start("alice", `${dir}/impostor`);
    await impostor.waitFor(
      /belongs to an account: \/login to use it if it is yours, else start again with another --name/,
    );
    await impostor.kill();

    // Room life cycle, with every push seen by each member online.
    let marks = [alice.mark(), bob.mark()];
    await alice.run("/create games", /^created room #games \(owner alice\)/);
    await bob.run("/join games", /^joined room #games: 2 members, 2 online/);
    await alice.waitFor(/-- bob joined #games$/, marks[0]);
    marks = [alice.mark(), bob.mark()];
    await carol.run("/join #games", /^joined room #games: 3 members, 3 online/);
    await alice.waitFor(/-- carol joined #games$/, marks[0]);
    await bob.waitFor(/-- carol joined #games$/, marks[1]);

    // The remembered login: carol restarts and is logged in again without a password.
    const mode = (await Deno.stat(`${dir}/carol/session-token`)).mode! & 0o777;
    assert.equal(mode, 0o600);
    marks = [alice.mark(), bob.mark()];
    await carol.quit();
    await alice.waitFor(/-- carol went offline in #games$/, marks[0]);
    carol = start("carol");
    await carol.waitFor(/-- logged in as carol \(remembered login\)$/);
    await alice.waitFor(/-- carol is online in #games \(/, marks[0]);
    await bob.waitFor(/-- carol is online in #games \(/, marks[1]);
    // Online (the tracker says so) is not yet connected: the room message below needs both.
    await alice.waitFor(/-- peer carol@default connected/, marks[0]);
    await bob.waitFor(/-- peer carol@default connected/, marks[1]);
    // Its first REGISTER waited for the login, so the tracker never refused its own name.
    assert.doesNotMatch(carol.text(), /name_owned/);
    await carol.run("/pub #games", /^conversation: #games$/);

    // A room message reaches every online member; the sender is told how many.
    marks = [bob.mark(), carol.mark()];
    await alice.run("hello room", /^reached 2 peers in #games \(2 encrypted, 0 in clear\): /);
    await bob.waitFor(/\[#games\] alice@default: hello room$/, marks[0]);
    await carol.waitFor(/\[#games\] alice@default: hello room$/, marks[1]);

    // Only the owner deletes.
    assert.match(await bob.run("/delete games", /^error: /), /not_owner/);

    // A file sent to the room is offered to each member online.
    await Deno.writeTextFile(`${dir}/agenda.txt`, "1. games\n");
    marks = [bob.mark(), carol.mark()];
    await alice.send(`/send #games ${dir}/agenda.txt`);
    await bob.waitFor(/alice@default offers agenda\.txt \(9 B/, marks[0]);
    await carol.waitFor(/alice@default offers agenda\.txt \(9 B/, marks[1]);

    // A pyp2p peer registered in namespace "games" takes part in #games.
    raw = await startRawPeer(tracker.port, "games", "pyraw");
    await alice.waitFor(/-- peer pyraw@games connected/);
    await alice.run(
      "/pub #games to everyone",
      /^reached 3 peers in #games \(2 encrypted, 1 in clear\): /,
    );
    await until(
      () => raw!.pubs.some((pub) => pub.dst === "#games" && pub.payload === "to everyone"),
      "the PUB at the pyp2p peer",
    );

    // Leaving and joining again, pushed to the others.
    marks = [alice.mark(), carol.mark()];
    await bob.run("/leave", /^left room #games; owner: alice$/);
    await alice.waitFor(/-- bob left #games; owner: alice$/, marks[0]);
    await carol.waitFor(/-- bob left #games; owner: alice$/, marks[1]);
    marks = [alice.mark(), carol.mark()];
    await bob.run("/join games", /^joined room #games/);
    await alice.waitFor(/-- bob joined #games$/, marks[0]);
    await carol.waitFor(/-- bob joined #games$/, marks[1]);

    // kill -9: the others see carol offline (the window is 3 s).
    marks = [alice.mark(), bob.mark()];
    await carol.kill("SIGKILL");
    await alice.waitFor(/-- carol went offline in #games$/, marks[0]);
    await bob.waitFor(/-- carol went offline in #games$/, marks[1]);
    assert.match(await alice.run("/users", /^carol /), /^carol\s+offline\s/);

    // The owner deletes the room; the members online are told.
    marks = [bob.mark()];
    await alice.run("/delete games", /^deleted room #games$/);
    await bob.waitFor(/-- #games was deleted by alice$/, marks[0]);
    await alice.run("/rooms", /^no rooms$/);

    // The tracker goes away: told once, and members still connected keep chatting in a room.
    await alice.run("/create tea", /^created room #tea/);
    marks = [alice.mark()];
    await bob.run("/join tea", /^joined room #tea/);
    await alice.waitFor(/-- bob joined #tea$/, marks[0]);
    marks = [alice.mark(), bob.mark()];
    await tracker.stop();
    await alice.waitFor(
      /-- tracker session lost \(.*\); reconnecting in the background$/,
      marks[0],
    );
    await alice.run(
      "/pub #tea still here",
      /^reached 1 peer in #tea \(1 encrypted, 0 in clear\): bob@default/,
    );
    await bob.waitFor(/\[#tea\] alice@default: still here$/, marks[1]);
  } finally {
    await Promise.all(peers.map((peer) => peer.kill()));
    await raw?.close();
    await tracker?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
