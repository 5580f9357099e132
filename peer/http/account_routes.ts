/**
 * Account and room routes of the local HTTP API, mounted on the app `createPeerApi` built
 * (after its token and Host checks, under its error mapping). Formats: docs/http-api.md.
 */
import type { Hono } from "hono";
import { checkName } from "../../lib/names.ts";
import { P2pError } from "../../lib/errors.ts";
import type { PeerAccounts } from "../accounts/mod.ts";
import { readJsonObject, stringField } from "./request_body.ts";

/** Adds `/api/account/...`, `/api/users` and `/api/rooms...` to `app`. */
export function mountAccountApi(app: Hono, accounts: PeerAccounts): void {
  const account = () => ({ username: accounts.username, state: accounts.state });

  app.get("/api/account", (c) => c.json(account()));

  app.post("/api/account/signup", async (c) => {
    const password = stringField(await readJsonObject(c.req.raw), "password");
    await accounts.signup(password);
    return c.json(account());
  });

  app.post("/api/account/login", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const password = stringField(body, "password");
    const replaceKey = body.replaceKey ?? false;
    if (typeof replaceKey !== "boolean") {
      throw new P2pError("bad_field", 'Field "replaceKey" must be true or false');
    }
    await accounts.login(password, { replaceKey });
    return c.json(account());
  });

  app.post("/api/account/logout", async (c) => {
    await accounts.logout();
    return c.json(account());
  });

  app.get("/api/users", async (c) => {
    const users = await accounts.users(c.req.query("online") === "true");
    return c.json({ count: users.length, users });
  });

  app.get("/api/rooms", async (c) => {
    const rooms = await accounts.rooms();
    return c.json({ count: rooms.length, rooms });
  });

  app.post("/api/rooms", async (c) => {
    const name = _roomName(stringField(await readJsonObject(c.req.raw), "name"));
    return c.json(await accounts.createRoom(name), 201);
  });

  app.get("/api/rooms/:name/members", async (c) => {
    return c.json(await accounts.members(_roomName(c.req.param("name"))));
  });

  app.post("/api/rooms/:name/join", async (c) => {
    return c.json(await accounts.joinRoom(_roomName(c.req.param("name"))));
  });

  app.post("/api/rooms/:name/leave", async (c) => {
    return c.json(await accounts.leaveRoom(_roomName(c.req.param("name"))));
  });

  app.delete("/api/rooms/:name", async (c) => {
    return c.json(await accounts.deleteRoom(_roomName(c.req.param("name"))));
  });
}

// The same rule as the tracker's, checked here so a bad name never leaves the peer.
function _roomName(value: string): string {
  const name = value.startsWith("#") ? value.slice(1) : value;
  const problem = checkName("Room name", name);
  if (problem) throw new P2pError("bad_room_name", problem);
  return name;
}
