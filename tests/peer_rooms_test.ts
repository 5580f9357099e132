import assert from "node:assert/strict";
import { memoryLogger } from "../lib/log.ts";
import { type AccountsEvent, PeerAccounts } from "../peer/accounts.ts";
import { memoryTokenStore } from "../peer/accounts_token.ts";
import { createPeerApi } from "../peer/http_api.ts";
import { mountAccountApi } from "../peer/http_account_api.ts";
import { SessionClient } from "../peer/session_client.ts";
import { accountCommands, accountNotices } from "../peer/tui_account_commands.ts";
import { runTerminal } from "../peer/tui.ts";
import { FakePeerNode } from "./_fake_node.ts";
import { SessionTracker, settle } from "./_session_tracker.ts";

/** A peer's accounts over a fake node, logged in to the in-process tracker. */
function member(tracker: SessionTracker, name: string, port: number) {
  const node = new FakePeerNode(name, "lobby");
  const session = new SessionClient(
    { username: name, address: () => ({ peerId: node.peerId, port }) },
    {
      connect: tracker.connect,
      tokens: memoryTokenStore(),
      clock: tracker.clock,
      log: memoryLogger().log,
    },
  );
  const accounts = new PeerAccounts(session, node, {
    clock: tracker.clock,
    log: memoryLogger().log,
  });
  const events: AccountsEvent[] = [];
  accounts.subscribe((event) => events.push(event));
  return { node, session, accounts, events };
}

async function withRoom(
  run: (peers: ReturnType<typeof member>[], tracker: SessionTracker) => Promise<void>,
) {
  const tracker = await SessionTracker.start();
  const peers = [member(tracker, "alice", 7001), member(tracker, "bob", 7002)];
  try {
    await peers[0].accounts.signup("alice-secret");
    await peers[1].accounts.signup("bob-secret-1");
    await peers[0].accounts.createRoom("games");
    await peers[1].accounts.joinRoom("games");
    await run(peers, tracker);
  } finally {
    await Promise.all(peers.map((peer) => peer.session.stop()));
    await tracker.close();
  }
}

Deno.test("PeerAccounts.publish() to #room dials online members and reaches each peer once", () =>
  withRoom(async ([alice]) => {
    // A pyp2p peer of namespace "games", and bob also known under that namespace's scope.
    alice.node.addPeer("carl@games");
    const result = await alice.accounts.publish("#games", "hello");
    // Dialled when bob joined (pushed), and ensured again before the PUB.
    assert.ok(alice.node.dialled.length >= 1);
    for (const dial of alice.node.dialled) {
      assert.deepEqual(dial, {
        peerId: "bob@lobby",
        address: { hostname: "127.0.0.1", port: 7002 },
      });
    }
    assert.deepEqual(alice.node.published, [
      { scope: "#games", text: "hello", alsoTo: ["bob@lobby"] },
    ]);
    assert.equal(result.reached, 2);
    assert.deepEqual(result.peers.sort(), ["bob@lobby", "carl@games"]);
  }));

Deno.test("PeerAccounts.publish() keeps the pyp2p meaning of #ns for rooms we are not in", () =>
  withRoom(async ([, bob], tracker) => {
    const carol = member(tracker, "carol", 7003);
    try {
      await carol.accounts.signup("carol-secret");
      carol.node.addPeer("dave@games");
      const result = await carol.accounts.publish("#games", "hi");
      assert.deepEqual(carol.node.dialled, []);
      assert.deepEqual(result.peers, ["dave@games"]);
      // Not logged in at all: same.
      await bob.accounts.logout();
      const plain = await bob.accounts.publish("#games", "hi");
      assert.equal(plain.reached, 0);
      assert.deepEqual(bob.node.published.at(-1)?.alsoTo, undefined);
    } finally {
      await carol.session.stop();
    }
  }));

Deno.test("PeerAccounts reports room pushes and keeps member addresses current", () =>
  withRoom(async ([alice, bob]) => {
    await settle();
    const joined = alice.events.find((e) => e.type === "room" && e.event === "room_joined");
    assert.equal(joined?.type === "room" && joined.username, "bob");
    await bob.accounts.leaveRoom("games");
    await settle();
    const left = alice.events.at(-1);
    assert.ok(left?.type === "room" && left.event === "room_left");
    assert.equal(left.username, "bob");
    assert.equal(left.owner, "alice");
    // bob is no member any more: a PUB to #games does not dial him.
    await alice.accounts.publish("#games", "still here?");
    assert.deepEqual(alice.node.published.at(-1)?.alsoTo, undefined);
    await bob.accounts.joinRoom("games");
    await alice.accounts.deleteRoom("games");
    await settle();
    const deleted = bob.events.at(-1);
    assert.ok(deleted?.type === "room" && deleted.event === "room_deleted");
    assert.equal(deleted.username, "alice");
  }));

