/**
 * The web chat in real Chromium, against real peer processes and a real tracker: two people
 * sign up, chat both ways and see their messages delivered and read, make a room with a third
 * peer, send a photo and see it on the other page, reload the page, and restart a peer under an
 * open page. Screenshots of the main views go to dist/screenshots/.
 */
import assert from "node:assert/strict";
import type { KeyInput, Page } from "puppeteer-core";
import { E2e, type PeerProcess, pollUntil } from "../_peer_process.ts";
import { screenshot, TestBrowser } from "../_browser.ts";
import { gradientPng } from "./_png.ts";
import { seedConversation } from "./_seed.ts";
import { concatBytes } from "../../lib/bytes.ts";

const WAIT = { timeout: 20_000 };

_browserTest(
  "web chat: two people chat, read, share a room and a photo, reload, and outlive a restart",
  async (e2e, browser) => {
    const tracker = await e2e.tracker();
    const bobPort = _freePort();
    const bobDir = await e2e.tempDir();
    const peer = (name: string, http = "0", dataDir?: string) =>
      e2e.peer({
        name,
        namespace: "lobby",
        trackerPort: tracker.port,
        args: ["--http", http],
        dataDir,
      });
    const [alice, bob, carol] = await Promise.all([
      peer("alice"),
      peer("bob", String(bobPort), bobDir),
      peer("carol"),
    ]);
    const [pageA, pageB] = [await browser.page(), await browser.page()];
    try {
      await _signIn(pageA, alice);
      await _signIn(pageB, bob);

      // Both sign up from the Account dialog.
      for (const page of [pageA, pageB]) await _signUp(page, "correct horse battery");
      await screenshot(pageA, "web-account");

      // Alice opens a chat with bob and writes; bob reads it; alice sees it read.
      await _click(pageA, "#open-new-chat");
      await _type(pageA, "#peer", "bob");
      await _press(pageA, "Enter");
      await _sendText(pageA, "hello bob");
      // Its first message makes it a conversation that can be deleted.
      await pageA.waitForSelector(
        "#conversation-actions button ::-p-text(Delete conversation)",
        WAIT,
      );
      await _click(pageB, '[data-conversation="alice@lobby"]');
      await pageB.waitForSelector("article.msg.in ::-p-text(hello bob)", WAIT);
      await pageA.waitForSelector('article.msg.out[data-state="read"]', WAIT);
      // Bob answers on two lines (Shift+Enter), alice sees it and bob sees it delivered, then read.
      await _type(pageB, "#compose-text", "hi alice");
      await pageB.keyboard.down("Shift");
      await _press(pageB, "Enter");
      await pageB.keyboard.up("Shift");
      await _sendText(pageB, "second line");
      await _waitForText(pageA, "article.msg.in .text", "hi alice\nsecond line");
      await pageB.waitForSelector('article.msg.out[data-state="read"]', WAIT);
      // Text is shown as written, never as markup.
      const markup = '<img src=x onerror="document.title=1"><b>not bold</b>';
      await _sendText(pageA, markup);
      await _waitForText(pageB, "article.msg.in .text", markup);
      assert.equal(
        await pageB.$$eval("article.msg .text b, article.msg .text img", (e) => e.length),
        0,
      );
      const subtitle = await pageA.$eval("#subtitle", (element) => element.textContent);
      assert.match(subtitle ?? "", /online · encrypted, not verified/);

      // Verifying: the safety number is shown, and marking it is remembered.
      await _click(pageA, "#conversation-actions button ::-p-text(Verify)");
      await pageA.waitForSelector(".safety", WAIT);
      const safetyA = await pageA.$eval(".safety", (element) => element.textContent);
      assert.match(safetyA ?? "", /^(\d{5} ){11}\d{5}$/);
      await screenshot(pageA, "web-verify");
      await _click(pageA, "#dialog-body button ::-p-text(mark verified)");
      await pageA.waitForSelector("#dialog-body ::-p-text(You marked this key verified)", WAIT);
      await _press(pageA, "Escape");
      await pageA.waitForFunction('!document.querySelector("dialog").open', WAIT);

      // A room: alice creates it, bob joins from the Rooms dialog, carol through the API.
      await _click(pageA, "#open-rooms");
      await _type(pageA, "#room-name", "games");
      await _press(pageA, "Enter");
      await pageA.waitForSelector("#dialog-body ::-p-text(#games)", WAIT);
      await _press(pageA, "Escape");
      await _click(pageB, "#open-rooms");
      await _click(pageB, "#dialog-body li:has(.room-name) button ::-p-text(Join)");
      await pageB.waitForSelector("#dialog-body li button ::-p-text(Leave)", WAIT);
      await _press(pageB, "Escape");
      const carolApi = await _api(carol);
      await carolApi("POST", "/api/account/signup", { password: "carol's password" });
      await carolApi("POST", "/api/rooms/games/join");
      await _click(pageA, '[data-conversation="#games"]');
      await pageA.waitForSelector("#subtitle ::-p-text(3 members)", WAIT);
      await _sendText(pageA, "game tonight?");
      await _click(pageB, '[data-conversation="#games"]');
      await pageB.waitForSelector("article.msg.in ::-p-text(game tonight?)", WAIT);
      await pollUntil("carol to get the room message", async () => {
        const page = await carolApi("GET", "/api/conversations/%23games/messages");
        return page.messages.some((m: { text: string }) => m.text === "game tonight?")
          ? true
          : undefined;
      });
      await screenshot(pageB, "web-room");
      // Carol goes away: the next room message waits for her, until alice stops it waiting.
      carol.kill("SIGTERM");
      await carol.waitForExit();
      const aliceApi = await _api(alice);
      await pollUntil("alice to see carol gone", async () => {
        const { peers } = await aliceApi("GET", "/api/peers");
        const row = peers.find((p: { peerId: string }) => p.peerId === "carol@lobby");
        return row?.state === "connected" ? undefined : true;
      });
      await _sendText(pageA, "where is carol?");
      const waitingId = await pollUntil("the room message to wait for carol", async () => {
        const { waiting } = await aliceApi("GET", "/api/outbox");
        return waiting.find((m: { text: string }) => m.text === "where is carol?")?.id;
      });
      const article = `article.msg.out[data-id="${waitingId}"]`;
      await _click(pageA, `${article} button ::-p-text(stop waiting for carol)`);
      await pageA.waitForFunction(`!document.querySelector('${article} button')`, WAIT);
      assert.deepEqual((await aliceApi("GET", "/api/outbox")).waiting, []);

      // A photo: alice picks it, bob accepts it and sees it drawn.
      await _click(pageA, '[data-conversation="bob@lobby"]');
      const photo = `${await e2e.tempDir()}/sunset.png`;
      await Deno.writeFile(photo, gradientPng(96));
      const [chooser] = await Promise.all([
        pageA.waitForFileChooser(WAIT),
        _click(pageA, "#attach"),
      ]);
      await chooser.accept([photo]);
      await _click(pageB, '[data-conversation="alice@lobby"]');
      await _click(pageB, ".transfer button ::-p-text(Accept)");
      const width = await pageB.waitForFunction(
        `(() => {
        const image = document.querySelector(".transfer img.preview");
        return image?.complete && image.naturalWidth > 0 ? image.naturalWidth : undefined;
      })()`,
        WAIT,
      );
      assert.equal(await width.jsonValue(), 96);
      await pageA.waitForSelector(".transfer.done ::-p-text(sent)", WAIT);
      await screenshot(pageB, "web-chat");

      // A reload finds the history (and the open conversation).
      await pageB.reload();
      await pageB.waitForSelector("article.msg.in ::-p-text(hello bob)", WAIT);
      await pageB.waitForSelector(".transfer img.preview", WAIT);

      // Bob's peer restarts under his open page: the page says so, then catches up by itself.
      bob.kill("SIGTERM");
      await bob.waitForExit();
      await pageB.waitForSelector('#banner[data-kind="lost"]:not([hidden])', WAIT);
      await _sendText(pageA, "are you back?");
      // It waits in the outbox, and says so.
      await pageA.waitForSelector('article.msg.out[data-state="queued"] ::-p-text(cancel)', WAIT);
      // Bob's key is remembered: it will go encrypted, and nothing says otherwise.
      assert.equal(
        await pageA.$$eval('article.msg.out[data-state="queued"] .clear', (e) => e.length),
        0,
      );
      await pageA.waitForSelector("#subtitle ::-p-text(offline · encrypted, verified)", WAIT);
      await peer("bob", String(bobPort), bobDir);
      await pageB.waitForSelector("#banner[hidden]", WAIT);
      await pageB.waitForSelector("article.msg.in ::-p-text(are you back?)", WAIT);
      await pageA.waitForFunction(
        '[...document.querySelectorAll("article.msg.out")].at(-1).dataset.state === "read"',
        WAIT,
      );

      // A narrow window shows one column, with a way back to the list.
      await pageA.setViewport({ width: 360, height: 700 });
      const sidebar = 'getComputedStyle(document.getElementById("sidebar")).display';
      assert.equal(await pageA.evaluate(sidebar), "none");
      await _click(pageA, "#back");
      assert.notEqual(await pageA.evaluate(sidebar), "none");
      await screenshot(pageA, "web-narrow");
    } catch (error) {
      // What each page showed when it failed, for the report.
      await screenshot(pageA, "failed-alice").catch(() => {});
      await screenshot(pageB, "failed-bob").catch(() => {});
      throw error;
    }
  },
);

