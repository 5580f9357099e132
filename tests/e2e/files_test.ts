/**
 * Files between real peer processes: a file offered, accepted and verified byte for byte; a
 * transfer resumed after kill -9 of the receiver and then of the sender; chat during a large
 * transfer; decline and cancel; and the API's upload, download and preview.
 */
import assert from "node:assert/strict";
import { E2e, type PeerProcess } from "../_peer_process.ts";
import { LineClient } from "../_line_client.ts";

const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A file of `size` pseudo-random bytes (a PNG signature first when asked). */
async function makeFile(dir: string, name: string, size: number, png = false): Promise<string> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  if (png) bytes.set(PNG_HEAD);
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, bytes);
  return path;
}

async function sha256(path: string): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path))).toHex();
}

/** The 6-character id in a line such as "... /accept 3f2a9c ...". */
function shortId(line: string, verb: string): string {
  return new RegExp(`/${verb} ([0-9a-f]{6})`).exec(line)![1];
}

async function pair(e2e: E2e, extra: string[] = []): Promise<[PeerProcess, PeerProcess]> {
  const tracker = await e2e.tracker();
  const [ann, bob] = await e2e.peers([
    { name: "ann", namespace: "f", trackerPort: tracker.port, args: extra },
    { name: "bob", namespace: "f", trackerPort: tracker.port, args: extra },
  ]);
  await ann.waitForLine(/peer bob@f connected/);
  await bob.waitForLine(/peer ann@f connected/);
  return [ann, bob];
}

Deno.test("a file offered, accepted and saved under a safe name, verified byte for byte", async () => {
  const e2e = new E2e();
  try {
    const [ann, bob] = await pair(e2e);
    const dir = await e2e.tempDir();
    const path = await makeFile(dir, "holiday photo.png", 300_000, true);
    await ann.send(`/send bob ${path}`);
    await ann.waitForLine(/offered holiday photo\.png \(300\.0 kB, image\/png\) to bob@f/);
    const offer = await bob.waitForLine(/ann@f offers holiday photo\.png .*\/accept/);
    // The type is read from the content: an offer names none until bytes arrive.
    await bob.send(`/accept ${shortId(offer.line, "accept")}`);
    const done = await bob.waitForLine(
      /received holiday photo\.png from ann@f, verified: saved as (.+)$/,
    );
    const saved = done.match[1];
    assert.equal(saved, `${bob.dataDir}/downloads/holiday photo.png`);
    assert.equal(await sha256(saved), await sha256(path));
    await ann.waitForLine(/bob@f received holiday photo\.png, verified/);
    // The transfer is a message in both conversations.
    await bob.send("/transfers");
    await bob.waitForLine(/from\s+ann@f\s+300\.0\skB\s+done\s+100%\s+holiday photo\.png$/);
    // A second file of the same name never replaces the first.
    await ann.send(`/send bob ${path}`);
    const again = await bob.waitForLine(
      /ann@f offers holiday photo\.png/,
      undefined,
      offer.index + 1,
    );
    await bob.send(`/accept ${shortId(again.line, "accept")}`);
    await bob.waitForLine(/verified: saved as .*holiday photo \(1\)\.png$/);
  } finally {
    await e2e.close();
  }
});

Deno.test("a plain pyp2p peer has no file protocol: /send to it is refused with a reason", async () => {
  const e2e = new E2e();
  try {
    const ann = await e2e.peer({ name: "ann", namespace: "f" });
    const pyp = await LineClient.connect(ann.port);
    e2e.defer(() => pyp.close());
    await pyp.ask({ type: "HELLO", peer_id: "pyp@f", features: ["ack"] });
    await ann.waitForLine(/peer pyp@f connected/);
    const path = await makeFile(await e2e.tempDir(), "x.bin", 10);
    await ann.send(`/send pyp@f ${path}`);
    await ann.waitForLine(
      /error: not sent to pyp@f: pyp@f cannot take files: it is a plain pyp2p peer/,
    );
  } finally {
    await e2e.close();
  }
});

Deno.test("decline, cancel and deleting the conversation end a transfer on both sides, and keep nothing", async () => {
  const e2e = new E2e();
  try {
    const [ann, bob] = await pair(e2e);
    const dir = await e2e.tempDir();
    const path = await makeFile(dir, "notes.bin", 50_000);
    await ann.send(`/send bob ${path}`);
    const offer = await bob.waitForLine(/ann@f offers notes\.bin .*\/decline ([0-9a-f]{6})/);
    await bob.send(`/decline ${offer.match[1]}`);
    await ann.waitForLine(/bob@f declined notes\.bin/);
    await ann.send(`/send bob ${path}`);
    const second = await bob.waitForLine(
      /ann@f offers notes\.bin .*\/decline ([0-9a-f]{6})/,
      undefined,
      offer.index + 1,
    );
    await ann.send(`/stop ${second.match[1]}`);
    await bob.waitForLine(/notes\.bin from ann@f cancelled \(cancelled\)/);
    await bob.send(`/accept ${second.match[1]}`);
    await bob.waitForLine(/error: Transfer [0-9a-f]+ is cancelled/);
    // Deleting the conversation stops an offer still open: nothing of it goes afterwards.
    await ann.send(`/send bob ${path}`);
    const third = await bob.waitForLine(
      /ann@f offers notes\.bin .*\/decline ([0-9a-f]{6})/,
      undefined,
      second.index + 1,
    );
    await ann.send("/forget bob");
    await ann.send("/forget bob");
    await ann.waitForLine(/deleted the conversation bob@f/);
    await bob.waitForLine(
      /notes\.bin from ann@f cancelled \(cancelled\)/,
      undefined,
      third.index + 1,
    );
    assert.deepEqual([...Deno.readDirSync(bob.dataDir)].filter((e) => e.name === "downloads"), []);
  } finally {
    await e2e.close();
  }
});

