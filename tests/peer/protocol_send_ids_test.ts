import assert from "node:assert/strict";
import { SendIds } from "../../peer/protocol/send_ids.ts";

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("SendIds makes distinct version-8 UUIDs, different for every connection", () => {
  const one = new SendIds();
  const other = new SendIds();
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = one.idOf(one.next());
    assert.match(id, UUID_V8);
    ids.add(id);
    ids.add(other.idOf(other.next()));
  }
  assert.equal(ids.size, 2000);
});

Deno.test("SendIds reads back the number of its own ids only", () => {
  const ids = new SendIds();
  for (let i = 0; i < 3; i++) ids.next();
  const seq = ids.next();
  assert.equal(ids.seqOf(ids.idOf(seq)), seq);
  assert.equal(ids.seqOf(new SendIds().idOf(seq)), undefined);
  assert.equal(ids.seqOf(crypto.randomUUID()), undefined);
  assert.equal(ids.seqOf(ids.idOf(seq) + "0"), undefined);
  assert.equal(ids.seqOf(""), undefined);
  for (const seq of [0, 0xff, 0x100, 0xffff, 0x10000, 0x123456789a, 2 ** 48 - 1]) {
    assert.match(ids.idOf(seq), UUID_V8);
    assert.equal(ids.seqOf(ids.idOf(seq)), seq);
  }
  assert.ok(ids.idOf(0x10000).endsWith("000000010000"));
});

Deno.test("SendIds reads an id back the same whether or not it was the last one made", () => {
  const ids = new SendIds();
  const first = ids.idOf(7);
  const copy = `${first}`.split("").join("");
  assert.equal(ids.seqOf(first), 7, "the last id made");
  ids.idOf(8);
  assert.equal(ids.seqOf(first), 7, "an older one, read digit by digit");
  assert.equal(ids.seqOf(copy), 7, "an equal string made elsewhere (off the wire)");
  assert.equal(new SendIds().seqOf(first), undefined);
  // Before any id is made, the empty id is no id of ours (a peer may ACK with "").
  assert.equal(new SendIds().seqOf(""), undefined);
});
