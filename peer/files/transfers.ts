/**
 * File transfers over the peers' encrypted connections (docs/peer-protocol.md, "Files"): the
 * offer, the receiver's decision, chunks under a window the receiver acknowledges, resume from
 * the bytes the receiver has, and SHA-256 end to end before a file gets its final name. What a
 * transfer is lives in `DATA-DIR/transfers/ID.json` (written at each change of state), a file
 * being received in `ID.part` beside it: either side can restart and go on.
 */
import { createHash, type Hash } from "node:crypto";
import { describeError, P2pError } from "../../lib/errors.ts";
import type { Clock } from "../../lib/clock.ts";
import { Listeners } from "../../lib/listeners.ts";
import type { Logger } from "../../lib/log.ts";
import { writeFileDurably } from "../../lib/persist.ts";
import type {
  FileTransfers,
  NodeEvent,
  TransferEvent,
  TransferInfo,
  TransferState,
} from "../api.ts";
import type { FileChannel } from "../node/mod.ts";
import { safeFileName, uniqueName } from "./names.ts";
import { SNIFF_BYTES, sniffType } from "./sniff.ts";
import {
  CHUNK_BYTES,
  fileLine,
  type FileMessage,
  fileRecord,
  MAX_CHUNK_BYTES,
  newTransferId,
  readFileMessage,
  readFileRecord,
  RECORD_DATA_BYTES,
} from "./wire.ts";

/** Bytes sent ahead of the receiver's acknowledgement. */
export const WINDOW_BYTES = 1024 * 1024;
/** The receiver acknowledges at least every this many bytes. */
export const ACK_EVERY_BYTES = 256 * 1024;
/** Chunks wait while this much is queued toward the peer, so chat lines never wait long. */
export const QUEUE_LOW_BYTES = 128 * 1024;
/** Undecided offers kept from one peer, and in all: more are declined (`too_many_offers`). */
export const MAX_OFFERS_PER_PEER = 16;
export const MAX_OFFERS = 64;
/** Transfers under way (offered, sending, receiving) in all. */
export const MAX_ACTIVE = 256;
/** Progress events per transfer at most this often. */
const PROGRESS_EVERY_MS = 250;
/**
 * "Resuming" (a state event of the same state) per transfer at most this often: a peer that
 * repeats its offer or its accept would otherwise print a line each time.
 */
const RESUMED_EVERY_MS = 5_000;
const RATE_WINDOW_MS = 3_000;
const SAMPLE_EVERY_MS = 100;
const READ_BYTES = 1024 * 1024;
/** The sender reads this much at a time and cuts chunks from it (one read op, not 47). */
const READ_AHEAD_BYTES = 1024 * 1024;

/** What the files layer needs from the node. */
export interface FileNode {
  readonly peerId: string;
  fileChannel(peerId: string): FileChannel | "not_connected" | "no_files";
  subscribe(listener: (event: NodeEvent) => void): () => void;
}

/** Where files go and what is accepted without asking. */
export interface TransferOptions {
  /** `DATA-DIR/transfers`: states and partial files. */
  stateDir: string;
  /** Where received files are saved. */
  downloadsDir: string;
  /** Offers from contacts up to this size are accepted at once (0: always ask). */
  autoAcceptBytes: number;
}

export interface TransferDeps {
  node: FileNode;
  clock: Clock;
  log: Logger;
  isContact(peerId: string): boolean;
  /** Puts the transfer in its conversation (the message store). */
  record?(transfer: TransferInfo): void;
  /** Opens a partial file to append to (tests give one whose disk fills up). */
  openPart?(path: string): Promise<Deno.FsFile>;
}

interface _Saved extends TransferInfo {
  version: 1;
  /** Sending: the file, its size and change time when offered, and whether it is ours. */
  source?: { path: string; size: number; mtime: number; temporary?: boolean };
}

