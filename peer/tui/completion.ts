/**
 * Tab completion for the input line, pure: the word before the cursor is completed from the
 * command names (a first word starting with "/"), a command's own arguments (the ids after
 * /cancel), scopes (`#...`, `*`) or peer names. One match is completed with
 * a space after it; several are completed as far as they agree, and listed when they do not
 * agree any further.
 */

/** What can be completed. */
export interface CompletionSources {
  /** Command names without "/". */
  commands: readonly string[];
  /** Peer ids (`name@namespace`). */
  peers: readonly string[];
  /** Scopes: `#namespace`, `#room`. */
  scopes: readonly string[];
  /** Our namespace: its peers are offered by bare name, as /msg takes them. */
  namespace: string;
  /**
   * What the first argument of a command takes when it is not a peer or a scope (the ids of
   * queued messages after /cancel); undefined for the usual completion.
   */
  argumentsOf?: (command: string) => readonly string[] | undefined;
}

/** What Tab does: the text to insert at the cursor, and the matches to list (if any). */
export interface Completion {
  insert: string;
  candidates: string[];
}

/** Completes the last word of `before` (the text before the cursor). */
export function complete(before: string, sources: CompletionSources): Completion {
  const word = /\S*$/.exec(before)![0];
  const firstWord = before.trimStart() === word;
  let options: string[];
  const own = _firstArgument(before, word) ? sources.argumentsOf?.(_command(before)) : undefined;
  if (firstWord && word.startsWith("/")) options = sources.commands.map((name) => `/${name}`);
  else if (own !== undefined) options = [...own];
  else if (word === "" && !(_firstArgument(before, word) && _TAKES_PEER.has(_command(before)))) {
    return { insert: "", candidates: [] };
  } else if (word.startsWith("#") || word === "*") options = ["*", ...sources.scopes];
  else {
    // Peers of our namespace go by their bare name, unless the word already has an "@".
    const suffix = `@${sources.namespace}`;
    options = word.includes("@")
      ? [...sources.peers]
      : sources.peers.map((id) => id.endsWith(suffix) ? id.slice(0, -suffix.length) : id);
  }
  const matches = [...new Set(options.filter((option) => option.startsWith(word)))].sort();
  if (matches.length === 0) return { insert: "", candidates: [] };
  if (matches.length === 1) return { insert: matches[0].slice(word.length) + " ", candidates: [] };
  const common = _commonPrefix(matches);
  const insert = common.slice(word.length);
  return { insert, candidates: insert === "" ? matches : [] };
}

// Commands whose first argument is a peer: Tab after them lists the peers even before a letter.
const _TAKES_PEER = new Set(["msg", "send", "add", "remove", "verify"]);

// True when `word` is the first argument of a command: "/cancel 1" with the cursor after "1".
function _firstArgument(before: string, word: string): boolean {
  return /^\s*\/\S+\s+\S*$/.test(before) && before.endsWith(word);
}

function _command(before: string): string {
  return /^\s*\/(\S+)/.exec(before)![1].toLowerCase();
}

// By code points: a cut between the halves of a surrogate pair (an emoji) is no prefix.
function _commonPrefix(words: string[]): string {
  let prefix = [...words[0]];
  for (const word of words) {
    while (!word.startsWith(prefix.join(""))) prefix = prefix.slice(0, -1);
  }
  return prefix.join("");
}
