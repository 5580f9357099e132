/**
 * Child process for the crash test: appends sign-ups through AccountStore as fast as it
 * can and prints "ack NAME" once each is durable, until it is killed.
 * Usage: deno run -A tests/_signup_writer.ts DATA_DIR
 */
import { memoryLogger } from "../lib/log.ts";
import { hashPassword } from "../lib/password.ts";
import { AccountStore } from "../tracker/accounts/store.ts";

const [dataDir] = Deno.args;
const credential = await hashPassword("password", 1000);
// A small compaction threshold so the kill also lands during snapshot and log restarts.
const { store } = await AccountStore.open(dataDir, memoryLogger().log, { compactMinBytes: 16_384 });
const encoder = new TextEncoder();
for (let index = 0;; index += 4) {
  // Four in flight at once, so group commits (several lines per write) are exercised too.
  await Promise.all([0, 1, 2, 3].map(async (offset) => {
    const username = `user${index + offset}`;
    await store.commit({ op: "signup", username, credential, at: Date.now() });
    Deno.stdout.writeSync(encoder.encode(`ack ${username}\n`));
  }));
}
