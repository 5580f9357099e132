/** The web chat: its page and files (embedded), served beside the local HTTP API. */
export { mountWebPage } from "./serve.ts";
