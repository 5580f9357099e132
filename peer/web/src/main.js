// The web chat: boots from the API, follows the event stream, and draws the sidebar, the open
// conversation and the status. Everything shown comes from the peer's local HTTP API.
import { api, ApiError, conversationPath, followEvents, segment } from "./api.js";
import {
  accountDialog,
  contactsDialog,
  membersDialog,
  newChatDialog,
  roomsDialog,
  searchDialog,
  showing,
  trustWords,
  verifyDialog,
} from "./dialogs.js";
import { fill, h } from "./dom.js";
import { MessageList } from "./messages.js";
import { entry, isMember, isOnline, kindOf, listed, model, roomOf, titleOf } from "./model.js";

const $ = (id) => document.getElementById(id);

const EVENT_TYPES = [
  "message",
  "message_state",
  "message_added",
  "peer",
  "tracker",
  "security",
  "storage",
  "conversation_forgotten",
  "conversation_read",
  "contact",
  "account",
  "room",
  "transfer_offer",
  "transfer_progress",
  "transfer_state",
  "name_in_use",
];

/** The open conversation's list, or undefined. */
let list;
let bannerTimer;

document.addEventListener("DOMContentLoaded", start);

async function start() {
  try {
    await refreshAll();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      // Still at the link's address: the peer did not take it (used, old, or mistyped).
      $("link-used").hidden = !new URLSearchParams(location.search).has("token");
      $("signin").hidden = false;
      return;
    }
    banner("The peer does not answer: is it running? Retrying…");
    setTimeout(start, 2000);
    return;
  }
  $("app").hidden = false;
  wireControls();
  followEvents({ types: EVENT_TYPES, onOpen: reconnected, onLost: lost, onEvent: handle });
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) openConversation(wanted);
}

// ---- loading ----

async function refreshAll() {
  model.status = await api("GET", "/api/status");
  await Promise.all([
    refreshConversations(),
    refreshPeers(),
    refreshContacts(),
    refreshAccount(),
    refreshTransfers(),
    refreshIdentity(),
  ]);
  await refreshRooms();
  render();
}

async function refreshConversations() {
  const reply = await api("GET", "/api/conversations");
  model.conversations = new Map(reply.conversations.map((c) => [c.conversation, c]));
}

async function refreshPeers() {
  const reply = await api("GET", "/api/peers");
  model.peers = new Map(reply.peers.map((peer) => [peer.peerId, peer]));
}

async function refreshContacts() {
  const reply = await api("GET", "/api/contacts");
  model.contacts = new Map(reply.contacts.map((contact) => [contact.peerId, contact]));
}

async function refreshAccount() {
  model.account = await api("GET", "/api/account").catch(() => undefined);
}

async function refreshRooms() {
  model.rooms = model.account?.state === "logged_in"
    ? (await api("GET", "/api/rooms").catch(() => ({ rooms: [] }))).rooms
    : [];
}

async function refreshTransfers() {
  const reply = await api("GET", "/api/transfers").catch(() => ({ transfers: [] }));
  model.transfers = new Map(reply.transfers.map((transfer) => [transfer.id, transfer]));
}

async function refreshIdentity() {
  model.identity = await api("GET", "/api/identity").catch(() => undefined);
}

/** Everything again, after a refresh from a dialog. */
async function refreshDirectory() {
  // The key remembered may have changed too (verified in the dialog, a first connection).
  model.key = undefined;
  await Promise.all([refreshPeers(), refreshContacts(), refreshAccount(), refreshStatus()]);
  await refreshRooms();
  render();
}

async function refreshStatus() {
  model.status = await api("GET", "/api/status");
}

// ---- the event stream ----

async function reconnected() {
  const wasLost = !model.live;
  model.live = true;
  if (wasLost && $("banner").dataset.kind === "lost") hideBanner();
  try {
    await refreshAll();
    await list?.catchUp();
  } catch {
    // The next event or reconnection tries again.
  }
}

