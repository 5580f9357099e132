/**
 * The message store on 1,000,000 messages: append cost (batches of 128 per task), opening a
 * conversation's last 100 messages, search (rare and common words, short needles, a lagging
 * index), opening the store, bytes per message; and which commit timing batches a burst off a
 * socket best. Run: deno run -A scripts/bench_store_engine.ts [rows]
 */
import { DatabaseSync } from "node:sqlite";
import { systemClock } from "../lib/clock.ts";
import { createLogger } from "../lib/log.ts";
import { type MessageStore, openMessageStore } from "../peer/store/mod.ts";
import { type OpenHooks, openMessageStore as openWithHooks } from "../peer/store/open.ts";
import type { CommitTiming } from "../peer/store/message_store.ts";
import { PRUNE_STEP_ROWS } from "../peer/store/limits.ts";

const ROWS = Number(Deno.args[0] ?? 1_000_000);
const CONVERSATIONS = 200;
const BATCH = 128;
const WORDS = (
  "the quick brown fox jumps over a lazy dog hello world chat message peer offline online " +
  "meeting tomorrow see you later thanks sure call me back when free coffee train home work"
).split(" ");
const COMMON = "lunch"; // in one message of 20
const RARE = "zebra"; // in one message of 100,000

const log = createLogger({ level: "error" });
const deps = { log, clock: systemClock };

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function ms(value: number): string {
  return `${value.toFixed(2)} ms`;
}

function textOf(i: number): string {
  const words: string[] = [];
  for (let k = 0, n = 4 + (i % 9); k < n; k++) words.push(WORDS[(i * 7 + k * 13) % WORDS.length]);
  if (i % 20 === 0) words.push(COMMON);
  if (i % 100_000 === 7) words.push(RARE);
  return `${words.join(" ")} ${i}`;
}

/** Writes `rows` messages straight into the tables, then indexes them for search. */
function fill(path: string, rows: number): void {
  openMessageStore({ path }, deps).close();
  const db = new DatabaseSync(path);
  db.exec("PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF");
  db.exec("BEGIN");
  const prefixes: string[] = [];
  for (let c = 1; c <= CONVERSATIONS; c++) {
    db.prepare("INSERT INTO conversations (id, name) VALUES (?, ?)").run(c, `peer${c}@lobby`);
    db.prepare("INSERT INTO peers (id, peer_id) VALUES (?, ?)").run(c, `peer${c}@lobby`);
    prefixes.push(crypto.randomUUID().slice(0, 24));
  }
  db.prepare("INSERT INTO peers (id, peer_id, own) VALUES (?, ?, 1)").run(
    CONVERSATIONS + 1,
    "me@lobby",
  );
  const insert = db.prepare(
    `INSERT INTO messages (id, conversation, sender, flags, state, at, msg_id, text)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
       value ->> 6, value ->> 7 FROM json_each(?)`,
  );
  const start = Date.now() - rows * 1000;
  for (let first = 1; first <= rows; first += 1000) {
    const chunk = [];
    for (let id = first; id < first + 1000 && id <= rows; id++) {
      // Conversations in runs of 50 messages, a third of them ours.
      const conversation = 1 + (Math.floor(id / 50) % CONVERSATIONS);
      const outgoing = id % 3 === 0;
      const sender = outgoing ? CONVERSATIONS + 1 : conversation;
      const msgId = prefixes[conversation - 1] + id.toString(16).padStart(12, "0");
      // Ours delivered, theirs read; all encrypted.
      const [flags, state] = outgoing ? [5, 2] : [4, 3];
      chunk.push([id, conversation, sender, flags, state, start + id * 1000, msgId, textOf(id)]);
    }
    insert.run(JSON.stringify(chunk));
  }
  db.exec(`UPDATE conversations SET last_id = (SELECT max(id) FROM messages
    WHERE conversation = conversations.id)`);
  db.exec("UPDATE conversations SET read_upto = last_id");
  db.exec(`UPDATE meta SET value = ${rows + 1} WHERE key = 'next_id'`);
  // Every row is in the table, as a store that moved them there would record.
  db.exec(`UPDATE meta SET value = ${rows} WHERE key = 'merged_upto'`);
  db.exec("COMMIT");
  const indexing = performance.now();
  db.exec("BEGIN");
  db.exec("INSERT INTO search_index (rowid, text) SELECT id, text FROM messages");
  db.exec(`UPDATE meta SET value = ${rows} WHERE key = 'indexed_upto'`);
  db.exec("COMMIT");
  const indexMs = performance.now() - indexing;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  console.log(
    `  search index of ${rows} rows built in ${(indexMs / 1000).toFixed(1)} s ` +
      `(${(indexMs * 1000 / rows).toFixed(1)} us a row, done in idle steps by the store)`,
  );
}

