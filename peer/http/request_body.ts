/**
 * Reading request bodies of the local HTTP API: one JSON object, of bounded size, with
 * required fields checked under stable error codes. Shared by every route module.
 */
import { concatBytes } from "../../lib/bytes.ts";
import { isRecord } from "../../lib/codec.ts";
import { P2pError } from "../../lib/errors.ts";

/**
 * Largest request body. A text that fits a 32768-byte line fits here even when the client
 * escapes every character as \uXXXX.
 */
export const MAX_BODY_BYTES = 256 * 1024;

/** Reads a JSON object body of at most MAX_BODY_BYTES; `emptyIsObject` lets a body be left out. */
export async function readJsonObject(
  request: Request,
  emptyIsObject = false,
): Promise<Record<string, unknown>> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY_BYTES) throw _bodyTooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const chunk of request.body) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw _bodyTooLarge();
      chunks.push(chunk);
    }
  }
  const text = new TextDecoder().decode(concatBytes(chunks));
  if (emptyIsObject && text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new P2pError("invalid_json", "The request body is not valid JSON");
  }
  if (!isRecord(body)) {
    throw new P2pError("not_an_object", "The request body must be a JSON object");
  }
  return body;
}

function _bodyTooLarge(): P2pError {
  return new P2pError("body_too_large", `The request body is larger than ${MAX_BODY_BYTES} bytes`);
}

/** A required non-empty string field of a request body. */
export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined) throw new P2pError("missing_field", `Field "${name}" is missing`);
  if (typeof value !== "string" || value === "") {
    throw new P2pError("bad_field", `Field "${name}" must be a non-empty string`);
  }
  return value;
}
