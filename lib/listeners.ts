/** Subscribers to one stream of events, for the objects user interfaces listen to. */
import type { Logger } from "./log.ts";

/** A set of listeners; one that throws is logged and never keeps the event from the others. */
export class Listeners<T> {
  readonly #listeners = new Set<(event: T) => void>();
  readonly #log: Logger;
  readonly #what: string;

  /** `what` names the listeners in the log line of a failure ("Event listener"). */
  constructor(log: Logger, what: string) {
    this.#log = log;
    this.#what = what;
  }

  /** Adds `listener`; returns the function that removes it. */
  add(listener: (event: T) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** How many listen (an event nobody listens to need not be made). */
  get size(): number {
    return this.#listeners.size;
  }

  /** Calls every listener with `event`. */
  emit(event: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#log.error(`${this.#what} failed`, { error: String(error) });
      }
    }
  }
}
