import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import { Discovery } from "../../peer/discovery/discovery.ts";
import {
  type RendezvousClient,
  type RendezvousRecord,
  TrackerRefusal,
} from "../../peer/discovery/rendezvous_client.ts";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A tracker in memory that can be taken down and restarted (forgetting every record). */
class FakeRendezvous implements RendezvousClient {
  up = true;
  records: RendezvousRecord[] = [];
  calls: string[] = [];

  #check(kind: string) {
    this.calls.push(kind);
    if (!this.up) throw new P2pError("tracker_unreachable", "connection refused");
  }
  register(r: { namespace: string; name: string; port: number; ttl: number }) {
    this.#check("REGISTER");
    this.records = this.records.filter((x) => !(x.name === r.name && x.namespace === r.namespace));
    this.records.push({ ip: "127.0.0.1", port: r.port, name: r.name, namespace: r.namespace });
    return Promise.resolve({ ttl: r.ttl, ip: "203.0.113.7", port: r.port });
  }
  discover() {
    this.#check("DISCOVER");
    return Promise.resolve([...this.records]);
  }
  unregister(r: { namespace: string; name: string }) {
    this.#check("UNREGISTER");
    this.records = this.records.filter((x) => !(x.name === r.name && x.namespace === r.namespace));
    return Promise.resolve();
  }
}

function setup(ttlSeconds = 100) {
  const clock = new ManualClock();
  const client = new FakeRendezvous();
  const found: RendezvousRecord[][] = [];
  const reachability: boolean[] = [];
  const discovery = new Discovery(
    { name: "me", namespace: "ns", port: 4000, ttlSeconds, discoverIntervalMs: 15_000 },
    { client, clock, log: memoryLogger().log, random: () => 0.5 },
    {
      peersFound: (records) => found.push(records),
      trackerChanged: (reachable) => reachability.push(reachable),
    },
  );
  return { clock, client, found, reachability, discovery };
}

Deno.test("Discovery registers, then discovers every namespace and leaves itself out", async () => {
  const { client, found, reachability, discovery } = setup();
  client.records.push({ ip: "10.0.0.2", port: 5000, name: "bob", namespace: "other" });
  await discovery.start();
  assert.deepEqual(client.calls, ["REGISTER", "DISCOVER"]);
  assert.deepEqual(found, [[{ ip: "10.0.0.2", port: 5000, name: "bob", namespace: "other" }]]);
  assert.deepEqual(reachability, [true]);
  assert.equal(discovery.status().publicIp, "203.0.113.7");
  await discovery.stop();
});

Deno.test("Discovery renews its registration at 60% of the TTL and discovers every 15 s", async () => {
  const { clock, client, discovery } = setup(100);
  await discovery.start();
  client.calls.length = 0;
  for (let i = 0; i < 3; i++) {
    clock.advance(15_000);
    await flush();
  }
  assert.deepEqual(client.calls, ["DISCOVER", "DISCOVER", "DISCOVER"]);
  clock.advance(15_000); // 60 s = 60% of 100 s
  await flush();
  assert.deepEqual(client.calls.slice(3), ["REGISTER", "DISCOVER"]);
  await discovery.stop();
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("Discovery recovers when the tracker was down at start", async () => {
  const { clock, client, reachability, discovery } = setup();
  client.up = false;
  await discovery.start();
  assert.deepEqual(reachability, [false]);
  assert.equal(discovery.status().registered, false);
  client.up = true;
  clock.advance(1_000); // first REGISTER retry after 1 s
  await flush();
  assert.deepEqual(reachability, [false, true]);
  assert.equal(discovery.status().registered, true);
  await discovery.stop();
});

Deno.test("Discovery registers again when a restarted tracker forgot it", async () => {
  const { clock, client, discovery } = setup(7200);
  await discovery.start();
  client.records = []; // the tracker restarted with an empty table
  client.calls.length = 0;
  clock.advance(15_000);
  await flush();
  assert.deepEqual(client.calls, ["DISCOVER", "REGISTER"]);
  assert.equal(client.records.length, 1);
  await discovery.stop();
});

Deno.test("Discovery retries REGISTER with backoff but never slower than the DISCOVER period", async () => {
  const { clock, client, discovery } = setup();
  client.up = false;
  await discovery.start();
  client.calls.length = 0;
  for (const delay of [1_000, 1_600, 2_560]) {
    clock.advance(delay);
    await flush();
  }
  assert.deepEqual(client.calls.filter((c) => c === "REGISTER").length, 3);
  client.calls.length = 0;
  for (let i = 0; i < 150; i++) {
    clock.advance(1_000);
    await flush();
  }
  const registers = client.calls.filter((c) => c === "REGISTER").length;
  assert.ok(registers >= 10, `only ${registers} REGISTER retries in 150 s`);
  await discovery.stop();
});

Deno.test("Discovery.unregister() removes the record, and only once registered", async () => {
  const { client, discovery } = setup();
  await discovery.unregister();
  assert.deepEqual(client.calls, []);
  await discovery.start();
  await discovery.stop();
  await discovery.unregister();
  assert.equal(client.calls.at(-1), "UNREGISTER");
  assert.deepEqual(client.records, []);
});

Deno.test("Discovery.unregister() removes a registration whose reply came after stop()", async () => {
  const { client, discovery } = setup();
  const reply = Promise.withResolvers<void>();
  const register = client.register.bind(client);
  client.register = async (r) => {
    const answer = register(r);
    await reply.promise;
    return answer;
  };
  const started = discovery.start();
  const stopped = discovery.stop(); // the peer exits while its first REGISTER is under way
  reply.resolve();
  await Promise.all([started, stopped]);
  await discovery.unregister();
  assert.deepEqual(client.calls, ["REGISTER", "UNREGISTER"]);
  assert.deepEqual(client.records, []);
});

Deno.test("a REGISTER the tracker refuses is told once as a refusal, the tracker as reachable", async () => {
  const clock = new ManualClock();
  const client = new FakeRendezvous();
  client.register = () =>
    Promise.reject(new TrackerRefusal("Tracker refused REGISTER: name_owned", "name_owned"));
  const changes: [boolean, string | undefined][] = [];
  const refusals: string[] = [];
  const { log, lines } = memoryLogger();
  const discovery = new Discovery(
    { name: "me", namespace: "ns", port: 4000, ttlSeconds: 100, discoverIntervalMs: 15_000 },
    { client, clock, log, random: () => 0.5 },
    {
      peersFound: () => {},
      trackerChanged: (reachable, detail) => changes.push([reachable, detail]),
      registerRefused: (reason) => refusals.push(reason),
    },
  );
  await discovery.start();
  clock.advance(15_000);
  await flush();
  assert.deepEqual(changes, [[true, undefined]], "reachable, with no refusal as its detail");
  assert.deepEqual(refusals, ["name_owned"]);
  assert.ok(!lines.some((line) => line.includes("WARN")), "the event tells it: no warning");
  await discovery.stop();
});
