/**
 * Encrypted tracker sessions against the real `p2pchat tracker` process over loopback: the
 * handshake with the printed key, sign-up, login, key lookups and registration inside the
 * session, the refusal of sessions in clear, and the tracker's identity file.
 */
import assert from "node:assert/strict";
import { base64 } from "../../lib/bytes.ts";
import { formatLine, LineDecoder } from "../../lib/framing.ts";
import { fingerprint } from "../../lib/noise/mod.ts";
import type { SessionIdentity } from "../../lib/secure_session.ts";
import { type Conn, TcpConn } from "../../lib/transport.ts";
import { newSessionIdentity, secureSession } from "../_session_identity.ts";
import { request, runTrackerCli, startTrackerProcess } from "../_tracker_process.ts";

type Message = Record<string, unknown>;

/** A Conn that keeps a copy of every byte it writes and reads: what a wire capture would see. */
class RecordingConn implements Conn {
  readonly captured: Uint8Array[] = [];

  constructor(readonly inner: Conn) {}

  get remote() {
    return this.inner.remote;
  }
  get local() {
    return this.inner.local;
  }
  get closed() {
    return this.inner.closed;
  }

  async *chunks(): AsyncIterable<Uint8Array> {
    for await (const chunk of this.inner.chunks()) {
      this.captured.push(chunk.slice());
      yield chunk;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    this.captured.push(bytes.slice());
    return this.inner.write(bytes);
  }

  close(): void {
    this.inner.close();
  }

  /** Everything captured, as Latin-1 text so that any byte sequence can be searched. */
  text(): string {
    return this.captured.map((bytes) => String.fromCharCode(...bytes)).join("");
  }
}

/** An encrypted session to the tracker at `port`, reading replies line by line. */
class SessionLines {
  #next = 1;
  readonly #decoder = new LineDecoder();
  readonly #lines: string[] = [];

  private constructor(
    readonly conn: Conn,
    readonly trackerKey: Uint8Array,
    readonly reader: AsyncIterator<Uint8Array>,
    readonly wire: RecordingConn,
  ) {}

  static async open(port: number, who: SessionIdentity): Promise<SessionLines> {
    const tcp = new TcpConn(await Deno.connect({ hostname: "127.0.0.1", port }));
    const wire = new RecordingConn(tcp);
    const { conn, trackerKey } = await secureSession(wire, who);
    return new SessionLines(conn, trackerKey, conn.chunks()[Symbol.asyncIterator](), wire);
  }

  /** Sends a command and waits for its reply (events before it are skipped). */
  async request(type: string, fields: Message = {}): Promise<Message> {
    const id = this.#next++;
    await this.conn.write(new TextEncoder().encode(formatLine({ type, id, ...fields })));
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) {
        const message = JSON.parse(line);
        if (message.type === "SESSION_REPLY" && message.id === id) return message;
        continue;
      }
      const next = await this.reader.next();
      if (next.done) throw new Error(`The session closed before the reply to ${type}`);
      for (const frame of this.#decoder.push(next.value)) {
        if (frame.kind === "line") this.#lines.push(frame.text);
      }
    }
  }

  close(): void {
    this.conn.close();
  }
}

