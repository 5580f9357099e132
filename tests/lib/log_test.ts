import assert from "node:assert/strict";
import { createLogger, Logger } from "../../lib/log.ts";

Deno.test("Logger writes human lines tagged with the component, filtered by level", () => {
  const lines: string[] = [];
  const log = new Logger({ level: "info", format: "human", sink: (line) => lines.push(line) });
  const router = log.child("Router");
  router.debug("hidden");
  router.info("Connected", { peer: "bob@lab", features: ["ack"] });
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\d{4}-\d\d-\d\dT\S+Z INFO {2}\[Router\] Connected peer=bob@lab features=\["ack"\]$/,
  );
  log.setLevel("debug");
  router.debug("shown");
  assert.equal(lines.length, 2, "children share the level");
});

Deno.test("Logger writes one JSON object per line with --log-format json", () => {
  const lines: string[] = [];
  const log = new Logger({ level: "debug", format: "json", sink: (line) => lines.push(line) });
  log.child("Discovery").warn("Tracker unreachable", { attempt: 3 });
  const entry = JSON.parse(lines[0]);
  assert.deepEqual(
    { ...entry, time: undefined },
    {
      time: undefined,
      level: "warn",
      component: "Discovery",
      message: "Tracker unreachable",
      attempt: 3,
    },
  );
  assert.ok(!Number.isNaN(Date.parse(entry.time)));
});

Deno.test("createLogger() appends to --log-file instead of standard error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/p2pchat.log`;
    await Deno.writeTextFile(file, "earlier line\n");
    const log = createLogger({ level: "info", format: "json", file });
    log.child("PeerServer").info("Listening");
    const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    assert.equal(lines[0], "earlier line");
    assert.equal(JSON.parse(lines[1]).component, "PeerServer");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