function lost() {
  model.live = false;
  banner("Lost the connection to the peer: reconnecting…", "lost");
  renderStatus();
  // The peer answers but no longer knows this browser (its API token was replaced).
  api("GET", "/api/status").catch((error) => {
    if (error instanceof ApiError && error.status === 401) {
      $("app").hidden = true;
      hideBanner();
      $("signin").hidden = false;
    }
  });
}

let peerRefresh;
let readRefresh;
function handle(type, data) {
  switch (type) {
    case "message":
      if (data.stored) arrived(data.stored, true);
      return;
    case "message_added":
    case "message_state":
      arrived(data.message, false);
      return;
    case "peer":
      clearTimeout(peerRefresh);
      peerRefresh = setTimeout(
        () => Promise.all([refreshPeers(), refreshContacts()]).then(render).catch(() => {}),
        150,
      );
      return;
    case "tracker":
      if (model.status) {
        model.status.tracker = {
          ...model.status.tracker,
          reachable: data.reachable,
          lastError: data.detail,
        };
      }
      renderStatus();
      return;
    case "contact":
      refreshContacts().then(async () => {
        render();
        // An open contact list follows too, keeping what the user was typing in it.
        if (!showing("Contacts")) return;
        const typing = $("contact");
        const [text, focused] = [typing?.value ?? "", document.activeElement === typing];
        await contactsDialog(refreshDirectory, openConversation);
        $("contact").value = text;
        if (focused) $("contact").focus();
      }).catch(() => {});
      return;
    case "conversation_read":
      // Read in another client (the terminal): the unread counts are the store's. Once per
      // 150 ms at most, however many come (a terminal reads each message it shows).
      readRefresh ??= setTimeout(() => {
        readRefresh = undefined;
        refreshConversations().then(sidebarSoon).catch(() => {});
      }, 150);
      return;
    case "conversation_forgotten":
      model.conversations.delete(data.conversation);
      if (list?.conversation === data.conversation) closeConversation();
      sidebarSoon();
      banner(
        `Deleted the conversation ${titleOf(data.conversation)} (${data.deleted} ${
          data.deleted === 1 ? "message" : "messages"
        }).`,
      );
      return;
    case "storage":
      if (model.status) model.status.storage = data.status;
      renderStatus();
      return;
    case "security":
      banner(securityWords(data.notice), "security");
      refreshPeers().then(render).catch(() => {});
      return;
    case "account":
    case "room":
      refreshAccount().then(refreshRooms).then(render).catch(() => {});
      return;
    case "name_in_use":
      banner(
        `Another peer at ${data.address.hostname}:${data.address.port} already uses the name ${data.peerId}.`,
        "security",
      );
      return;
    default:
      if (type.startsWith("transfer_")) transferChanged(data.transfer);
  }
}

function arrived(message, isNew) {
  const item = entry(message.conversation);
  const first = !item.last;
  if (!item.last || item.last.id <= message.id) item.last = message;
  const open = list?.conversation === message.conversation;
  if (isNew && !message.outgoing && !(open && pageVisible())) item.unread++;
  if (open) list.upsert(message);
  // Its first message makes it one that can be deleted.
  if (open && first) renderHeader();
  sidebarSoon();
}

let sidebarTimer;
/** The list is drawn once for a burst of events (the open conversation is drawn at once). */
function sidebarSoon() {
  if (sidebarTimer !== undefined) return;
  sidebarTimer = setTimeout(() => {
    sidebarTimer = undefined;
    renderSidebar();
  }, 0);
}

function transferChanged(transfer) {
  model.transfers.set(transfer.id, transfer);
  if (list && !list.transferChanged(transfer) && list.conversation === transfer.peer) {
    list.catchUp().catch(() => {});
  }
}

const pageVisible = () => document.visibilityState === "visible";

// ---- the open conversation ----

