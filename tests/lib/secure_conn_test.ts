/**
 * SecureConn reads: each read of the socket comes out as one decrypted chunk, however many
 * frames it held (so a connection answers a read's lines with one write, as in clear), and a
 * forged frame ends the stream without giving out anything of its read.
 */
import assert from "node:assert/strict";
import {
  createSecureChannel,
  generateIdentityKeyPair,
  generateStaticKeyPair,
  identityFromPrivateKey,
  type SecureChannel,
} from "../../lib/noise/mod.ts";
import { SecureConn, type SecureItem } from "../../lib/secure_conn.ts";
import { memoryConnPair } from "../../lib/transport.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function established(records = false): { sender: SecureChannel; receiver: SecureChannel } {
  const prologue = encoder.encode("p2pchat-noise-v1\ntest\n");
  const make = (initiator: boolean, localId: string) =>
    createSecureChannel({
      initiator,
      prologue,
      staticKeyPair: generateStaticKeyPair(),
      identity: identityFromPrivateKey(generateIdentityKeyPair().privateKey),
      localId,
      records,
    });
  const sender = make(true, "a@test");
  const receiver = make(false, "b@test");
  const second = receiver.push(sender.start()[0]).write[0];
  const third = sender.push(second).write[0];
  receiver.push(third);
  return { sender, receiver };
}

/** A SecureConn over `reads`, as the socket would have returned them. */
function readingFrom(channel: SecureChannel, reads: Uint8Array[], early: Uint8Array[] = []) {
  const [raw] = memoryConnPair();
  const reader = (async function* () {
    yield* reads;
  })();
  return new SecureConn(raw, reader, channel, early);
}

async function collect(conn: SecureConn): Promise<string[]> {
  const chunks: string[] = [];
  for await (const chunk of conn.chunks()) chunks.push(decoder.decode(chunk));
  return chunks;
}

const frame = (channel: SecureChannel, text: string) => channel.encrypt(encoder.encode(text))[0];

Deno.test("a read holding several frames comes out as one chunk, in order", async () => {
  const { sender, receiver } = established();
  const first = frame(sender, "SEND 1\n");
  const second = frame(sender, "SEND 2\n");
  const third = frame(sender, "SEND 3\n");
  // Two frames and the start of a third in one read, the rest of the third in the next.
  const joined = new Uint8Array([...first, ...second, ...third.subarray(0, 5)]);
  const conn = readingFrom(receiver, [joined, third.subarray(5)], [encoder.encode("early\n")]);
  assert.deepEqual(await collect(conn), ["early\n", "SEND 1\nSEND 2\n", "SEND 3\n"]);
});

Deno.test("a forged frame ends the stream and gives out nothing of its read", async () => {
  const { sender, receiver } = established();
  const genuine = frame(sender, "before\n");
  const good = frame(sender, "same read\n");
  const forged = frame(sender, "forged\n");
  forged[forged.length - 1] ^= 1;
  const conn = readingFrom(receiver, [genuine, new Uint8Array([...good, ...forged])]);
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const chunk of conn.chunks()) seen.push(decoder.decode(chunk));
  }, { code: "decrypt_failed" });
  assert.deepEqual(seen, ["before\n"]);
});

Deno.test("open() gives records in order with the stream, and writeRecord sends them", async () => {
  const { sender, receiver } = established(true);
  const record = (byte: number) => sender.encryptRecord(Uint8Array.of(byte));
  const reads = [
    new Uint8Array([...record(1), ...frame(sender, "a\n"), ...record(2), ...frame(sender, "b\n")]),
    new Uint8Array([...record(3)]),
  ];
  const conn = readingFrom(receiver, [], [encoder.encode("early\n")]);
  const seen: string[] = [];
  const see = (item: SecureItem) =>
    seen.push(item instanceof Uint8Array ? decoder.decode(item) : `record ${item.record[0]}`);
  conn.takeEarly().forEach(see);
  assert.deepEqual(conn.takeEarly(), []);
  for (const read of reads) conn.open(read).forEach(see);
  assert.deepEqual(seen, ["early\n", "record 1", "a\n", "record 2", "b\n", "record 3"]);
  // A short record outlives the read buffer it arrived in, which the next read reuses.
  const buffer = new Uint8Array(64);
  const short = record(9);
  buffer.set(short);
  const [kept] = conn.open(buffer.subarray(0, short.length)) as { record: Uint8Array }[];
  buffer.fill(0xff);
  assert.deepEqual(kept.record, Uint8Array.of(9));
  // A reader through chunks() takes no records: one ends its stream.
  const streaming = readingFrom(receiver, [new Uint8Array([...record(4)])]);
  await assert.rejects(collect(streaming), { code: "bad_record" });

  // The writing side: records go out as frames the other side reads as records.
  const [raw, other] = memoryConnPair();
  const writer = new SecureConn(raw, (async function* () {})(), sender, []);
  await writer.writeRecord(Uint8Array.of(7, 8));
  await writer.writeRecord(Uint8Array.of(9));
  const reading = other.chunks()[Symbol.asyncIterator]();
  const records: number[][] = [];
  while (records.length < 2) {
    const sent = (await reading.next()).value as Uint8Array;
    records.push(...receiver.push(sent).records.map((r) => [...r.body]));
  }
  assert.deepEqual(records, [[7, 8], [9]]);
});

Deno.test("writeText sends UTF-8 of every length and says its size in bytes", async () => {
  const { sender, receiver } = established();
  const [raw, other] = memoryConnPair();
  const writer = new SecureConn(raw, (async function* () {})(), sender, []);
  // Short (encoded into scratch memory), then past what the scratch surely holds.
  const texts = ["héllo 👋\n", "x".repeat(21_845) + "\n", "ü".repeat(30_000) + "\n", "end\n"];
  for (const text of texts) {
    const { bytes, written } = writer.writeText(text);
    assert.equal(bytes, encoder.encode(text).length);
    await written;
  }
  const reading = other.chunks()[Symbol.asyncIterator]();
  let received = "";
  while (!received.endsWith("end\n")) {
    const sent = (await reading.next()).value as Uint8Array;
    received += receiver.push(sent).plaintext.map((bytes) => decoder.decode(bytes)).join("");
  }
  assert.equal(received, texts.join(""));
});
