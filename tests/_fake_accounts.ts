/**
 * The part of `PeerAccounts` that /login and `POST /api/account/login` use, in memory: it
 * records each login with its options and fails with `failure` when the test sets one.
 */
import type { PeerAccounts } from "../peer/accounts/mod.ts";

export class FakeAccounts {
  readonly username = "alice";
  state = "logged_out";
  readonly logins: { password: string; replaceKey?: boolean }[] = [];
  /** What the next logins throw (the tracker's refusal). */
  failure?: Error;

  login(password: string, options: { replaceKey?: boolean } = {}): Promise<void> {
    this.logins.push({ password, ...options });
    if (this.failure) return Promise.reject(this.failure);
    this.state = "logged_in";
    return Promise.resolve();
  }

  /** This fake where a `PeerAccounts` is expected (only login, username and state work). */
  get asPeerAccounts(): PeerAccounts {
    return this as unknown as PeerAccounts;
  }
}
