// What the page knows of its peer, kept up to date from the API and the event stream.

export const model = {
  /** GET /api/status; undefined until the peer answered. */
  status: undefined,
  identity: undefined,
  account: undefined,
  /** conversation name -> { conversation, kind, unread, last } */
  conversations: new Map(),
  /** peerId -> peer row (state, security) */
  peers: new Map(),
  /** peerId -> contact */
  contacts: new Map(),
  /**
   * The open direct conversation's remembered key: { peerId, trust } ("verified", "unverified",
   * or undefined until known and when none is remembered).
   */
  key: undefined,
  rooms: [],
  /** transfer id -> transfer */
  transfers: new Map(),
  /** The event stream is up (false while the peer is away). */
  live: false,
};

/** `#name`, `*`, or a peer id. */
export function kindOf(conversation) {
  if (conversation === "*") return "broadcast";
  return conversation.startsWith("#") ? "room" : "direct";
}

/**
 * The name a conversation is shown by: a peer of our namespace without `@namespace`; a peer id
 * that could pass for one (a pyp2p peer calling itself `bob`, without namespace) says so.
 */
export function titleOf(conversation) {
  if (conversation === "*") return "Everyone (broadcast)";
  if (conversation.startsWith("#")) return conversation;
  if (!conversation.includes("@")) return `${conversation} (no namespace)`;
  const suffix = `@${model.status?.namespace}`;
  const name = conversation.slice(0, -suffix.length);
  return conversation.endsWith(suffix) && !name.includes("@") ? name : conversation;
}

/** A room we are a member of (undefined for a namespace, or a room we are not in). */
export function roomOf(conversation) {
  const name = conversation.slice(1);
  return model.rooms.find((room) => room.name === name);
}

/** True when we are a member of the room (by account name). */
export function isMember(room) {
  const me = model.account?.username;
  return room.members?.some((member) => (member.username ?? member) === me) ?? false;
}

/** Online: the peer is connected, or the contact list says so. */
export function isOnline(peerId) {
  return model.peers.get(peerId)?.state === "connected" ||
    model.contacts.get(peerId)?.online === true;
}

/** The conversation's entry, created when new. */
export function entry(conversation) {
  let found = model.conversations.get(conversation);
  if (!found) {
    found = { conversation, kind: kindOf(conversation), unread: 0, last: undefined };
    model.conversations.set(conversation, found);
  }
  return found;
}

/** Every conversation to list: those with messages, our namespace, our rooms, our contacts. */
export function listed() {
  const names = new Set(model.conversations.keys());
  if (model.status) names.add(`#${model.status.namespace}`);
  for (const room of model.rooms) if (isMember(room)) names.add(`#${room.name}`);
  for (const peerId of model.contacts.keys()) names.add(peerId);
  return [...names].map((name) =>
    model.conversations.get(name) ?? { conversation: name, kind: kindOf(name), unread: 0 }
  )
    .sort((a, b) =>
      (b.last?.at ?? 0) - (a.last?.at ?? 0) ||
      titleOf(a.conversation).localeCompare(titleOf(b.conversation))
    );
}
