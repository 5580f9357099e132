import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import { encodeLine, LineDecoder } from "../../lib/framing.ts";
import { memoryLogger } from "../../lib/log.ts";
import { type Conn, memoryConnPair } from "../../lib/transport.ts";
import { type AccountsEvent, PeerAccounts } from "../../peer/accounts/peer_accounts.ts";
import { formatAccountsEvent, formatUsers } from "../../peer/tui/account_format.ts";
import { memoryTokenStore } from "../../peer/accounts/token_store.ts";
import { createPeerApi } from "../../peer/http/routes.ts";
import { mountAccountApi } from "../../peer/http/account_routes.ts";
import { SessionClient } from "../../peer/accounts/session_client.ts";
import { accountCommands, accountNotices } from "../../peer/tui/account_commands.ts";
import { runTerminal } from "../../peer/tui/terminal.ts";
import { createStyle } from "../../peer/tui/format.ts";
import { FakePeerNode } from "../_fake_node.ts";
import { SessionTracker, settle } from "../_session_tracker.ts";

/** A peer's accounts over a fake node, logged in to the in-process tracker. */
function member(tracker: SessionTracker, name: string, port: number) {
  const node = new FakePeerNode(name, "lobby");
  const session = new SessionClient(
    { username: name, address: () => ({ peerId: node.peerId, port }) },
    {
      connect: tracker.connectAs(name),
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

Deno.test("PeerAccounts.publish() to #room keeps reaching connected members while the tracker is away", () =>
  withRoom(async ([, bob], tracker) => {
    await tracker.down();
    await settle();
    assert.equal(bob.accounts.state, "reconnecting");
    // alice stayed connected to bob: the remembered member list still names her.
    const result = await bob.accounts.publish("#games", "anyone there?");
    assert.deepEqual(result.peers, ["alice@lobby"]);
    assert.deepEqual(bob.node.published.at(-1)?.alsoTo, ["alice@lobby"]);
    // A real logout forgets the members: #games is the namespace again.
    await bob.accounts.logout();
    const plain = await bob.accounts.publish("#games", "hi");
    assert.equal(plain.reached, 0);
  }));

Deno.test("PeerAccounts.publish() writes at once to connected members and late to dialled ones", () =>
  withRoom(async ([alice], tracker) => {
    const carol = member(tracker, "carol", 7003);
    try {
      // carol's dial (when her join is pushed, and again for the PUB) waits for the test.
      alice.node.holdDials = true;
      await carol.accounts.signup("carol-secret");
      await carol.accounts.joinRoom("games");
      await settle();
      const sending = alice.accounts.publish("#games", "hi all");
      await settle();
      // bob, connected, has it already; carol's dial is still under way.
      assert.deepEqual(alice.node.published, [
        { scope: "#games", text: "hi all", alsoTo: ["bob@lobby"] },
      ]);
      alice.node.finishDial("carol@lobby", true);
      const result = await sending;
      assert.equal(result.reached, 2);
      assert.deepEqual(result.peers.sort(), ["bob@lobby", "carol@lobby"]);
      assert.deepEqual(alice.node.publishedTo, [
        { peerIds: ["carol@lobby"], dst: "#games", text: "hi all", msgId: result.msgId },
      ]);

      // carol's connection is lost and her redial waits for its backoff; then she fails.
      for (const state of ["connecting", "failed"] as const) {
        alice.node.addPeer("carol@lobby", {
          state,
          nextAttemptAt: state === "failed" ? undefined : Date.now() + 60_000,
        });
        const dials = alice.node.dialled.length;
        const again = await alice.accounts.publish("#games", `while carol is ${state}`);
        assert.deepEqual(again.peers, ["bob@lobby"]);
        assert.equal(alice.node.dialled.length, dials, "no new dial, no wait");
      }
    } finally {
      await carol.session.stop();
    }
  }));

Deno.test("PeerAccounts tells a lost session once and resumes when the node finds the tracker", () =>
  withRoom(async ([alice], tracker) => {
    const from = alice.events.length;
    await tracker.down();
    await settle();
    for (const delayMs of [1_000, 1_600, 2_560]) {
      tracker.clock.advance(delayMs);
      await settle();
    }
    await tracker.up();
    assert.equal(alice.accounts.state, "reconnecting");
    alice.node.emit({ type: "tracker", reachable: true, at: 0 });
    await settle(10);
    assert.equal(alice.accounts.state, "logged_in");
    const accountEvents = alice.events.slice(from).filter((event) => event.type === "account");
    const notices = accountEvents.map((event) =>
      formatAccountsEvent({ ...event, at: 0 }, createStyle(false))
    );
    assert.deepEqual(notices.map((line) => line?.replace(/^\S+ /, "")), [
      "-- tracker session lost (the tracker connection closed); reconnecting in the background",
      "-- tracker session back; logged in as alice",
    ]);
  }));

Deno.test("PeerAccounts never dials a member address whose peer_id names someone else", async () => {
  const member = (username: string, ...peerIds: string[]) => ({
    username,
    online: true,
    addresses: peerIds.map((peerId, i) => ({ ip: "10.0.0.66", port: 6000 + i, peer_id: peerId })),
  });
  const tracker = _scriptedTracker((request) => {
    if (request.type === "SESSION_LOGIN") return { token: "t", heartbeat_window_ms: 30_000 };
    if (request.type !== "SESSION_ROOM_MEMBERS") return {};
    return {
      room: { name: "games", owner: "alice", member_count: 2, online_count: 2 },
      members: [member("alice", "alice@lobby"), member("mallory", "bob@lobby", "MALLORY@x")],
      next: null,
    };
  });
  const node = new FakePeerNode("alice", "lobby");
  const clock = new ManualClock();
  const session = new SessionClient(
    { username: "alice", address: () => ({ peerId: node.peerId, port: 7001 }) },
    { connect: tracker.connect, tokens: memoryTokenStore(), clock, log: memoryLogger().log },
  );
  const accounts = new PeerAccounts(session, node, { clock, log: memoryLogger().log });
  try {
    await accounts.login("alice-secret");
    const result = await accounts.publish("#games", "hi");
    // Only mallory's own peer id (names compare ignoring case); bob's is not hers to give.
    assert.deepEqual(node.dialled.map((dial) => dial.peerId), ["MALLORY@x"]);
    assert.deepEqual(result.peers, ["MALLORY@x"]);
    await tracker.push({
      event: "member_online",
      room: "games",
      member: member("mallory", "carol@lobby"),
    });
    await settle();
    assert.deepEqual(node.dialled.map((dial) => dial.peerId), ["MALLORY@x"]);
  } finally {
    await session.stop();
  }
});

Deno.test("/login PASSWORD in a terminal is refused, masked and kept out of history", () =>
  withRoom(async ([alice]) => {
    await alice.accounts.logout();
    const screen = await _terminal(alice, async (type, mark) => {
      await type("/login alice-secret");
      mark();
      await type("\r");
      await type("\x1b[A"); // history: the line before, never the /login line
    });
    assert.ok(!alice.accounts.loggedIn);
    assert.ok(!screen.includes("alice-secret"), screen);
    assert.ok(screen.includes("/login ***"));
    assert.match(screen, /type \/login alone/);
  }));

Deno.test("/signup checks the password length before asking again or calling the tracker", () =>
  withRoom(async (_peers, tracker) => {
    const carol = member(tracker, "carol", 7003);
    try {
      const screen = await _terminal(carol, async (type) => {
        await type("/signup\r");
        await type("short\r");
      });
      assert.match(screen, /error: the password must be 8 to 1024 characters/);
      assert.ok(!screen.includes("password again"));
      // In a pipe, with the tracker gone: the length is what is reported, not the tracker.
      await tracker.down();
      const output = await _pipe(carol, "/signup short\n");
      assert.deepEqual(output, ["error: the password must be 8 to 1024 characters"]);
    } finally {
      await carol.session.stop();
    }
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
        type("alice-secret");
        await settle();
        type("\r");
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

/**
 * Runs the terminal UI over typed keys: `type` sends text and lets it be handled, `mark` starts
 * the part of the screen returned.
 */
async function _terminal(
  peer: ReturnType<typeof member>,
  script: (type: (text: string) => Promise<void>, mark: () => void) => Promise<void>,
): Promise<string> {
  const printed: string[] = [];
  let from = 0;
  const keys = new ReadableStream<Uint8Array>({
    async start(controller) {
      await script(async (text) => {
        controller.enqueue(new TextEncoder().encode(text));
        await settle();
      }, () => (from = printed.length));
      controller.close();
    },
  });
  await runTerminal(peer.node, {
    log: memoryLogger().log,
    color: false,
    isTerminal: true,
    input: keys,
    output: (text) => printed.push(text),
    commands: accountCommands(peer.accounts),
    attach: accountNotices(peer.accounts),
  });
  return printed.slice(from).join("");
}

/** A terminal reading a pipe the test writes to (`type`) and closes (`end`). */
function _pipedTerminal(peer: ReturnType<typeof member>) {
  const printed: string[] = [];
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const done = runTerminal(peer.node, {
    log: memoryLogger().log,
    color: false,
    isTerminal: false,
    input,
    output: (text) => printed.push(text),
    commands: accountCommands(peer.accounts),
    attach: accountNotices(peer.accounts),
  });
  return {
    printed,
    type: (text: string) => controller.enqueue(new TextEncoder().encode(text)),
    end: async () => {
      controller.close();
      await done;
    },
  };
}

/** A tracker answering each request with `answer(request)`: replies a real one would refuse. */
function _scriptedTracker(answer: (request: Record<string, unknown>) => Record<string, unknown>) {
  let server: Conn | undefined;
  return {
    connect: (): Promise<Conn> => {
      const [ours, theirs] = memoryConnPair();
      server = theirs;
      void (async () => {
        const decoder = new LineDecoder();
        for await (const chunk of theirs.chunks()) {
          for (const frame of decoder.push(chunk)) {
            if (frame.kind !== "line") continue;
            const request = JSON.parse(frame.text);
            const reply = { type: "SESSION_REPLY", id: request.id, status: "OK" };
            await theirs.write(encodeLine({ ...reply, ...answer(request) }));
          }
        }
      })();
      return Promise.resolve(ours);
    },
    push: (event: Record<string, unknown>) =>
      server!.write(encodeLine({ type: "SESSION_EVENT", ...event })),
  };
}

Deno.test("PeerAccounts.knownRooms() lists the rooms seen, for Tab completion, and forgets deleted ones", () =>
  withRoom(async ([alice, bob]) => {
    assert.deepEqual(alice.accounts.knownRooms(), ["games"]);
    await alice.accounts.createRoom("Chess");
    assert.deepEqual((await bob.accounts.rooms()).length, 2);
    assert.deepEqual(bob.accounts.knownRooms(), ["Chess", "games"]);
    await alice.accounts.deleteRoom("games");
    assert.deepEqual(alice.accounts.knownRooms(), ["Chess"]);
    await settle();
    assert.deepEqual(bob.accounts.knownRooms(), ["Chess"]);
  }));

Deno.test("PeerAccounts.send() tells an account that is not online from an unknown peer", () =>
  withRoom(async ([alice, bob]) => {
    await bob.accounts.logout();
    // Not in alice's peer table under this id, and the account bob is logged out.
    assert.deepEqual(await alice.accounts.send("bob@elsewhere", "are you there"), {
      ok: false,
      reason: "offline",
    });
    assert.deepEqual(await alice.accounts.send("zed@lobby", "hello?"), {
      ok: false,
      reason: "unknown_peer",
    });
  }));

Deno.test("PeerAccounts.joinRoom() of a room we created or joined answers the room, as the docs' sequence does", () =>
  withRoom(async ([alice, bob]) => {
    for (const peer of [alice, bob]) {
      const { room, members } = await peer.accounts.joinRoom("games");
      assert.equal(room.name, "games");
      assert.deepEqual(members.map((m) => m.username).sort(), ["alice", "bob"]);
    }
  }));

Deno.test("a refused REGISTER of our owned name hints /login, but not while a remembered login resumes", async () => {
  const tracker = await SessionTracker.start();
  try {
    const refused = { type: "tracker" as const, reachable: true, refused: "name_owned", at: 0 };
    const anonymous = member(tracker, "carol", 7003);
    anonymous.node.emit(refused);
    assert.deepEqual(anonymous.events.map((e) => e.type === "account" && e.state), ["name_owned"]);
    // A restart with the login remembered: the resume registers again by itself.
    const node = new FakePeerNode("dave", "lobby");
    const session = new SessionClient(
      { username: "dave", address: () => ({ peerId: node.peerId, port: 7004 }) },
      {
        connect: tracker.connectAs("dave"),
        tokens: memoryTokenStore("a-remembered-token"),
        clock: tracker.clock,
        log: memoryLogger().log,
      },
    );
    await session.loadToken();
    const accounts = new PeerAccounts(session, node, {
      clock: tracker.clock,
      log: memoryLogger().log,
    });
    const events: AccountsEvent[] = [];
    accounts.subscribe((event) => events.push(event));
    node.emit(refused);
    assert.deepEqual(events, []);
    await Promise.all([anonymous.session.stop(), session.stop()]);
  } finally {
    await tracker.close();
  }
});

Deno.test("the terminal tells a login or logout made elsewhere, and not its own twice", () =>
  withRoom(async ([alice]) => {
    const { printed, type, end } = _pipedTerminal(alice);
    type("/logout\n");
    while (alice.accounts.loggedIn) await settle();
    await settle(5);
    // The web chat (or a script) logs in through the API: the same PeerAccounts.
    await alice.accounts.login("alice-secret");
    await settle(5);
    await alice.accounts.logout();
    await settle(5);
    await end();
    const lines = printed.join("").split("\n").map((line) => line.replace(/^\S+ (?=--)/, ""));
    assert.equal(lines.filter((line) => line === "logged out").length, 1, lines.join("\n"));
    assert.ok(
      lines.includes("-- logged in as alice (from the web chat or the API)"),
      lines.join("\n"),
    );
    assert.equal(
      lines.filter((line) => line === "-- logged out (from the web chat or the API)").length,
      1,
      lines.join("\n"),
    );
  }));

Deno.test("a peer that logs in again knows its rooms at once, so their messages file under the room", () =>
  withRoom(async ([alice], tracker) => {
    // bob restarts: a new peer with nothing cached logs in to the same account.
    const restarted = member(tracker, "bob", 7002);
    try {
      assert.equal(restarted.accounts.roomMemberNames("games"), undefined);
      await restarted.accounts.login("bob-secret-1");
      for (let i = 0; i < 50 && !restarted.accounts.roomMemberNames("games"); i++) await settle(1);
      assert.deepEqual(restarted.accounts.roomMemberNames("games")?.sort(), ["alice", "bob"]);
      // alice's own lists were not disturbed.
      assert.deepEqual(alice.accounts.roomMemberNames("games")?.sort(), ["alice", "bob"]);
    } finally {
      await restarted.session.stop();
    }
  }));

Deno.test("the terminal tells a member's login, but not a new login of a member who never went away", () =>
  withRoom(async ([alice, bob], tracker) => {
    const { printed, end } = _pipedTerminal(alice);
    const online = () =>
      printed.join("").split("\n").filter((l) => /bob is online in #games/.test(l));
    // Alice dialled bob when he joined: their peers are connected.
    assert.equal(alice.node.peers()[0]?.peerId, bob.node.peerId);
    await bob.accounts.logout();
    await settle(5);
    await bob.accounts.login("bob-secret-1");
    await settle(5);
    assert.equal(online().length, 1, printed.join(""));
    // Bob logs in a second time (the tracker tells his rooms, as it does when everyone logs in
    // again after a restart) while his peer stayed connected to alice's: no news.
    const again = member(tracker, "bob", 7003);
    try {
      await again.accounts.login("bob-secret-1");
      await settle(5);
    } finally {
      await again.session.stop();
    }
    assert.equal(online().length, 1, printed.join(""));
    // The event itself still reaches scripts and the web chat.
    const events = alice.events.filter((e) => e.type === "room" && e.event === "member_online");
    assert.equal(events.length, 2);
    await end();
  }));

Deno.test("/users shows times as /contacts does: now when online, the time today, else the date", () => {
  const now = new Date(2026, 5, 10, 15, 0, 0).getTime();
  const user = (username: string, lastSeen: string | null, online = false) => ({
    username,
    online,
    lastSeen,
    lastLogin: null,
    rooms: [],
    addresses: [],
  });
  const lines = formatUsers(
    [
      user("ann", new Date(2026, 5, 10, 9, 30, 5).toISOString()),
      user("bob", new Date(2026, 5, 1, 9, 30, 5).toISOString()),
      user("eve", "not a time\u001b[2J"),
      user("dan", new Date(2026, 5, 10, 9, 30, 5).toISOString(), true),
    ],
    createStyle(false),
    now,
  );
  assert.deepEqual(lines.slice(1).map((line) => line.split(/\s+/)[2]), [
    "09:30:05",
    "2026-06-01",
    "not",
    "now",
  ]);
  assert.ok(!lines.join("").includes("\u001b"));
});

Deno.test("a member who left while the tracker was away is told gone when our session is back", () =>
  withRoom(async ([alice, bob], tracker) => {
    const carol = member(tracker, "carol", 7004);
    await carol.accounts.signup("carol-secret");
    await carol.accounts.joinRoom("games");
    await settle(5);
    // Carol's peer stops while the tracker is down: nobody could be told.
    await tracker.down();
    await settle(5);
    await carol.session.stop();
    alice.node.addPeer(carol.node.peerId, { state: "stale" });
    const from = alice.events.length;
    await tracker.up();
    for (let i = 0; i < 30 && !(alice.accounts.loggedIn && bob.accounts.loggedIn); i++) {
      tracker.clock.advance(1_000);
      await settle(5);
    }
    await settle(10);
    const offline = alice.events.slice(from).flatMap((event) =>
      event.type === "room" && event.event === "member_offline" ? [event.username] : []
    );
    // Not bob: his peer is still connected to alice's, he is logging in again.
    assert.deepEqual(offline, ["carol"]);
  }));
