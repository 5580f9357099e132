/**
 * One session connection: reads decoded lines, answers each request in order (requests
 * wait for the one before, since logins hash and write), and carries the login state.
 */
import type { DecodeResult } from "../../lib/codec.ts";
import type { Clock } from "../../lib/clock.ts";
import { P2pError } from "../../lib/errors.ts";
import type { SessionHandler, SessionLink } from "../extension.ts";
import {
  type Command,
  COMMANDS,
  errorReply,
  MAX_ID_CHARS,
  MAX_QUEUED_REQUESTS,
  okReply,
  type RequestId,
  type WireAddress,
} from "./protocol.ts";
import type { AccountsService, ServiceSession } from "./service.ts";
import type { UserRecord } from "./store.ts";

const _COMMANDS: ReadonlySet<string> = new Set(COMMANDS);

const _DECODE_MESSAGES: Record<string, string> = {
  empty_line: "Empty request line",
  invalid_json: "The line is not valid JSON",
  not_an_object: "The line is not a JSON object",
  missing_type: 'The message has no string "type"',
};

/** The per-connection state machine behind `TrackerExtension.openSession`. */
export class Session implements SessionHandler, ServiceSession {
  /** Set once logged in. */
  user?: UserRecord;
  tokenHash?: string;
  address?: WireAddress;
  /** When the last valid request arrived: any request counts as a heartbeat. */
  lastActivity: number;
  /** When the connection opened (a login is due within LOGIN_DEADLINE_MS). */
  readonly openedAt: number;
  #ended = false;
  #queued = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    readonly link: SessionLink,
    readonly service: AccountsService,
    readonly clock: Clock,
  ) {
    this.lastActivity = this.openedAt = clock.now();
  }

  get loggedIn(): boolean {
    return this.user !== undefined;
  }

  /** True once the connection closed (or was expired). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Refuses the connection at once (too many sessions wait for a login): busy, then close. */
  refuse(): void {
    this.link.send(
      errorReply(null, "busy", "Too many sessions are waiting for a login; try again later"),
    );
    this.#ended = true;
    this.link.close();
  }

  receive(result: DecodeResult): void {
    if (this.#ended) return;
    if (!result.ok) {
      this.send(errorReply(null, "malformed", _DECODE_MESSAGES[result.code] ?? result.code));
      return;
    }
    const { type, fields } = result.message;
    const id = _requestId(fields.id);
    if (id === undefined) {
      this.send(
        errorReply(null, "bad_request", `Every request needs an "id": a string or a number`),
      );
      return;
    }
    // Only well-formed requests keep a session alive: a stream of junk is not a heartbeat.
    this.lastActivity = this.clock.now();
    if (this.#queued >= MAX_QUEUED_REQUESTS) {
      this.send(errorReply(id, "busy", `More than ${MAX_QUEUED_REQUESTS} requests are waiting`));
      return;
    }
    this.#queued++;
    this.#chain = this.#chain
      .then(() => this.#run(id, type, fields))
      // One request per turn of the event loop: a client pipelining costly requests waits
      // between them while other connections are read and answered.
      .then(_nextTurn)
      .finally(() => this.#queued--);
  }

  closed(): void {
    this.#ended = true;
    this.service.sessionClosed(this);
  }

  /** Sends a message unless the connection is gone. */
  send(message: Record<string, unknown>): void {
    if (!this.#ended) this.link.send(message);
  }

  /** Ends the session from the tracker's side (logout, expiry, revoked token). */
  end(): void {
    this.#ended = true;
    this.link.close();
    this.service.sessionClosed(this);
  }

  async #run(id: RequestId, type: string, fields: Record<string, unknown>): Promise<void> {
    if (this.#ended) return;
    try {
      if (!_COMMANDS.has(type)) {
        throw new P2pError("unknown_command", `Unknown session command "${type}"`);
      }
      const result = await this.service.handle(this, type as Command, fields);
      this.send(okReply(id, result.reply));
      if (result.close) this.end();
    } catch (error) {
      this.send(this.service.errorReplyFor(id, error));
    }
  }
}

function _nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function _requestId(value: unknown): RequestId | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.length <= MAX_ID_CHARS) return value;
  return undefined;
}
