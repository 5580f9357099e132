/**
 * An in-memory `MessageHistory` for user-interface tests: the test adds messages and contacts
 * directly; reads page, search and count unread as the real store does.
 */
import type {
  Contact,
  ConversationSummary,
  MessageHistory,
  MessagePage,
  StorageStatus,
  StoredMessage,
} from "../peer/api.ts";

export class FakeHistory implements MessageHistory {
  readonly messages: StoredMessage[] = [];
  readonly contactList = new Map<string, Contact>();
  storageStatus: StorageStatus = { persistent: true, path: "/tmp/fake/messages.db" };
  #nextId = 1;

  /** Adds a message with defaults for what the test leaves out; returns it. */
  add(fields: Partial<StoredMessage> & { conversation: string; text: string }): StoredMessage {
    const id = this.#nextId++;
    const message: StoredMessage = {
      id,
      msgId: `m-${id}`,
      kind: fields.conversation.startsWith("#") || fields.conversation === "*" ? "pub" : "direct",
      from: fields.outgoing ? "alice@lobby" : fields.conversation,
      outgoing: false,
      at: Date.now(),
      state: "delivered",
      encrypted: true,
      ...fields,
    };
    this.messages.push(message);
    return message;
  }

  conversations(): ConversationSummary[] {
    const last = new Map<string, StoredMessage>();
    for (const message of this.messages) last.set(message.conversation, message);
    return [...last.values()].sort((a, b) => b.id - a.id).map((message) => ({
      conversation: message.conversation,
      kind: message.conversation === "*"
        ? "broadcast"
        : message.conversation.startsWith("#")
        ? "room"
        : "direct",
      unread:
        this.messages.filter((m) =>
          m.conversation === message.conversation && !m.outgoing && m.state !== "read"
        ).length,
      last: message,
    }));
  }

  page(
    conversation: string,
    options: { before?: number; after?: number; limit?: number } = {},
  ): MessagePage {
    const limit = options.limit ?? 50;
    const all = this.messages.filter((m) =>
      m.conversation === conversation &&
      (options.before === undefined || m.id < options.before) &&
      (options.after === undefined || m.id > options.after)
    );
    const messages = options.after !== undefined ? all.slice(0, limit) : all.slice(-limit);
    return { messages, more: all.length > limit };
  }

  markRead(conversation: string, upTo = Infinity): number {
    let count = 0;
    for (const message of this.messages) {
      if (
        message.conversation === conversation && !message.outgoing && message.state !== "read" &&
        message.id <= upTo
      ) {
        message.state = "read";
        count++;
      }
    }
    return count;
  }

  search(text: string, limit = 50): StoredMessage[] {
    const needle = text.toLowerCase();
    return this.messages.filter((m) => m.text.toLowerCase().includes(needle)).reverse()
      .slice(0, limit);
  }

  queued(): StoredMessage[] {
    return this.messages.filter((m) => m.outgoing && m.state === "queued");
  }

  waiting(): StoredMessage[] {
    return this.messages.filter((m) => m.outgoing && (m.pendingFor?.length ?? 0) > 0);
  }

  cancel(id: number): StoredMessage | undefined {
    const message = this.messages.find((m) => m.id === id);
    if (message?.pendingFor?.length) {
      delete message.pendingFor;
      return { ...message };
    }
    if (message?.state !== "queued") return undefined;
    message.state = "failed";
    message.reason = "cancelled";
    return { ...message };
  }

  forget(conversation: string): number | undefined {
    const kept = this.messages.filter((m) => m.conversation !== conversation);
    const deleted = this.messages.length - kept.length;
    if (deleted === 0) return undefined;
    this.messages.splice(0, this.messages.length, ...kept);
    if (this.open === conversation) this.open = undefined;
    return deleted;
  }

  /** The conversation remembered as open. */
  open?: string;

  lastOpened(): string | undefined {
    return this.open;
  }

  setLastOpened(conversation: string): boolean {
    if (!this.messages.some((m) => m.conversation === conversation)) return false;
    this.open = conversation;
    return true;
  }

  contacts(): Contact[] {
    return [...this.contactList.values()];
  }

  addContact(peerId: string): Contact {
    const contact = this.contactList.get(peerId) ??
      { peerId, addedAt: Date.now(), online: false, verified: false };
    this.contactList.set(peerId, contact);
    return contact;
  }

  removeContact(peerId: string): boolean {
    return this.contactList.delete(peerId);
  }

  storage(): StorageStatus {
    return this.storageStatus;
  }
}
