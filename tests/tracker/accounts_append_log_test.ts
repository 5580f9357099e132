import assert from "node:assert/strict";
import { AppendLog, type LogState } from "../../lib/append_log.ts";
import { memoryLogger } from "../../lib/log.ts";
import { AccountStore } from "../../tracker/accounts/store.ts";
import { hashPassword } from "../../lib/password.ts";

/** A list of strings: the smallest state that shows order and completeness. */
class ListState implements LogState<string> {
  items: string[] = [];
  restore(state: unknown): void {
    if (!Array.isArray(state)) throw new TypeError("not a list");
    this.items = state.map(String);
  }
  parse(json: unknown): string {
    if (typeof json !== "string") throw new TypeError("not a string");
    return json;
  }
  apply(record: string): void {
    this.items.push(record);
  }
  snapshot(): unknown {
    return this.items;
  }
}

async function openList(path: string, compactMinBytes?: number, recoverDamaged = false) {
  const state = new ListState();
  const logged = memoryLogger();
  const { appendLog, report } = await AppendLog.open({
    path,
    state,
    log: logged.log,
    compactMinBytes,
    recoverDamaged,
    recoveryHint: "add --recover",
  });
  const add = (item: string) => {
    state.apply(item);
    return appendLog.append(item);
  };
  return { state, appendLog, report, add, lines: logged.lines };
}

async function withDir(run: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "append-log-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What a crash leaves: the log without the mark a clean close writes. */
function crashed(path: string): void {
  Deno.removeSync(`${path}.clean`);
}

Deno.test("AppendLog replays every appended record after a reopen, in order", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`);
    await Promise.all(["a", "b", "c"].map(first.add));
    await first.add("d");
    await first.appendLog.close();
    const second = await openList(`${dir}/log`);
    assert.deepEqual(second.state.items, ["a", "b", "c", "d"]);
    assert.deepEqual(second.report, { replayed: 4, tornBytes: 0, skippedLines: 0 });
    await second.appendLog.close();
  }));

Deno.test("AppendLog cuts a torn last line, reports it and keeps every complete record", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`);
    await first.add("kept");
    await first.appendLog.close();
    for (const tail of ['{"seq":2,"r":"ha', '{"seq":2,"r":"half"}', "\u0000\u0000\u0000\n"]) {
      crashed(`${dir}/log`);
      await Deno.writeTextFile(`${dir}/log`, tail, { append: true });
      const reopened = await openList(`${dir}/log`);
      assert.deepEqual(reopened.state.items, ["kept"], JSON.stringify(tail));
      assert.equal(reopened.report.tornBytes, new TextEncoder().encode(tail).length);
      assert.equal(reopened.report.quarantinedTo, undefined);
      assert.ok(reopened.lines.some((line) => line.includes("torn")));
      await reopened.add("after");
      await reopened.appendLog.close();
      const again = await openList(`${dir}/log`);
      assert.deepEqual(again.state.items, ["kept", "after"]);
      assert.equal(again.report.tornBytes, 0);
      await again.appendLog.close();
      // Back to one record for the next tail.
      await Deno.remove(`${dir}/log`);
      const reset = await openList(`${dir}/log`);
      await reset.add("kept");
      await reset.appendLog.close();
    }
  }));

Deno.test("AppendLog refuses a log damaged in the middle; asked to recover, it moves it aside and keeps the readable records", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`);
    for (const item of ["a", "b", "c"]) await first.add(item);
    await first.appendLog.close();
    const text = await Deno.readTextFile(`${dir}/log`);
    await Deno.writeTextFile(`${dir}/log`, text.replace('"r":"b"}', '"r":"b"#garbage'));

    // Damage is never silently turned into less data: the start stops, naming file and choice.
    await assert.rejects(openList(`${dir}/log`), (error: Error & { code?: string }) => {
      assert.equal(error.code, "corrupt_store");
      assert.match(error.message, /log" is damaged \(1 unreadable line\(s\) before the end\)/);
      assert.match(error.message, /add --recover to start from the 2 readable record\(s\)/);
      return true;
    });
    assert.equal(
      await Deno.readTextFile(`${dir}/log`),
      text.replace('"r":"b"}', '"r":"b"#garbage'),
    );

    const second = await openList(`${dir}/log`, undefined, true);
    assert.deepEqual(second.state.items, ["a", "c"]);
    assert.equal(second.report.skippedLines, 1);
    assert.ok(second.report.quarantinedTo);
    assert.equal(
      await Deno.readTextFile(second.report.quarantinedTo!),
      text.replace('"r":"b"}', '"r":"b"#garbage'),
    );
    assert.ok(second.lines.some((line) => line.includes("ERROR") && line.includes("corrupt")));
    await second.add("d");
    await second.appendLog.close();

    const third = await openList(`${dir}/log`);
    assert.deepEqual(third.state.items, ["a", "c", "d"]);
    assert.equal(third.report.quarantinedTo, undefined);
    await third.appendLog.close();
  }));

Deno.test("AppendLog compacts into a snapshot once the log outgrows it, and reloads the same state", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`, 200);
    for (let index = 0; index < 50; index++) await first.add(`item-${index}`);
    await first.appendLog.close();
    const snapshot = JSON.parse(await Deno.readTextFile(`${dir}/log.snapshot`));
    assert.equal(snapshot.snapshot, 1);
    assert.ok(snapshot.seq > 0 && snapshot.seq <= 50);
    const logText = await Deno.readTextFile(`${dir}/log`);
    assert.ok(logText.split("\n").length < 20, "the log restarted after the snapshot");

    const second = await openList(`${dir}/log`, 200);
    assert.deepEqual(second.state.items, Array.from({ length: 50 }, (_, index) => `item-${index}`));
    await second.appendLog.close();
  }));

