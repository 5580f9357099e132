/**
 * REGISTER and UNREGISTER through the logged-in tracker session (SESSION_REGISTER and
 * SESSION_UNREGISTER): the login proves the name, so no token travels in a Rendezvous line.
 */
import { P2pError } from "../../lib/errors.ts";
import { readRegisterReply, type Registrar, TrackerRefusal } from "../discovery/mod.ts";
import type { SessionClient } from "./session_client.ts";

/** The session's registrar while logged in, else undefined (plain Rendezvous then). */
export function sessionRegistrar(client: SessionClient): Registrar | undefined {
  if (client.state !== "logged_in") return undefined;
  return {
    register: async (request) =>
      readRegisterReply(await _refusalsAsRendezvous(client.request("SESSION_REGISTER", request))),
    unregister: async (request) => {
      await _refusalsAsRendezvous(client.request("SESSION_UNREGISTER", request));
    },
  };
}

/** The tracker's answers that refuse the registration itself (not the connection). */
const _REFUSALS: ReadonlySet<string> = new Set([
  "bad_name",
  "bad_namespace",
  "bad_port",
  "bad_ttl",
  "name_owned",
  "name_mismatch",
  "login_required",
]);

// Discovery reports a tracker's refusal (name_owned, ...) as it does for plain REGISTER.
async function _refusalsAsRendezvous(
  reply: Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  try {
    return await reply;
  } catch (error) {
    if (error instanceof P2pError && _REFUSALS.has(error.code)) {
      throw new TrackerRefusal(`Tracker refused: ${error.message}`, error.code);
    }
    throw error;
  }
}
