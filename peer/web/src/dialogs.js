// The dialogs: account, new chat, rooms and their members, contacts, and verifying a peer's
// key with the safety number. Each is a <dialog>: Escape closes it, focus stays inside.
import { api, segment } from "./api.js";
import { fill, formatFull, h, nameOf } from "./dom.js";
import { isMember, model, titleOf } from "./model.js";

const dialog = () => document.getElementById("dialog");

/** Shows a dialog with `title` and the nodes `build(error)` returns, focusing its first field. */
function show(title, build) {
  const element = dialog();
  document.getElementById("dialog-title").textContent = title;
  const error = h("p", { className: "error", role: "alert" });
  fill(document.getElementById("dialog-body"), build(error), error);
  if (!element.open) element.showModal();
  element.querySelector("#dialog-body input, #dialog-body button")?.focus();
}

/** Runs `action`; a failure is shown in `error`, and success closes the dialog or calls `then`. */
function attempt(error, action, then = close) {
  return async (event) => {
    event?.preventDefault();
    error.textContent = "";
    try {
      await then(await action());
    } catch (failure) {
      error.textContent = failure.message;
      error.dataset.code = failure.code ?? "";
    }
  };
}

export function close() {
  if (dialog().open) dialog().close();
}

/** True while the dialog titled `title` is open. */
export function showing(title) {
  return dialog().open && document.getElementById("dialog-title").textContent === title;
}

/** Sign up, log in or log out (the account is the peer's name). */
export function accountDialog(refresh) {
  const again = async () => {
    await refresh();
    accountDialog(refresh);
  };
  show("Account", (error) => {
    const account = model.account;
    if (!account) return h("p", {}, "This peer has no accounts (a plain pyp2p tracker).");
    if (account.state === "logged_in") {
      return [
        h("p", {}, "Logged in as ", h("strong", {}, account.username), "."),
        h("button", {
          type: "button",
          onclick: attempt(error, () => api("POST", "/api/account/logout"), again),
        }, "Log out"),
      ];
    }
    const password = h("input", {
      type: "password",
      id: "password",
      autocomplete: "current-password",
      minlength: 8,
      required: true,
    });
    const replaceKey = h("input", { type: "checkbox", id: "replace-key" });
    const call = (path) => () =>
      api("POST", path, {
        password: password.value,
        ...(path.endsWith("login") && replaceKey.checked ? { replaceKey: true } : {}),
      });
    return h(
      "form",
      { onsubmit: attempt(error, call("/api/account/login"), again) },
      h(
        "p",
        {},
        `Account ${account.username} (${
          account.state.replace("_", " ")
        }). A name that is an account can only be used with its password and this profile's key.`,
      ),
      h("label", { for: "password" }, "Password (8 characters or more)"),
      password,
      h(
        "label",
        { className: "check" },
        replaceKey,
        " This is a new profile: make its key the account's key (log in only)",
      ),
      h(
        "div",
        { className: "buttons" },
        h("button", { type: "submit" }, "Log in"),
        h("button", {
          type: "button",
          onclick: attempt(error, call("/api/account/signup"), again),
        }, "Sign up"),
      ),
    );
  });
}

/** Opens a conversation with a peer by name. */
export function newChatDialog(open) {
  show("New chat", (error) => {
    const peer = h("input", {
      id: "peer",
      required: true,
      placeholder: "bob or bob@namespace",
      autocomplete: "off",
    });
    return h(
      "form",
      {
        onsubmit: attempt(error, () => {
          const value = peer.value.trim();
          if (!/^[^@\s]+(@[^@\s]+)?$/.test(value)) {
            throw new Error("Type a name, or name@namespace");
          }
          return value.includes("@") ? value : `${value}@${model.status.namespace}`;
        }, (peerId) => {
          close();
          open(peerId);
        }),
      },
      h("label", { for: "peer" }, "Peer"),
      peer,
      h("div", { className: "buttons" }, h("button", { type: "submit" }, "Open")),
    );
  });
}

