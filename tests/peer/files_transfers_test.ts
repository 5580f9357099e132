/**
 * The transfers of one peer against a hostile or honest other side, wired in memory: lies
 * about size and hash, chunks past the end, out of order, twice or after a cancel, floods of
 * offers, and a file that changes before it is sent. Nothing bad may end under a final name.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { systemClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { NodeEvent, TransferInfo } from "../../peer/api.ts";
import {
  MAX_OFFERS,
  MAX_OFFERS_PER_PEER,
  openTransfers,
  type Transfers,
} from "../../peer/files/transfers.ts";
import { fileRecord, readFileRecord, RECORD_DATA_BYTES } from "../../peer/files/wire.ts";
import type { FileChannel } from "../../peer/node/mod.ts";

const ID = "0123456789abcdef0123456789abcdef";

interface Side {
  transfers: Transfers;
  dir: string;
  /** Lines this side sent, by peer. */
  sent: { to: string; fields: Record<string, unknown> }[];
  connect(peerId: string, other?: Side): void;
  listeners: Set<(event: NodeEvent) => void>;
}

async function side(
  peerId: string,
  options: {
    autoAcceptBytes?: number;
    openPart?: (path: string) => Promise<Deno.FsFile>;
    records?: boolean;
  } = {},
): Promise<Side> {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-files-" });
  const links = new Map<string, Side | undefined>();
  const sent: Side["sent"] = [];
  const listeners = new Set<(event: NodeEvent) => void>();
  const node = {
    peerId,
    fileChannel(to: string): FileChannel | "not_connected" {
      if (!links.has(to)) return "not_connected";
      return {
        send(fields) {
          sent.push({ to, fields });
          const other = links.get(to);
          if (other) {
            queueMicrotask(() => other.transfers.line(peerId, String(fields.type), fields));
          }
          return true;
        },
        records: options.records ?? false,
        sendRecord(body) {
          const message = readFileRecord(body)!;
          sent.push({
            to,
            fields: { type: "record", transfer_id: message.id, offset: message.offset },
          });
          const other = links.get(to);
          if (other) queueMicrotask(() => other.transfers.record(peerId, body));
          return true;
        },
        queuedBytes: () => 0,
        wantDrain() {},
      };
    },
    subscribe(listener: (event: NodeEvent) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const transfers = await openTransfers(
    {
      stateDir: `${dir}/transfers`,
      downloadsDir: `${dir}/downloads`,
      autoAcceptBytes: options.autoAcceptBytes ?? 0,
    },
    {
      node,
      clock: systemClock,
      log: memoryLogger("error").log,
      isContact: () => true,
      openPart: options.openPart,
    },
  );
  return {
    transfers,
    dir,
    sent,
    listeners,
    connect(to, other) {
      links.set(to, other);
    },
  };
}

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function downloads(s: Side): string[] {
  try {
    return [...Deno.readDirSync(`${s.dir}/downloads`)].map((entry) => entry.name);
  } catch {
    return [];
  }
}

function parts(s: Side): string[] {
  return [...Deno.readDirSync(`${s.dir}/transfers`)].map((e) => e.name).filter((n) =>
    n.endsWith(".part")
  );
}

/** A receiver and a hostile sender that writes raw FILE_* lines. */
async function hostile(
  openPart?: (path: string) => Promise<Deno.FsFile>,
): Promise<{ bob: Side; say(fields: Record<string, unknown>): void }> {
  const bob = await side("bob@t", { openPart });
  bob.connect("mallory@t");
  return {
    bob,
    say: (fields) => bob.transfers.line("mallory@t", String(fields.type), fields),
  };
}

/** Runs `test` against a receiver and a hostile sender, and cleans up after it. */
async function withHostile(
  test: (bob: Side, say: (fields: Record<string, unknown>) => void) => Promise<void>,
  openPart?: (path: string) => Promise<Deno.FsFile>,
): Promise<void> {
  const { bob, say } = await hostile(openPart);
  try {
    await test(bob, say);
  } finally {
    await cleanup(bob);
  }
}

async function cleanup(...sides: Side[]): Promise<void> {
  for (const s of sides) {
    await s.transfers.close();
    await Deno.remove(s.dir, { recursive: true });
  }
}

const chunk = (offset: number, data: Uint8Array) => ({
  type: "FILE_CHUNK",
  transfer_id: ID,
  offset,
  data: data.toBase64(),
});

async function offeredAndAccepted(
  bob: Side,
  say: (fields: Record<string, unknown>) => void,
  size: number,
  sha256: string,
): Promise<TransferInfo> {
  say({ type: "FILE_OFFER", transfer_id: ID, name: "../evil.sh", size, sha256 });
  await until("offer", () => bob.transfers.get(ID));
  return await bob.transfers.accept(ID);
}

Deno.test("a sender that lies about the hash: the file fails and nothing is kept", () =>
  withHostile(async (bob, say) => {
    const data = new TextEncoder().encode("not what was promised");
    await offeredAndAccepted(bob, say, data.length, "b".repeat(64));
    say(chunk(0, data));
    await until("failed", () => bob.transfers.get(ID)?.state === "failed");
    assert.equal(bob.transfers.get(ID)!.reason, "hash_mismatch");
    assert.deepEqual(downloads(bob), []);
    assert.deepEqual(parts(bob), []);
    assert.deepEqual(bob.sent.at(-1)!.fields, {
      type: "FILE_DONE",
      transfer_id: ID,
      ok: false,
      reason: "hash_mismatch",
    });
  }));

Deno.test("chunks past the end, out of order, twice and after a cancel", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3000));
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, 10, hex(data.subarray(0, 10)));
    say(chunk(0, data.subarray(0, 20)));
    await until("past end", () => bob.transfers.get(ID)?.reason === "past_end");
    assert.deepEqual(parts(bob), []);
  });
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, data.length, hex(data));
    say(chunk(1000, data.subarray(1000, 2000)));
    await until("out of order", () => bob.transfers.get(ID)?.reason === "out_of_order");
  });
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, data.length, hex(data));
    say(chunk(0, data.subarray(0, 1000)));
    say(chunk(0, data.subarray(0, 1000))); // again: ignored
    say(chunk(1000, data.subarray(1000)));
    const done = await until("done", () => {
      const t = bob.transfers.get(ID);
      return t?.state === "done" ? t : undefined;
    });
    // The sender's path is not trusted: the file lands in downloads under its base name.
    assert.equal(done.savedAs, `${bob.dir}/downloads/evil.sh`);
    assert.deepEqual(await Deno.readFile(done.savedAs!), data);
  });
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, data.length, hex(data));
    say(chunk(0, data.subarray(0, 1000)));
    say({ type: "FILE_CANCEL", transfer_id: ID, reason: "cancelled" });
    say(chunk(1000, data.subarray(1000)));
    await until("cancelled", () => bob.transfers.get(ID)?.state === "cancelled");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(bob.transfers.get(ID)!.state, "cancelled");
    assert.deepEqual(downloads(bob), []);
    assert.deepEqual(parts(bob), []);
  });
});

