/** The local HTTP API for scripts: routes (hono) and the API token. */
export { createPeerApi } from "./routes.ts";
export { mountAccountApi } from "./account_routes.ts";
export { mountFileApi } from "./file_routes.ts";
export { apiTokenPath, loadOrCreateApiToken } from "./api_token.ts";
export { WebAuth } from "./web_auth.ts";