Deno.test("a transfer resumes after kill -9 of the receiver, then of the sender, to an identical file", async () => {
  const e2e = new E2e();
  try {
    const tracker = await e2e.tracker();
    const annDir = await e2e.tempDir();
    const bobDir = await e2e.tempDir();
    const start = (name: string, dataDir: string) =>
      e2e.peer({ name, namespace: "r", trackerPort: tracker.port, dataDir });
    let ann = await start("ann", annDir);
    let bob = await start("bob", bobDir);
    await ann.waitForLine(/peer bob@r connected/);
    const dir = await e2e.tempDir();
    const size = 96 * 1024 * 1024;
    const path = await makeFile(dir, "big.bin", size);
    await ann.send(`/send bob ${path}`);
    const offer = await bob.waitForLine(/ann@r offers big\.bin .*\/accept ([0-9a-f]{6})/);
    await bob.send(`/accept ${offer.match[1]}`);
    const partOf = async () => {
      for (const entry of Deno.readDirSync(`${bobDir}/transfers`)) {
        if (entry.name.endsWith(".part")) {
          return (await Deno.stat(`${bobDir}/transfers/${entry.name}`)).size;
        }
      }
      return 0;
    };
    const waitPart = async (atLeast: number) => {
      for (let i = 0; i < 600 && (await partOf()) < atLeast; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await waitPart(4 * 1024 * 1024);
    bob.kill("SIGKILL");
    await bob.waitForExit();
    const cut = await partOf();
    assert.ok(cut > 0 && cut < size, `${cut} bytes before the kill`);
    bob = await start("bob", bobDir);
    // Both sides say where it goes on from.
    await bob.waitForLine(/resuming big\.bin from ann@r at \d+%/);
    await ann.waitForLine(/resuming big\.bin to bob@r at \d+%/);
    await waitPart(cut + 4 * 1024 * 1024);
    ann.kill("SIGKILL");
    await ann.waitForExit();
    const resumedAt = await partOf();
    assert.ok(resumedAt > cut && resumedAt < size, `${resumedAt} bytes when the sender died`);
    ann = await start("ann", annDir);
    const done = await bob.waitForLine(
      /received big\.bin from ann@r, verified: saved as (.+)$/,
      60_000,
    );
    assert.equal(await sha256(done.match[1]), await sha256(path));
  } finally {
    await e2e.close();
  }
});

Deno.test("chat messages are delivered during a large transfer", async () => {
  const e2e = new E2e();
  try {
    const [ann, bob] = await pair(e2e, ["--auto-accept-mb", "1000"]);
    await ann.send("/add bob");
    await bob.send("/add ann");
    const dir = await e2e.tempDir();
    const path = await makeFile(dir, "video.bin", 256 * 1024 * 1024);
    await ann.send(`/send bob ${path}`);
    await bob.waitForLine(
      /-- receiving video\.bin \(.*\) from ann@f \(\/stop [0-9a-f]{6} cancels it\)/,
    );
    await bob.waitForLine(/video\.bin \d+%/);
    await ann.send("/msg bob while it moves");
    const shown = await bob.waitForLine(/\[dm\] ann@f: while it moves/);
    await ann.waitForLine(/delivered to bob@f \((\d+) ms\)/);
    const done = await bob.waitForLine(/received video\.bin from ann@f, verified/, 60_000);
    assert.ok(shown.index < done.index, "the message did not wait for the transfer to end");
  } finally {
    await e2e.close();
  }
});

Deno.test("the API uploads a streamed file, and the receiver downloads it and previews an image", async () => {
  const e2e = new E2e();
  try {
    const [ann, bob] = await pair(e2e, ["--http", "0"]);
    const token = async (peer: PeerProcess) => (await Deno.readTextFile(peer.tokenFile!)).trim();
    const call = async (peer: PeerProcess, path: string, init: RequestInit = {}) =>
      await fetch(`${peer.httpUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${await token(peer)}`, ...init.headers },
      });
    const dir = await e2e.tempDir();
    const path = await makeFile(dir, "cat.png", 100_000, true);
    const upload = await call(ann, "/api/transfers?to=bob&name=cat.png", {
      method: "POST",
      body: (await Deno.open(path)).readable,
    });
    assert.equal(upload.status, 201, await upload.clone().text());
    const sent = await upload.json();
    assert.equal(sent.type, "image/png");
    assert.equal(sent.name, "cat.png");
    await bob.waitForLine(/ann@f offers cat\.png/);
    const accepted = await call(bob, `/api/transfers/${sent.id}/accept`, { method: "POST" });
    assert.equal(accepted.status, 200);
    await bob.waitForLine(/received cat\.png from ann@f, verified/);
    const file = await call(bob, `/api/transfers/${sent.id}/file`);
    assert.equal(file.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(new Uint8Array(await file.arrayBuffer()), await Deno.readFile(path));
    const preview = await call(bob, `/api/transfers/${sent.id}/file?inline=1`);
    assert.equal(preview.headers.get("content-type"), "image/png");
    assert.equal(preview.headers.get("x-content-type-options"), "nosniff");
    await preview.body?.cancel();
    const listed = await (await call(bob, "/api/transfers")).json();
    assert.equal(listed.transfers[0].state, "done");
    // The upload's copy is gone once the transfer ended.
    assert.deepEqual([...Deno.readDirSync(`${ann.dataDir}/uploads`)], []);
  } finally {
    await e2e.close();
  }
});