/** The tracker's rooms: create, join, leave, delete, members. */
export async function roomsDialog(refresh, open) {
  let rooms = [];
  let problem = "";
  try {
    rooms = (await api("GET", "/api/rooms")).rooms;
  } catch (failure) {
    problem = failure.code === "not_logged_in"
      ? "Log in (Account) to see and join rooms."
      : failure.message;
  }
  model.rooms = rooms;
  const again = async () => {
    await refresh();
    await roomsDialog(refresh, open);
  };
  show("Rooms", (error) => {
    const name = h("input", {
      id: "room-name",
      required: true,
      placeholder: "games",
      autocomplete: "off",
    });
    const rows = rooms.map((room) => {
      const member = isMember(room);
      const owner = room.owner === model.account?.username;
      const path = `/api/rooms/${segment(room.name)}`;
      return h(
        "li",
        {},
        h("span", { className: "room-name" }, `#${room.name}`),
        h(
          "span",
          { className: "muted" },
          ` ${room.memberCount} members, ${room.onlineCount} online${owner ? ", yours" : ""}`,
        ),
        h(
          "span",
          { className: "buttons" },
          member
            ? h(
              "button",
              { type: "button", onclick: () => (close(), open(`#${room.name}`)) },
              "Open",
            )
            : h("button", {
              type: "button",
              onclick: attempt(error, () => api("POST", `${path}/join`), again),
            }, "Join"),
          h("button", { type: "button", onclick: () => membersDialog(room.name) }, "Members"),
          member
            ? h("button", {
              type: "button",
              onclick: attempt(error, () => api("POST", `${path}/leave`), again),
            }, "Leave")
            : undefined,
          owner
            ? h("button", {
              type: "button",
              onclick: attempt(error, () => api("DELETE", path), again),
            }, "Delete")
            : undefined,
        ),
      );
    });
    return [
      problem ? h("p", {}, problem) : h(
        "ul",
        { className: "rows", "aria-label": "Rooms" },
        rows.length ? rows : h("li", {}, "No rooms yet."),
      ),
      h(
        "form",
        {
          onsubmit: attempt(
            error,
            () => api("POST", "/api/rooms", { name: name.value.trim() }),
            again,
          ),
        },
        h("label", { for: "room-name" }, "New room"),
        name,
        h("div", { className: "buttons" }, h("button", { type: "submit" }, "Create")),
      ),
    ];
  });
}

/** Messages of every conversation holding a text, newest first; one opens its conversation. */
export function searchDialog(open) {
  show("Search", (error) => {
    const query = h("input", {
      id: "search-text",
      type: "search",
      required: true,
      autocomplete: "off",
    });
    const results = h("ul", {
      className: "rows",
      "aria-label": "Messages found",
      "aria-live": "polite",
    });
    const found = (reply) =>
      fill(
        results,
        reply.messages.length === 0
          ? h("li", {}, "Nothing found.")
          : reply.messages.map((message) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  className: "found",
                  onclick: () => (close(), open(message.conversation)),
                },
                h(
                  "span",
                  { className: "muted" },
                  `${titleOf(message.conversation)} · ${formatFull(message.at)}`,
                ),
                h("span", {}, message.text),
              ),
            )
          ),
      );
    return [
      h(
        "form",
        {
          onsubmit: attempt(
            error,
            () => api("GET", `/api/search?q=${segment(query.value)}&limit=50`),
            found,
          ),
        },
        h("label", { for: "search-text" }, "Messages holding"),
        query,
        h("div", { className: "buttons" }, h("button", { type: "submit" }, "Search")),
      ),
      results,
    ];
  });
}

/** A room's members, online first. */
export async function membersDialog(room) {
  let reply;
  try {
    reply = await api("GET", `/api/rooms/${segment(room)}/members`);
  } catch (failure) {
    show(`#${room}`, () => h("p", {}, failure.message));
    return;
  }
  const members = [...reply.members].sort((a, b) =>
    Number(b.online) - Number(a.online) || a.username.localeCompare(b.username)
  );
  show(`Members of #${room}`, () =>
    h(
      "ul",
      { className: "rows", "aria-label": "Members" },
      members.map((member) =>
        h(
          "li",
          {},
          h("span", { className: `dot ${member.online ? "on" : ""}`, "aria-hidden": "true" }),
          member.username,
          member.username === reply.room.owner
            ? h("span", { className: "muted" }, " (owner)")
            : undefined,
          h("span", { className: "muted" }, member.online ? " online" : " offline"),
        )
      ),
    ));
}

