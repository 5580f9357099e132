/** `p2pchat peer`: reads the settings, starts the node (and optional tracker and HTTP API), runs the terminal UI. */
import { systemClock } from "../lib/clock.ts";
import { DEFAULT_TRACKER_PORT, DEFAULT_TTL_SECONDS, PING_INTERVAL_MS } from "../lib/constants.ts";
import { HELP_FLAG, LOG_FLAGS, parseFlags } from "../lib/cli.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { defaultDataDir } from "../lib/persist.ts";
import type { Address } from "../lib/transport.ts";
import { type PeerNode, TRANSFER_LINE_PREFIX } from "./api.ts";
import { serveHttp } from "../lib/http_serve.ts";
import { createAccountsExtension, createTracker, type Tracker } from "../tracker/mod.ts";
import { loadOrCreateIdentity } from "../lib/identity_file.ts";
import { exitSignals } from "./exit_signals.ts";
import { rememberedSuffix } from "./default_name.ts";
import { generateStaticKeyPair } from "../lib/noise/mod.ts";
import {
  fileTokenStore,
  KeyDirectory,
  PeerAccounts,
  SessionClient,
  sessionRegistrar,
  trackerConnector,
} from "./accounts/mod.ts";
import { KeyPins, TrustPolicy } from "./identity/mod.ts";
import {
  apiTokenPath,
  createPeerApi,
  loadOrCreateApiToken,
  mountAccountApi,
  mountFileApi,
  WebAuth,
} from "./http/mod.ts";
import { mountWebPage } from "./web/mod.ts";
import { openTransfers, type Transfers } from "./files/mod.ts";
import type { FileTransfers, TransferInfo } from "./api.ts";
import {
  accountCommands,
  accountNotices,
  fileActivity,
  fileCommands,
  fileNotices,
  formatBytes,
  runTerminal,
  shouldUseColor,
  type TerminalOptions,
  webCommand,
} from "./tui/mod.ts";
import {
  DEFAULT_AUTO_ACCEPT_MB,
  DEFAULT_WEB_PORT,
  envName,
  HISTORY_DEFAULTS,
  type PeerConfig,
  readConfigFile,
  resolvePeerConfig,
  settingsFromEnv,
  type SettingValues,
} from "./config.ts";
import { createPeerNode, NODE_DEFAULTS } from "./node/mod.ts";
import { lateInbox, Messenger } from "./messaging/mod.ts";
import { lockProfile, openMessageStore } from "./store/mod.ts";

