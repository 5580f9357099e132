import assert from "node:assert/strict";
import { P2pError } from "../../lib/errors.ts";
import { memoryLogger } from "../../lib/log.ts";
import type { PeerSecurity, SecurityNotice } from "../../peer/api.ts";
import { accountCommands } from "../../peer/tui/account_commands.ts";
import type { Command } from "../../peer/tui/commands.ts";
import { runTerminal } from "../../peer/tui/terminal.ts";
import { FakeAccounts } from "../_fake_accounts.ts";
import { FakePeerNode } from "../_fake_node.ts";

const SAFETY = "01234 12345 23456 34567 45678 56789 67890 78901 89012 90123 11111 22222";
const BOB_PRINT = "mfrg gzdf mztw q2lk nnwg 23tp obyx e3ll";
const OUR_PRINT = "aaaa bbbb cccc dddd eeee ffff gggg hhhh";

const verified: PeerSecurity = {
  encrypted: true,
  trust: "verified",
  accountBound: true,
  fingerprint: BOB_PRINT,
};
const unverified: PeerSecurity = { encrypted: true, trust: "unverified", accountBound: false };
const changed: PeerSecurity = { encrypted: true, trust: "key_changed", accountBound: true };
const clear: PeerSecurity = { encrypted: false, trust: "unencrypted", accountBound: false };

/** alice@lobby with peers in each security state, and a key known for bob. */
function secured(): FakePeerNode {
  const node = new FakePeerNode("alice", "lobby");
  node.identityInfo = { publicKey: "AAAA", fingerprint: OUR_PRINT };
  node.addPeer("bob@lobby", { security: verified, features: ["p2pchat-noise"] });
  node.addPeer("carol@lobby", { security: unverified, direction: "inbound" });
  node.addPeer("dan@lobby", { security: changed });
  node.addPeer("pyraw@lobby", { security: clear, features: [] });
  node.addPeer("eve@lobby", { state: "failed", direction: undefined });
  node.verifications.set("bob@lobby", {
    peerId: "bob@lobby",
    fingerprint: BOB_PRINT,
    safetyNumber: SAFETY,
    verified: false,
  });
  return node;
}

/** The UI over an input the test writes to; `output()` is everything printed so far. */
function start(node: FakePeerNode, isTerminal: boolean, commands: Command[] = []) {
  const printed: string[] = [];
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (controller) => void (feed = controller) });
  const done = runTerminal(node, {
    log: memoryLogger().log,
    color: false,
    isTerminal,
    input,
    output: (text) => printed.push(text),
    commands,
  });
  return {
    printed,
    done,
    output: () => printed.join(""),
    write: (text: string) => feed.enqueue(new TextEncoder().encode(text)),
    /** Writes `text`, then waits (bounded) until `condition` holds. */
    async type(text: string, condition: () => boolean) {
      feed.enqueue(new TextEncoder().encode(text));
      for (let i = 0; i < 200 && !condition(); i++) await _tick();
      assert.ok(condition(), JSON.stringify(printed.join("")));
    },
    end: () => feed.close(),
  };
}

/** Runs input lines through the UI without a terminal and returns the output lines. */
async function pipe(
  node: FakePeerNode,
  lines: string[],
  commands: Command[] = [],
  during?: () => void,
): Promise<string[]> {
  const ui = start(node, false, commands);
  ui.write(lines.map((line) => line + "\n").join(""));
  // Events are shown only while the UI is subscribed: emit them before the input ends.
  for (let i = 0; i < 100 && node.listenerCount === 0; i++) await _tick();
  during?.();
  ui.end();
  await ui.done;
  return ui.output().split("\n").filter((line) => line !== "");
}

function _tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

Deno.test("/whoami shows our peer id, our fingerprint and what it is for", async () => {
  assert.deepEqual(await pipe(secured(), ["/whoami"]), [
    "you are alice@lobby",
    `fingerprint: ${OUR_PRINT}`,
    "others see this fingerprint when they /verify you; read it to them to prove it is you",
  ]);
  assert.deepEqual(await pipe(new FakePeerNode(), ["/whoami"]), [
    "you are alice@lobby",
    "no identity key: this peer talks unencrypted",
  ]);
});

Deno.test("/verify PEER shows the safety number in three rows of four and the fingerprint", async () => {
  assert.deepEqual(await pipe(secured(), ["/verify bob"]), [
    "safety number with bob@lobby (not verified yet):",
    "  01234 12345 23456 34567",
    "  45678 56789 67890 78901",
    "  89012 90123 11111 22222",
    `fingerprint of bob@lobby: ${BOB_PRINT}`,
    "compare the safety number with bob@lobby over another channel (in person, by phone): " +
    "theirs must be the same. If it is, type /verify bob@lobby yes",
  ]);
});

