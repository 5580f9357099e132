import assert from "node:assert/strict";
import { base64 } from "../../lib/bytes.ts";
import { Harness, type TestClient, testKey } from "../_accounts_harness.ts";

/** Signs `username` up from its own profile (identity key) and address. */
async function loggedIn(harness: Harness, username: string, ip: string, port: number) {
  const client = harness.connect(ip, undefined, testKey());
  const reply = await client.signup(username, { port, peer_id: `${username}@games` });
  assert.equal(reply.status, "OK");
  return client;
}

/** Runs `test` on a fresh tracker with the first `count` of alice, bob and carol logged in. */
async function withMembers(
  count: number,
  test: (members: TestClient[], harness: Harness) => Promise<void>,
  options?: Parameters<typeof Harness.start>[0],
): Promise<void> {
  const harness = await Harness.start(options);
  try {
    const members: TestClient[] = [];
    for (const [index, name] of ["alice", "bob", "carol"].slice(0, count).entries()) {
      members.push(await loggedIn(harness, name, `10.0.0.${index + 1}`, 7001 + index));
    }
    await test(members, harness);
  } finally {
    await harness.close();
  }
}

function roomEvents(client: TestClient) {
  return client.events().map((event) => `${event.event}:${event.room}`);
}

Deno.test("Room lifecycle: each member sees every join, leave and the deletion", () =>
  withMembers(3, async ([alice, bob, carol], harness) => {
    const created = await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    assert.equal(created.status, "OK");
    assert.deepEqual((created.room as Record<string, unknown>).owner, "alice");

    const joined = await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    assert.equal(joined.status, "OK");
    assert.deepEqual(joined.members, [
      {
        username: "alice",
        online: true,
        addresses: [{ ip: "10.0.0.1", port: 7001, peer_id: "alice@games" }],
        last_seen: new Date(harness.clock.now()).toISOString(),
        identity_key: base64(alice.link.identityKey),
      },
      {
        username: "bob",
        online: true,
        addresses: [{ ip: "10.0.0.2", port: 7002, peer_id: "bob@games" }],
        last_seen: new Date(harness.clock.now()).toISOString(),
        identity_key: base64(bob.link.identityKey),
      },
    ]);
    const bobJoined = await alice.event("room_joined");
    assert.deepEqual((bobJoined.member as Record<string, unknown>).addresses, [
      { ip: "10.0.0.2", port: 7002, peer_id: "bob@games" },
    ]);
    assert.equal(
      (bobJoined.member as Record<string, unknown>).identity_key,
      base64(bob.link.identityKey),
    );

    await carol.request("SESSION_ROOM_JOIN", { room: "GAMES" });
    await bob.request("SESSION_ROOM_LEAVE", { room: "games" });
    const deleted = await alice.request("SESSION_ROOM_DELETE", { room: "games" });
    assert.equal(deleted.status, "OK");

    assert.deepEqual(roomEvents(alice), [
      "room_joined:games",
      "room_joined:games",
      "room_left:games",
    ]);
    assert.deepEqual(roomEvents(bob), ["room_joined:games"]);
    assert.deepEqual(roomEvents(carol), ["room_left:games", "room_deleted:games"]);
    assert.equal(carol.events("room_deleted")[0].by, "alice");
    assert.equal(harness.extension.service!.store.roomCount, 0);
  }));

Deno.test("Only the owner deletes a room; others get not_owner", () =>
  withMembers(2, async ([alice, bob], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    const refused = await bob.request("SESSION_ROOM_DELETE", { room: "games" });
    assert.equal(refused.code, "not_owner");
    assert.equal(harness.extension.service!.store.roomCount, 1);
    assert.equal(bob.events().length, 0);
  }));