const HELP = `Usage: p2pchat peer [options]

Runs a chat peer: registers with a tracker, discovers and dials the other peers, and opens
a terminal chat (type /help there).

Options:
  --name NAME                  peer name (default $USER plus "-" and 4 hex characters chosen
                               once and kept, so the default profile stays the same)
  --namespace NS               namespace to register in (default "default")
  --host HOST                  address to listen on (default ${NODE_DEFAULTS.host})
  --port PORT                  TCP port for peers (default 0: any free port)
  --tracker HOST:PORT          tracker to use (default 127.0.0.1:${DEFAULT_TRACKER_PORT}, or the embedded one)
  --ttl SECONDS                registration lifetime, 1..86400 (default ${DEFAULT_TTL_SECONDS})
  --ping-interval SECONDS      keep-alive PING period (default ${PING_INTERVAL_MS / 1000})
  --discover-interval SECONDS  DISCOVER period (default ${NODE_DEFAULTS.discoverIntervalMs / 1000})
  --max-reconnect-attempts N   retries before a peer is marked failed (default ${NODE_DEFAULTS.maxReconnectAttempts})
  --data-dir DIR               the profile: identity key, remembered keys and login, API token,
                               message store (default ~/.local/share/p2pchat/peer-NAME)
  --require-encryption         refuse peers that cannot encrypt (plain pyp2p peers)
  --tracker-key FINGERPRINT    the tracker key to expect (default: remembered on first use)
  --http PORT                  serve the web chat and the local HTTP API on 127.0.0.1:PORT
                               (0: any free port); prints the link that opens the web chat
  --web                        the same on port ${DEFAULT_WEB_PORT} (or --http PORT)
  --embed-tracker [PORT]       also run a tracker, with accounts and rooms, in this process, on
                               the --host address (default port ${DEFAULT_TRACKER_PORT}; its data where
                               \`p2pchat tracker\` keeps it, or in DATA-DIR/embedded-tracker with
                               --data-dir)
  --recover-accounts           with --embed-tracker: start from the readable part of a damaged
                               accounts log, keeping the damaged file aside
  --config FILE                JSON file with any of these settings (keys as the flag names,
                               kebab-case or camelCase), e.g. {"name":"ann","tracker":"10.0.0.5:8080"}
  --log-level LEVEL            debug, info, warn or error (default info; warn in a terminal
                               unless --log-file is given)
  --log-format FORMAT          human or json (default human)
  --log-file PATH              append logs to PATH instead of standard error
  --notify bell|title|off      signal a direct message while the terminal window is in the
                               background: ring the bell (default), set the title, or nothing
  --no-history                 keep messages in memory only, the newest 64 MiB (default: DATA-DIR/messages.db)
  --keep-days N                delete messages older than N days (default ${HISTORY_DEFAULTS.keepDays}; 0 keeps them)
  --queue-days N               a message for a peer that stays offline fails after N days
                               (default ${HISTORY_DEFAULTS.queueDays})
  --downloads DIR              where received files are saved (default DATA-DIR/downloads)
  --auto-accept-mb N           files from contacts up to N MB are accepted without asking
                               (default ${DEFAULT_AUTO_ACCEPT_MB}; 0 always asks)
  --no-read-receipts           neither send nor ask for read receipts
  -h, --help                   show this help

Every setting can also come from an environment variable: ${envName("name")}, ${
  envName("namespace")
},
${envName("tracker")}, ${envName("port")}, ... (P2PCHAT_ and the flag name in upper snake case;
${envName("config")} names the config file). Flags win over variables, variables over the file.
`;

