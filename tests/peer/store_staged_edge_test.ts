/**
 * Staged rows read in place give what the table gives once they are moved there: texts the
 * table would change, bounds that are not numbers, and a long burst with partial merges.
 */
import assert from "node:assert/strict";
import type { MessageStore } from "../../peer/store/mod.ts";
import { incoming, outgoing, TestStore } from "../_message_store.ts";

function snapshot(s: MessageStore, needles: string[]) {
  return {
    page: s.page("bob@lobby", { limit: 500 }),
    conversations: s.conversations(),
    search: needles.map((n) => s.search(n, 500)),
  };
}

for (
  const [name, text, needles] of [
    ["a lone surrogate", "a\uD800b", ["\uD800", "\uFFFD", "a"]],
    ["a NUL character", "a\u0000B", ["b", "\u0000", "a"]],
  ] as const
) {
  Deno.test(`staged and table rows read the same with ${name} in the text`, () => {
    using t = new TestStore("file");
    t.store.addIncoming(incoming({ text }));
    const staged = snapshot(t.store, [...needles]);
    t.store.settle();
    const table = snapshot(t.store, [...needles]);
    assert.deepEqual(staged, table);
  });
}

Deno.test("page with NaN bounds is refused, staged or settled", () => {
  using t = new TestStore("file");
  for (let i = 0; i < 3; i++) t.store.addIncoming(incoming({ text: `m${i}` }));
  const read = () => {
    assert.throws(() => t.store.page("bob@lobby", { after: NaN }), RangeError);
    assert.throws(() => t.store.page("bob@lobby", { before: NaN }), RangeError);
  };
  read();
  t.store.settle();
  read();
});

Deno.test("a long burst with partial merges pages and searches the same after settle", () => {
  using t = new TestStore("file");
  let serial = 0;
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 700; i++) {
      const conversation = i % 3 === 0 ? "carol@lobby" : "bob@lobby";
      t.store.addIncoming(
        incoming({ from: conversation, text: `Msg ${serial++} ${"x".repeat(i % 50)}` }),
      );
      if (i % 97 === 0) t.store.addOutgoing(outgoing({ state: "queued", text: `q${serial}` }));
      if (i % 89 === 0) {
        t.store.addOutgoing(
          outgoing({ conversation: "#r", kind: "pub", state: "sent", pendingFor: ["dave"] }),
        );
      }
    }
    t.store.flush();
    if (round % 4 === 1) t.clock.advance(30); // one merge step
    if (round % 7 === 3) t.store.markRead("bob@lobby", 10_000 + round * 300);
    for (const q of t.store.queued().slice(0, 3)) t.store.cancel(q.id);
  }
  const read = () => {
    const pages = [];
    for (const limit of [1, 7, 500]) {
      for (const c of ["bob@lobby", "carol@lobby", "#r"]) {
        const ids: number[] = [];
        let before: number | undefined;
        let guard = 0;
        for (;;) {
          const p = t.store.page(c, { before, limit });
          ids.unshift(...p.messages.map((m) => m.id));
          if (!p.more || ++guard > 30) break;
          before = p.messages[0].id;
        }
        pages.push(
          ids,
          t.store.page(c, { after: 5000, limit }),
          t.store.page(c, { after: 19000, before: 19500, limit }),
        );
      }
    }
    return {
      pages,
      conversations: t.store.conversations(),
      queued: t.store.queued(),
      queuedFor: t.store.queuedFor("bob@lobby"),
      pendingFor: t.store.pendingFor("dave"),
      search: ["msg 1", "MSG 2099", "xx", "q", "20999 x"].map((n) => t.store.search(n, 50)),
    };
  };
  const before = read();
  t.store.settle();
  assert.deepEqual(read(), before);
});