Deno.test("Room commands refuse duplicates, unknown rooms, bad names and double joins", () =>
  withMembers(1, async ([alice], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    const cases: [string, Record<string, unknown>, string][] = [
      ["SESSION_ROOM_CREATE", { room: "Games" }, "room_exists"],
      ["SESSION_ROOM_CREATE", { room: "#games" }, "bad_room_name"],
      ["SESSION_ROOM_CREATE", {}, "bad_request"],
      ["SESSION_ROOM_JOIN", { room: "games" }, "already_member"],
      ["SESSION_ROOM_JOIN", { room: "chess" }, "no_such_room"],
      ["SESSION_ROOM_LEAVE", { room: "chess" }, "no_such_room"],
      ["SESSION_ROOM_DELETE", { room: "chess" }, "no_such_room"],
    ];
    for (const [type, fields, code] of cases) {
      assert.equal(
        (await alice.request(type, fields)).code,
        code,
        `${type} ${JSON.stringify(fields)}`,
      );
    }
    const bob = await loggedIn(harness, "bob", "10.0.0.2", 7002);
    assert.equal((await bob.request("SESSION_ROOM_LEAVE", { room: "games" })).code, "not_member");
  }));

Deno.test("The member cap refuses a join with room_full", () =>
  withMembers(3, async ([alice, bob, carol]) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "duo" });
    assert.equal((await bob.request("SESSION_ROOM_JOIN", { room: "duo" })).status, "OK");
    assert.equal((await carol.request("SESSION_ROOM_JOIN", { room: "duo" })).code, "room_full");
  }, { roomMemberCap: 2 }));

Deno.test("When the owner leaves, the longest-standing member owns the room", () =>
  withMembers(2, async ([alice, bob]) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    assert.equal((await alice.request("SESSION_ROOM_LEAVE", { room: "games" })).owner, "bob");
    assert.equal((await bob.event("room_left")).owner, "bob");
    assert.equal((await bob.request("SESSION_ROOM_DELETE", { room: "games" })).status, "OK");
  }));

Deno.test("A member whose heartbeats stop goes offline and the room's members are told", () =>
  withMembers(2, async ([alice, bob], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    for (let second = 10; second <= 40; second += 10) {
      harness.clock.advance(10_000);
      assert.equal((await alice.request("SESSION_HEARTBEAT")).status, "OK");
    }
    const offline = await alice.event("member_offline");
    assert.equal(offline.username, "bob");
    assert.equal(offline.room, "games");
    assert.ok(bob.link.closedByServer);
    assert.equal(bob.events("session_expired").length, 1);
    assert.equal(alice.link.closedByServer, false);

    const { users } = await alice.request("SESSION_USERS", {});
    const bobEntry = (users as Record<string, unknown>[]).find((user) => user.username === "bob")!;
    assert.equal(bobEntry.online, false);
    assert.deepEqual(bobEntry.addresses, []);
    assert.deepEqual(bobEntry.rooms, ["games"]);
    assert.equal(bobEntry.last_seen, offline.last_seen);

    const back = harness.connect("10.0.0.2", undefined, bob.link.identityKey);
    await back.login("bob", "bob-secret", { port: 7010 });
    const online = await alice.event("member_online");
    assert.deepEqual((online.member as Record<string, unknown>).addresses, [
      { ip: "10.0.0.2", port: 7010 },
    ]);
  }, { heartbeatWindowMs: 30_000 }));

Deno.test("Closing a session connection makes the member offline at once", () =>
  withMembers(2, async ([alice, bob], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    bob.handler.closed();
    assert.equal(alice.events("member_offline").length, 1);
    assert.equal(harness.extension.service!.onlineUsers, 1);
  }));

Deno.test("SESSION_USERS lists presence, last login, rooms and addresses, page by page", () =>
  withMembers(1, async ([alice], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    const loginTime = new Date(harness.clock.now()).toISOString();
    for (const name of ["bob", "carol", "dave"]) {
      (await loggedIn(harness, name, "10.0.0.9", 7009)).handler.closed();
    }
    const first = await alice.request("SESSION_USERS", { limit: 2 });
    assert.deepEqual((first.users as Record<string, unknown>[]).map((user) => user.username), [
      "alice",
      "bob",
    ]);
    assert.deepEqual((first.users as Record<string, unknown>[])[0], {
      username: "alice",
      online: true,
      last_seen: loginTime,
      last_login: loginTime,
      rooms: ["games"],
      addresses: [{ ip: "10.0.0.1", port: 7001, peer_id: "alice@games" }],
      identity_key: base64(alice.link.identityKey),
    });
    assert.equal(first.next, "bob");
    const second = await alice.request("SESSION_USERS", { limit: 2, after: first.next });
    assert.deepEqual((second.users as Record<string, unknown>[]).map((user) => user.username), [
      "carol",
      "dave",
    ]);
    assert.equal(second.next, null);
    const online = await alice.request("SESSION_USERS", { online: true });
    assert.deepEqual((online.users as Record<string, unknown>[]).map((user) => user.username), [
      "alice",
    ]);
    assert.equal((await alice.request("SESSION_USERS", { limit: 0 })).code, "bad_request");
  }));