const FLAGS = {
  ...HELP_FLAG,
  ...LOG_FLAGS,
  name: { type: "string" },
  namespace: { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  tracker: { type: "string" },
  ttl: { type: "string" },
  "ping-interval": { type: "string" },
  "discover-interval": { type: "string" },
  "max-reconnect-attempts": { type: "string" },
  "data-dir": { type: "string" },
  http: { type: "string" },
  web: { type: "boolean" },
  "embed-tracker": { type: "string" },
  "require-encryption": { type: "boolean" },
  "no-history": { type: "boolean" },
  "no-read-receipts": { type: "boolean" },
  "recover-accounts": { type: "boolean" },
  downloads: { type: "string" },
  "auto-accept-mb": { type: "string" },
  "queue-days": { type: "string" },
  "keep-days": { type: "string" },
  "tracker-key": { type: "string" },
  config: { type: "string" },
  notify: { type: "string" },
} as const;

/** Reads the settings from flags, environment and config file (exported for tests). */
export async function loadPeerConfig(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<PeerConfig | "help"> {
  const { values } = parseFlags(_expandOptionalValue(args, "--embed-tracker"), FLAGS);
  if (values.help) return "help";
  const {
    help: _help,
    config,
    "require-encryption": requireEncryption,
    "no-history": noHistory,
    "no-read-receipts": noReadReceipts,
    "recover-accounts": recoverAccounts,
    web,
    ...rest
  } = values;
  // Switches given on the command line become "true", as a variable or the file would say.
  const flags: SettingValues = {
    ...rest,
    ...(requireEncryption ? { "require-encryption": "true" } : {}),
    ...(noHistory ? { "no-history": "true" } : {}),
    ...(noReadReceipts ? { "no-read-receipts": "true" } : {}),
    ...(recoverAccounts ? { "recover-accounts": "true" } : {}),
    ...(web ? { web: "true" } : {}),
  };
  const fileName = config ?? env[envName("config")];
  const file = fileName === undefined ? {} : await readConfigFile(fileName);
  return resolvePeerConfig(
    { flags, env: settingsFromEnv(env), file, fileName },
    {
      user: env.USER ?? env.USERNAME,
      dataDir: defaultDataDir(),
      randomSuffix: () => rememberedSuffix(defaultDataDir()),
    },
  );
}

/** Runs `p2pchat peer ARGS` until the user quits or a signal arrives; returns the exit code. */
export async function runPeerCommand(args: string[]): Promise<number> {
  const config = await loadPeerConfig(args, Deno.env.toObject());
  if (config === "help") {
    console.log(HELP);
    return 0;
  }
  // In a terminal the chat already shows events as notices, so logs default to warnings there.
  const quietTerminal = config.logFile === undefined && Deno.stdin.isTerminal();
  const log = createLogger({
    level: config.logLevel ?? (quietTerminal ? "warn" : undefined),
    format: config.logFormat,
    file: config.logFile,
  });

  // Before anything listens: a profile another peer runs on stops this start here.
  const profile = lockProfile(config.dataDir, log);
  const store = openMessageStore(
    {
      path: config.history ? `${config.dataDir}/messages.db` : ":memory:",
      retentionDays: config.keepDays,
    },
    { log, clock: systemClock, onProblem: (status) => messenger.storageChanged(status) },
  );
  let tracker: Tracker | undefined;
  let trackerAddress = config.tracker ?? { hostname: "127.0.0.1", port: DEFAULT_TRACKER_PORT };
  if (config.embedTracker !== undefined) {
    // Its data (and so its key, which peers remember) lasts across restarts.
    const dataDir = config.embeddedTrackerDir;
    const extension = createAccountsExtension(
      { mode: "optional", dataDir, recoverDamagedStore: config.recoverAccounts },
      { clock: systemClock, log },
    );
    tracker = createTracker({
      // Where the peer listens: --host 127.0.0.1 keeps both off the network.
      host: config.host,
      port: config.embedTracker,
      portFlag: "--embed-tracker",
      dataDir,
    }, {
      clock: systemClock,
      log,
      extension,
    });
    const address = await tracker.start();
    console.log(`Tracker listening on ${address.hostname}:${address.port}`);
    console.log(`Tracker key fingerprint: ${tracker.health().fingerprint}`);
    // Dialled where it listens (on every interface: through loopback).
    const hostname = address.hostname === "0.0.0.0"
      ? "127.0.0.1"
      : address.hostname === "::"
      ? "::1"
      : address.hostname;
    trackerAddress = config.tracker ?? { hostname, port: address.port };
  }

  const identity = await loadOrCreateIdentity(config.dataDir, log);
  const peerKeys = await KeyPins.open(`${config.dataDir}/known_peers.json`, log);
  const trackerKeys = await KeyPins.open(`${config.dataDir}/known_trackers.json`, log);
  // Every session connection is encrypted, to a tracker whose key we expect.
  const sessionStaticKey = generateStaticKeyPair();
  const connect = trackerConnector({
    address: trackerAddress,
    who: () => ({ identity, staticKeyPair: sessionStaticKey, localId: node.peerId }),
    pins: trackerKeys,
    expectedFingerprint: config.trackerKey,
    now: () => systemClock.now(),
    log,
  });
  // The login is remembered per profile; loaded first so that it resumes at once.
  // `address` is read at login only, once the node below exists and listens.
  const client = new SessionClient(
    {
      username: config.name,
      address: () => ({ peerId: node.peerId, port: node.status().listen.port }),
    },
    { connect, tokens: fileTokenStore(config.dataDir), clock: systemClock, log },
  );
  const remembered = await client.loadToken();
  // Settles once the remembered login resumed or failed; the first REGISTER waits for it.
  const resumed = Promise.withResolvers<void>();
  const directory = new KeyDirectory(client, connect, {
    clock: systemClock,
    log,
    // A tracker whose key we remember offered encrypted sessions, so it has accounts.
    offersAccounts: () =>
      trackerKeys.get(`${trackerAddress.hostname}:${trackerAddress.port}`) !== undefined,
  });
  client.subscribe((event) => {
    if (event.kind === "pushed" && event.event === "key_changed") {
      directory.learn(String(event.fields.username), event.fields.identity_key);
    }
  });
  const trust = new TrustPolicy(peerKeys, directory, systemClock, {
    requireEncryption: config.requireEncryption,
  });
  const node = createPeerNode(
    {
      ..._nodeOptions(config, trackerAddress),
      registrar: () => sessionRegistrar(client),
      registerAfter: remembered === undefined ? undefined : resumed.promise,
      identity: { key: identity, trust },
      inbox: lateInbox(() => messenger),
      readReceipts: config.readReceipts,
      // Lines that arrive before the transfers are loaded are dropped: the sender offers again.
      files: {
        line: (from, kind, fields) => transfers?.line(from, kind, fields),
        record: (from, body) => transfers?.record(from, body),
        drained: (peerId) => transfers?.drained(peerId),
      },
    },
    { log, clock: systemClock },
  );
  const accounts = new PeerAccounts(client, node, { clock: systemClock, log });
  const messenger = new Messenger(
    { queueMaxAgeMs: config.queueDays * 24 * 60 * 60_000, readReceipts: config.readReceipts },
    {
      node,
      chat: accounts.roomAwareNode(),
      store,
      clock: systemClock,
      log,
      roomMembers: (room) => accounts.roomMemberNames(room),
    },
  );
  messenger.start();
  const transfers: Transfers = await openTransfers({
    stateDir: `${config.dataDir}/transfers`,
    downloadsDir: config.downloads,
    autoAcceptBytes: config.autoAcceptMb * 1_000_000,
  }, {
    node,
    clock: systemClock,
    log,
    isContact: (peerId) => store.isContact(peerId),
    record: (transfer) => _recordTransfer(messenger, node.peerId, transfer),
  });
  // A deleted conversation takes its files on their way with it: nothing of it goes out after.
  messenger.subscribe((event) => {
    if (event.type === "conversation_forgotten") void transfers.cancelWith(event.conversation);
  });
  let server: Deno.HttpServer | undefined;
  /** What /status says about the HTTP API (the only place the port of `--http 0` shows). */
  const apiStatus: string[] = [];
  let newWebLink: (() => string) | undefined;
  const stopServer = new AbortController();
  const exit = exitSignals(log);
  try {
    // The API first: a port in use then stops the start before the node registers anywhere.
    if (config.http !== undefined) {
      const api = await _serveApi(messenger, accounts, transfers, config, log, stopServer.signal);
      server = api.server;
      apiStatus.push(`http api: ${api.url}`, `api token: ${apiTokenPath(config.dataDir)}`);
      newWebLink = api.newLink;
    }
    const listen = await node.start();
    console.log(`Peer ${node.peerId} listening on ${listen.hostname}:${listen.port}`);
    console.log(`Identity key fingerprint: ${identity.fingerprint}`);
    const ui = _untilQuitOrSignal(messenger, accounts, transfers, log, newWebLink, {
      status: () => apiStatus,
      notify: config.notify,
    }, exit.signalled);
    // After the UI attached, so that its outcome (or a refused token) is shown.
    if (remembered !== undefined) {
      client.resume()
        .catch((error) => log.debug("Resume failed", { error: String(error) }))
        .finally(() => resumed.resolve());
    }
    await ui;
  } finally {
    exit.dispose();
    // Not shutdown(): it waits for every response to end, and an event stream never does.
    stopServer.abort();
    await server?.finished;
    // The node first: its UNREGISTER goes through the session while we are logged in.
    await node.stop();
    await transfers.close();
    messenger.close();
    store.close();
    profile.release();
    directory.close();
    await client.stop();
    await tracker?.stop();
  }
  const failure = exit.failure();
  if (failure !== undefined) {
    console.error(`p2pchat: stopped after an unexpected error: ${failure}`);
  }
  return failure === undefined ? 0 : 1;
}

function _nodeOptions(config: PeerConfig, tracker: Address) {
  return {
    name: config.name,
    namespace: config.namespace,
    host: config.host,
    port: config.port,
    tracker,
    ttlSeconds: config.ttlSeconds,
    pingIntervalMs: config.pingIntervalSeconds * 1000,
    discoverIntervalMs: config.discoverIntervalSeconds * 1000,
    maxReconnectAttempts: config.maxReconnectAttempts,
  };
}

async function _serveApi(
  chat: PeerNode,
  accounts: PeerAccounts,
  files: FileTransfers,
  config: PeerConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<{ server: Deno.HttpServer; url: string; newLink(): string }> {
  const token = await loadOrCreateApiToken(config.dataDir, log);
  const web = new WebAuth(token);
  const app = createPeerApi(chat, {
    token,
    web,
    log: log.child("HttpApi"),
    extraEvents: {
      subscribe(listener) {
        const fromAccounts = accounts.subscribe(listener);
        const fromFiles = files.subscribe(listener);
        return () => {
          fromAccounts();
          fromFiles();
        };
      },
    },
  });
  mountAccountApi(app, accounts);
  mountFileApi(app, files, { dataDir: config.dataDir, namespace: config.namespace });
  mountWebPage(app, web);
  const { server, address } = await serveHttp(
    { hostname: "127.0.0.1", port: config.http!, signal },
    app.fetch,
    { what: "the web chat and HTTP API", flag: "--http" },
  );
  const url = `http://127.0.0.1:${address.port}`;
  console.log(`HTTP API on ${url} (token in ${apiTokenPath(config.dataDir)})`);
  console.log(`Web chat: open ${web.newLink(address.port)}`);
  return { server, url, newLink: () => web.newLink(address.port) };
}

// A transfer is a line in its conversation, kept with the other messages.
function _recordTransfer(messenger: Messenger, self: string, transfer: TransferInfo): void {
  const message = {
    msgId: `${TRANSFER_LINE_PREFIX}${transfer.id}`,
    kind: "direct" as const,
    conversation: transfer.peer,
    text: `[file] ${transfer.name} (${formatBytes(transfer.size)}, ${transfer.type}; /transfers)`,
    at: transfer.createdAt,
    encrypted: true,
  };
  if (transfer.direction === "out") {
    messenger.record({ outgoing: { ...message, from: self, state: "sent" } });
  } else {
    messenger.record({ incoming: { ...message, from: transfer.peer } });
  }
}

// The terminal UI returns when the user quits; SIGINT/SIGTERM/SIGHUP end the run the same way.
async function _untilQuitOrSignal(
  chat: PeerNode,
  accounts: PeerAccounts,
  files: FileTransfers,
  log: Logger,
  newWebLink: (() => string) | undefined,
  terminal: Pick<TerminalOptions, "status" | "notify">,
  signalled: Promise<void>,
): Promise<void> {
  await Promise.race([
    runTerminal(chat, {
      log,
      color: shouldUseColor(),
      commands: [
        ...accountCommands(accounts),
        ...fileCommands(files, {
          online: async (room) => (await accounts.roomTargets(room)).map((t) => t.peerId),
          members: (room) => accounts.roomMemberNames(room),
        }),
        webCommand(newWebLink),
      ],
      attach: (context) => {
        const detachAccounts = accountNotices(accounts)(context);
        const detachFiles = fileNotices(files)(context);
        return () => {
          detachAccounts();
          detachFiles();
        };
      },
      rooms: () => accounts.knownRooms(),
      activity: fileActivity(files),
      ...terminal,
    }),
    signalled,
  ]);
}

// `--embed-tracker` takes an optional port, which parseArgs cannot express: give a bare flag
// an empty value ("the default port").
function _expandOptionalValue(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (args[i] !== flag) {
      out.push(args[i]);
      continue;
    }
    const next = args[i + 1];
    if (next !== undefined && /^\d+$/.test(next)) {
      out.push(`${flag}=${next}`);
      i++;
    } else {
      out.push(`${flag}=`);
    }
  }
  return out;
}
