import assert from "node:assert/strict";
import { decodeMessage } from "../../lib/codec.ts";
import * as wire from "../../peer/protocol/messages.ts";

function read(line: string) {
  const decoded = decodeMessage(line);
  assert.ok(decoded.ok, line);
  return wire.readPeerMessage(decoded.message);
}

Deno.test("peer message builders write compact JSON with ttl 1 in pyp2p field order", () => {
  const now = Date.UTC(2026, 0, 1);
  const cases: [unknown, string][] = [
    [
      wire.hello("a@n", ["ack"]),
      '{"type":"HELLO","peer_id":"a@n","version":"1.0","features":["ack"],"ttl":1}',
    ],
    [
      wire.send("m", "a@n", "b@n", "hi"),
      '{"type":"SEND","msg_id":"m","src":"a@n","dst":"b@n","payload":"hi","require_ack":true,"ttl":1}',
    ],
    [
      wire.pub("m", "a@n", "#n", "hi"),
      '{"type":"PUB","msg_id":"m","src":"a@n","dst":"#n","payload":"hi","require_ack":false,"ttl":1}',
    ],
    [
      wire.ack("m", now),
      '{"type":"ACK","msg_id":"m","timestamp":"2026-01-01T00:00:00.000Z","ttl":1}',
    ],
    [
      wire.bye("m", "a@n", "b@n", "quit"),
      '{"type":"BYE","msg_id":"m","src":"a@n","dst":"b@n","reason":"quit","ttl":1}',
    ],
    [
      wire.byeOk("m", "a@n", "b@n"),
      '{"type":"BYE_OK","msg_id":"m","src":"a@n","dst":"b@n","ttl":1}',
    ],
  ];
  for (const [message, json] of cases) assert.equal(JSON.stringify(message), json);
});

Deno.test("readPeerMessage accepts what pyp2p clients send", () => {
  assert.deepEqual(read('{"type":"hello","peer_id":"a@n"}'), {
    ok: true,
    message: { type: "HELLO", peerId: "a@n", version: undefined, features: [] },
  });
  assert.deepEqual(read('{"type":"SEND","msg_id":12,"payload":5,"extra":{"x":1}}'), {
    ok: true,
    message: { type: "SEND", msgId: "12", src: undefined, dst: undefined, payload: "5" },
  });
  assert.deepEqual(read('{"type":"HELLO_OK","features":"ack, p2pchat","ttl":"1"}'), {
    ok: true,
    message: {
      type: "HELLO_OK",
      peerId: undefined,
      version: undefined,
      features: ["ack", "p2pchat"],
    },
  });
  assert.deepEqual(read('{"type":"MAKE_COFFEE","data":"..."}'), {
    ok: false,
    reason: "unknown_type",
  });
  // FILE_* lines go to the files layer as they are: it checks every field itself.
  assert.deepEqual(read('{"type":"FILE_CHUNK","data":"..."}'), {
    ok: true,
    message: { type: "FILE", kind: "FILE_CHUNK", fields: { type: "FILE_CHUNK", data: "..." } },
  });
  assert.deepEqual(read('{"type":"HELLO","peer_id":["a"]}'), { ok: false, reason: "bad_hello" });
});

Deno.test("readPeerMessage refuses a HELLO whose peer_id is empty or longer than name@namespace", () => {
  const longest = `${"n".repeat(64)}@${"s".repeat(64)}`;
  assert.equal(read(JSON.stringify({ type: "HELLO", peer_id: longest })).ok, true);
  for (const peerId of ["", longest + "x"]) {
    assert.deepEqual(read(JSON.stringify({ type: "HELLO", peer_id: peerId })), {
      ok: false,
      reason: "bad_hello",
    });
  }
});

Deno.test("readPeerMessage takes no msg_id with a NUL or a lone surrogate (stored, two would be one)", () => {
  const send = read(JSON.stringify({ type: "SEND", msg_id: "a\u0000b", payload: "hi" }));
  assert.ok(send.ok && send.message.type === "SEND" && send.message.msgId === undefined);
  const sends = read(JSON.stringify({
    type: "SENDS",
    msg_ids: ["b1\u0000", "b2", "b3\ud800"],
    payloads: ["x", "y", "z"],
  }));
  assert.ok(sends.ok && sends.message.type === "SENDS");
  assert.deepEqual(sends.message.msgs, [{ msgId: "b2", payload: "y" }]);
  assert.equal(sends.message.skipped, 2);
  const emoji = read(JSON.stringify({ type: "SEND", msg_id: "👍🏽-1", payload: "hi" }));
  assert.ok(emoji.ok && emoji.message.type === "SEND" && emoji.message.msgId === "👍🏽-1");
});

Deno.test("negotiateFeatures keeps only features both sides listed", () => {
  assert.deepEqual(wire.negotiateFeatures(wire.OUR_FEATURES, ["metrics", "ack", "files"]), [
    "ack",
    "metrics",
  ]);
  assert.deepEqual(wire.negotiateFeatures(wire.OUR_FEATURES, []), []);
});
