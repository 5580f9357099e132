/**
 * The web chat in headless Chromium against real peer processes: the time until the first
 * message of a 10,000-message conversation is on screen after the page loads (target under
 * 1 s), beside the API call that fetches that page; and the time from a direct message's ACK
 * (the sender's `POST /api/messages` answered) to its appearance on the receiver's page
 * (target under 50 ms), beside its arrival on a plain event-stream client.
 */
import { E2e, pollUntil } from "../tests/_peer_process.ts";
import { TestBrowser } from "../tests/_browser.ts";
import { seedConversation } from "../tests/web/_seed.ts";

const HISTORY = 10_000;
const LOADS = 7;
const MESSAGES = 200;

async function benchWeb(): Promise<void> {
  const e2e = new E2e();
  const browser = await TestBrowser.launch();
  try {
    await _firstMessage(e2e, browser);
    await _ackToPage(e2e, browser);
  } finally {
    await browser.close();
    await e2e.close();
  }
}

async function _firstMessage(e2e: E2e, browser: TestBrowser): Promise<void> {
  const dataDir = await e2e.tempDir();
  await seedConversation(dataDir, "alice@lobby", "bob@lobby", HISTORY);
  const alice = await e2e.peer({
    name: "alice",
    namespace: "lobby",
    args: ["--http", "0"],
    dataDir,
  });
  const api = await _bearer(alice.tokenFile!);
  const page = await browser.page();
  await page.goto(alice.webLink!);
  // Records when the first message is drawn, in ms since the navigation started.
  await page.evaluateOnNewDocument(`
    new MutationObserver((changes, observer) => {
      if (document.querySelector("article.msg")) {
        window.firstShownMs = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  `);
  const shown: number[] = [];
  const fetched: number[] = [];
  for (let i = 0; i < LOADS; i++) {
    // A query of its own each time: a change of the hash alone would not load the page again.
    await page.goto(`${alice.httpUrl}/?load=${i}#bob%40lobby`);
    const handle = await page.waitForFunction("window.firstShownMs", { timeout: 30_000 });
    shown.push(Number(await handle.jsonValue()));
    const started = performance.now();
    await (await fetch(`${alice.httpUrl}/api/conversations/bob%40lobby/messages?limit=50`, {
      headers: api,
    })).json();
    fetched.push(performance.now() - started);
  }
  console.log(
    `first message of ${HISTORY} on screen after load: p50 ${_p(shown, 50)} ms, ` +
      `max ${_p(shown, 100)} ms (target < 1000) | its page from the API: p50 ${_p(fetched, 50)} ms`,
  );
}

async function _ackToPage(e2e: E2e, browser: TestBrowser): Promise<void> {
  const tracker = await e2e.tracker();
  const [alice, bob] = await e2e.peers(["alice", "bob"].map((name) => ({
    name,
    namespace: "web",
    trackerPort: tracker.port,
    args: ["--http", "0"],
  })));
  const send = await _bearer(alice.tokenFile!);
  // Measured between connected peers: a message that waits for a connection is no figure.
  await pollUntil("alice and bob to connect", async () => {
    const reply = await (await fetch(`${alice.httpUrl}/api/peers`, { headers: send })).json();
    return reply.peers.some((peer: { peerId: string; state: string }) =>
        peer.peerId === "bob@web" && peer.state === "connected"
      )
      ? true
      : undefined;
  }, 30_000);
  const page = await browser.page();
  await page.goto(bob.webLink!);
  await page.goto(`${bob.httpUrl}/#alice%40web`);
  await page.waitForSelector("#compose:not([hidden])", { timeout: 30_000 });
  await page.evaluate(`
    window.shownAt = {};
    new MutationObserver(() => {
      for (const text of document.querySelectorAll("article.msg .text")) {
        window.shownAt[text.textContent] ??= Date.now();
      }
    }).observe(document.getElementById("messages"), { childList: true, subtree: true });
  `);
  // The same messages as a script on the event stream sees them.
  const streamed = new Map<string, number>();
  const stopEvents = new AbortController();
  const events = await fetch(`${bob.httpUrl}/api/events`, {
    signal: stopEvents.signal,
    headers: await _bearer(bob.tokenFile!),
  });
  const reading = (async () => {
    for await (const text of events.body!.pipeThrough(new TextDecoderStream())) {
      const now = Date.now();
      for (const match of text.matchAll(/"text":"(web \d+)"/g)) streamed.set(match[1], now);
    }
  })().catch(() => {});
  const acked = new Map<string, number>();
  for (let i = 0; i < MESSAGES; i++) {
    const text = `web ${i}`;
    const response = await fetch(`${alice.httpUrl}/api/messages`, {
      method: "POST",
      headers: { ...send, "content-type": "application/json" },
      body: JSON.stringify({ to: "bob@web", text }),
    });
    if (response.status !== 200) throw new Error(`not delivered: ${await response.text()}`);
    acked.set(text, Date.now());
    await response.body?.cancel();
  }
  await page.waitForFunction(`Object.keys(window.shownAt).length >= ${MESSAGES}`, {
    timeout: 30_000,
  });
  const shownAt = await page.evaluate("window.shownAt") as Record<string, number>;
  // The stream never ends by itself (its body is locked by the reader: cancel cannot stop it).
  stopEvents.abort();
  await reading;
  const toPage = [...acked].map(([text, at]) => shownAt[text] - at);
  const toStream = [...acked].flatMap(([text, at]) =>
    streamed.has(text) ? [streamed.get(text)! - at] : []
  );
  console.log(
    `ACK to the receiver's page (${MESSAGES} messages): p50 ${_p(toPage, 50)} ms, p99 ${
      _p(toPage, 99)
    } ms (target < 50) | ACK to an event-stream client: p50 ${_p(toStream, 50)} ms, p99 ${
      _p(toStream, 99)
    } ms`,
  );
}

async function _bearer(tokenFile: string): Promise<Record<string, string>> {
  return { authorization: `Bearer ${(await Deno.readTextFile(tokenFile)).trim()}` };
}

/** The percentile of the figures, rounded to 0.1 ms (negative: shown before the ACK came). */
function _p(values: number[], percentile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((percentile / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)] * 10) / 10;
}

if (import.meta.main) await benchWeb();