Deno.test("an offer said again and again resumes the transfer, but is told once", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3000));
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, data.length, hex(data));
    say(chunk(0, data.subarray(0, 1000)));
    await until("bytes in", () => bob.transfers.get(ID)!.bytes === 1000);
    const told: string[] = [];
    bob.transfers.subscribe((event) => told.push(`${event.type} ${event.transfer.state}`));
    const offer = { type: "FILE_OFFER", transfer_id: ID, name: "x", size: data.length };
    for (let i = 0; i < 1000; i++) say({ ...offer, sha256: hex(data) });
    await until(
      "answered",
      () => bob.sent.filter((m) => m.fields.type === "FILE_ACCEPT").length > 1000,
    );
    assert.deepEqual(told, ["transfer_state receiving"]);
  });
});

Deno.test("thousands of offers: a few wait for the user, the rest are declined with a reason", async () => {
  const bob = await side("bob@t");
  bob.connect("mallory@t");
  try {
    const offer = (from: string, n: number) =>
      bob.transfers.line(from, "FILE_OFFER", {
        transfer_id: n.toString(16).padStart(32, "0"),
        name: `spam${n}`,
        size: 1,
        sha256: "c".repeat(64),
      });
    for (let n = 0; n < 2000; n++) offer("mallory@t", n);
    for (let n = 2000; n < 2200; n++) offer(`m${n}@t`, n);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const waiting = bob.transfers.list().filter((t) => t.state === "offered");
    assert.equal(waiting.length, MAX_OFFERS);
    assert.equal(waiting.filter((t) => t.peer === "mallory@t").length, MAX_OFFERS_PER_PEER);
    const declined = bob.sent.filter((line) =>
      line.fields.type === "FILE_DECLINE" && line.fields.reason === "too_many_offers"
    );
    assert.equal(declined.length, 2000 - MAX_OFFERS_PER_PEER);
  } finally {
    await cleanup(bob);
  }
});

