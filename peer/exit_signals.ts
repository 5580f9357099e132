/** When a running peer should stop: a signal, or an error that nothing caught. */
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";

/**
 * Resolves on SIGINT, SIGTERM or SIGHUP (the terminal window closed), or on an error nothing
 * caught: the peer then still says BYE and unregisters (and exits 1 after such an error).
 * Listening starts before the peer says it listens, so a signal sent right after that line is
 * never the default, abrupt exit.
 */
export function exitSignals(log: Logger) {
  const signalled = Promise.withResolvers<void>();
  let failure: string | undefined;
  const onSignal = () => signalled.resolve();
  const onError = (event: ErrorEvent | PromiseRejectionEvent) => {
    event.preventDefault();
    failure = describeError("reason" in event ? event.reason : event.error);
    log.error("Unexpected error; stopping", { error: failure });
    signalled.resolve();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onError);
  return {
    signalled: signalled.promise,
    /** What went wrong, if an uncaught error ended the run. */
    failure: () => failure,
    dispose: () => {
      signals.forEach((signal) => Deno.removeSignalListener(signal, onSignal));
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onError);
    },
  };
}
