/**
 * Fair shares of the tracker's connection slots, free of I/O. One address may hold at most a
 * share of the slots, and long-lived session connections may never take the room kept for
 * short Rendezvous requests, so one client (or one account's many sessions) cannot lock
 * everyone else out of REGISTER and DISCOVER.
 */

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
  readonly #perIp = new Map<string, number>();
  #open = 0;
  #sessions = 0;

  constructor(readonly limits: AdmissionLimits) {}

  get open(): number {
    return this.#open;
  }

  get sessions(): number {
    return this.#sessions;
  }

  /** Takes a slot for a new connection from `ip`, or says why not. */
  admit(ip: string): Refusal | undefined {
    const { maxConnections, maxPerIp } = this.limits;
    if (this.#open >= maxConnections) {
      return {
        reason: "max_connections",
        message: `Too many connections (limit ${maxConnections}); try again later`,
      };
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= maxPerIp) {
      return {
        reason: "per_ip",
        message: `Too many connections from this address (limit ${maxPerIp}); try again later`,
      };
    }
    this.#perIp.set(ip, fromIp + 1);
    this.#open++;
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
    this.#open--;
    const fromIp = (this.#perIp.get(ip) ?? 1) - 1;
    if (fromIp <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, fromIp);
  }
}
