/**
 * The seam between the Rendezvous server and the accounts/rooms service: the server owns
 * sockets and framing, the extension owns long-lived session connections and may refuse a
 * REGISTER of a name that belongs to an account. Rendezvous semantics never change here.
 */
import type { DecodeResult } from "../lib/codec.ts";

/** What a session handler may do with its connection. */
export interface SessionLink {
  /** The client's address, IPv4 as a plain dotted string. */
  readonly remoteIp: string;
  readonly remotePort: number;
  /** Queues one message for the client (written in order, one line each). */
  send(message: Record<string, unknown>): void;
  /** Closes the connection after queued messages are written. */
  close(): void;
}

/** One session connection, fed decoded lines by the server (I/O stays in the server). */
export interface SessionHandler {
  /** A decoded line (or its decode error); the first call carries the opening command. */
  receive(result: DecodeResult): void;
  /** The connection ended (closed by either side, or failed). */
  closed(): void;
}

/** A REGISTER the extension may refuse (for names owned by accounts). */
export interface RegisterCheck {
  name: string;
  namespace: string;
  ip: string;
  /** Every field of the request, so a proof such as a session token can be read. */
  fields: Record<string, unknown>;
}

/** Hooks the Rendezvous server calls; all optional behaviour lives behind them. */
export interface TrackerExtension {
  /** True when a first line of this type (upper-cased) opens a long-lived session. */
  opensSession(type: string): boolean;
  /** Called once per session connection, before its first line is passed to `receive`. */
  openSession(link: SessionLink): SessionHandler;
  /**
   * Undefined when the REGISTER may proceed, else the ERROR `message` to answer with. Also asked
   * before an UNREGISTER removes a listing (the same proof is needed to remove one).
   */
  checkRegister(request: RegisterCheck): string | undefined;
  /**
   * Sets who is told when a name becomes owned (a sign-up), with a test of which registered
   * names it covers (look-alikes included): anonymous listings of those must go.
   */
  onNameOwned(listener: (covers: (name: string) => boolean) => void): void;
  /** Extra Prometheus text lines for `GET /metrics`. */
  metrics(): string[];
  start(): Promise<void>;
  /** Flushes state; called during graceful shutdown. */
  stop(): Promise<void>;
}