function sizes(path: string, rows: number): void {
  const db = new DatabaseSync(path, { readOnly: true });
  const parts = db.prepare(
    "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC",
  ).all() as { name: string; bytes: number }[];
  db.close();
  const total = Deno.statSync(path).size;
  console.log(
    `  bytes per message on disk: ${(total / rows).toFixed(0)} (file ${
      (total / 1e6).toFixed(0)
    } MB)`,
  );
  const shown = parts.filter((part) => part.bytes > total / 100);
  console.log(
    "    " + shown.map((part) => `${part.name} ${(part.bytes / rows).toFixed(0)}`).join(", "),
  );
}

function timeOpen(path: string): void {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const store = openMessageStore({ path }, deps);
    samples.push(performance.now() - started);
    store.close();
  }
  console.log(
    `  open the store: median ${ms(percentile(samples, 0.5))}, max ${ms(Math.max(...samples))}`,
  );
}

async function appends(store: MessageStore, label: string, msgId: (i: number) => string) {
  const perMessage: number[] = [];
  const batches: number[] = [];
  let n = 0;
  for (let b = 0; b < 400; b++) {
    const started = performance.now();
    for (let k = 0; k < BATCH; k++, n++) {
      store.addIncoming({
        msgId: msgId(n),
        kind: "direct",
        from: "burst@lobby",
        conversation: "burst@lobby",
        text: textOf(n),
        at: Date.now(),
        encrypted: true,
      });
    }
    store.flush();
    const elapsed = performance.now() - started;
    batches.push(elapsed);
    perMessage.push(elapsed * 1000 / BATCH);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const mean = perMessage.reduce((a, b) => a + b, 0) / perMessage.length;
  console.log(
    `  append, ${label}: ${mean.toFixed(2)} us a message with its share of the ` +
      `commit; batch of ${BATCH} p50 ${ms(percentile(batches, 0.5))}, p99 ${
        ms(percentile(batches, 0.99))
      }`,
  );
}

function reads(store: MessageStore): void {
  const pages: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const conversation = `peer${1 + Math.floor(Math.random() * CONVERSATIONS)}@lobby`;
    const started = performance.now();
    const page = store.page(conversation, { limit: 100 });
    pages.push(performance.now() - started);
    if (page.messages.length !== 100) throw new Error(`short page for ${conversation}`);
  }
  console.log(
    `  open a conversation's last 100: p50 ${ms(percentile(pages, 0.5))}, p99 ${
      ms(percentile(pages, 0.99))
    }`,
  );
  for (
    const [label, needle] of [
      [`rare word "${RARE}"`, RARE],
      [`common word "${COMMON}"`, COMMON],
      [`absent word "quokka"`, "quokka"],
      [`2 characters "zq" (scans)`, "zq"],
    ]
  ) {
    const samples: number[] = [];
    let found = 0;
    for (let i = 0; i < (needle.length < 3 ? 5 : 200); i++) {
      const started = performance.now();
      found = store.search(needle, 50).length;
      samples.push(performance.now() - started);
    }
    console.log(
      `  search ${label}: p50 ${ms(percentile(samples, 0.5))}, p99 ${
        ms(percentile(samples, 0.99))
      } (${found} found)`,
    );
  }
}

