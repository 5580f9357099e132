import assert from "node:assert/strict";
import { decodeMessage } from "../lib/codec.ts";
import { formatLine } from "../lib/framing.ts";
import * as wire from "../peer/messages.ts";

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

Deno.test("readOwnAck() reads our compact ACKs as JSON.parse does", () => {
  for (const id of IDS) {
    const line = wire.ackLine(id, NOW).slice(0, -1);
    const fast = wire.readOwnAck(line);
    if (fast === undefined) continue; // escaped ids take the full decoder
    const decoded = decodeMessage(line);
    assert.ok(decoded.ok);
    assert.equal(fast, decoded.message.fields.msg_id);
  }
  assert.equal(wire.readOwnAck('{"type":"ACK","msg_id":"m","timestamp":"t","ttl":1}'), "m");
});

Deno.test("readOwnAck() leaves every other line to the full decoder", () => {
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
    '{"type":"SEND","msg_id":"m","timestamp":"t","ttl":1}',
  ];
  for (const line of others) assert.equal(wire.readOwnAck(line), undefined, line);
});