interface _Live {
  info: _Saved;
  /** Sending: the next offset to send; receiving: bytes in the part file. */
  next: number;
  /** Sending: what the receiver acknowledged. */
  acked: number;
  /** Receiving: bytes not written yet (written, then acknowledged, every ACK_EVERY_BYTES). */
  unwritten?: Uint8Array;
  unwrittenBytes: number;
  /** Sending: the bytes read ahead, from `start`, and where the file's position is. */
  block?: { bytes: Uint8Array; start: number; length: number };
  position: number;
  file?: Deno.FsFile;
  hash?: Hash;
  /** Chunks are written one after another. */
  chain: Promise<void>;
  pumping: boolean;
  pumpAgain: boolean;
  samples: { at: number; bytes: number }[];
  progressAt: number;
  resumedAt: number;
}

const _ACTIVE: ReadonlySet<TransferState> = new Set(["offered", "sending", "receiving"]);

/** Opens the transfers kept in `options.stateDir` and starts listening to the node. */
export async function openTransfers(
  options: TransferOptions,
  deps: TransferDeps,
): Promise<Transfers> {
  const transfers = new Transfers(options, deps);
  try {
    await Deno.mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    for await (const entry of Deno.readDir(options.stateDir)) {
      if (!entry.isFile || !/^[0-9a-f]{32}\.json$/.test(entry.name)) continue;
      await transfers.load(`${options.stateDir}/${entry.name}`);
    }
  } catch (error) {
    // The chat goes on: sending still works (without resume); a file to us fails to be written.
    deps.log.error(
      `Cannot use "${options.stateDir}" for file transfers (${describeError(error)}): ` +
        "transfers will not resume after a restart and files cannot be received",
      { dir: options.stateDir },
    );
  }
  return transfers;
}

/** The node's file transfers, both ways. */
export class Transfers implements FileTransfers {
  readonly #options: TransferOptions;
  readonly #deps: TransferDeps;
  readonly #log: Logger;
  readonly #live = new Map<string, _Live>();
  /** State files being written: `close()` waits for them (a decline saves in the background). */
  readonly #saving = new Set<Promise<void>>();
  readonly #listeners: Listeners<TransferEvent>;
  #unsubscribe = () => {};