_browserTest(
  "web chat: the link signs in once, and other origins, hosts and pages are refused",
  async (e2e, browser) => {
    const alice = await e2e.peer({ name: "alice", namespace: "lobby", args: ["--http", "0"] });
    const page = await browser.page();

    // Without the link: the page says how to sign in, and the API is closed.
    const first = await page.goto(alice.httpUrl!);
    const csp = first!.headers()["content-security-policy"];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.equal(first!.headers()["x-frame-options"], "DENY");
    await page.waitForSelector("#signin:not([hidden])", WAIT);

    // The link: trades its token for an HttpOnly, SameSite=Strict cookie, then leaves the URL.
    await page.goto(alice.webLink!);
    await page.waitForSelector("#app:not([hidden])", WAIT);
    assert.equal(page.url(), `${alice.httpUrl}/`);
    const [cookie] = await page.browserContext().cookies();
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(await page.evaluate("document.cookie"), "");

    // The same link in another browser: used already.
    const other = await browser.page();
    const again = await other.goto(alice.webLink!);
    assert.equal(again!.status(), 403);
    await other.waitForSelector("#signin:not([hidden]) #link-used:not([hidden])", WAIT);
    const refused = await other.evaluate(() => fetch("/api/status").then((r) => r.status));
    assert.equal(refused, 401);

    // A page of another origin on this host (which the browser sends the cookie to, as
    // cookies ignore ports) cannot write: its Origin is refused, and nothing changes.
    const evil = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
      new Response(
        `<script>fetch("${alice.httpUrl}/api/contacts",{method:"POST",mode:"no-cors",` +
          `credentials:"include",body:'{"peer":"mallory"}'}).finally(()=>document.title="sent")</script>`,
        { headers: { "content-type": "text/html" } },
      ));
    e2e.defer(() => evil.shutdown());
    const evilPage = await page.browserContext().newPage();
    await evilPage.goto(`http://127.0.0.1:${evil.addr.port}/`);
    await evilPage.waitForFunction('document.title === "sent"', WAIT);
    const contacts = await page.evaluate(() =>
      fetch("/api/contacts").then((r) => r.json()).then((body) => body.contacts.length)
    );
    assert.equal(contacts, 0);
    // The page's own write goes through (same origin).
    const own = await page.evaluate(() =>
      fetch("/api/contacts", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"peer":"bob"}',
      }).then((r) => r.status)
    );
    assert.equal(own, 201);

    // A Host that is not loopback (DNS rebinding) is refused, page and API alike.
    const port = new URL(alice.httpUrl!).port;
    for (const path of ["/", "/api/status"]) {
      const reply = await _rawGet(Number(port), path, `attacker.example:${port}`);
      assert.match(reply, /^HTTP\/1\.1 403/);
      assert.match(reply, /forbidden_host/);
    }
    // Scripts keep their bearer token.
    const apiStatus = await (await _api(alice))("GET", "/api/status");
    assert.equal(apiStatus.peerId, "alice@lobby");
  },
);

