/**
 * Test helper run as a child process: opens the message store at `Deno.args[0]` and obeys one
 * command a line on standard input, answering on standard output:
 * `write N` adds N incoming messages and answers `committed N` once they are committed;
 * `count` answers `count N` (messages from bob); `exit` closes the store and exits.
 * It answers `ready` once open, or `error CODE` if opening failed.
 */
import { systemClock } from "../lib/clock.ts";
import { createLogger } from "../lib/log.ts";
import { openMessageStore } from "../peer/store/mod.ts";

const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n"));

let store;
try {
  store = openMessageStore({ path: Deno.args[0] }, {
    log: createLogger({ level: "error" }),
    clock: systemClock,
  });
} catch (error) {
  say(`error ${(error as { code?: string }).code ?? "unknown"}`);
  Deno.exit(1);
}
say("ready");

let written = 0;
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffered = "";
for await (const chunk of lines) {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf("\n")) >= 0) {
    const [command, argument] = buffered.slice(0, newline).split(" ");
    buffered = buffered.slice(newline + 1);
    if (command === "write") {
      for (let i = 0; i < Number(argument); i++) {
        written++;
        store.addIncoming({
          msgId: `child-${written}`,
          kind: "direct",
          from: "bob@lobby",
          conversation: "bob@lobby",
          text: `message ${written}`,
          at: systemClock.now(),
          encrypted: true,
        });
      }
      await store.committed();
      say(`committed ${argument}`);
    } else if (command === "count") {
      say(`count ${store.page("bob@lobby", { limit: 500 }).messages.length}`);
    } else if (command === "exit") {
      store.close();
      Deno.exit(0);
    }
  }
}
