/**
 * The transfer routes of the local HTTP API over the real transfers of a peer whose only
 * other side is absent: checks of what a script sends, an upload kept only while it is
 * offered, and downloads that serve nothing before a file is verified.
 */
import assert from "node:assert/strict";
import { ManualClock, systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import { mountFileApi } from "../../peer/http/file_routes.ts";
import { createPeerApi } from "../../peer/http/routes.ts";
import { openTransfers } from "../../peer/files/transfers.ts";
import type { FileChannel } from "../../peer/node/mod.ts";
import { FakePeerNode } from "../_fake_node.ts";

const TOKEN = "b".repeat(64);

async function setup(connected: Set<string>) {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-http-files-" });
  const sent: Record<string, unknown>[] = [];
  const files = await openTransfers(
    { stateDir: `${dir}/transfers`, downloadsDir: `${dir}/downloads`, autoAcceptBytes: 0 },
    {
      node: {
        peerId: "alice@lobby",
        fileChannel: (peerId): FileChannel | "not_connected" | "no_files" =>
          peerId === "pyp@lobby" ? "no_files" : !connected.has(peerId) ? "not_connected" : {
            send: (fields) => sent.push(fields) > 0,
            records: false,
            sendRecord: () => false,
            queuedBytes: () => 0,
            wantDrain() {},
          },
        subscribe: () => () => {},
      },
      clock: systemClock,
      log: memoryLogger("error").log,
      isContact: () => false,
    },
  );
  const app = createPeerApi(new FakePeerNode("alice", "lobby"), {
    token: TOKEN,
    log: memoryLogger("error").log,
    clock: new ManualClock(),
  });
  mountFileApi(app, files, { dataDir: dir, namespace: "lobby" });
  const call = (path: string, init: RequestInit = {}) =>
    app.request(`http://127.0.0.1:7001${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers as Record<string, string> },
    });
  return {
    dir,
    files,
    sent,
    call,
    async close() {
      await files.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function errorCode(response: Response): Promise<[number, string]> {
  return [response.status, (await response.json()).error.code];
}

Deno.test("POST /api/transfers checks its query, and keeps no upload it could not offer", async () => {
  const t = await setup(new Set(["bob@lobby"]));
  try {
    const body = new Uint8Array([1, 2, 3]);
    assert.deepEqual(
      await errorCode(await t.call("/api/transfers?name=x", { method: "POST", body })),
      [
        400,
        "missing_field",
      ],
    );
    assert.deepEqual(
      await errorCode(await t.call("/api/transfers?to=bob", { method: "POST", body })),
      [
        400,
        "missing_field",
      ],
    );
    const form = new FormData();
    form.append("file", new Blob([body]), "x.png");
    const formed = await t.call("/api/transfers?to=bob&name=x.png", { method: "POST", body: form });
    assert.deepEqual(await errorCode(formed), [400, "bad_request"]);
    // A saved web page is multipart too, but a file: it is offered.
    const page = await t.call("/api/transfers?to=bob&name=page.mhtml", {
      method: "POST",
      body,
      headers: { "content-type": "multipart/related; boundary=x" },
    });
    assert.equal(page.status, 201);
    await t.call(`/api/transfers/${(await page.json()).id}/cancel`, { method: "POST" });
    const nobody = await t.call("/api/transfers?to=carol&name=x", { method: "POST", body });
    assert.deepEqual(await errorCode(nobody), [409, "not_connected"]);
    const plain = await t.call("/api/transfers?to=pyp&name=x", { method: "POST", body });
    assert.deepEqual(await errorCode(plain), [409, "no_files"]);
    assert.deepEqual([...Deno.readDirSync(`${t.dir}/uploads`)], [], "refused uploads removed");

    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const offered = await t.call("/api/transfers?to=bob&name=../../x.png", {
      method: "POST",
      body: png,
    });
    assert.equal(offered.status, 201);
    const transfer = await offered.json();
    assert.equal(transfer.type, "image/png");
    assert.equal(transfer.state, "offered");
    assert.equal(t.sent.at(-1)!.type, "FILE_OFFER");
    assert.equal([...Deno.readDirSync(`${t.dir}/uploads`)].length, 1, "kept while offered");
    // The file being sent can be looked at; cancelling ends the transfer and drops the copy.
    const own = await t.call(`/api/transfers/${transfer.id}/file?inline=1`);
    assert.equal(own.headers.get("content-type"), "image/png");
    assert.equal(own.headers.get("x-content-type-options"), "nosniff");
    assert.deepEqual(new Uint8Array(await own.arrayBuffer()), png);
    const cancelled = await t.call(`/api/transfers/${transfer.id}/cancel`, { method: "POST" });
    assert.equal((await cancelled.json()).state, "cancelled");
    assert.deepEqual(
      await errorCode(
        await t.call(`/api/transfers/${transfer.id}/cancel`, {
          method: "POST",
        }),
      ),
      [409, "bad_state"],
    );
    assert.deepEqual([...Deno.readDirSync(`${t.dir}/uploads`)], []);
  } finally {
    await t.close();
  }
});

Deno.test("An offer to us serves no file before it is verified; unknown ids are 404", async () => {
  const t = await setup(new Set(["bob@lobby"]));
  try {
    const id = "f".repeat(32);
    t.files.line("bob@lobby", "FILE_OFFER", {
      transfer_id: id,
      name: "a.txt",
      size: 3,
      sha256: "0".repeat(64),
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await (await t.call(`/api/transfers/${id}`)).json()).state, "offered");
    assert.deepEqual(await errorCode(await t.call(`/api/transfers/${id}/file`)), [
      409,
      "bad_state",
    ]);
    assert.deepEqual(await errorCode(await t.call(`/api/transfers/${"0".repeat(32)}`)), [
      404,
      "not_found",
    ]);
    assert.deepEqual(await errorCode(await t.call(`/api/transfers/..%2F..%2Fetc/file`)), [
      404,
      "not_found",
    ]);
    // The 6 characters the terminal shows are not an id here: the answer says what is.
    const short = await t.call(`/api/transfers/${id.slice(0, 6)}/accept`, { method: "POST" });
    assert.equal(short.status, 404);
    assert.match((await short.json()).error.message, /an id is 32 hex characters/);
    const long = await t.call(`/api/transfers/${"a".repeat(5000)}/cancel`, { method: "POST" });
    assert.ok((await long.json()).error.message.length < 200, "a long id is not said back whole");
    const declined = await t.call(`/api/transfers/${id}/decline`, { method: "POST" });
    assert.equal((await declined.json()).state, "declined");
    assert.deepEqual(t.sent.at(-1), { type: "FILE_DECLINE", transfer_id: id, reason: "declined" });
  } finally {
    await t.close();
  }
});