Deno.test("/verify PEER yes|no marks the key verified or not, and says so", async () => {
  const node = secured();
  const lines = await pipe(node, [
    "/verify bob@lobby yes",
    "/verify bob",
    "/verify bob NO",
    "/verify bob maybe",
  ]);
  assert.deepEqual(lines, [
    "marked bob@lobby verified",
    "safety number with bob@lobby (verified):",
    "  01234 12345 23456 34567",
    "  45678 56789 67890 78901",
    "  89012 90123 11111 22222",
    `fingerprint of bob@lobby: ${BOB_PRINT}`,
    "you marked this key verified; /verify bob@lobby no takes that back",
    "marked bob@lobby not verified",
    'error: usage: /verify PEER [yes|no] (got "maybe")',
  ]);
  assert.equal(node.verifications.get("bob@lobby")?.verified, false);
});

Deno.test("/verify of a peer without a known key says why there is nothing to compare", async () => {
  const node = secured();
  assert.deepEqual(await pipe(node, ["/verify pyraw", "/verify zed@far yes", "/verify @x"]), [
    "error: no key known for pyraw@lobby: it talks unencrypted (a plain pyp2p peer, or an old p2pchat)",
    "error: no key known for zed@far: it has not connected encrypted yet",
    'error: bad peer "@x": use name@namespace or name',
  ]);
  assert.deepEqual([...node.verifications.keys()], ["bob@lobby"]);
});

Deno.test("/forget-key forgets a remembered key with a confirmation, once", async () => {
  const node = secured();
  assert.deepEqual(await pipe(node, ["/forget-key bob", "/forget-key bob"]), [
    "forgot the key of bob@lobby: the key it shows on its next connection is trusted " +
    "(/reconnect bob@lobby to dial it now, then compare with /verify bob@lobby)",
    "error: no key is remembered for bob@lobby",
  ]);
  assert.deepEqual(node.forgotten, ["bob@lobby"]);
});

Deno.test("/peers has a SECURITY column, and /conn shows encryption and trust", async () => {
  assert.deepEqual(await pipe(secured(), ["/peers", "/conn"]), [
    "PEER         STATE      DIR       RTT  SECURITY             ADDRESS",
    "bob@lobby    connected  outbound  -    verified+account     127.0.0.1:5000",
    "carol@lobby  connected  inbound   -    unverified           127.0.0.1:5001",
    "dan@lobby    connected  outbound  -    key-changed+account  127.0.0.1:5002",
    "pyraw@lobby  connected  outbound  -    unencrypted          127.0.0.1:5003",
    "eve@lobby    failed     -         -    -                    127.0.0.1:5004",
    "PEER         DIR       ADDRESS         ENCRYPTION  TRUST                FEATURES",
    "bob@lobby    outbound  127.0.0.1:5000  encrypted   verified+account     p2pchat-noise",
    "carol@lobby  inbound   127.0.0.1:5001  encrypted   unverified           ack,metrics",
    "dan@lobby    outbound  127.0.0.1:5002  encrypted   key-changed+account  ack,metrics",
    "pyraw@lobby  outbound  127.0.0.1:5003  clear       -                    -",
  ]);
});

Deno.test("A PUB says how many peers it reached encrypted and how many in clear", async () => {
  const node = secured();
  assert.deepEqual(await pipe(node, ["hi all", "/pub #nobody x"]), [
    "reached 4 peers in #lobby (3 encrypted, 1 in clear): bob@lobby carol@lobby dan@lobby pyraw@lobby",
    "reached nobody in #nobody: no connected peer in scope",
  ]);
});

Deno.test("Each security notice is a warning that says what happened and what to do", async () => {
  const notices: SecurityNotice[] = [
    { kind: "impostor", peerId: "bob@lobby", fingerprint: BOB_PRINT },
    { kind: "key_changed", peerId: "bob@lobby", fingerprint: BOB_PRINT, pinned: OUR_PRINT },
    { kind: "downgrade", peerId: "bob@lobby" },
    {
      kind: "account_key_changed",
      peerId: "bob@lobby",
      fingerprint: BOB_PRINT,
      previous: OUR_PRINT,
    },
    { kind: "refused", peerId: "bob@lobby", reason: "key_mismatch" },
    { kind: "refused", peerId: "bob@lobby", reason: "key_changed" },
    { kind: "refused", peerId: "bob@lobby", reason: "encryption_required" },
    { kind: "refused", peerId: "", reason: "odd\x1b[2J" },
    { kind: "impostor", peerId: "x\x1b]0;y\x07@lobby", fingerprint: BOB_PRINT },
  ];
  const node = secured();
  const at = new Date(2026, 0, 1, 9, 30, 0).getTime();
  const lines = await pipe(node, [], [], () => {
    for (const notice of notices) node.emit({ type: "security", notice, at });
  });
  assert.deepEqual(lines, [
    "09:30:00 !! refused bob@lobby: its key is not the key the tracker holds for account bob; " +
    "someone may be posing as them",
    `09:30:00 !! refused bob@lobby: its key changed (was ${OUR_PRINT}, now ${BOB_PRINT}). ` +
    "If they set up a new profile, check with them, then /forget-key bob@lobby; " +
    "otherwise someone may be posing as them",
    "09:30:00 !! refused bob@lobby: it tried to talk unencrypted although we know its key; " +
    "someone may be posing as them or stripping the encryption on the way. Nothing was sent " +
    "in clear; if it goes on, check with them over another channel",
    `09:30:00 !! bob@lobby's key changed at the tracker (new profile?): it was ${OUR_PRINT}, ` +
    `now ${BOB_PRINT}; verify it again with /verify bob@lobby`,
    "09:30:00 !! bob@lobby refused our connection: key_mismatch: our key is not the one the " +
    "tracker holds for our name; if the account is yours and this is a new profile, " +
    "/login --replace-key, else the name is taken: start again with another --name",
    "09:30:00 !! bob@lobby refused our connection: key_changed: it remembers another key for " +
    "alice@lobby; if this is a new profile, ask them to check with you, then " +
    "/forget-key alice@lobby on their side",
    "09:30:00 !! bob@lobby refused our connection: encryption_required: it accepts only " +
    "encrypted connections and this one was not (it requires encryption, or something on " +
    "the way stripped it)",
    "09:30:00 !! a peer refused our connection: odd^[[2J: see its log for why",
    "09:30:00 !! refused x^[]0;y^G@lobby: its key is not the key the tracker holds for account " +
    "x^[]0;y^G; someone may be posing as them",
  ]);
});

