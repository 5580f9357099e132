/**
 * Identities bound to accounts, between real tracker and peer processes: an impostor of a
 * logged-in account is refused by every peer and told why, and an account that moves to a new
 * profile is accepted with a notice that its key changed.
 */
import { E2e, type PeerProcess, WAIT_MS } from "../_peer_process.ts";

const connected = (peerId: string) =>
  new RegExp(`-- peer ${peerId.replace(".", "\\.")} connected(: \\w+)?$`);

async function run(peer: PeerProcess, line: string, expected: RegExp): Promise<void> {
  const mark = await peer.send(line);
  await peer.waitForLine(expected, WAIT_MS, mark);
}

/** A tracker, and alice and bob signed up and connected to each other. */
async function aliceAndBob(e2e: E2e) {
  const tracker = await e2e.tracker({ args: ["--pbkdf2-iterations", "1000"] });
  const options = (name: string) => ({ name, namespace: "default", trackerPort: tracker.port });
  const [alice, bob] = await e2e.peers([options("alice"), options("bob")]);
  await run(alice, "/signup alice-password", /^signed up and logged in as alice$/);
  await run(bob, "/signup bob-password", /^signed up and logged in as bob$/);
  await bob.waitForLine(connected("alice@default"));
  return { alice, bob, options };
}

Deno.test("an impostor of a logged-in account is refused by every peer and told why", async () => {
  const e2e = new E2e();
  try {
    const { alice, bob, options } = await aliceAndBob(e2e);

    const mark = bob.mark();
    const impostor = await e2e.peer(options("alice")); // another profile, so another key
    await bob.waitForLine(
      /!! refused alice@default: its key is not the key the tracker holds for account alice; someone may be posing as them$/,
      WAIT_MS,
      mark,
    );
    await impostor.waitForLine(
      /!! bob@default refused our connection: key_mismatch: our key is not the one the tracker holds for our name/,
    );
    // The real alice still gets what is meant for her, and only she does.
    await run(bob, "/msg alice meant for alice", /^delivered to alice@default/);
    await alice.waitForLine(/\[dm\] bob@default: meant for alice$/);
    await run(alice, "/msg bob from the real alice", /^delivered to bob@default/);
    await bob.waitForLine(/\[dm\] alice@default: from the real alice$/);
    const shown = impostor.lines.some((line) => line.includes("meant for alice"));
    if (shown) throw new Error("the impostor was shown a message meant for alice");
  } finally {
    await e2e.close();
  }
});

Deno.test("an account that moves to a new profile is accepted with a key-change notice", async () => {
  const e2e = new E2e();
  try {
    const { alice, bob, options } = await aliceAndBob(e2e);
    await run(alice, "/quit", /./).catch(() => {});
    await alice.waitForExit();

    const mark = bob.mark();
    const moved = await e2e.peer(options("alice")); // a new profile, with a new key
    // A plain login is refused: the profile's key is not the account's.
    await run(moved, "/login alice-password", /key_mismatch.*--replace-key/);
    await run(moved, "/login --replace-key alice-password", /^logged in as alice/);
    await bob.waitForLine(
      /!! alice@default's key changed at the tracker \(new profile\?\): it was [a-z2-7 ]+, now [a-z2-7 ]+; verify it again with \/verify alice@default$/,
      WAIT_MS,
      mark,
    );
    await bob.waitForLine(connected("alice@default"), WAIT_MS, mark);
    await run(bob, "/msg alice welcome back", /^delivered to alice@default/);
    await moved.waitForLine(/\[dm\] bob@default: welcome back$/);
  } finally {
    await e2e.close();
  }
});
