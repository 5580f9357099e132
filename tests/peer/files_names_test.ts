import assert from "node:assert/strict";
import { MAX_NAME_BYTES, safeFileName, uniqueName } from "../../peer/files/names.ts";
import { isImageType, sniffType } from "../../peer/files/sniff.ts";
import { readFileMessage } from "../../peer/files/wire.ts";
import type { FileTransfers, TransferEvent, TransferInfo } from "../../peer/api.ts";
import { fileActivity, fileCommands, formatTransferEvent } from "../../peer/tui/file_commands.ts";
import type { CommandContext } from "../../peer/tui/commands.ts";
import { createStyle } from "../../peer/tui/format.ts";
import { P2pError } from "../../lib/errors.ts";
import { ManualClock } from "../../lib/clock.ts";
import { FakePeerNode } from "../_fake_node.ts";

const utf8 = (text: string) => new TextEncoder().encode(text).length;

Deno.test("safeFileName() keeps no folder, hidden name, device name or control character", () => {
  const cases: [string, string][] = [
    ["photo.jpg", "photo.jpg"],
    ["../../etc/passwd", "passwd"],
    ["..\\..\\Windows\\win.ini", "win.ini"],
    ["/absolute/path/x.txt", "x.txt"],
    ["..", "file"],
    [".bashrc", "bashrc"],
    ["...hidden", "hidden"],
    ["a\u0000b.txt", "a_b.txt"],
    ["bell\u0007\u001b[2Jname", "bell__[2Jname"],
    ["right\u202eexe.txt", "right_exe.txt"],
    ["zero\u200bwidth", "zero_width"],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["lpt1", "_lpt1"],
    ["what?.txt", "what_.txt"],
    ["trailing dots...", "trailing dots"],
    ["", "file"],
    ["/", "file"],
  ];
  for (const [offered, expected] of cases) {
    assert.equal(safeFileName(offered), expected, JSON.stringify(offered));
  }
});

Deno.test("safeFileName() shortens a 10,000-character name in whole characters, keeping its extension", () => {
  const name = safeFileName("é".repeat(10_000) + ".jpeg");
  assert.ok(utf8(name) <= MAX_NAME_BYTES, `${utf8(name)} bytes`);
  assert.ok(name.endsWith(".jpeg"));
  assert.ok(!name.includes("\uFFFD"));
});

Deno.test("uniqueName() never picks a name that exists", () => {
  const taken = new Set(["a.txt", "a (1).txt", "noext"]);
  assert.equal(uniqueName("a.txt", (n) => taken.has(n)), "a (2).txt");
  assert.equal(uniqueName("noext", (n) => taken.has(n)), "noext (1)");
  assert.equal(uniqueName("b.txt", (n) => taken.has(n)), "b.txt");
  const long = safeFileName("x".repeat(500) + ".bin");
  const next = uniqueName(long, (n) => n === long);
  assert.ok(utf8(next) <= MAX_NAME_BYTES && next.endsWith(" (1).bin"));
});

