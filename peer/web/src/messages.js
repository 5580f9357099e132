// The open conversation's messages: newest page first, older ones on scrolling up, states kept
// up to date, day separators, and file transfers as cards in the flow.
import { api, conversationPath, segment } from "./api.js";
import { dayKey, fill, formatBytes, formatClock, formatDay, formatFull, h, nameOf } from "./dom.js";
import { kindOf, model } from "./model.js";

const PAGE = 50;

const STATE_MARKS = {
  queued: ["queued", "queued: goes out when the peer is back"],
  sent: ["✓", "sent"],
  delivered: ["✓✓", "delivered"],
  read: ["✓✓", "read"],
  failed: ["⚠", "failed"],
};

/** The message list of one conversation in `element`. */
export class MessageList {
  constructor(element, conversation, onSeen) {
    this.element = element;
    this.conversation = conversation;
    this.onSeen = onSeen;
    this.messages = [];
    this.more = false;
    this.loadingOlder = false;
    this.closed = false;
    element.onscroll = () => {
      if (element.scrollTop < 200) this.loadOlder();
    };
  }

  /** The newest page. */
  async load() {
    const page = await api(
      "GET",
      conversationPath(this.conversation, "/messages", `limit=${PAGE}`),
    );
    if (this.closed) return;
    // Messages the event stream brought while the page was on its way are kept (they are newer).
    const byId = new Map(page.messages.map((message) => [message.id, message]));
    for (const message of this.messages) byId.set(message.id, message);
    this.messages = [...byId.values()].sort((a, b) => a.id - b.id);
    this.more = page.more;
    this.renderAll();
    this.element.scrollTop = this.element.scrollHeight;
    this.onSeen();
    // A short page leaves no room to scroll: fetch more until it fills the view.
    if (this.more && this.element.scrollHeight <= this.element.clientHeight) await this.loadOlder();
  }

