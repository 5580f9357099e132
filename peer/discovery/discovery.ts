/**
 * The discovery loop: REGISTER at start and again at 60% of the TTL the tracker granted,
 * DISCOVER (every namespace) on a fixed period, and recovery when the tracker restarts
 * (our record missing from DISCOVER) or is down (REGISTER retried with backoff). Time comes
 * from a `Clock` and requests from a `RendezvousClient`, so tests drive it by hand.
 */
import type { Clock, TimerId } from "../../lib/clock.ts";
import { describeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { backoffDelay } from "../../lib/backoff.ts";
import {
  type Registrar,
  type RendezvousClient,
  type RendezvousRecord,
  TrackerRefusal,
} from "./rendezvous_client.ts";

/** What we register and how often we ask. */
export interface DiscoverySettings {
  name: string;
  namespace: string;
  /** The port we listen on (what other peers dial). */
  port: number;
  ttlSeconds: number;
  discoverIntervalMs: number;
  /**
   * Who registers, asked at each REGISTER and UNREGISTER: once logged in, the encrypted
   * tracker session proves our name; otherwise (or when it answers undefined) plain Rendezvous.
   */
  registrar?: () => Registrar | undefined;
}

/** Where discovery reports. */
export interface DiscoveryHooks {
  /** Every record of a DISCOVER reply except our own name@namespace. */
  peersFound(records: RendezvousRecord[]): void;
  /** The tracker became reachable or unreachable (reported on changes only). */
  trackerChanged(reachable: boolean, detail?: string): void;
  /** The tracker refused our REGISTER (first refusal of a run of them), e.g. `name_owned`. */
  registerRefused?(reason: string, detail: string): void;
}

/** Collaborators. */
export interface DiscoveryDeps {
  client: RendezvousClient;
  clock: Clock;
  log: Logger;
  random?: () => number;
}

/** What `/status` shows about the tracker. */
export interface DiscoveryStatus {
  reachable: boolean;
  registered: boolean;
  publicIp?: string;
  lastRegisterAt?: number;
  lastDiscoverAt?: number;
  lastError?: string;
}

/** Renew the registration at this fraction of its TTL (pyp2p records expire at 100%). */
export const RENEW_AT_FRACTION = 0.6;

/** The REGISTER / DISCOVER schedule of one peer. */
export class Discovery {
  readonly #settings: DiscoverySettings;
  readonly #hooks: DiscoveryHooks;
  readonly #client: RendezvousClient;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  #running = false;
  #reachable?: boolean;
  #registered = false;
  #registering = false;
  #registerFailures = 0;
  #registerTimer?: TimerId;
  #discoverTimer?: TimerId;
  #publicIp?: string;
  #lastRegisterAt?: number;
  #lastDiscoverAt?: number;
  #lastError?: string;
  readonly #requests = new Set<Promise<void>>();

  constructor(settings: DiscoverySettings, deps: DiscoveryDeps, hooks: DiscoveryHooks) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#client = deps.client;
    this.#clock = deps.clock;
    this.#log = deps.log.child("Discovery");
    this.#random = deps.random ?? Math.random;
  }

  status(): DiscoveryStatus {
    return {
      reachable: this.#reachable ?? false,
      registered: this.#registered,
      publicIp: this.#publicIp,
      lastRegisterAt: this.#lastRegisterAt,
      lastDiscoverAt: this.#lastDiscoverAt,
      lastError: this.#lastError,
    };
  }

  /** Registers, then discovers, then keeps both on schedule. Resolves after the first round. */
  async start(): Promise<void> {
    this.#running = true;
    const first = this.#register().then(() => this.#discover());
    this.#track(first);
    await first;
  }

  /** Cancels every timer and waits for requests under way (they schedule nothing more). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#registerTimer !== undefined) this.#clock.clearTimeout(this.#registerTimer);
    if (this.#discoverTimer !== undefined) this.#clock.clearTimeout(this.#discoverTimer);
    this.#registerTimer = this.#discoverTimer = undefined;
    await Promise.all(this.#requests);
  }

  /** Registers now instead of at the next renewal or retry (after a login). */
  registerNow(): void {
    if (this.#running) this.#track(this.#register());
  }

  /** Asks the tracker for the peer list now (a message to a peer not in our table yet). */
  discoverNow(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    const request = this.#discover();
    this.#track(request);
    return request;
  }

  /** Removes our registration (best effort: a tracker that is down is only logged). */
  async unregister(): Promise<void> {
    if (!this.#registered) return;
    const { namespace, name, port } = this.#settings;
    try {
      await (this.#settings.registrar?.() ?? this.#client).unregister({ namespace, name, port });
      this.#registered = false;
      this.#log.info("Unregistered from the tracker");
    } catch (error) {
      this.#log.warn("UNREGISTER failed", { error: describeError(error) });
    }
  }

  #track(request: Promise<void>): void {
    this.#requests.add(request);
    request.finally(() => this.#requests.delete(request));
  }

  async #register(): Promise<void> {
    if (!this.#running || this.#registering) return;
    this.#registering = true;
    if (this.#registerTimer !== undefined) this.#clock.clearTimeout(this.#registerTimer);
    this.#registerTimer = undefined;
    const { namespace, name, port, ttlSeconds } = this.#settings;
    const registrar = this.#settings.registrar?.() ?? this.#client;
    try {
      const reply = await registrar.register({ namespace, name, port, ttl: ttlSeconds });
      // Recorded even when we stopped meanwhile (a peer whose input ended at once): the
      // tracker now holds our record, and unregister() must remove it.
      this.#registered = true;
      if (!this.#running) return;
      const ttl = reply.ttl !== undefined && reply.ttl > 0 ? reply.ttl : ttlSeconds;
      this.#registerFailures = 0;
      this.#lastRegisterAt = this.#clock.now();
      if (reply.ip) this.#publicIp = reply.ip;
      this.#setReachable(true);
      this.#log.debug("Registered", { ttl, ip: reply.ip });
      this.#scheduleRegister(ttl * 1000 * RENEW_AT_FRACTION);
    } catch (error) {
      if (!this.#running) return;
      this.#registered = false;
      this.#registerFailures++;
      this.#lastError = describeError(error);
      const reachable = !_isUnreachable(error);
      // A refusal is the tracker's answer, not news of the connection: told once, on its own.
      this.#setReachable(reachable, reachable ? undefined : this.#lastError);
      if (this.#registerFailures === 1) {
        if (error instanceof TrackerRefusal) {
          this.#log.info("REGISTER refused; retrying with backoff", { error: this.#lastError });
          this.#hooks.registerRefused?.(error.reason, this.#lastError);
        } else {
          this.#log.warn("REGISTER failed; retrying with backoff", { error: this.#lastError });
        }
      }
      // Backoff, but never slower than the DISCOVER period, so a tracker back up is used soon.
      this.#scheduleRegister(
        Math.min(
          backoffDelay(this.#registerFailures, this.#random),
          this.#settings.discoverIntervalMs,
        ),
      );
    } finally {
      this.#registering = false;
    }
  }

  async #discover(): Promise<void> {
    if (!this.#running) return;
    if (this.#discoverTimer !== undefined) this.#clock.clearTimeout(this.#discoverTimer);
    this.#discoverTimer = undefined;
    const { name, namespace, port } = this.#settings;
    try {
      const records = await this.#client.discover();
      if (!this.#running) return;
      this.#lastDiscoverAt = this.#clock.now();
      this.#setReachable(true);
      const isSelf = (r: RendezvousRecord) => r.name === name && r.namespace === namespace;
      const listed = records.some((r) => isSelf(r) && r.port === port);
      if (!listed && !this.#registering) {
        // A tracker that restarted forgot us: register now rather than at the next renewal.
        this.#log.info("Our registration is missing from DISCOVER; registering again");
        this.#track(this.#register());
      }
      this.#hooks.peersFound(records.filter((r) => !isSelf(r)));
    } catch (error) {
      if (!this.#running) return;
      this.#lastError = describeError(error);
      this.#setReachable(!_isUnreachable(error), this.#lastError);
    } finally {
      if (this.#running) {
        this.#discoverTimer = this.#clock.setTimeout(
          () => this.#track(this.#discover()),
          this.#settings.discoverIntervalMs,
        );
      }
    }
  }

  #scheduleRegister(delayMs: number): void {
    this.#registerTimer = this.#clock.setTimeout(() => this.#track(this.#register()), delayMs);
  }

  #setReachable(reachable: boolean, detail?: string): void {
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    // Info, not a warning: the terminal and the event stream tell the user already (a warning
    // would print it twice in a terminal).
    if (reachable) this.#log.info("Tracker reachable");
    else this.#log.info("Tracker unreachable", { error: detail });
    this.#hooks.trackerChanged(reachable, detail);
  }
}

function _isUnreachable(error: unknown): boolean {
  return (error as { code?: string })?.code === "tracker_unreachable";
}
