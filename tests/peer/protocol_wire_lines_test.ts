import assert from "node:assert/strict";
import { decodeMessage } from "../../lib/codec.ts";
import { formatLine } from "../../lib/framing.ts";
import * as wire from "../../peer/protocol/messages.ts";

const NOW = Date.UTC(2026, 0, 1);
const IDS = ["m", "id-1", 'quo"te', "back\\slash", "tab\tnew\nline", "é ü 😀", "\ud800 lone", ""];

Deno.test("line builders write the same bytes as stringifying the message objects", () => {
  for (const id of IDS) {
    assert.equal(wire.sendLine(id, "a@n", "b@n", id), formatLine(wire.send(id, "a@n", "b@n", id)));
    assert.equal(wire.ackLine(id, NOW), formatLine(wire.ack(id, NOW)));
    const pong = JSON.parse(wire.pongLine(id, NOW));
    assert.deepEqual(pong, { ...wire.ping(id, NOW), type: "PONG" });
  }
});

Deno.test("ACKS and SENDS lines read back as the batches they carry", () => {
  assert.equal(wire.acksLine(IDS, NOW), formatLine(wire.acks(IDS, NOW)));
  const acks = decodeMessage(wire.acksLine(IDS, NOW).slice(0, -1));
  assert.ok(acks.ok);
  assert.deepEqual(wire.readPeerMessage(acks.message), {
    ok: true,
    message: { type: "ACKS", msgIds: IDS, skipped: 0 },
  });
  const entries = IDS.map((id) => ({ msgId: id, payload: `text of ${id}` }));
  const sends = decodeMessage(wire.sendsLine("a@n", "b@n", entries).slice(0, -1));
  assert.ok(sends.ok);
  // A msg_id with a lone surrogate is no msg_id (stored, it would read back as another).
  const kept = entries.filter((entry) => entry.msgId.isWellFormed());
  assert.deepEqual(wire.readPeerMessage(sends.message), {
    ok: true,
    message: { type: "SENDS", src: "a@n", dst: "b@n", msgs: kept, skipped: 1 },
  });
});

Deno.test("ACKS and SENDS from other programs are read liberally", () => {
  const read = (message: unknown) => {
    const decoded = decodeMessage(JSON.stringify(message));
    assert.ok(decoded.ok);
    return wire.readPeerMessage(decoded.message);
  };
  assert.deepEqual(read({ type: "acks", msg_ids: ["a", 7, null, {}] }), {
    ok: true,
    message: { type: "ACKS", msgIds: ["a", "7"], skipped: 2 },
  });
  assert.deepEqual(read({ type: "ACKS" }), {
    ok: true,
    message: { type: "ACKS", msgIds: [], skipped: 1 },
  });
  assert.deepEqual(
    read({
      type: "SENDS",
      msg_ids: [1, "b", null, {}, "c"],
      payloads: [{ x: 1 }, undefined, "lost", "junk", "hi", "extra"],
    }),
    {
      ok: true,
      message: {
        type: "SENDS",
        src: undefined,
        dst: undefined,
        msgs: [
          { msgId: "1", payload: '{"x":1}' },
          { msgId: "b", payload: "" },
          { msgId: "c", payload: "hi" },
        ],
        skipped: 2,
      },
    },
  );
  assert.deepEqual(read({ type: "SENDS", msg_ids: "no list", payloads: [] }), {
    ok: true,
    message: { type: "SENDS", src: undefined, dst: undefined, msgs: [], skipped: 1 },
  });
});

Deno.test("readOwnLine() reads our own SEND and ACK lines as the full decoder does", () => {
  const full = (line: string) => {
    const decoded = decodeMessage(line);
    assert.ok(decoded.ok);
    const read = wire.readPeerMessage(decoded.message);
    assert.ok(read.ok);
    return read.message;
  };
  let fast = 0;
  for (const id of IDS) {
    for (const line of [wire.sendLine(id, "a@n", "b@n", `say ${id}`), wire.ackLine(id, NOW)]) {
      const own = wire.readOwnLine(line.slice(0, -1));
      if (own === undefined) continue; // escaped fields take the full decoder
      fast++;
      assert.deepEqual(own, full(line.slice(0, -1)));
    }
  }
  assert.ok(fast >= 6, `${fast} lines took the fast path`);
});

Deno.test("readOwnLine() leaves every other line to the full decoder", () => {
  const others = [
    '{"type":"ACK","msg_id":"m","timestamp":"t","ttl":1,"x":2}',
    '{"type":"ACK","msg_id":12,"timestamp":"t","ttl":1}',
    '{"type":"ack","msg_id":"m","timestamp":"t","ttl":1}',
    '{"type":"ACK","msg_id":"m","timestamp":"t","ttl":"1"}',
    '{"type":"ACK","msg_id":"a\\"b","timestamp":"t","ttl":1}',
    '{"type":"ACK","msg_id":"m","timestamp":"t","msg_id":"n","ttl":1}',
    '{"type":"ACK","msg_id":"m","timestamp":"t\u0001","ttl":1}',
    '{"type":"ACK","msg_id":"m","ttl":1}',
    '{"type":"ACK","msg_id":"m","timestamp":"t","ttl":1} ',
    '{"type":"SEND","msg_id":"m","src":"a","dst":"b","payload":"p","ttl":1}',
    '{"type":"SEND","msg_id":"m","src":"a","dst":"b","payload":"p","src":"x","require_ack":true,"ttl":1}',
    '{"type":"SEND","msg_id":"m","src":"a","dst":"b","payload":"tab\there","require_ack":true,"ttl":1}',
    '{"type":"SEND","msg_id":"m","dst":"b","src":"a","payload":"p","require_ack":true,"ttl":1}',
    '{"type":"PING","msg_id":"m","timestamp":"t","ttl":1}',
  ];
  for (const line of others) assert.equal(wire.readOwnLine(line), undefined, line);
});
