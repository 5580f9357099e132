// Talking to the peer: the local HTTP API (with the page's cookie) and its event stream.

/** An error reply of the API, with its stable code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves to the JSON reply, or throws an ApiError. */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined || body instanceof Blob
        ? {}
        : { "content-type": "application/json" },
      body: body === undefined || body instanceof Blob ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "unreachable", "The peer does not answer");
  }
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = reply.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? "http_" + response.status,
      error.message ?? response.statusText,
    );
  }
  return reply;
}

/** A path segment of a conversation or peer id. */
export function segment(value) {
  return encodeURIComponent(value);
}

/**
 * The API path of a conversation's `route` (`""`, `/messages`, `/read`), with `query`: its name
 * as listed, taken exactly (`bob` is a pyp2p peer without namespace, not `bob@ours`).
 */
export function conversationPath(conversation, route = "", query = "") {
  return `/api/conversations/${segment(conversation)}${route}?exact=1${query ? `&${query}` : ""}`;
}

/**
 * The event stream, opened again after each failure (the peer restarted, the laptop slept)
 * with a growing pause: `onOpen` runs on each (re)connection, so the page can catch up.
 */
export function followEvents(handlers) {
  let delay = 500;
  let source;
  const open = () => {
    source = new EventSource("/api/events");
    source.onopen = () => {
      delay = 500;
      handlers.onOpen();
    };
    source.onerror = () => {
      source.close();
      handlers.onLost();
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    };
    for (const type of handlers.types) {
      source.addEventListener(type, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        handlers.onEvent(type, data);
      });
    }
  };
  open();
  // A page kept in the back-forward cache would hold its connection (browsers allow six per
  // host): close it when the page is left, open it again if the page comes back.
  addEventListener("pagehide", () => source.close());
  addEventListener("pageshow", (event) => {
    if (event.persisted) open();
  });
  return () => source.close();
}
