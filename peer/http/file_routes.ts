/**
 * File transfer routes of the local HTTP API (docs/http-api.md, "Transfers"): an upload is
 * streamed to a file in the profile (never held whole in memory) and then offered; received
 * files are downloaded, and images previewed, with a type taken from their content.
 */
import type { Hono } from "hono";
import { P2pError } from "../../lib/errors.ts";
import type { FileTransfers } from "../api.ts";
import { isImageType } from "../files/mod.ts";
import { peerIdField } from "./request_params.ts";

/** Largest upload (the peer offers files up to this size through the API). */
export const MAX_UPLOAD_BYTES = 16 * 1024 ** 3;

/** Adds `/api/transfers...` to `app`; uploads wait in `DATA-DIR/uploads`. */
export function mountFileApi(
  app: Hono,
  files: FileTransfers,
  options: { dataDir: string; namespace: string },
): void {
  // The terminal shows ids cut to 6 characters; the API takes them whole, and says so.
  const idOf = (c: { req: { param(name: "id"): string } }) => {
    const id = c.req.param("id");
    if (/^[0-9a-f]{32}$/.test(id)) return id;
    // What was given is said back, but not 5,000 characters of it.
    const shown = id.length > 40 ? `${id.slice(0, 40)}...` : id;
    throw new P2pError(
      "not_found",
      `No transfer ${shown}: an id is 32 hex characters (GET /api/transfers lists them)`,
    );
  };
  const transfer = (id: string) => {
    const found = files.get(id);
    if (!found) throw new P2pError("not_found", `No transfer ${id}`);
    return found;
  };

  app.get("/api/transfers", (c) => c.json({ transfers: files.list() }));

  app.get("/api/transfers/:id", (c) => c.json(transfer(idOf(c))));

  // The body is the file; `to` and `name` come in the query string.
  app.post("/api/transfers", async (c) => {
    const to = c.req.query("to");
    const name = c.req.query("name");
    if (!to) throw new P2pError("missing_field", 'Query parameter "to" is missing');
    if (!name) throw new P2pError("missing_field", 'Query parameter "name" is missing');
    const peerId = peerIdField(to, "to", options.namespace);
    // A form (curl -F) would be offered with its wrapper as the file's bytes. Only forms: a
    // browser sends a file's own type, and a saved web page is multipart/related.
    if (/^multipart\/form-data\b/i.test(c.req.header("content-type") ?? "")) {
      throw new P2pError(
        "bad_request",
        "The body must be the file's bytes, not a form: send it with curl --data-binary @FILE",
      );
    }
    const dir = `${options.dataDir}/uploads`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const path = `${dir}/${crypto.randomUUID()}`;
    await _saveBody(c.req.raw, path);
    try {
      return c.json(await files.send(peerId, path, { name, temporary: true }), 201);
    } catch (error) {
      await Deno.remove(path).catch(() => {});
      throw error;
    }
  });

  app.post("/api/transfers/:id/accept", async (c) => c.json(await files.accept(idOf(c))));
  app.post("/api/transfers/:id/decline", (c) => c.json(files.decline(idOf(c))));
  app.post("/api/transfers/:id/cancel", async (c) => c.json(await files.cancel(idOf(c))));

  // The file itself, as an attachment; `?inline=1` shows an image in place (a preview).
  app.get("/api/transfers/:id/file", async (c) => {
    const found = transfer(idOf(c));
    const path = files.localPath(found.id);
    if (!path || (found.direction === "in" && found.state !== "done")) {
      throw new P2pError("bad_state", `Transfer ${found.id} has no file to give yet`);
    }
    const inline = c.req.query("inline") === "1" && isImageType(found.type);
    const file = await Deno.open(path, { read: true });
    const safeName = encodeURIComponent(found.name);
    return new Response(file.readable, {
      headers: {
        "content-type": inline ? found.type : "application/octet-stream",
        "content-disposition": `${inline ? "inline" : "attachment"}; filename*=UTF-8''${safeName}`,
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
      },
    });
  });
}

// Streams the request body to `path`, counting: past MAX_UPLOAD_BYTES it stops and removes it.
async function _saveBody(request: Request, path: string): Promise<void> {
  if (!request.body) throw new P2pError("missing_field", "The request has no body (the file)");
  const file = await Deno.open(path, { create: true, write: true, truncate: true, mode: 0o600 });
  let size = 0;
  try {
    for await (const chunk of request.body) {
      size += chunk.length;
      if (size > MAX_UPLOAD_BYTES) {
        throw new P2pError("body_too_large", `A file over ${MAX_UPLOAD_BYTES} bytes`);
      }
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
    }
  } catch (error) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw error;
  }
  file.close();
}
