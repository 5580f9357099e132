/**
 * Run by memory_retention_test.ts with --expose-gc: keeps what a peer keeps of many messages
 * that came in large reads, and prints the heap in use after a full collection (MB).
 *   lines:  SENDs read from 64 KiB chunks (the rest junk), their msg_ids and payloads kept
 *   merged: messages with 20,000-character texts staged, then moved into the table
 */
import { LineDecoder } from "../lib/framing.ts";
import { systemClock } from "../lib/clock.ts";
import { Logger } from "../lib/log.ts";
import { readOwnLine } from "../peer/protocol/messages.ts";
import { openMessageStore } from "../peer/store/mod.ts";

const COUNT = 2_000;
const gc = (globalThis as unknown as { gc: () => void }).gc;
const kept: unknown[] = [];

if (Deno.args[0] === "lines") {
  const encoder = new TextEncoder();
  const decoder = new LineDecoder();
  for (let i = 0; i < COUNT; i++) {
    const send =
      `{"type":"SEND","msg_id":"id-${i}-0123456789","src":"bob@ns","dst":"me@ns","payload":"text ${i} 0123456789","require_ack":true,"ttl":1}\n`;
    const junk = `${"j".repeat(30_000)}\n`;
    for (const frame of decoder.push(encoder.encode(send + junk + junk))) {
      const message = frame.kind === "line" ? readOwnLine(frame.text) : undefined;
      if (message?.type === "SEND") kept.push(message.msgId, message.payload);
    }
  }
} else {
  const log = new Logger({ level: "error", format: "human", sink: () => {} });
  const store = openMessageStore({ path: ":memory:" }, { log, clock: systemClock });
  for (let i = 0; i < COUNT; i++) {
    store.addIncoming({
      msgId: `m-${i}`,
      kind: "direct",
      from: "bob@ns",
      conversation: "bob@ns",
      text: `${i}`.padEnd(20_000, "x"),
      at: i,
      encrypted: false,
    });
  }
  store.settle();
  kept.push(store);
}
gc();
console.log(JSON.stringify({ kept: kept.length, heapMB: Deno.memoryUsage().heapUsed / 1e6 }));