async function openConversation(conversation) {
  list?.close();
  list = new MessageList($("messages"), conversation, markSeen);
  location.hash = encodeURIComponent(conversation);
  document.body.classList.add("show-conversation");
  $("compose").hidden = false;
  $("compose-error").textContent = "";
  // Seen as soon as it is open (the read receipts follow once its messages are drawn).
  if (pageVisible()) entry(conversation).unread = 0;
  render();
  try {
    await list.load();
  } catch (error) {
    fill($("messages"), h("p", { className: "error" }, error.message));
  }
  $("compose-text").focus();
}

/** Back to no conversation open (the one open was deleted). */
function closeConversation() {
  list?.close();
  list = undefined;
  location.hash = "";
  document.body.classList.remove("show-conversation");
  fill($("messages"));
  fill($("conversation-actions"));
  $("title").textContent = "Pick a conversation";
  $("subtitle").textContent = "";
  $("compose").hidden = true;
}

let seenTimer;
/** The user sees the conversation: its incoming messages are read (receipts go out). */
function markSeen() {
  clearTimeout(seenTimer);
  seenTimer = setTimeout(async () => {
    if (!list || !pageVisible()) return;
    const newest = list.newestIncoming();
    if (!newest || newest.state === "read") return;
    const conversation = list.conversation;
    await api("POST", conversationPath(conversation, "/read"), { upTo: newest.id })
      .catch(() => {});
    entry(conversation).unread = 0;
    sidebarSoon();
  }, 100);
}

async function send(text) {
  const conversation = list.conversation;
  const kind = kindOf(conversation);
  if (kind === "direct") {
    await api("POST", "/api/messages", { to: conversation, text });
  } else {
    await api("POST", "/api/publish", { scope: conversation, text });
  }
}

async function sendFiles(files) {
  if (!list || kindOf(list.conversation) !== "direct") return;
  const to = list.conversation;
  for (const file of files) {
    $("compose-error").textContent = `Preparing ${file.name}…`;
    try {
      const transfer = await api(
        "POST",
        `/api/transfers?to=${segment(to)}&name=${segment(file.name)}`,
        file,
      );
      transferChanged(transfer);
      $("compose-error").textContent = "";
    } catch (error) {
      $("compose-error").textContent = `${file.name}: ${error.message}`;
    }
  }
}

// ---- controls ----

function wireControls() {
  $("open-account").onclick = () => accountDialog(refreshDirectory);
  $("open-new-chat").onclick = () => newChatDialog(openConversation);
  $("open-rooms").onclick = () => roomsDialog(refreshDirectory, openConversation);
  $("open-contacts").onclick = () => contactsDialog(refreshDirectory, openConversation);
  $("open-search").onclick = () => searchDialog(openConversation);
  $("back").onclick = () => {
    document.body.classList.remove("show-conversation");
    $("conversations").querySelector("[aria-current]")?.focus();
  };
  const text = $("compose-text");
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("compose").requestSubmit();
    } else if (event.key === "Escape") {
      text.blur();
    }
  });
  text.addEventListener("input", () => {
    text.style.height = "auto";
    text.style.height = `${Math.min(text.scrollHeight, 200)}px`;
  });
  $("compose").onsubmit = async (event) => {
    event.preventDefault();
    const value = text.value;
    if (!value.trim() || !list) return;
    text.value = "";
    text.style.height = "auto";
    $("compose-error").textContent = "";
    try {
      await send(value);
    } catch (error) {
      // Nothing was stored: give the text back so that it is not lost.
      if (!text.value) text.value = value;
      $("compose-error").textContent = error.message;
    }
  };
  $("attach").onclick = () => $("file-input").click();
  $("file-input").onchange = () => {
    sendFiles([...$("file-input").files]);
    $("file-input").value = "";
  };
  const pane = $("conversation");
  pane.addEventListener("dragover", (event) => {
    if (list && kindOf(list.conversation) === "direct") {
      event.preventDefault();
      pane.classList.add("dropping");
    }
  });
  pane.addEventListener("dragleave", () => pane.classList.remove("dropping"));
  pane.addEventListener("drop", (event) => {
    event.preventDefault();
    pane.classList.remove("dropping");
    sendFiles([...event.dataTransfer.files]);
  });
  document.addEventListener("visibilitychange", () => {
    if (pageVisible() && list) markSeen();
  });
}