Deno.test("AppendLog skips records a snapshot already covers (a crash between snapshot and log restart)", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`);
    for (const item of ["a", "b", "c"]) await first.add(item);
    await first.appendLog.close();
    // The snapshot of seq 2 landed; the log was not restarted yet.
    await Deno.writeTextFile(
      `${dir}/log.snapshot`,
      JSON.stringify({ snapshot: 1, seq: 2, state: ["a", "b"] }),
    );
    const second = await openList(`${dir}/log`);
    assert.deepEqual(second.state.items, ["a", "b", "c"]);
    await second.appendLog.close();
  }));

Deno.test("AppendLog refuses to start with corrupt_store when the log continues a missing or corrupt snapshot", () =>
  withDir(async (dir) => {
    const first = await openList(`${dir}/log`, 100);
    for (let index = 0; index < 20; index++) await first.add(`item-${index}`);
    await first.appendLog.close();
    const snapshot = await Deno.readTextFile(`${dir}/log.snapshot`);
    await Deno.writeTextFile(`${dir}/log.snapshot`, snapshot.slice(0, 10));
    await assert.rejects(openList(`${dir}/log`), { code: "corrupt_store" });
    const kept = [...Deno.readDirSync(dir)].filter((entry) => entry.name.includes(".corrupt-"));
    assert.equal(kept.length, 1, "the corrupt snapshot is kept aside");
    await assert.rejects(openList(`${dir}/log`), { code: "corrupt_store" }, "and stays refused");
  }));

Deno.test("AccountStore drops a half-written sign-up and keeps the complete ones", () =>
  withDir(async (dir) => {
    const credential = await hashPassword("password", 1000);
    const { store } = await AccountStore.open(dir, memoryLogger().log);
    await store.commit({ op: "signup", username: "alice", credential, at: 1 });
    await store.commit({ op: "signup", username: "bob", credential, at: 2 });
    await store.close();
    crashed(`${dir}/accounts.log`);
    const text = await Deno.readTextFile(`${dir}/accounts.log`);
    await Deno.writeTextFile(`${dir}/accounts.log`, text.slice(0, text.length - 30));
    const { store: reopened, report } = await AccountStore.open(dir, memoryLogger().log);
    assert.ok(reopened.user("alice"));
    assert.equal(reopened.user("bob"), undefined);
    assert.ok(report.tornBytes > 0);
    await reopened.close();
  }));

Deno.test("AppendLog refuses a log cut after a clean stop, which no crash explains", () =>
  withDir(async (dir) => {
    const path = `${dir}/log`;
    const first = await openList(path);
    for (const item of ["a", "b", "c", "d"]) await first.add(item);
    await first.appendLog.close();
    const whole = await Deno.readTextFile(path);
    // Cut in the middle of a record, as a bad copy would.
    const cut = whole.slice(0, whole.indexOf('"c"') + 1);
    await Deno.writeTextFile(path, cut);
    const refused = await openList(path).catch((error) => error);
    assert.equal(refused.code, "corrupt_store");
    assert.match(refused.message, /shorter than at the last clean stop .*cut while stopped/);
    assert.equal(await Deno.readTextFile(path), cut, "nothing was changed");
    // Cut at a line's end: still short of the last record.
    await Deno.writeTextFile(path, whole.slice(0, whole.indexOf('"c"')).replace(/[^\n]*$/, ""));
    assert.equal((await openList(path).catch((error) => error)).code, "corrupt_store");
    // Asked to recover: the readable records, the cut file kept aside.
    const recovered = await openList(path, undefined, true);
    assert.deepEqual(recovered.state.items, ["a", "b"]);
    assert.ok(recovered.report.quarantinedTo);
    await recovered.appendLog.close();
    // The recovered log is whole again after its own clean stop.
    const again = await openList(path);
    assert.deepEqual(again.state.items, ["a", "b"]);
    await again.appendLog.close();
  }));