Deno.test("/delete by a member who is not the owner shows the tracker's not_owner error", () =>
  withRoom(async ([, bob]) => {
    const output = await _pipe(bob, "/delete #games\n/who games\n/rooms\n");
    assert.match(output[0], /^error: \/delete failed: not_owner: /);
    assert.equal(output[1], "#games: owner alice, 2 members, 2 online");
    assert.match(output[3], /^alice\s+online\s+alice@lobby\/127\.0\.0\.1:7001$/);
    assert.match(output[6], /^#games\s+alice\s+2\s+2\s+alice,bob$/);
  }));

Deno.test("account commands in a pipe take the password as argument and check room names", () =>
  withRoom(async ([alice]) => {
    const output = await _pipe(
      alice,
      "/logout\n/login\n/login alice-secret\n/join bad@name\n/create #games\n/leave\n",
    );
    assert.deepEqual(output.slice(0, 3), [
      "logged out",
      "error: without a terminal the password is the argument: /login PASSWORD",
      "logged in as alice",
    ]);
    assert.match(output[3], /^error: Room name /);
    assert.match(output[4], /^error: \/create failed: room_exists: /);
    // /leave without a room names the conversation's: #lobby here, of which alice is no member.
    assert.match(output[5], /^error: \/leave failed: no_such_room: /);
  }));

Deno.test("/login in a terminal asks for the password masked and never prints it", () =>
  withRoom(async ([alice]) => {
    await alice.accounts.logout();
    const printed: string[] = [];
    const keys = new ReadableStream<Uint8Array>({
      async start(controller) {
        const type = (text: string) => controller.enqueue(new TextEncoder().encode(text));
        type("/login\r");
        await settle();
        type("alice-secret\r");
        while (!alice.accounts.loggedIn) await settle();
        await settle();
        controller.close();
      },
    });
    await runTerminal(alice.node, {
      log: memoryLogger().log,
      color: false,
      isTerminal: true,
      input: keys,
      output: (text) => printed.push(text),
      commands: accountCommands(alice.accounts),
      attach: accountNotices(alice.accounts),
    });
    const screen = printed.join("");
    assert.ok(alice.accounts.loggedIn);
    assert.ok(screen.includes("password: "));
    assert.ok(screen.includes("************"));
    assert.ok(!screen.includes("alice-secret"));
    assert.ok(screen.includes("logged in as alice"));
  }));

Deno.test("HTTP API: account and room routes map the tracker's errors to statuses", () =>
  withRoom(async ([alice, bob]) => {
    const app = (peer: typeof alice) => {
      const api = createPeerApi(peer.accounts.roomAwareNode(), {
        token: "t",
        log: memoryLogger().log,
        extraEvents: peer.accounts,
      });
      mountAccountApi(api, peer.accounts);
      return api;
    };
    const call = (peer: typeof alice, method: string, path: string, body?: unknown) =>
      app(peer).request(`http://127.0.0.1${path}`, {
        method,
        headers: { authorization: "Bearer t", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    let reply = await call(bob, "DELETE", "/api/rooms/games");
    assert.equal(reply.status, 403);
    assert.equal((await reply.json()).error.code, "not_owner");
    reply = await call(alice, "GET", "/api/rooms/games/members");
    assert.equal(reply.status, 200);
    assert.deepEqual((await reply.json()).members.map((m: { username: string }) => m.username), [
      "alice",
      "bob",
    ]);
    reply = await call(alice, "POST", "/api/rooms", { name: "art" });
    assert.equal(reply.status, 201);
    reply = await call(bob, "POST", "/api/rooms/nothere/join");
    assert.equal(reply.status, 404);
    reply = await call(bob, "POST", "/api/account/logout");
    assert.deepEqual(await reply.json(), { username: "bob", state: "logged_out" });
    reply = await call(bob, "POST", "/api/account/login", { password: "wrong-password" });
    assert.equal(reply.status, 403);
    assert.equal((await reply.json()).error.code, "login_failed");
    reply = await call(bob, "POST", "/api/account/login", { password: "bob-secret-1" });
    assert.deepEqual(await reply.json(), { username: "bob", state: "logged_in" });
    reply = await call(alice, "GET", "/api/users");
    assert.equal((await reply.json()).count, 2);
    reply = await call(alice, "POST", "/api/publish", { scope: "#games", text: "hi" });
    assert.equal((await reply.json()).reached, 1);
  }));

async function _pipe(peer: ReturnType<typeof member>, text: string): Promise<string[]> {
  const printed: string[] = [];
  await runTerminal(peer.node, {
    log: memoryLogger().log,
    color: false,
    isTerminal: false,
    input: new Blob([text]).stream(),
    output: (chunk) => printed.push(chunk),
    commands: accountCommands(peer.accounts),
  });
  return printed.join("").split("\n").filter((line) => line !== "");
}