Deno.test("The prompt marks a peer conversation with a lock and its trust, or unencrypted", async () => {
  const ui = start(secured(), true);
  const promptAfter = async (line: string, prompt: string) => {
    ui.printed.length = 0;
    await ui.type(line + "\r", () => ui.output().endsWith(prompt));
  };
  await promptAfter("/msg bob", "bob@lobby 🔒 verified> ");
  await promptAfter("/msg carol", "carol@lobby 🔒 unverified> ");
  await promptAfter("/msg dan", "dan@lobby 🔒 key changed> ");
  await promptAfter("/msg pyraw", "pyraw@lobby unencrypted> ");
  await promptAfter("/msg eve", "eve@lobby> ");
  await promptAfter("/pub #lobby", "#lobby> ");
  ui.end();
  await ui.done;
});

Deno.test("/help lists the identity commands and /login --replace-key", async () => {
  const accounts = new FakeAccounts();
  const lines = await pipe(secured(), ["/help"], accountCommands(accounts.asPeerAccounts));
  for (const usage of ["/whoami", "/verify PEER [yes|no]", "/forget-key PEER"]) {
    assert.ok(lines.some((line) => line.startsWith(usage + " ")), usage);
  }
  // The password is asked for, never typed on the command line in a terminal.
  const login = lines.find((line) => line.startsWith("/login [--replace-key] "));
  assert.ok(login?.includes("asks for the password"), login);
  assert.ok(!lines.some((line) => /^\/(login|signup)\b.*\[PASSWORD\]/.test(line)));
});

Deno.test("/login --replace-key PASSWORD in a pipe asks the tracker to replace the key", async () => {
  const accounts = new FakeAccounts();
  const lines = await pipe(secured(), [
    "/login --replace-key",
    "/login --replace-key alice-secret",
    "/login --replace-keyx",
  ], accountCommands(accounts.asPeerAccounts));
  assert.deepEqual(accounts.logins, [
    { password: "alice-secret", replaceKey: true },
    { password: "--replace-keyx", replaceKey: false },
  ]);
  assert.deepEqual(lines, [
    "error: without a terminal the password is the argument: /login --replace-key PASSWORD",
    "logged in as alice",
    "this profile's key is now the key of account alice; your other logins were closed and " +
    "your contacts are told the key changed",
    "logged in as alice",
  ]);
});

Deno.test("/login refused with key_mismatch points to /login --replace-key", async () => {
  const accounts = new FakeAccounts();
  accounts.failure = new P2pError("key_mismatch", "Not the key of account alice");
  const lines = await pipe(
    secured(),
    ["/login alice-secret"],
    accountCommands(
      accounts.asPeerAccounts,
    ),
  );
  assert.deepEqual(lines, [
    "error: the tracker holds another identity key for this account; if this is a new " +
    "profile (or you lost the old one), /login --replace-key makes this profile's key the " +
    "account's key, and your contacts are told it changed",
    "error: /login failed: key_mismatch: Not the key of account alice",
  ]);
  assert.deepEqual(accounts.logins, [{ password: "alice-secret", replaceKey: false }]);
});

Deno.test("/login --replace-key in a terminal asks for the password masked", async () => {
  const accounts = new FakeAccounts();
  const ui = start(secured(), true, accountCommands(accounts.asPeerAccounts));
  await ui.type("/login --replace-key\r", () => ui.output().includes("password: "));
  await ui.type("s3cret-pass\r", () => ui.output().includes("this profile's key is now"));
  ui.end();
  await ui.done;
  assert.deepEqual(accounts.logins, [{ password: "s3cret-pass", replaceKey: true }]);
  assert.ok(!ui.output().includes("s3cret-pass"));
});
