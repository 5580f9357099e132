/**
 * Test helper: Debian's Chromium driven by puppeteer-core, headless, with a fresh profile, and
 * one isolated context (its own cookies) per page. `.ci/run` installs Chromium.
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";

const CHROMIUM = "/usr/bin/chromium";

/** Where test runs write screenshots (git-ignored; the README's come from here). */
export const SCREENSHOT_DIR = new URL("../dist/screenshots/", import.meta.url).pathname;

/** A running browser; `close()` ends it and removes its profile. */
export class TestBrowser {
  private constructor(readonly browser: Browser, readonly profile: string) {}

  static async launch(): Promise<TestBrowser> {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(
        `${CHROMIUM} is missing: the browser tests need it (apt-get install chromium)`,
      );
    }
    const profile = await Deno.makeTempDir({ prefix: "p2pchat-chromium-" });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      userDataDir: profile,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Pages of a test are all "in front": timers and events are not slowed down.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
      ],
    });
    return new TestBrowser(browser, profile);
  }

  /** A page in a context of its own (its own cookies, as another browser would have). */
  async page(width = 1100, height = 760): Promise<Page> {
    const context = await this.browser.createBrowserContext();
    const page = await context.newPage();
    // A script error on the page is a failure to see in the test's output.
    page.on("pageerror", (error) => console.error(`page error: ${error}`));
    await page.setViewport({ width, height });
    // Every page acts as the focused window (a test drives several at once, as if each had
    // its own screen): typing reaches the one it is meant for.
    const session = await page.createCDPSession();
    await session.send("Emulation.setFocusEmulationEnabled", { enabled: true });
    return page;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    await Deno.remove(this.profile, { recursive: true }).catch(() => {});
  }
}

/** Writes a screenshot of `page` as SCREENSHOT_DIR/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOT_DIR}${name}.png` as `${string}.png` });
}
