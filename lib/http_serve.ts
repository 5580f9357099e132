/** Serving an HTTP handler on a TCP port, with the same start-up errors as `listenTcp`. */
import type { Address, ListenPurpose } from "./transport.ts";
import { listenFailure } from "./transport.ts";

/** A running HTTP server and the address it listens on. */
export interface HttpServer {
  server: Deno.HttpServer;
  address: Address;
}

/**
 * Serves `handler` on `hostname:port` (0: any free port) and resolves once it listens. A port
 * in use (or any other listen failure) is a `listen_failed` P2pError naming the address, what
 * it is for and the flag that picks another port, never an unhandled exception.
 */
export function serveHttp(
  options: { hostname: string; port: number; signal?: AbortSignal },
  handler: Deno.ServeHandler,
  purpose: ListenPurpose,
): Promise<HttpServer> {
  const listening = Promise.withResolvers<Address>();
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      ...options,
      onListen: ({ hostname, port }) => listening.resolve({ hostname, port }),
    }, handler);
  } catch (error) {
    return Promise.reject(listenFailure(options.hostname, options.port, purpose, error));
  }
  return listening.promise.then((address) => ({ server, address }));
}