_browserTest(
  "web chat: a long conversation pages back on scrolling up and can be deleted; contacts follow scripts",
  async (e2e, browser) => {
    const dataDir = await e2e.tempDir();
    await seedConversation(dataDir, "alice@lobby", "bob@lobby", 3000);
    await seedConversation(dataDir, "alice@lobby", "carol@lobby", 10);
    const alice = await e2e.peer({
      name: "alice",
      namespace: "lobby",
      args: ["--http", "0"],
      dataDir,
    });
    const page = await browser.page();
    await _signIn(page, alice);
    // Search finds one message of the 3,000; choosing it opens its conversation.
    await _click(page, "#open-search");
    await _type(page, "#search-text", "MESSAGE 1234");
    await _press(page, "Enter");
    await page.waitForSelector("#dialog-body .found", WAIT);
    assert.equal(await page.$$eval("#dialog-body .found", (found) => found.length), 1);
    await _click(page, "#dialog-body .found ::-p-text(message 1234)");
    await _waitForText(page, "article.msg .text", "message 2999");
    const shown = () => page.$$eval("article.msg", (articles) => articles.length);
    assert.equal(await shown(), 50);
    assert.ok(await page.$("::-p-text(Scroll up for older messages)"));
    // Scrolling to the top brings the page before, and keeps the reader's place.
    await page.$eval("#messages", (list) => list.scrollTop = 0);
    await page.waitForFunction('document.querySelectorAll("article.msg").length >= 100', WAIT);
    assert.ok(await page.$eval("#messages", (list) => list.scrollTop > 0));
    // One message every ten minutes: 150 of them span more than a day, so a separator
    // stands between two days at least.
    await page.$eval("#messages", (list) => list.scrollTop = 0);
    await page.waitForFunction('document.querySelectorAll("article.msg").length >= 150', WAIT);
    assert.ok(await page.$$eval(".day", (days) => days.length) >= 2);
    // The unread messages of the conversation were read by opening it.
    const conversations = () =>
      page.evaluate(() => fetch("/api/conversations").then((r) => r.json()));
    await pollUntil("the conversation to be read", async () => {
      const { conversations: list } = await conversations();
      const bob = list.find((c: { conversation: string }) => c.conversation === "bob@lobby");
      return bob.unread === 0 ? true : undefined;
    });
    // Deleting the conversation asks first: dismissed, nothing goes; accepted, all of it.
    const questions: string[] = [];
    let accept = false;
    page.on("dialog", (dialog) => {
      questions.push(dialog.message());
      return accept ? dialog.accept() : dialog.dismiss();
    });
    const deleteButton = "#conversation-actions button ::-p-text(Delete conversation)";
    await _click(page, deleteButton);
    await pollUntil("the question", () => questions.length === 1 ? true : undefined);
    assert.match(questions[0], /Delete the conversation bob and every message in it/);
    assert.equal((await conversations()).conversations.length, 2, "nothing deleted");
    accept = true;
    await _click(page, deleteButton);
    // The page closes it, says so, and lists it no more.
    await _waitForText(page, "#banner", "Deleted the conversation bob (3000 messages).");
    await _waitForText(page, "#title", "Pick a conversation");
    assert.equal(await page.$$eval("article.msg", (shown) => shown.length), 0);
    assert.equal(await page.$("#conversations [data-conversation='bob@lobby']"), null);
    assert.deepEqual(
      (await conversations()).conversations.map((c: { conversation: string }) => c.conversation),
      ["carol@lobby"],
    );
    // Read elsewhere (the terminal, a script), carol's unread count goes from the page too.
    const api = await _api(alice);
    const carol = "#conversations [data-conversation='carol@lobby']";
    const label = () => page.$eval(carol, (button) => button.getAttribute("aria-label"));
    assert.equal(await label(), "carol, 5 unread");
    await api("POST", "/api/conversations/carol%40lobby/read", {});
    await pollUntil("carol read", async () => await label() === "carol" ? true : undefined);
    // A contact a script adds (or the terminal) shows at once, in the list and in an open
    // contact list, and goes with it.
    await _click(page, "#open-contacts");
    await page.waitForSelector("#dialog-body ::-p-text(No contacts yet.)", WAIT);
    await _type(page, "#contact", "half-typ");
    const zoe = '#conversations button[data-conversation="zoe@far"]';
    await api("POST", "/api/contacts", { peer: "zoe@far" });
    await page.waitForSelector(zoe, WAIT);
    await page.waitForSelector("#dialog-body li ::-p-text(zoe@far)", WAIT);
    assert.equal(
      await page.$eval("#contact", (input) => (input as unknown as { value: string }).value),
      "half-typ",
    );
    await api("DELETE", "/api/contacts/zoe@far");
    await page.waitForSelector(zoe, { ...WAIT, hidden: true });
    await page.waitForSelector("#dialog-body ::-p-text(No contacts yet.)", WAIT);
  },
);