/** The contact list: add, remove, verify. */
export async function contactsDialog(refresh, open) {
  await refresh();
  const again = async () => {
    await refresh();
    await contactsDialog(refresh, open);
  };
  show("Contacts", (error) => {
    const peer = h("input", {
      id: "contact",
      required: true,
      placeholder: "bob or bob@namespace",
      autocomplete: "off",
    });
    const rows = [...model.contacts.values()].map((contact) =>
      h(
        "li",
        {},
        h("span", { className: `dot ${contact.online ? "on" : ""}`, "aria-hidden": "true" }),
        titleOf(contact.peerId),
        h(
          "span",
          { className: "muted" },
          ` ${contact.online ? "online" : "offline"}${
            contact.trust ? `, ${trustWords(contact.trust)}` : ""
          }`,
        ),
        h(
          "span",
          { className: "buttons" },
          h("button", { type: "button", onclick: () => (close(), open(contact.peerId)) }, "Open"),
          h("button", {
            type: "button",
            onclick: () => verifyDialog(contact.peerId, refresh),
          }, "Verify"),
          h("button", {
            type: "button",
            onclick: attempt(error, () =>
              api("DELETE", `/api/contacts/${segment(contact.peerId)}`), again),
          }, "Remove"),
        ),
      )
    );
    return [
      h(
        "ul",
        { className: "rows", "aria-label": "Contacts" },
        rows.length ? rows : h("li", {}, "No contacts yet."),
      ),
      h(
        "form",
        {
          onsubmit: attempt(
            error,
            () => api("POST", "/api/contacts", { peer: peer.value.trim() }),
            again,
          ),
        },
        h("label", { for: "contact" }, "Add a contact"),
        peer,
        h("div", { className: "buttons" }, h("button", { type: "submit" }, "Add")),
      ),
    ];
  });
}

/** The safety number of a peer's key: compare it with them, then mark it verified. */
export async function verifyDialog(peerId, refresh) {
  let verification;
  try {
    verification = await api("GET", `/api/peers/${segment(peerId)}/verification`);
  } catch (failure) {
    show(`Verify ${titleOf(peerId)}`, () =>
      h(
        "p",
        {},
        failure.code === "unknown_key"
          ? `No key is known for ${peerId} yet: it has not connected encrypted. Verify once it has.`
          : failure.message,
      ));
    return;
  }
  show(`Verify ${titleOf(peerId)}`, (error) => [
    h(
      "p",
      {},
      `Compare this safety number with ${
        nameOf(peerId)
      } in person or on a call. The same number on both sides means nobody is in between.`,
    ),
    h("p", { className: "safety", "aria-label": "Safety number" }, verification.safetyNumber),
    h(
      "p",
      { className: "muted" },
      `Fingerprint of ${nameOf(peerId)}'s key: `,
      h("code", {}, verification.fingerprint),
    ),
    h("p", {}, verification.verified ? "✔ You marked this key verified." : "Not verified yet."),
    h(
      "button",
      {
        type: "button",
        onclick: attempt(
          error,
          () =>
            api("POST", `/api/peers/${segment(peerId)}/verify`, {
              verified: !verification.verified,
            }),
          async () => {
            await refresh();
            await verifyDialog(peerId, refresh);
          },
        ),
      },
      verification.verified ? "Mark as not verified" : "The numbers match: mark verified",
    ),
  ]);
}

/** Words for a peer's trust. */
export function trustWords(trust) {
  return {
    verified: "verified",
    unverified: "not verified",
    key_changed: "key changed: verify again",
    unencrypted: "not encrypted",
  }[trust] ?? trust;
}
