/**
 * Test and benchmark helper: a profile whose message store already holds a long conversation
 * with one peer (every other message ours, one every ten minutes, so it spans days).
 */
import { ManualClock } from "../../lib/clock.ts";
import { memoryLogger } from "../../lib/log.ts";
import { openMessageStore } from "../../peer/store/mod.ts";

const SPACING_MS = 10 * 60_000;

/** Writes `count` messages between `self` and `peer` into DATA-DIR/messages.db. */
export async function seedConversation(
  dataDir: string,
  self: string,
  peer: string,
  count: number,
): Promise<void> {
  const clock = new ManualClock();
  const store = openMessageStore(
    { path: `${dataDir}/messages.db`, retentionDays: 0 },
    { log: memoryLogger().log, clock },
  );
  const start = Date.now() - count * SPACING_MS;
  for (let i = 0; i < count; i++) {
    const message = {
      msgId: crypto.randomUUID(),
      kind: "direct" as const,
      conversation: peer,
      text: `message ${i}`,
      at: start + i * SPACING_MS,
      encrypted: true,
    };
    if (i % 2 === 0) store.addIncoming({ ...message, from: peer });
    else store.addOutgoing({ ...message, from: self, state: "sent" });
  }
  await store.committed();
  store.close();
}