Deno.test("SESSION_ROOMS lists owner, members and how many are online", () =>
  withMembers(2, async ([alice, bob], harness) => {
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await alice.request("SESSION_ROOM_CREATE", { room: "art" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    bob.handler.closed();
    const { rooms, next } = await alice.request("SESSION_ROOMS");
    assert.deepEqual(rooms, [
      {
        name: "art",
        owner: "alice",
        created: new Date(harness.clock.now()).toISOString(),
        member_count: 1,
        online_count: 1,
        cap: null,
        members: ["alice"],
      },
      {
        name: "games",
        owner: "alice",
        created: new Date(harness.clock.now()).toISOString(),
        member_count: 2,
        online_count: 1,
        cap: null,
        members: ["alice", "bob"],
      },
    ]);
    assert.equal(next, null);
    const members = await alice.request("SESSION_ROOM_MEMBERS", { room: "games", limit: 1 });
    assert.deepEqual((members.members as Record<string, unknown>[]).map((m) => m.username), [
      "alice",
    ]);
    assert.equal(members.next, "alice");
    const rest = await alice.request("SESSION_ROOM_MEMBERS", { room: "games", after: "alice" });
    assert.deepEqual(
      (rest.members as Record<string, unknown>[]).map((m) => [m.username, m.online]),
      [
        ["bob", false],
      ],
    );
  }));

Deno.test("Listings stay under the line limit by paging when entries are large", () =>
  withMembers(1, async ([alice]) => {
    for (let index = 0; index < 200; index++) {
      const name = `room-${String(index).padStart(3, "0")}-${"x".repeat(50)}`;
      assert.equal((await alice.request("SESSION_ROOM_CREATE", { room: name })).status, "OK");
    }
    const reply = await alice.request("SESSION_USERS", {});
    assert.ok(JSON.stringify(reply).length < 32768);
    const rooms = await alice.request("SESSION_ROOMS", { limit: 500 });
    assert.ok(JSON.stringify(rooms).length < 32768);
    assert.ok((rooms.rooms as unknown[]).length < 200);
    const more = await alice.request("SESSION_ROOMS", { limit: 500, after: rooms.next });
    assert.equal((rooms.rooms as unknown[]).length + (more.rooms as unknown[]).length, 200);
    assert.equal(more.next, null);
    assert.equal(
      (await alice.request("SESSION_ROOM_CREATE", { room: "one-too-many" })).code,
      "too_many_rooms",
    );
    assert.equal(typeof rooms.next, "string");
  }));

Deno.test("Users, tokens and rooms survive a tracker restart", () =>
  withMembers(1, async ([alice], harness) => {
    const { token } = await harness.connect(undefined, undefined, alice.link.identityKey)
      .login("alice");
    const bob = await loggedIn(harness, "bob", "10.0.0.2", 7002);
    await alice.request("SESSION_ROOM_CREATE", { room: "games" });
    await alice.request("SESSION_ROOM_CREATE", { room: "gone" });
    await bob.request("SESSION_ROOM_JOIN", { room: "games" });
    await alice.request("SESSION_ROOM_DELETE", { room: "gone" });
    await harness.restart();

    const store = harness.extension.service!.store;
    assert.equal(store.userCount, 2);
    assert.deepEqual(store.room("games")?.members, ["alice", "bob"]);
    assert.equal(store.room("gone"), undefined);
    assert.equal(store.user("bob")?.identityKey, base64(bob.link.identityKey));
    const again = harness.connect(undefined, undefined, alice.link.identityKey);
    assert.equal((await again.request("SESSION_RESUME", { token })).status, "OK");
    assert.equal(
      (await again.request("SESSION_ROOM_JOIN", { room: "games" })).code,
      "already_member",
    );
    assert.equal(
      (await harness.connect(undefined, undefined, bob.link.identityKey).login("bob")).status,
      "OK",
    );
    assert.equal(
      harness.extension.checkRegister("bob"),
      "name_owned",
    );
  }));
