/**
 * Fair shares of the tracker's connection slots, free of I/O. One address may hold at most a
 * share of the slots, and long-lived session connections may never take the room kept for
 * short Rendezvous requests, so one client (or one account's many sessions) cannot lock
 * everyone else out of REGISTER and DISCOVER.
 */
import { SlotCounter } from "../lib/slot_counter.ts";

/** The limits; every field is a number of connections. */
export interface AdmissionLimits {
  /** Open connections in all. */
  maxConnections: number;
  /** Open connections from one address. */
  maxPerIp: number;
  /** Slots session connections may never take: left for one-shot Rendezvous requests. */
  reservedForRequests: number;
}

/** Why a connection or a session was refused, as the ERROR `message` says it. */
export type Refusal = { reason: "max_connections" | "per_ip" | "sessions"; message: string };

/** Counts open connections per address and sessions, and says who may have one more. */
export class Admission {
  readonly #slots: SlotCounter;
  #sessions = 0;

  constructor(readonly limits: AdmissionLimits) {
    this.#slots = new SlotCounter(limits.maxConnections, limits.maxPerIp);
  }

  /** Takes a slot for a new connection from `ip`, or says why not. */
  admit(ip: string): Refusal | undefined {
    const { maxConnections, maxPerIp } = this.limits;
    switch (this.#slots.take(ip)) {
      case "total":
        return {
          reason: "max_connections",
          message: `Too many connections (limit ${maxConnections}); try again later`,
        };
      case "per_key":
        return {
          reason: "per_ip",
          message: `Too many connections from this address (limit ${maxPerIp}); try again later`,
        };
    }
    return undefined;
  }

  /** Turns an admitted connection into a session, unless sessions would eat the reserve. */
  openSession(): Refusal | undefined {
    const limit = this.limits.maxConnections - this.limits.reservedForRequests;
    if (this.#sessions >= limit) {
      return {
        reason: "sessions",
        message: `Too many sessions (limit ${limit}); try again later`,
      };
    }
    this.#sessions++;
    return undefined;
  }

  /** Gives back a session's share (its connection slot is released by `release`). */
  closeSession(): void {
    this.#sessions--;
  }

  /** Gives back an admitted connection's slot. */
  release(ip: string): void {
    this.#slots.give(ip);
  }
}