// ---- drawing ----

function render() {
  renderSidebar();
  renderHeader();
  renderStatus();
}

function renderSidebar() {
  if (!model.status) return;
  $("me").textContent = model.status.peerId;
  let unread = 0;
  const items = listed().map((item) => {
    unread += item.unread;
    const kind = item.kind ?? kindOf(item.conversation);
    const online = kind === "direct"
      ? isOnline(item.conversation)
      : (roomOf(item.conversation)?.onlineCount ?? 0) > 0;
    const preview = item.last
      ? `${item.last.outgoing ? "You: " : ""}${previewText(item.last)}`
      : "";
    const current = list?.conversation === item.conversation;
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          className: "conversation",
          "aria-current": current ? "true" : undefined,
          "aria-label": `${titleOf(item.conversation)}${
            online && kind === "direct" ? ", online" : ""
          }${item.unread ? `, ${item.unread} unread` : ""}`,
          dataset: { conversation: item.conversation },
          onclick: () => openConversation(item.conversation),
        },
        h("span", { className: `dot ${online ? "on" : ""}`, "aria-hidden": "true" }),
        h("span", { className: "name" }, titleOf(item.conversation)),
        item.unread
          ? h("span", { className: "unread", "aria-hidden": "true" }, String(item.unread))
          : undefined,
        h("span", { className: "preview", "aria-hidden": "true" }, preview.slice(0, 80)),
      ),
    );
  });
  fill($("conversations"), items);
  document.title = unread ? `(${unread}) p2pchat` : "p2pchat";
}

// A file's line says what the terminal shows; the list shows the file's name.
function previewText(message) {
  const transfer = message.msgId.startsWith("file-") && model.transfers.get(message.msgId.slice(5));
  return transfer ? `File: ${transfer.name}` : message.text;
}

// The trust of the key remembered for `peerId`, asked each time its conversation opens (a key
// can be verified or forgotten meanwhile), then the header is drawn again; undefined while not
// known, or when no key is remembered.
function rememberedKey(peerId) {
  if (model.key?.peerId !== peerId) {
    const key = model.key = { peerId, trust: undefined };
    api("GET", `/api/peers/${segment(peerId)}/verification`)
      .then((found) => {
        key.trust = found.verified ? "verified" : "unverified";
        if (model.key === key && list?.conversation === peerId) renderHeader();
      })
      .catch(() => {});
  }
  return model.key.trust;
}

function renderHeader() {
  const actions = $("conversation-actions");
  if (!list) return;
  const conversation = list.conversation;
  const kind = kindOf(conversation);
  $("title").textContent = titleOf(conversation);
  const buttons = [];
  let subtitle;
  if (kind === "direct") {
    const peer = model.peers.get(conversation);
    const contact = model.contacts.get(conversation);
    const trust = peer?.security?.trust ?? contact?.trust ?? rememberedKey(conversation);
    const online = isOnline(conversation);
    const lock = trust === undefined
      ? "encryption not known until it connects"
      : trust === "unencrypted"
      ? "⚠ not encrypted (a plain pyp2p peer)"
      : `encrypted, ${trustWords(trust)}`;
    subtitle = `${online ? "online" : "offline"} · ${lock}`;
    $("attach").hidden = peer?.security?.encrypted === false;
    buttons.push(
      h("button", {
        type: "button",
        onclick: () => verifyDialog(conversation, refreshDirectory),
      }, "Verify"),
    );
    buttons.push(
      contact
        ? h("button", {
          type: "button",
          onclick: () =>
            api("DELETE", `/api/contacts/${segment(conversation)}`).then(refreshDirectory),
        }, "Remove contact")
        : h("button", {
          type: "button",
          onclick: () =>
            api("POST", "/api/contacts", { peer: conversation }).then(refreshDirectory),
        }, "Add contact"),
    );
  } else {
    $("attach").hidden = true;
    const room = roomOf(conversation);
    if (conversation === "*") subtitle = "every connected peer (broadcast)";
    else if (conversation === `#${model.status?.namespace}`) {
      subtitle = "everyone in your namespace · encrypted to each p2pchat peer";
    } else if (room) {
      subtitle =
        `room · ${room.memberCount} members, ${room.onlineCount} online · encrypted to each p2pchat member`;
      buttons.push(
        h("button", { type: "button", onclick: () => membersDialog(room.name) }, "Members"),
      );
      if (isMember(room)) {
        buttons.push(
          h("button", {
            type: "button",
            onclick: () =>
              api("POST", `/api/rooms/${segment(room.name)}/leave`).then(refreshDirectory),
          }, "Leave"),
        );
      }
    } else subtitle = "a room or namespace you are not in";
  }
  if (model.conversations.get(conversation)?.last) {
    buttons.push(
      h("button", { type: "button", onclick: () => forget(conversation) }, "Delete conversation"),
    );
  }
  $("subtitle").textContent = subtitle;
  fill(actions, buttons);
}