  constructor(options: TransferOptions, deps: TransferDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#log = deps.log.child("Files");
    this.#listeners = new Listeners(this.#log, "Transfer listener");
    this.#unsubscribe = deps.node.subscribe((event) => {
      if (event.type === "peer" && event.state === "connected") this.#reconnected(event.peerId);
    });
  }

  /** Reads one saved transfer; a damaged state file is left alone and logged, never guessed. */
  async load(path: string): Promise<void> {
    try {
      const info = JSON.parse(await Deno.readTextFile(path)) as _Saved;
      if (info.version !== 1 || !/^[0-9a-f]{32}$/.test(info.id)) throw new Error("unknown format");
      const live = this.#newLive(info);
      this.#live.set(info.id, live);
      if (info.direction === "in" && info.state === "receiving") await this.#openPart(live);
    } catch (error) {
      this.#log.error(`Cannot read the transfer state "${path}" (${describeError(error)})`);
    }
  }

  list(): TransferInfo[] {
    return [...this.#live.values()].map((live) => this.#view(live))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  get(id: string): TransferInfo | undefined {
    const live = this.#live.get(id);
    return live && this.#view(live);
  }

  localPath(id: string): string | undefined {
    const info = this.#live.get(id)?.info;
    if (!info) return undefined;
    return info.direction === "in" ? info.savedAs : info.source?.path;
  }

  subscribe(listener: (event: TransferEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  async send(
    peerId: string,
    path: string,
    options: { name?: string; temporary?: boolean; later?: boolean } = {},
  ): Promise<TransferInfo> {
    const channel = this.#channel(peerId, options.later ?? false);
    if (this.#activeCount() >= MAX_ACTIVE) {
      throw new P2pError("too_many_transfers", `${MAX_ACTIVE} transfers are under way already`);
    }
    const { size, mtime, sha256, type } = await _describeFile(path);
    const info: _Saved = {
      version: 1,
      id: newTransferId(),
      direction: "out",
      peer: peerId,
      name: options.name ?? path.split(/[\\/]/).pop() ?? "file",
      size,
      sha256,
      type,
      state: "offered",
      bytes: 0,
      createdAt: this.#deps.clock.now(),
      source: { path, size, mtime, temporary: options.temporary },
    };
    const live = this.#newLive(info);
    this.#live.set(info.id, live);
    await this.#save(live);
    this.#deps.record?.(this.#view(live));
    this.#emit("transfer_state", live);
    // Not connected (`later`): offered when it connects, by #reconnected.
    channel?.send(fileLine({
      kind: "FILE_OFFER",
      id: info.id,
      name: info.name,
      size,
      sha256,
    }));
    return this.#view(live);
  }

  async accept(id: string): Promise<TransferInfo> {
    const live = this.#expect(id, "in", ["offered"]);
    const info = live.info;
    if (!await this.#openPart(live)) return this.#view(live);
    await this.#setState(live, "receiving");
    this.#sendTo(info.peer, { kind: "FILE_ACCEPT", id, offset: live.next });
    if (live.next === info.size) await this.#finishReceiving(live);
    return this.#view(live);
  }

  decline(id: string): TransferInfo {
    const live = this.#expect(id, "in", ["offered"]);
    this.#sendTo(live.info.peer, { kind: "FILE_DECLINE", id, reason: "declined" });
    void this.#setState(live, "declined", "declined");
    return this.#view(live);
  }

  async cancel(id: string): Promise<TransferInfo> {
    const live = this.#live.get(id);
    if (!live) throw new P2pError("not_found", `No transfer ${id}`);
    if (!_ACTIVE.has(live.info.state)) {
      throw new P2pError("bad_state", `Transfer ${id} is ${live.info.state} already`);
    }
    this.#sendTo(live.info.peer, { kind: "FILE_CANCEL", id, reason: "cancelled" });
    await this.#end(live, "cancelled", "cancelled");
    return this.#view(live);
  }

  /** Cancels every transfer with `peerId` still on its way (its conversation was deleted). */
  async cancelWith(peerId: string): Promise<number> {
    const active = [...this.#live.values()].filter((live) =>
      live.info.peer === peerId && _ACTIVE.has(live.info.state)
    );
    for (const live of active) await this.cancel(live.info.id);
    return active.length;
  }

  /** A FILE_* line from `from`; anything that does not fit is ignored or ends the transfer. */
  line(from: string, kind: string, fields: Record<string, unknown>): void {
    const message = readFileMessage(kind, fields);
    if (!message) {
      this.#log.debug("Ignored a bad file line", { peer: from, kind });
      return;
    }
    this.#received(from, message);
  }

  /** A file data record from `from`: a FILE_CHUNK in binary; read as strictly. */
  record(from: string, body: Uint8Array): void {
    const message = readFileRecord(body);
    if (!message) {
      this.#log.debug("Ignored a bad file record", { peer: from, bytes: body.length });
      return;
    }
    this.#received(from, message);
  }

  #received(from: string, message: FileMessage): void {
    const live = this.#live.get(message.id);
    if (message.kind === "FILE_OFFER") {
      this.#offered(from, message, live).catch((error) =>
        this.#log.error("Taking an offer failed", { peer: from, error: describeError(error) })
      );
      return;
    }
    // Only the peer of a transfer speaks for it.
    if (!live || live.info.peer !== from) return;
    const chain = live.chain.then(() => this.#handle(live, message)).catch((error) =>
      this.#log.error("Transfer step failed", { id: live.info.id, error: String(error) })
    );
    live.chain = chain;
  }

  /** The connection to `peerId` has room again. */
  drained(peerId: string): void {
    for (const live of this.#live.values()) {
      if (live.info.peer === peerId && live.info.state === "sending") void this.#pump(live);
    }
  }

  /** Closes open files; transfers go on after the next start. */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const live of this.#live.values()) {
      await live.chain;
      _closeQuietly(live.file);
      live.file = undefined;
    }
    await Promise.all(this.#saving);
  }

  async #handle(live: _Live, message: Exclude<FileMessage, { kind: "FILE_OFFER" }>) {
    const info = live.info;
    switch (message.kind) {
      case "FILE_ACCEPT":
        if (info.direction !== "out" || !["offered", "sending"].includes(info.state)) return;
        return await this.#startSending(live, message.offset);
      case "FILE_ACK":
        if (info.direction !== "out" || info.state !== "sending") return;
        live.acked = Math.max(live.acked, Math.min(message.offset, live.next));
        info.bytes = live.acked;
        this.#progress(live);
        return await this.#pump(live);
      case "FILE_DONE":
        if (info.direction !== "out" || info.state !== "sending") return;
        if (message.ok && live.acked === info.size) return await this.#end(live, "done");
        return await this.#end(live, "failed", message.ok ? "incomplete" : message.reason);
      case "FILE_DECLINE":
        if (info.direction !== "out" || info.state !== "offered") return;
        return await this.#end(live, "declined", message.reason);
      case "FILE_CANCEL":
        if (!_ACTIVE.has(info.state)) return;
        return await this.#end(live, "cancelled", message.reason);
      case "FILE_CHUNK":
        if (info.direction !== "in" || info.state !== "receiving") return;
        return await this.#chunk(live, message.offset, message.data);
    }
  }

  // A new offer, or one we know again (the sender restarted or reconnected).
  async #offered(from: string, offer: Extract<FileMessage, { kind: "FILE_OFFER" }>, known?: _Live) {
    if (known) {
      if (known.info.peer !== from || known.info.direction !== "in") return;
      return this.#answerAgain(known);
    }
    const pending = [...this.#live.values()].filter((live) =>
      live.info.direction === "in" && live.info.state === "offered"
    );
    if (
      pending.length >= MAX_OFFERS ||
      pending.filter((live) => live.info.peer === from).length >= MAX_OFFERS_PER_PEER ||
      this.#activeCount() >= MAX_ACTIVE
    ) {
      this.#sendTo(from, { kind: "FILE_DECLINE", id: offer.id, reason: "too_many_offers" });
      return;
    }
    const info: _Saved = {
      version: 1,
      id: offer.id,
      direction: "in",
      peer: from,
      name: offer.name,
      size: offer.size,
      sha256: offer.sha256,
      type: "application/octet-stream",
      state: "offered",
      bytes: 0,
      createdAt: this.#deps.clock.now(),
    };
    const live = this.#newLive(info);
    this.#live.set(info.id, live);
    await this.#save(live);
    this.#deps.record?.(this.#view(live));
    const { autoAcceptBytes } = this.#options;
    // Accepted without asking: the user hears "receiving", not a question already answered.
    if (autoAcceptBytes > 0 && offer.size <= autoAcceptBytes && this.#deps.isContact(from)) {
      await this.accept(info.id);
    } else {
      this.#emit("transfer_offer", live);
    }
  }

  #answerAgain(live: _Live): void {
    const { id, peer, state } = live.info;
    if (state === "receiving") {
      this.#sendTo(peer, { kind: "FILE_ACCEPT", id, offset: live.next });
      if (live.next > 0) this.#resumed(live);
    } else if (state === "done") {
      this.#sendTo(peer, { kind: "FILE_DONE", id, ok: true, reason: "" });
    } else if (state === "declined") {
      this.#sendTo(peer, { kind: "FILE_DECLINE", id, reason: "declined" });
    } else if (state !== "offered") {
      this.#sendTo(peer, { kind: "FILE_CANCEL", id, reason: live.info.reason ?? "cancelled" });
    }
  }

  async #startSending(live: _Live, offset: number): Promise<void> {
    const info = live.info;
    if (offset > info.size) return await this.#abort(live, "bad_offset");
    if (!live.file) {
      try {
        const now = await Deno.stat(info.source!.path);
        if (now.size !== info.source!.size || (now.mtime?.getTime() ?? 0) !== info.source!.mtime) {
          return await this.#abort(live, "source_changed");
        }
        live.file = await Deno.open(info.source!.path, { read: true });
      } catch {
        return await this.#abort(live, "source_gone");
      }
    }
    live.next = offset;
    live.acked = offset;
    info.bytes = offset;
    live.block = undefined;
    await live.file.seek(offset, Deno.SeekMode.Start);
    live.position = offset;
    if (info.state !== "sending") await this.#setState(live, "sending");
    else if (offset > 0) this.#resumed(live);
    await this.#pump(live);
  }

  // Sends chunks while the window and the connection's queue allow; asks to be woken after.
  async #pump(live: _Live): Promise<void> {
    // One pump at a time; a wake-up while it runs makes it go round once more.
    if (live.pumping) {
      live.pumpAgain = true;
      return;
    }
    live.pumping = true;
    live.pumpAgain = false;
    try {
      const info = live.info;
      while (info.state === "sending" && live.next < info.size && live.file) {
        if (live.next - live.acked >= WINDOW_BYTES) return;
        const channel = this.#deps.node.fileChannel(info.peer);
        if (typeof channel === "string") return; // the peer comes back: it is offered again
        if (channel.queuedBytes() >= QUEUE_LOW_BYTES) return channel.wantDrain(QUEUE_LOW_BYTES);
        const block = await this.#readAhead(live);
        if (!block) return await this.#abort(live, "source_changed");
        const from = live.next - block.start;
        const size = channel.records ? RECORD_DATA_BYTES : CHUNK_BYTES;
        const data = block.bytes.subarray(from, Math.min(block.length, from + size));
        // Both forms copy `data` at once: a view of the block is enough.
        const sent = channel.records
          ? channel.sendRecord(fileRecord(info.id, live.next, data))
          : channel.send(fileLine({ kind: "FILE_CHUNK", id: info.id, offset: live.next, data }));
        if (!sent) return;
        live.next += data.length;
      }
    } finally {
      live.pumping = false;
    }
    if (live.pumpAgain) await this.#pump(live);
  }

  // The block of the file that holds `live.next`, read when it is not in memory; undefined
  // when the file ended early (it changed).
  async #readAhead(live: _Live) {
    const block = live.block;
    if (block && live.next >= block.start && live.next < block.start + block.length) return block;
    if (live.position !== live.next) await live.file!.seek(live.next, Deno.SeekMode.Start);
    const bytes = block?.bytes ?? new Uint8Array(READ_AHEAD_BYTES);
    const want = Math.min(bytes.length, live.info.size - live.next);
    const read = await _readFull(live.file!, bytes.subarray(0, want));
    live.position = live.next + read;
    if (read < want) return undefined;
    live.block = { bytes, start: live.next, length: read };
    return live.block;
  }

  async #chunk(live: _Live, offset: number, data: Uint8Array): Promise<void> {
    const info = live.info;
    if (offset < live.next) return; // sent again after a reconnect: we have it
    if (offset > live.next) return await this.#abort(live, "out_of_order");
    if (offset + data.length > info.size) return await this.#abort(live, "past_end");
    if (offset === 0) info.type = sniffType(data.subarray(0, SNIFF_BYTES));
    live.hash!.update(data);
    // One buffer per transfer, reused: a block of garbage per write would grow the heap.
    live.unwritten ??= new Uint8Array(ACK_EVERY_BYTES + MAX_CHUNK_BYTES);
    live.unwritten.set(data, live.unwrittenBytes);
    live.unwrittenBytes += data.length;
    live.next += data.length;
    info.bytes = live.next;
    // Written in blocks, and acknowledged only once on disk: a restart resumes from there.
    if (live.unwrittenBytes >= ACK_EVERY_BYTES || live.next === info.size) {
      const bytes = live.unwritten.subarray(0, live.unwrittenBytes);
      live.unwrittenBytes = 0;
      try {
        let written = 0;
        while (written < bytes.length) written += await live.file!.write(bytes.subarray(written));
      } catch (error) {
        // The partial file is removed: a full disk must not fill up further on retries.
        this.#sendTo(info.peer, { kind: "FILE_CANCEL", id: info.id, reason: "disk_full" });
        return await this.#fail(live, "disk_full", describeError(error));
      }
      this.#sendTo(info.peer, { kind: "FILE_ACK", id: info.id, offset: live.next });
    }
    this.#progress(live);
    if (live.next === info.size) await this.#finishReceiving(live);
  }

  // Every byte is there: the file gets its final name only if its SHA-256 is the one offered.
  async #finishReceiving(live: _Live): Promise<void> {
    const info = live.info;
    _closeQuietly(live.file);
    live.file = undefined;
    const digest = live.hash!.digest("hex");
    if (digest !== info.sha256) {
      await Deno.remove(this.#partPath(info.id)).catch(() => {});
      this.#sendTo(info.peer, {
        kind: "FILE_DONE",
        id: info.id,
        ok: false,
        reason: "hash_mismatch",
      });
      return await this.#end(live, "failed", "hash_mismatch");
    }
    try {
      await Deno.mkdir(this.#options.downloadsDir, { recursive: true, mode: 0o700 });
      const name = uniqueName(
        safeFileName(info.name),
        (candidate) => _exists(`${this.#options.downloadsDir}/${candidate}`),
      );
      const target = `${this.#options.downloadsDir}/${name}`;
      await _moveNoClobber(this.#partPath(info.id), target);
      info.savedAs = target;
    } catch (error) {
      this.#sendTo(info.peer, { kind: "FILE_CANCEL", id: info.id, reason: "write_failed" });
      return await this.#fail(live, "write_failed", describeError(error));
    }
    this.#sendTo(info.peer, { kind: "FILE_DONE", id: info.id, ok: true, reason: "" });
    await this.#end(live, "done");
  }

  // The other side broke the protocol or the file changed: tell it, and end here.
  async #abort(live: _Live, reason: string): Promise<void> {
    this.#sendTo(live.info.peer, { kind: "FILE_CANCEL", id: live.info.id, reason });
    await this.#end(live, "failed", reason);
  }

  async #fail(live: _Live, reason: string, detail: string): Promise<void> {
    this.#log.warn("A file transfer failed", { id: live.info.id, reason, detail });
    await this.#end(live, "failed", reason);
  }

  async #end(live: _Live, state: TransferState, reason?: string): Promise<void> {
    _closeQuietly(live.file);
    live.file = undefined;
    if (live.info.direction === "in" && state !== "done") {
      await Deno.remove(this.#partPath(live.info.id)).catch(() => {});
    }
    // An upload through the API was copied for this transfer alone.
    if (live.info.source?.temporary && !_ACTIVE.has(state)) {
      await Deno.remove(live.info.source.path).catch(() => {});
    }
    await this.#setState(live, state, reason);
  }

  async #setState(live: _Live, state: TransferState, reason?: string): Promise<void> {
    live.info.state = state;
    if (reason !== undefined && state !== "done") live.info.reason = reason;
    await this.#save(live);
    this.#emit("transfer_state", live);
  }

  // A peer is back: our unfinished offers go again (its answer says where to resume).
  #reconnected(peerId: string): void {
    for (const live of this.#live.values()) {
      const { info } = live;
      if (info.peer !== peerId || info.direction !== "out") continue;
      if (info.state !== "offered" && info.state !== "sending") continue;
      // An offer that waited for a peer which turns out to take no files ends here.
      if (this.#deps.node.fileChannel(peerId) === "no_files") {
        void this.#end(live, "failed", "no_files");
        continue;
      }
      const { id, name, size, sha256 } = info;
      this.#sendTo(peerId, { kind: "FILE_OFFER", id, name, size, sha256 });
    }
  }

  // The rate is sampled at most every SAMPLE_EVERY_MS (a chunk each would be thousands a
  // second to keep and drop), over the last RATE_WINDOW_MS.
  #progress(live: _Live): void {
    const now = this.#deps.clock.now();
    if (now - (live.samples.at(-1)?.at ?? -Infinity) >= SAMPLE_EVERY_MS) {
      live.samples.push({ at: now, bytes: live.info.bytes });
      while (live.samples.length > 2 && now - live.samples[0].at > RATE_WINDOW_MS) {
        live.samples.shift();
      }
    }
    if (now - live.progressAt < PROGRESS_EVERY_MS) return;
    live.progressAt = now;
    this.#emit("transfer_progress", live);
  }

  // The same state again: interfaces tell "resuming" from the bytes already there.
  #resumed(live: _Live): void {
    const now = this.#deps.clock.now();
    if (now - live.resumedAt < RESUMED_EVERY_MS) return;
    live.resumedAt = now;
    this.#emit("transfer_state", live);
  }

  #emit(type: TransferEvent["type"], live: _Live): void {
    this.#listeners.emit({ type, transfer: this.#view(live), at: this.#deps.clock.now() });
  }

  #view(live: _Live): TransferInfo {
    const { version: _version, source: _source, ...info } = live.info;
    const [first, last] = [live.samples[0], live.samples.at(-1)];
    const moving = info.state === "sending" || info.state === "receiving";
    if (moving && first && last && last.at > first.at) {
      return {
        ...info,
        rate: Math.round((last.bytes - first.bytes) / ((last.at - first.at) / 1000)),
      };
    }
    return { ...info };
  }

  // The connection to offer on; none when `later` and the peer is not connected now.
  #channel(peerId: string, later: boolean): FileChannel | undefined {
    const channel = this.#deps.node.fileChannel(peerId);
    if (channel === "no_files") {
      throw new P2pError(
        "no_files",
        `${peerId} cannot take files: it is a plain pyp2p peer, or its connection is not encrypted`,
      );
    }
    if (channel === "not_connected") {
      if (later) return undefined;
      throw new P2pError("not_connected", `${peerId} is not connected: files go to peers online`);
    }
    return channel;
  }

  #sendTo(peerId: string, message: FileMessage): void {
    const channel = this.#deps.node.fileChannel(peerId);
    if (typeof channel !== "string") channel.send(fileLine(message));
  }

  #expect(id: string, direction: "in" | "out", states: TransferState[]): _Live {
    const live = this.#live.get(id);
    if (!live || live.info.direction !== direction) {
      throw new P2pError(
        "not_found",
        `No ${direction === "in" ? "incoming" : "outgoing"} transfer ${id}`,
      );
    }
    if (!states.includes(live.info.state)) {
      throw new P2pError("bad_state", `Transfer ${id} is ${live.info.state}`);
    }
    return live;
  }

  #activeCount(): number {
    let count = 0;
    for (const live of this.#live.values()) if (_ACTIVE.has(live.info.state)) count++;
    return count;
  }

  #newLive(info: _Saved): _Live {
    return {
      info,
      next: 0,
      acked: 0,
      unwrittenBytes: 0,
      position: 0,
      chain: Promise.resolve(),
      pumping: false,
      pumpAgain: false,
      samples: [],
      progressAt: 0,
      resumedAt: -Infinity,
    };
  }

  async #save(live: _Live): Promise<void> {
    const path = `${this.#options.stateDir}/${live.info.id}.json`;
    const saving = writeFileDurably(
      path,
      new TextEncoder().encode(JSON.stringify(live.info) + "\n"),
    ).catch((error) => {
      this.#log.error("Cannot save a transfer's state; it will not resume after a restart", {
        id: live.info.id,
        error: describeError(error),
      });
    });
    this.#saving.add(saving);
    try {
      await saving;
    } finally {
      this.#saving.delete(saving);
    }
  }

  #partPath(id: string): string {
    return `${this.#options.stateDir}/${id}.part`;
  }

  // Opens the partial file to append to, with the hash of what it holds (after a restart, the
  // bytes a crash kept); false when it cannot be written.
  async #openPart(live: _Live): Promise<boolean> {
    const { id, size } = live.info;
    const path = this.#partPath(id);
    try {
      live.next = await this.#partSize(id);
      if (live.next > size) {
        await Deno.truncate(path, 0);
        live.next = 0;
      }
      live.file = await (this.#deps.openPart ?? _openPart)(path);
      live.hash = await _hashOf(path, live.next);
    } catch (error) {
      await this.#fail(live, "write_failed", `cannot write ${path}: ${describeError(error)}`);
      return false;
    }
    live.info.bytes = live.next;
    return true;
  }

  async #partSize(id: string): Promise<number> {
    try {
      return (await Deno.stat(this.#partPath(id))).size;
    } catch {
      return 0;
    }
  }
}

