/** A tracker extension for tests: SESSION_HELLO opens a session run by `openSession`, nothing else. */
import type { SessionHandler, SessionLink, TrackerExtension } from "../../tracker/extension.ts";

export function sessionExtension(
  openSession: (link: SessionLink) => SessionHandler,
): TrackerExtension {
  return {
    opensSession: (type) => type === "SESSION_HELLO",
    openSession,
    checkRegister: () => undefined,
    checkUnregister: () => undefined,
    onNameOwned: () => {},
    metrics: () => [],
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}