Deno.test("an encrypted session to the tracker process signs up, logs in, looks up keys and registers", async () => {
  const dataDir = await Deno.makeTempDir();
  const tracker = await startTrackerProcess([
    "--data-dir",
    dataDir,
    "--no-rate-limit",
    "--pbkdf2-iterations",
    "1000",
    "--http",
    "127.0.0.1:0",
  ]);
  const sessions: SessionLines[] = [];
  const open = async (who: SessionIdentity) => {
    const session = await SessionLines.open(tracker.port, who);
    sessions.push(session);
    return session;
  };
  try {
    const alice = newSessionIdentity("alice@lobby");
    const first = await open(alice);
    assert.equal(fingerprint(first.trackerKey), tracker.fingerprint);
    const signup = await first.request("SESSION_SIGNUP", {
      username: "alice",
      password: "correct horse",
      port: 7001,
      peer_id: "alice@lobby",
    });
    assert.equal(signup.status, "OK");
    assert.equal(signup.identity_key, base64(alice.identity.publicKey));

    const second = await open(alice);
    const login = await second.request("SESSION_LOGIN", {
      username: "alice",
      password: "correct horse",
    });
    assert.equal(login.status, "OK");
    assert.equal(typeof login.token, "string");

    const impostor = await open(newSessionIdentity("alice@lobby"));
    const refused = await impostor.request("SESSION_LOGIN", {
      username: "alice",
      password: "correct horse",
    });
    assert.equal(refused.code, "key_mismatch");
    const keys = await impostor.request("SESSION_KEYS", { usernames: ["alice", "bob"] });
    assert.deepEqual(keys.keys, { alice: base64(alice.identity.publicKey), bob: null });

    const registered = await second.request("SESSION_REGISTER", {
      namespace: "lobby",
      name: "alice",
      port: 7001,
      ttl: 60,
    });
    assert.deepEqual(
      [registered.status, registered.ip, registered.port, registered.ttl],
      ["OK", "127.0.0.1", 7001, 60],
    );
    const listed = async () =>
      ((await request(tracker.port, { type: "DISCOVER", namespace: "lobby" })).peers as Message[])
        .map((peer) => peer.name);
    assert.deepEqual(await listed(), ["alice"]);

    // In clear, an owned name can be neither registered nor removed, whatever the request holds.
    const plain = { namespace: "lobby", name: "alice", port: 7002 };
    assert.deepEqual(
      await request(tracker.port, { type: "REGISTER", ...plain, token: login.token }),
      { status: "ERROR", message: "name_owned" },
    );
    assert.deepEqual(await request(tracker.port, { type: "UNREGISTER", ...plain, port: 7001 }), {
      status: "ERROR",
      message: "name_owned",
    });
    assert.deepEqual(await listed(), ["alice"]);

    // A session opened in clear is refused before any password is read.
    const clear = await request(tracker.port, {
      type: "SESSION_LOGIN",
      id: 1,
      username: "alice",
      password: "correct horse",
    });
    assert.deepEqual([clear.type, clear.id, clear.status, clear.code], [
      "SESSION_REPLY",
      1,
      "ERROR",
      "encryption_required",
    ]);

    const unregistered = await second.request("SESSION_UNREGISTER", { namespace: "lobby" });
    assert.equal(unregistered.status, "OK");
    assert.deepEqual(await listed(), []);

    // What crossed the network: no password, token, username or command in clear.
    for (const session of [first, second]) {
      const wire = session.wire.text();
      // The two lines in clear: SESSION_HELLO and the tracker's answer; then only frames.
      const clearEnd = wire.indexOf("\n", wire.indexOf("\n") + 1) + 1;
      assert.match(
        wire.slice(0, clearEnd),
        /^\{"type":"SESSION_HELLO".*\n\{"type":"SESSION_REPLY"/s,
      );
      for (const secret of ["correct horse", login.token as string, "alice", "SESSION_"]) {
        assert.equal(wire.slice(clearEnd).includes(secret), false, `"${secret}" in clear`);
      }
    }

    const metrics = await (await fetch(`${tracker.httpUrl}/metrics`)).text();
    assert.match(metrics, /^p2pchat_tracker_session_handshakes_total\{result="ok"\} 3$/m);
  } finally {
    for (const session of sessions) session.close();
    await tracker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the tracker process prints its key fingerprint, serves it in /health and keeps it across restarts", async () => {
  const dataDir = await Deno.makeTempDir();
  const args = ["--data-dir", dataDir, "--no-rate-limit", "--http", "127.0.0.1:0"];
  try {
    const first = await startTrackerProcess(args);
    let printed: string;
    try {
      printed = first.fingerprint;
      assert.match(printed, /^[0-9a-z]{4}( [0-9a-z]{4})+$/);
      const health = await (await fetch(`${first.httpUrl}/health`)).json();
      assert.equal(health.fingerprint, printed);
    } finally {
      await first.stop();
    }
    assert.equal((await Deno.stat(`${dataDir}/identity.json`)).mode! & 0o777, 0o600);
    const second = await startTrackerProcess(args);
    try {
      assert.equal(second.fingerprint, printed);
      const session = await SessionLines.open(second.port, newSessionIdentity());
      session.close();
      assert.equal(fingerprint(session.trackerKey), printed);
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the tracker process refuses to start with a damaged identity.json, and keeps the file", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dataDir}/identity.json`, '{"version":1,"algorithm":"Ed25519"');
    const { code, stderr } = await runTrackerCli([
      "--data-dir",
      dataDir,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /The identity key ".*identity\.json" is damaged \(not JSON\)/);
    assert.equal(
      await Deno.readTextFile(`${dataDir}/identity.json`),
      '{"version":1,"algorithm":"Ed25519"',
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