/** Prune steps on a full store (retention by count). */
function prunes(path: string, rows: number): void {
  const store = openMessageStore({ path, maxMessages: rows - 20_000 }, deps);
  const samples: number[] = [];
  try {
    for (let deleted = 1; deleted > 0;) {
      const started = performance.now();
      deleted = store.prune(Date.now());
      store.flush();
      if (deleted > 0) samples.push(performance.now() - started);
    }
  } finally {
    store.close();
  }
  console.log(
    `  prune, ${samples.length} steps of up to ${PRUNE_STEP_ROWS} rows (with their commit): p50 ${
      ms(percentile(samples, 0.5))
    }, max ${ms(Math.max(...samples))}`,
  );
}

const _TIMINGS: Record<CommitTiming, string> = {
  task: "on a timer (setTimeout 0)",
  microtask: "in a microtask",
  asked: "as the store does (nobody waits here: within 10 ms)",
};

/** A burst of lines from a socket, each stored: how many commits, how long. */
async function burst(path: string, timing: CommitTiming, lines: number): Promise<void> {
  let commits = 0;
  const hooks: OpenHooks = { commitTiming: timing, onCommit: () => commits++ };
  const store = openWithHooks({ path }, deps, hooks);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const serving = (async () => {
    const conn = await listener.accept();
    let buffered = "";
    let n = 0;
    for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        store.addIncoming({
          msgId: `${timing}-${n++}`,
          kind: "direct",
          from: "socket@lobby",
          conversation: "socket@lobby",
          text,
          at: Date.now(),
          encrypted: false,
        });
      }
    }
    await store.committed();
    return n;
  })();
  const started = performance.now();
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const line = new TextEncoder().encode("x".repeat(60) + "\n");
  const chunk = new Uint8Array(line.length * 16);
  for (let i = 0; i < 16; i++) chunk.set(line, i * line.length);
  for (let sent = 0; sent < lines; sent += 16) await client.write(chunk);
  client.close();
  const received = await serving;
  const elapsed = performance.now() - started;
  listener.close();
  // A lone message: from the write to committed() resolving.
  const lone: number[] = [];
  for (let i = 0; i < 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const at = performance.now();
    store.addIncoming({
      msgId: `${timing}-lone-${i}`,
      kind: "direct",
      from: "socket@lobby",
      conversation: "socket@lobby",
      text: "alone",
      at: Date.now(),
      encrypted: false,
    });
    await store.committed();
    lone.push(performance.now() - at);
  }
  store.close();
  console.log(
    `  commit ${_TIMINGS[timing]}: a burst of ${received} lines in ${ms(elapsed)}, ${
      commits - 200
    } commits (${(received / (commits - 200)).toFixed(0)} lines each); ` +
      `a lone message committed after p50 ${ms(percentile(lone, 0.5))}, p99 ${
        ms(percentile(lone, 0.99))
      }`,
  );
}

export async function benchStoreEngine(rows = ROWS): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2pchat-bench-store-" });
  const path = `${dir}/messages.db`;
  try {
    console.log(`message store with ${rows} messages in ${CONVERSATIONS} conversations:`);
    const filling = performance.now();
    fill(path, rows);
    console.log(`  filled in ${((performance.now() - filling) / 1000).toFixed(1)} s`);
    sizes(path, rows);
    timeOpen(path);
    const store = openMessageStore({ path, maxMessages: 10 * rows }, deps);
    try {
      reads(store);
      const prefix = crypto.randomUUID().slice(0, 24);
      await appends(store, "p2pchat msg_ids", (n) => prefix + n.toString(16).padStart(12, "0"));
      await appends(store, "random UUID msg_ids (pyp2p)", () => crypto.randomUUID());
      store.flush();
      const lagging = store.search(RARE, 50).length;
      const started = performance.now();
      store.search(RARE, 50);
      console.log(
        `  search "${RARE}" with ${2 * 400 * BATCH} messages not yet indexed: ${
          ms(performance.now() - started)
        } (${lagging} found)`,
      );
    } finally {
      store.close();
    }
    prunes(path, rows);
    for (const timing of ["task", "microtask", "asked"] as const) await burst(path, timing, 50_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await benchStoreEngine();