Deno.test("sniffType() reads the type from the bytes, not the name", () => {
  const bytes = (...values: number[]) => new Uint8Array(values);
  assert.equal(sniffType(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)), "image/png");
  assert.equal(sniffType(bytes(0xff, 0xd8, 0xff, 0xe0)), "image/jpeg");
  assert.equal(sniffType(new TextEncoder().encode("GIF89a...")), "image/gif");
  assert.equal(sniffType(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ")), "image/webp");
  assert.equal(
    sniffType(new TextEncoder().encode("<svg onload=alert(1)>")),
    "application/octet-stream",
  );
  assert.equal(sniffType(new Uint8Array()), "application/octet-stream");
  assert.equal(isImageType("image/png"), true);
  assert.equal(isImageType("image/svg+xml"), false);
});

Deno.test("readFileMessage() refuses lines that do not fit", () => {
  const id = "0123456789abcdef0123456789abcdef";
  const sha256 = "a".repeat(64);
  const offer = { transfer_id: id, name: "x", size: 10, sha256 };
  assert.deepEqual(readFileMessage("FILE_OFFER", offer), {
    kind: "FILE_OFFER",
    id,
    name: "x",
    size: 10,
    sha256,
  });
  const bad: [string, Record<string, unknown>][] = [
    ["FILE_OFFER", { ...offer, transfer_id: "../x" }],
    ["FILE_OFFER", { ...offer, size: -1 }],
    ["FILE_OFFER", { ...offer, size: 1.5 }],
    ["FILE_OFFER", { ...offer, size: "10" }],
    ["FILE_OFFER", { ...offer, size: 2 ** 60 }],
    ["FILE_OFFER", { ...offer, sha256: "xyz" }],
    ["FILE_OFFER", { ...offer, name: "" }],
    ["FILE_OFFER", { ...offer, name: "n".repeat(5000) }],
    ["FILE_CHUNK", { transfer_id: id, offset: 0, data: "" }],
    ["FILE_CHUNK", { transfer_id: id, offset: 0, data: "not base64!" }],
    ["FILE_CHUNK", { transfer_id: id, offset: 0, data: "A".repeat(40_000) }],
    ["FILE_ACK", { transfer_id: id, offset: -5 }],
    ["FILE_DONE", { transfer_id: id, ok: "yes" }],
    ["FILE_UNKNOWN", { transfer_id: id }],
  ];
  for (const [kind, fields] of bad) {
    assert.equal(
      readFileMessage(kind, fields),
      undefined,
      `${kind} ${JSON.stringify(fields).slice(0, 60)}`,
    );
  }
  // A reason that is not a short code is never passed on as is.
  assert.deepEqual(readFileMessage("FILE_CANCEL", { transfer_id: id, reason: "\u001b[2J" }), {
    kind: "FILE_CANCEL",
    id,
    reason: "unspecified",
  });
});

Deno.test("fileActivity() shows transfers under way as a bar before the prompt, and drops them when done", () => {
  let listener: ((event: TransferEvent) => void) | undefined;
  const files = {
    subscribe(l: (event: TransferEvent) => void) {
      listener = l;
      return () => {};
    },
  } as unknown as FileTransfers;
  const clock = new ManualClock();
  const activity = fileActivity(files, clock);
  let changes = 0;
  activity.subscribe(() => changes++);
  assert.equal(activity.text(), "");
  const base: TransferInfo = {
    id: "a".repeat(32),
    direction: "in",
    peer: "ann@x",
    name: "movie\u001b[2J.bin",
    size: 1_000_000,
    sha256: "0".repeat(64),
    type: "application/octet-stream",
    state: "receiving",
    bytes: 500_000,
    rate: 250_000,
    createdAt: 0,
  };
  listener!({ type: "transfer_progress", transfer: base, at: 0 });
  assert.equal(activity.text(), "[movie^[[2J.bin ████░░░░ 50% 250.0 kB/s 2s]");
  // No progress for a while (the peer went away): it waits, and the prompt is redrawn to say so.
  clock.advance(3_000);
  assert.equal(changes, 2);
  assert.equal(activity.text(), "[movie^[[2J.bin ████░░░░ 50% waiting]");
  listener!({ type: "transfer_state", transfer: { ...base, state: "done" }, at: 0 });
  assert.equal(activity.text(), "");
  assert.equal(changes, 3);
});

Deno.test("/send reads a path as a shell would: ~/, quotes, escaped spaces", async () => {
  const sent: string[] = [];
  const files = {
    send: (_peer: string, path: string) => {
      sent.push(path);
      return Promise.reject(new Error("stop here"));
    },
  } as unknown as FileTransfers;
  const send = fileCommands(files).find((command) => command.name === "send")!;
  const node = new FakePeerNode("ann", "x");
  const context = {
    node,
    print() {},
    error() {},
  } as unknown as CommandContext;
  await send.run(context, [], "bob ~/Pictures/cat.png");
  await send.run(context, [], "bob '/tmp/my holiday.png'");
  await send.run(context, [], 'bob "/tmp/my holiday.png" ');
  await send.run(context, [], "bob /tmp/my\\ holiday.png");
  await send.run(context, [], "bob /tmp/plain name.png");
  await send.run(context, [], "bob '~/in quotes.png'");
  await send.run(context, [], "bob \\~/escaped.png");
  assert.deepEqual(sent, [
    `${Deno.env.get("HOME")}/Pictures/cat.png`,
    "/tmp/my holiday.png",
    "/tmp/my holiday.png",
    "/tmp/my holiday.png",
    "/tmp/plain name.png",
    "~/in quotes.png",
    "~/escaped.png",
  ]);
});

Deno.test("/accept with an id two transfers start with lists them; /transfers names a renamed file", async () => {
  const transfers = [
    { id: "f67b96aa".padEnd(32, "0"), name: "big.bin", savedAs: "/d/big (2).bin" },
    { id: "f6b1d5bb".padEnd(32, "0"), name: "cat.png", savedAs: "/d/cat.png" },
  ].map((t) => ({
    ...t,
    direction: "in",
    peer: "bob@x",
    size: 10,
    bytes: 10,
    state: "done",
  })) as unknown as TransferInfo[];
  const accepted: string[] = [];
  const files = {
    list: () => transfers,
    accept: (id: string) => Promise.resolve(accepted.push(id)),
  } as unknown as FileTransfers;
  const commands = fileCommands(files);
  const errors: string[] = [];
  const printed: string[] = [];
  const context = {
    node: new FakePeerNode("ann", "x"),
    style: createStyle(false),
    print: (line: string) => printed.push(line),
    error: (line: string) => errors.push(line),
  } as unknown as CommandContext;
  const accept = commands.find((command) => command.name === "accept")!;
  await accept.run(context, ["f6"], "f6");
  assert.deepEqual(errors, ['"f6" starts 2 transfers (f67b96, f6b1d5): type more of the id']);
  // A new offer under that prefix is the one /accept can act on: finished ones do not count.
  const offer: TransferInfo = { ...transfers[1], id: "f6cccc".padEnd(32, "0"), state: "offered" };
  transfers.push(offer);
  await accept.run(context, ["f6"], "f6");
  assert.deepEqual(accepted, [offer.id]);
  transfers.pop();
  commands.find((command) => command.name === "transfers")!.run(context, [], "");
  assert.match(printed[1], /big\.bin \(saved as big \(2\)\.bin\)$/);
  assert.match(printed[2], /\s10\u00a0B\s.*\scat\.png$/);
});

Deno.test("/send to a name no peer has says so, with the name meant; to a known peer, the error", async () => {
  const files = {
    send: () => Promise.reject(new P2pError("not_connected", "bob@x is not connected")),
  } as unknown as FileTransfers;
  const send = fileCommands(files).find((command) => command.name === "send")!;
  const node = new FakePeerNode("ann", "x");
  node.addPeer("bob@x");
  const errors: string[] = [];
  const context = {
    node,
    print() {},
    error: (line: string) => errors.push(line),
  } as unknown as CommandContext;
  await send.run(context, [], "bobb /tmp/cat.png");
  await send.run(context, [], "bob /tmp/cat.png");
  // A listed name is the tracker's or a peer's string: a suggestion shows it escaped.
  node.addPeer("alice\x1bc@x");
  await send.run(context, [], "alicee /tmp/cat.png");
  assert.deepEqual(errors, [
    "not sent to bobb@x: no peer of that name is known (did you mean bob@x?) (/peers lists them)",
    "not sent to bob@x: bob@x is not connected",
    "not sent to alicee@x: no peer of that name is known (did you mean alice^[c@x?) " +
    "(/peers lists them)",
  ]);
});

Deno.test("an offer the peer's program refused says so, apart from one the person declined", () => {
  const base = {
    id: "c".repeat(32),
    direction: "out",
    peer: "bob@x",
    name: "cat.png",
    size: 10,
    bytes: 0,
    state: "declined",
  } as unknown as TransferInfo;
  const line = (reason: string) =>
    formatTransferEvent(
      { type: "transfer_state", transfer: { ...base, reason }, at: 0 },
      createStyle(false),
      new Map(),
    );
  assert.match(line("too_many_offers")!, /-- bob@x refused cat\.png \(too_many_offers\)$/);
  assert.match(line("declined")!, /-- bob@x declined cat\.png$/);
});
