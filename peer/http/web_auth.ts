/**
 * How the web chat's page proves it may drive the peer. The peer prints a link with a one-time
 * token; opening it trades the token for a cookie (HttpOnly, SameSite=Strict) that the page's
 * requests then carry. The cookie's value is derived from the API token, so it stays valid
 * across restarts of the same profile (the page recovers by itself) and a new API token
 * revokes it. Cookies are shared by every port of a host, so each profile's cookie has a name
 * of its own (also derived from its token) and each peer reads only its own.
 */
import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Links printed and not opened yet; older ones are dropped first. */
const MAX_OPEN_LINKS = 16;

/** A printed link is good for this long. */
const LINK_LIFETIME_MS = 24 * 60 * 60_000;

/** How long the browser keeps the cookie (it is renewed on each page load). */
const COOKIE_MAX_AGE_S = 400 * 24 * 60 * 60;

/** The one-time links and the session cookie of one peer's web chat. */
export class WebAuth {
  readonly cookieName: string;
  readonly #cookieValue: Buffer;
  readonly #links = new Map<string, number>();

  constructor(apiToken: string, readonly now: () => number = Date.now) {
    const derive = (label: string) => createHmac("sha256", apiToken).update(label).digest();
    this.cookieName = `p2pchat-${derive("p2pchat web cookie name").toString("hex", 0, 8)}`;
    this.#cookieValue = derive("p2pchat web session");
  }

  /** A new link to print: `http://127.0.0.1:PORT/?token=...`, usable once. */
  newLink(port: number): string {
    const token = randomBytes(32).toString("hex");
    this.#links.set(token, this.now() + LINK_LIFETIME_MS);
    while (this.#links.size > MAX_OPEN_LINKS) {
      this.#links.delete(this.#links.keys().next().value!);
    }
    return `http://127.0.0.1:${port}/?token=${token}`;
  }

  /** Spends a link's token: true when it was printed, not used yet and not too old. */
  spend(token: string): boolean {
    const expires = this.#links.get(token);
    if (expires === undefined) return false;
    this.#links.delete(token);
    return expires > this.now();
  }

  /** The `Set-Cookie` value that signs the browser in. */
  setCookie(): string {
    return `${this.cookieName}=${this.#cookieValue.toString("hex")}; Path=/; HttpOnly; ` +
      `SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_S}`;
  }

  /** True when the `Cookie` header carries this peer's session cookie. */
  hasSession(cookieHeader: string | undefined): boolean {
    const given = _cookie(cookieHeader ?? "", this.cookieName);
    if (given === undefined || !/^[0-9a-f]{64}$/.test(given)) return false;
    return timingSafeEqual(Buffer.from(given, "hex"), this.#cookieValue);
  }
}

function _cookie(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