  async loadOlder() {
    if (!this.more || this.loadingOlder || this.messages.length === 0) return;
    this.loadingOlder = true;
    try {
      const page = await api(
        "GET",
        conversationPath(
          this.conversation,
          "/messages",
          `before=${this.messages[0].id}&limit=${PAGE}`,
        ),
      );
      if (this.closed) return;
      const fromBottom = this.element.scrollHeight - this.element.scrollTop;
      this.messages = [...page.messages, ...this.messages];
      this.more = page.more;
      this.renderAll();
      this.element.scrollTop = this.element.scrollHeight - fromBottom;
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Messages stored since the newest shown (after the event stream was away). */
  async catchUp() {
    for (let pages = 0; pages < 20; pages++) {
      const after = this.messages.at(-1)?.id;
      if (after === undefined) return await this.load();
      const page = await api(
        "GET",
        conversationPath(this.conversation, "/messages", `after=${after}&limit=500`),
      );
      if (this.closed) return;
      for (const message of page.messages) this.upsert(message);
      if (!page.more) return;
    }
  }

  /** Another conversation was opened: answers still on their way must not draw this one. */
  close() {
    this.closed = true;
  }

  /** A new or changed message of this conversation. */
  upsert(message) {
    const at = this.messages.findIndex((shown) => shown.id === message.id);
    if (at >= 0) {
      this.messages[at] = message;
      const old = this.element.querySelector(`[data-id="${message.id}"]`);
      old?.replaceWith(this.render(message));
      return;
    }
    const last = this.messages.at(-1);
    if (last !== undefined && message.id < last.id) return; // older than the page: scrolled to later
    const pinned =
      this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 80;
    if (last === undefined || dayKey(last.at) !== dayKey(message.at)) {
      this.element.append(separator(message.at));
    }
    this.messages.push(message);
    this.element.append(this.render(message));
    if (pinned || message.outgoing) this.element.scrollTop = this.element.scrollHeight;
    if (!message.outgoing) this.onSeen();
  }

  /** A transfer changed: its line is drawn again; false when it is not shown. */
  transferChanged(transfer) {
    const line = this.messages.find((message) => message.msgId === `file-${transfer.id}`);
    if (line === undefined) return false;
    this.element.querySelector(`[data-id="${line.id}"]`)?.replaceWith(this.render(line));
    return true;
  }

  /** The newest incoming message shown (what reading the conversation covers). */
  newestIncoming() {
    return this.messages.findLast((message) => !message.outgoing);
  }

  renderAll() {
    const nodes = [];
    let day;
    if (this.more) nodes.push(h("div", { className: "more" }, "Scroll up for older messages"));
    for (const message of this.messages) {
      if (dayKey(message.at) !== day) {
        day = dayKey(message.at);
        nodes.push(separator(message.at));
      }
      nodes.push(this.render(message));
    }
    fill(this.element, nodes);
  }

  render(message) {
    const transferId = message.msgId.startsWith("file-") ? message.msgId.slice(5) : undefined;
    const transfer = transferId && model.transfers.get(transferId);
    const sender = !message.outgoing && kindOf(this.conversation) !== "direct"
      ? h("div", { className: "sender" }, nameOf(message.from))
      : undefined;
    const body = transfer ? transferCard(transfer) : h("div", { className: "text" }, message.text);
    return h(
      "article",
      {
        className: `msg ${message.outgoing ? "out" : "in"}`,
        dataset: { id: message.id, state: message.state },
        "aria-label": `${message.outgoing ? "You" : nameOf(message.from)}, ${
          formatFull(message.at)
        }`,
      },
      sender,
      body,
      h(
        "div",
        { className: "foot" },
        h(
          "time",
          { datetime: new Date(message.at).toISOString(), title: formatFull(message.at) },
          formatClock(message.at),
        ),
        message.encrypted || !travelled(message) ? undefined : h(
          "span",
          { className: "clear", title: "Sent without encryption (a plain pyp2p peer)" },
          "not encrypted",
        ),
        message.outgoing ? stateMark(message) : undefined,
        outboxButton(message),
      ),
    );
  }
}

// What takes a message out of the outbox: cancel a queued one, or stop a room message waiting.
function outboxButton(message) {
  const waiting = message.outgoing && message.pendingFor?.length > 0;
  if (message.state !== "queued" && !waiting) return undefined;
  const [text, label] = message.state === "queued" ? ["cancel", "Cancel this queued message"] : [
    `stop waiting for ${namesOf(message.pendingFor)}`,
    "Stop waiting: members who were offline will not get it",
  ];
  return h("button", {
    type: "button",
    className: "link",
    "aria-label": label,
    onclick: () => api("DELETE", `/api/outbox/${message.id}`).catch(() => {}),
  }, text);
}

// "carol, dave, erin +2": who a room message waits for, short.
function namesOf(members) {
  const shown = members.slice(0, 3).join(", ");
  return members.length > 3 ? `${shown} +${members.length - 3}` : shown;
}

// True when the message went over a connection: received, or sent and not held or failed
// (a queued or cancelled message never left, so it was never in clear either).
function travelled(message) {
  return !message.outgoing || ["sent", "delivered", "read"].includes(message.state);
}

function separator(at) {
  return h("div", { className: "day", role: "separator" }, formatDay(at));
}

function stateMark(message) {
  const [mark, label] = STATE_MARKS[message.state] ?? ["", message.state];
  const waiting = message.pendingFor?.length
    ? ` (waiting for ${message.pendingFor.join(", ")})`
    : "";
  const reason = message.reason ? `: ${message.reason}` : "";
  return h(
    "span",
    {
      className: `state ${message.state}`,
      title: label + reason + waiting,
      "aria-label": label + reason + waiting,
    },
    mark,
    message.state === "failed" ? ` failed${reason}` : "",
  );
}

/** A file transfer: name, size, progress, what can be done with it, and a preview of images. */
export function transferCard(transfer) {
  const done = transfer.state === "done";
  const moving = transfer.state === "sending" || transfer.state === "receiving";
  const file = `/api/transfers/${segment(transfer.id)}/file`;
  const act = (verb) => () =>
    api("POST", `/api/transfers/${segment(transfer.id)}/${verb}`).catch(() => {});
  const incomingOffer = transfer.direction === "in" && transfer.state === "offered";
  const canOpen = done || transfer.direction === "out";
  return h(
    "div",
    { className: `transfer ${transfer.state}`, dataset: { transfer: transfer.id } },
    h("div", { className: "file-name" }, transfer.name),
    h("div", { className: "file-info" }, `${formatBytes(transfer.size)} · ${describe(transfer)}`),
    moving || transfer.state === "offered"
      ? h("progress", {
        max: Math.max(transfer.size, 1),
        value: transfer.bytes,
        "aria-label": `Progress of ${transfer.name}`,
      })
      : undefined,
    done && transfer.type.startsWith("image/")
      ? h("img", {
        className: "preview",
        src: `${file}?inline=1`,
        alt: transfer.name,
        loading: "lazy",
      })
      : undefined,
    h(
      "div",
      { className: "file-actions" },
      incomingOffer ? h("button", { type: "button", onclick: act("accept") }, "Accept") : undefined,
      incomingOffer
        ? h("button", { type: "button", onclick: act("decline") }, "Decline")
        : undefined,
      moving || (transfer.state === "offered" && transfer.direction === "out")
        ? h("button", { type: "button", onclick: act("cancel") }, "Cancel")
        : undefined,
      canOpen && ["done", "offered", "sending"].includes(transfer.state)
        ? h("a", { href: file, download: transfer.name }, "Download")
        : undefined,
    ),
  );
}

function describe(transfer) {
  const percent = transfer.size > 0 ? Math.floor((transfer.bytes / transfer.size) * 100) : 100;
  const rate = transfer.rate ? `, ${formatBytes(transfer.rate)}/s` : "";
  switch (transfer.state) {
    case "offered":
      return transfer.direction === "in" ? "offered to you" : "waiting for the peer to accept";
    case "sending":
    case "receiving":
      return `${transfer.state} ${percent}%${rate}`;
    case "done":
      return transfer.direction === "in" ? "received" : "sent";
    default:
      return transfer.reason ? `${transfer.state}: ${transfer.reason}` : transfer.state;
  }
}
