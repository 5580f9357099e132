/**
 * Serves the web chat: the page, its scripts and styles (embedded in `assets.ts`, never read
 * from disk), and the sign-in by the printed link. The page then talks to the local HTTP API
 * with its cookie (see `../http/web_auth.ts`).
 */
import type { Context, Hono } from "hono";
import type { WebAuth } from "../http/mod.ts";
import { ASSETS } from "./assets.ts";

/**
 * What the page may load: only its own scripts, styles and images (previews are `blob:`), and
 * nothing may frame it.
 */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
};

/** Adds `/` (the page, and the sign-in with `?token=`) and `/app/NAME` (its files) to `app`. */
export function mountWebPage(app: Hono, auth: WebAuth): void {
  app.get("/", (c) => {
    const token = c.req.query("token");
    if (token !== undefined) {
      // The token leaves the address bar at once (history, screenshots): back to `/`.
      const signedIn = auth.hasSession(c.req.header("cookie"));
      // The page itself tells the user: it sees its link still in the address bar.
      if (!signedIn && !auth.spend(token)) return _asset(c, "index.html", 403);
      c.header("set-cookie", auth.setCookie());
      return c.redirect("/", 303);
    }
    return _asset(c, "index.html", 200);
  });
  app.get("/app/:name", (c) => {
    const name = c.req.param("name");
    return Object.hasOwn(ASSETS, name) ? _asset(c, name, 200) : c.notFound();
  });
}

function _asset(c: Context, name: string, status: 200 | 403): Response {
  const asset = ASSETS[name];
  return c.body(asset.body, status, { ...PAGE_HEADERS, "content-type": asset.type });
}