/** A test with its processes and a browser, all released at the end. */
function _browserTest(name: string, fn: (e2e: E2e, browser: TestBrowser) => Promise<void>) {
  Deno.test({
    name,
    // Chromium's driver keeps sockets and timers of its own beyond the test.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const e2e = new E2e();
      const browser = await TestBrowser.launch();
      try {
        await fn(e2e, browser);
      } finally {
        await browser.close();
        await e2e.close();
      }
    },
  });
}

/** Opens the peer's printed link and waits for the chat. */
async function _signIn(page: Page, peer: PeerProcess): Promise<void> {
  await page.goto(peer.webLink!);
  await page.waitForSelector("#app:not([hidden])", WAIT);
}

async function _signUp(page: Page, password: string): Promise<void> {
  await _click(page, "#open-account");
  await _type(page, "#password", password);
  await _click(page, "#dialog-body button ::-p-text(Sign up)");
  await page.waitForSelector("#dialog-body ::-p-text(Logged in as)", WAIT);
  await _press(page, "Escape");
  await page.waitForSelector("#status ::-p-text(logged in)", WAIT);
}

async function _sendText(page: Page, text: string): Promise<void> {
  await page.waitForSelector("#compose:not([hidden])", WAIT);
  await _type(page, "#compose-text", text);
  await _press(page, "Enter");
  // The last line typed: a message of several lines ends with it.
  await page.waitForFunction(
    '[...document.querySelectorAll("article.msg.out .text")]' +
      `.some((e) => e.textContent.endsWith(${JSON.stringify(text)}))`,
    WAIT,
  );
}

