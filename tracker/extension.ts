/**
 * The seam between the Rendezvous server and the accounts/rooms service: the server owns
 * sockets, framing and the session handshake, the extension owns long-lived session
 * connections and may refuse a plain REGISTER or UNREGISTER of a name that belongs to an
 * account. Rendezvous semantics never change here.
 */
import type { DecodeResult } from "../lib/codec.ts";
import type { NameCheck, Reply } from "./rendezvous.ts";

/** The Rendezvous commands a session may run for its own address. */
export type SessionRendezvousCommand = "REGISTER" | "UNREGISTER";

/** What a session handler may do with its connection. */
export interface SessionLink {
  /** The client's address, IPv4 as a plain dotted string. */
  readonly remoteIp: string;
  readonly remotePort: number;
  /** The client's Ed25519 identity key, proved by the session handshake. */
  readonly identityKey: Uint8Array;
  /** The id (the client's peer_id) signed with that key in the handshake. */
  readonly remoteId: string;
  /** Queues one message for the client (written in order, one line each). */
  send(message: Record<string, unknown>): void;
  /** Closes the connection after queued messages are written. */
  close(): void;
  /**
   * Runs a Rendezvous REGISTER or UNREGISTER as if sent from `remoteIp`, with `checkName` in
   * place of the accounts' ownership check; returns the Rendezvous reply.
   */
  rendezvous(
    command: SessionRendezvousCommand,
    fields: Record<string, unknown>,
    checkName: NameCheck,
  ): Reply;
}

/** One session connection, fed decoded lines by the server (I/O stays in the server). */
export interface SessionHandler {
  /** A decoded line (or its decode error) received inside the encrypted session. */
  receive(result: DecodeResult): void;
  /** The connection ended (closed by either side, or failed). */
  closed(): void;
  /**
   * True once the client logged in. The lines of sessions that have not share one rate besides
   * their own, so a crowd of anonymous sessions costs a bounded share of the CPU.
   */
  readonly loggedIn?: boolean;
}

/** Hooks the Rendezvous server calls; all optional behaviour lives behind them. */
export interface TrackerExtension {
  /**
   * True when a first line of this type (upper-cased) belongs to the session protocol. Only
   * SESSION_HELLO opens a session (encrypted); the server refuses the others in clear.
   */
  opensSession(type: string): boolean;
  /** Called once per session connection, after its handshake. */
  openSession(link: SessionLink): SessionHandler;
  /** A plain REGISTER of this name: undefined when it may proceed, else the ERROR `message`. */
  checkRegister(name: string): string | undefined;
  /** A plain UNREGISTER would remove a listing of this name: undefined allows it. */
  checkUnregister(name: string): string | undefined;
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