Deno.test("with file records agreed, data goes in records of 60 KiB and arrives whole", async () => {
  const alice = await side("alice@t", { records: true });
  const bob = await side("bob@t", { autoAcceptBytes: 1_000_000, records: true });
  alice.connect("bob@t", bob);
  bob.connect("alice@t", alice);
  try {
    const data = new Uint8Array(3 * RECORD_DATA_BYTES + 1000).map((_, i) => (i * 7919) % 251);
    const path = `${alice.dir}/data.bin`;
    await Deno.writeFile(path, data);
    const sent = await alice.transfers.send("bob@t", path);
    const done = await until("received", () => {
      const t = bob.transfers.get(sent.id);
      return t?.state === "done" ? t : undefined;
    });
    assert.deepEqual(await Deno.readFile(done.savedAs!), data);
    const chunks = alice.sent.filter((s) => s.fields.type === "record").map((s) => s.fields.offset);
    assert.deepEqual(chunks, [0, 1, 2, 3].map((n) => n * RECORD_DATA_BYTES));
    assert.ok(!alice.sent.some((s) => s.fields.type === "FILE_CHUNK"));
  } finally {
    await cleanup(alice, bob);
  }
});

Deno.test("records that do not fit are ignored; out of order or from another peer as for lines", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3000));
  await withHostile(async (bob) => {
    bob.connect("alice@t");
    const say = (fields: Record<string, unknown>) =>
      bob.transfers.line("mallory@t", String(fields.type), fields);
    await offeredAndAccepted(bob, say, data.length, hex(data));
    const record = (offset: number, bytes: Uint8Array) => fileRecord(ID, offset, bytes);
    // Too short to hold any data, an offset past 2^50: ignored.
    bob.transfers.record("mallory@t", record(0, data).subarray(0, 24));
    const huge = record(0, data.subarray(0, 10));
    huge[16] = 0xff;
    bob.transfers.record("mallory@t", huge);
    // Another peer cannot speak for mallory's transfer.
    bob.transfers.record("alice@t", record(0, data.subarray(0, 1000)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(bob.transfers.get(ID)!.bytes, 0);
    assert.equal(bob.transfers.get(ID)!.state, "receiving");
    bob.transfers.record("mallory@t", record(0, data.subarray(0, 1000)));
    bob.transfers.record("mallory@t", record(2000, data.subarray(2000)));
    await until("out of order", () => bob.transfers.get(ID)?.reason === "out_of_order");
  });
  await withHostile(async (bob, say) => {
    await offeredAndAccepted(bob, say, data.length, hex(data));
    bob.transfers.record("mallory@t", fileRecord(ID, 0, data.subarray(0, 1000)));
    say(chunk(1000, data.subarray(1000))); // the two forms mix
    await until("done", () => bob.transfers.get(ID)?.state === "done");
  });
});

Deno.test("a file that changes before it is sent fails with source_changed; one left alone arrives", async () => {
  const alice = await side("alice@t");
  const bob = await side("bob@t", { autoAcceptBytes: 1_000_000 });
  alice.connect("bob@t", bob);
  bob.connect("alice@t", alice);
  try {
    const path = `${alice.dir}/doc.txt`;
    await Deno.writeTextFile(path, "first version");
    const sent = await alice.transfers.send("bob@t", path);
    const done = await until("received", () => {
      const t = bob.transfers.get(sent.id);
      return t?.state === "done" ? t : undefined;
    });
    assert.equal(await Deno.readTextFile(done.savedAs!), "first version");
    await until("sender done", () => alice.transfers.get(sent.id)?.state === "done");

    // Offered, then changed before bob (who now always asks) accepts.
    const asker = await side("carol@t");
    alice.connect("carol@t", asker);
    asker.connect("alice@t", alice);
    const second = await alice.transfers.send("carol@t", path);
    await until("offer", () => asker.transfers.get(second.id));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await Deno.writeTextFile(path, "second version, longer");
    await asker.transfers.accept(second.id);
    await until("changed", () => alice.transfers.get(second.id)?.reason === "source_changed");
    await until("told", () => asker.transfers.get(second.id)?.state === "cancelled");
    assert.deepEqual(downloads(asker), []);
    await cleanup(asker);
  } finally {
    await cleanup(alice, bob);
  }
});

Deno.test("a disk that fills up mid-transfer fails it as disk_full, tells the sender, keeps nothing", () => {
  // The partial file takes 100,000 bytes, then every write fails as a full disk does.
  const fillsUp = async (path: string) => {
    const file = await Deno.open(path, { create: true, append: true });
    let room = 100_000;
    return new Proxy(file, {
      get(target, key) {
        const value = Reflect.get(target, key);
        if (key !== "write") return typeof value === "function" ? value.bind(target) : value;
        return (bytes: Uint8Array) => {
          if (bytes.length > room) {
            return Promise.reject(new Error("No space left on device (os error 28)"));
          }
          room -= bytes.length;
          return target.write(bytes);
        };
      },
    });
  };
  return withHostile(async (bob, say) => {
    const data = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
    await offeredAndAccepted(bob, say, data.length, hex(data));
    for (let at = 0; at < data.length; at += 20_000) say(chunk(at, data.subarray(at, at + 20_000)));
    await until("disk full", () => bob.transfers.get(ID)?.reason === "disk_full");
    assert.equal(bob.transfers.get(ID)!.state, "failed");
    assert.ok(
      bob.sent.some((line) =>
        line.fields.type === "FILE_CANCEL" && line.fields.reason === "disk_full"
      ),
    );
    assert.deepEqual(parts(bob), []);
    assert.deepEqual(downloads(bob), []);
  }, fillsUp);
});