/** Waits until an element matching `selector` has exactly `text` (new lines included). */
async function _waitForText(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(
    `[...document.querySelectorAll(${JSON.stringify(selector)})]` +
      `.some((e) => e.textContent === ${JSON.stringify(text)})`,
    WAIT,
  );
}

/**
 * Enters text into the element, as an input method does. (Key by key, headless Chromium
 * sometimes drops a whole word after a dialog closed: keydown and keypress arrive, no input.)
 */
async function _type(page: Page, selector: string, text: string): Promise<void> {
  await (await page.waitForSelector(selector, WAIT))!.focus();
  await page.keyboard.sendCharacter(text);
}

async function _press(page: Page, key: KeyInput): Promise<void> {
  await page.keyboard.press(key);
}

/**
 * Clicks the element as a user's click would (a DOM click, not at coordinates: lists are drawn
 * again and reordered as events come, and a click at an old position would hit another row).
 */
async function _click(page: Page, selector: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const element = await page.waitForSelector(selector, WAIT);
    try {
      await element!.evaluate((target) => (target as unknown as { click(): void }).click());
      return;
    } catch (error) {
      if (attempt === 5 || !String(error).includes("detached")) throw error;
    }
  }
}

/** Calls the peer's API with its bearer token, as a script would. */
async function _api(peer: PeerProcess) {
  const token = (await Deno.readTextFile(peer.tokenFile!)).trim();
  return async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${peer.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const reply = await response.json();
    if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(reply)}`);
    return reply;
  };
}

async function _rawGet(port: number, path: string, host: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16384);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      chunks.push(buffer.slice(0, n));
    }
    return new TextDecoder().decode(concatBytes(chunks));
  } finally {
    conn.close();
  }
}

function _freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