/** Size, change time, SHA-256 and sniffed type of a file to send, read once through. */
async function _describeFile(path: string) {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new P2pError("file_unreadable", `Cannot read "${path}": ${describeError(error)}`);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile) throw new P2pError("file_unreadable", `"${path}" is not a file`);
    const hash = createHash("sha256");
    const buffer = new Uint8Array(READ_BYTES);
    let head: Uint8Array | undefined;
    let total = 0;
    for (;;) {
      const read = await file.read(buffer);
      if (read === null) break;
      head ??= buffer.slice(0, Math.min(read, SNIFF_BYTES));
      hash.update(buffer.subarray(0, read));
      total += read;
    }
    if (total !== stat.size) {
      throw new P2pError("file_unreadable", `"${path}" changed while it was read`);
    }
    return {
      size: total,
      mtime: stat.mtime?.getTime() ?? 0,
      sha256: hash.digest("hex"),
      type: sniffType(head ?? new Uint8Array()),
    };
  } finally {
    file.close();
  }
}

// The hash of the first `length` bytes of a partial file, to go on after a restart.
async function _hashOf(path: string, length: number): Promise<Hash> {
  const hash = createHash("sha256");
  if (length === 0) return hash;
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(READ_BYTES);
  let left = length;
  while (left > 0) {
    const read = await file.read(buffer.subarray(0, Math.min(left, buffer.length)));
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
    left -= read;
  }
  return hash;
}

function _openPart(path: string): Promise<Deno.FsFile> {
  return Deno.open(path, { create: true, append: true, mode: 0o600 });
}

async function _readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let total = 0;
  while (total < buffer.length) {
    const read = await file.read(buffer.subarray(total));
    if (read === null) break;
    total += read;
  }
  return total;
}

// A link (not a rename) never replaces an existing file; then the part name is removed.
async function _moveNoClobber(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
    await Deno.remove(from);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw error;
    // Another file system (or no hard links): copy without replacing, then remove.
    await Deno.copyFile(from, to + ".partial-copy");
    await Deno.link(to + ".partial-copy", to);
    await Deno.remove(to + ".partial-copy");
    await Deno.remove(from);
  }
}

function _exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function _closeQuietly(file: Deno.FsFile | undefined): void {
  try {
    file?.close();
  } catch {
    // Closed already.
  }
}