Deno.test("a file cut short while it is being sent fails with source_changed", async () => {
  const alice = await side("alice@t");
  alice.connect("bob@t");
  try {
    const path = `${alice.dir}/growing.log`;
    await Deno.writeFile(path, new Uint8Array(5 * 1024 * 1024).fill(7));
    const sent = await alice.transfers.send("bob@t", path);
    const accept = { type: "FILE_ACCEPT", transfer_id: sent.id, offset: 0 };
    alice.transfers.line("bob@t", "FILE_ACCEPT", accept);
    const chunks = () => alice.sent.filter((line) => line.fields.type === "FILE_CHUNK").length;
    // No acknowledgement yet: the sender stops at its window.
    await until(
      "window full",
      () => chunks() > 0 && alice.transfers.get(sent.id)!.state === "sending",
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    await Deno.truncate(path, 1.5 * 1024 * 1024);
    const ack = { type: "FILE_ACK", transfer_id: sent.id, offset: 1024 * 1024 };
    alice.transfers.line("bob@t", "FILE_ACK", ack);
    await until("source changed", () => alice.transfers.get(sent.id)?.reason === "source_changed");
    assert.ok(
      alice.sent.some((line) =>
        line.fields.type === "FILE_CANCEL" && line.fields.reason === "source_changed"
      ),
    );
  } finally {
    await cleanup(alice);
  }
});

Deno.test("a file for a peer offline now is offered when it connects", async () => {
  const alice = await side("alice@t");
  const bob = await side("bob@t", { autoAcceptBytes: 1_000_000 });
  try {
    const path = `${alice.dir}/minutes.txt`;
    await Deno.writeTextFile(path, "for the member who was away");
    await assert.rejects(() => alice.transfers.send("bob@t", path), /not connected/);
    const waiting = await alice.transfers.send("bob@t", path, { later: true });
    assert.equal(waiting.state, "offered");
    assert.deepEqual(alice.sent, []);
    // bob comes online.
    alice.connect("bob@t", bob);
    bob.connect("alice@t", alice);
    for (const listener of alice.listeners) {
      listener({ type: "peer", peerId: "bob@t", state: "connected", at: 0 });
    }
    const done = await until("received", () => {
      const t = bob.transfers.get(waiting.id);
      return t?.state === "done" ? t : undefined;
    });
    assert.equal(await Deno.readTextFile(done.savedAs!), "for the member who was away");
  } finally {
    await cleanup(alice, bob);
  }
});

Deno.test("a transfers folder that cannot be made is said, and the peer goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-files-" });
  try {
    await Deno.writeTextFile(`${dir}/transfers`, "a file where the folder should be");
    const { log, lines } = memoryLogger("error");
    const transfers = await openTransfers(
      { stateDir: `${dir}/transfers`, downloadsDir: `${dir}/downloads`, autoAcceptBytes: 0 },
      {
        node: { peerId: "a@t", fileChannel: () => "not_connected", subscribe: () => () => {} },
        clock: systemClock,
        log,
        isContact: () => false,
      },
    );
    assert.deepEqual(transfers.list(), []);
    assert.ok(lines.some((line) => line.includes("Cannot use") && line.includes("transfers")));
    await transfers.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cancelWith() stops every transfer with a peer still on its way, both ways", async () => {
  const alice = await side("alice@t");
  const bob = await side("bob@t");
  const carol = await side("carol@t");
  alice.connect("bob@t", bob);
  bob.connect("alice@t", alice);
  alice.connect("carol@t", carol);
  carol.connect("alice@t", alice);
  try {
    const path = `${alice.dir}/doc.txt`;
    await Deno.writeTextFile(path, "for your eyes");
    const toBob = await alice.transfers.send("bob@t", path);
    const toCarol = await alice.transfers.send("carol@t", path);
    await until("offered", () => bob.transfers.get(toBob.id) && carol.transfers.get(toCarol.id));
    assert.equal(await alice.transfers.cancelWith("bob@t"), 1);
    assert.equal(alice.transfers.get(toBob.id)?.state, "cancelled");
    await until("bob told", () => bob.transfers.get(toBob.id)?.state === "cancelled");
    assert.equal(alice.transfers.get(toCarol.id)?.state, "offered", "carol's goes on");
    assert.equal(await alice.transfers.cancelWith("bob@t"), 0);
  } finally {
    await cleanup(alice, bob, carol);
  }
});