/** Deletes a conversation from this peer, once the user confirmed (the others keep theirs). */
async function forget(conversation) {
  const others = kindOf(conversation) === "direct"
    ? `${titleOf(conversation)} keeps theirs.`
    : "The others keep theirs.";
  const question = `Delete the conversation ${titleOf(conversation)} and every message in it ` +
    `from this computer? Messages still queued in it are not sent again, and files on their way ` +
    `are cancelled. ${others}`;
  if (!confirm(question)) return;
  try {
    await api("DELETE", conversationPath(conversation));
  } catch (error) {
    $("compose-error").textContent = `Could not delete the conversation: ${error.message}`;
  }
}

function renderStatus() {
  const status = model.status;
  if (!status) return;
  const tracker = status.tracker;
  const storage = status.storage;
  const line = (label, value, good) =>
    h(
      "div",
      {},
      h("span", { className: `dot ${good ? "on" : "off"}`, "aria-hidden": "true" }),
      `${label}: ${value}`,
    );
  fill(
    $("status"),
    line("Peer", model.live ? "connected" : "reconnecting…", model.live),
    line(
      "Tracker",
      tracker.reachable
        ? `${tracker.address.hostname}:${tracker.address.port}`
        : `unreachable${tracker.lastError ? ` (${tracker.lastError})` : ""}`,
      tracker.reachable,
    ),
    line(
      "Account",
      model.account ? model.account.state.replace("_", " ") : "none",
      model.account?.state === "logged_in",
    ),
    storage
      ? line(
        "History",
        storage.persistent ? "saved" : `not saved${storage.problem ? ` (${storage.problem})` : ""}`,
        storage.persistent,
      )
      : undefined,
    model.identity
      ? h(
        "div",
        { className: "muted", title: "Your key's fingerprint: others compare it" },
        `Key ${model.identity.fingerprint}`,
      )
      : undefined,
  );
}

function securityWords(notice) {
  switch (notice.kind) {
    case "impostor":
      return `Refused ${notice.peerId}: its key is not the one the tracker holds for that account.`;
    case "key_changed":
      return `Refused ${notice.peerId}: its key changed since you last talked. Verify with them before trusting it.`;
    case "downgrade":
      return `Refused ${notice.peerId}: it tried to talk without encryption.`;
    case "account_key_changed":
      return `${notice.peerId} has a new key (accepted by the tracker): verify it again.`;
    case "refused":
      return `${notice.peerId} refused our connection (${notice.reason}).`;
    default:
      return `Security notice about ${notice.peerId}.`;
  }
}

function banner(text, kind = "info") {
  const element = $("banner");
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = false;
  clearTimeout(bannerTimer);
  if (kind !== "lost") bannerTimer = setTimeout(hideBanner, 15000);
}

function hideBanner() {
  $("banner").hidden = true;
  $("banner").dataset.kind = "";
}
