/**
 * One download: peers from the tracker, the picker deciding who is asked for what, pieces
 * assembled in memory, checked by SHA-1 and written at their offsets in a part file beside
 * the destination; at the end the whole-file SHA-1 is checked and only then does the file
 * get its final name. The torrent is served to others from its first verified piece on.
 *
 * The main thread keeps the sockets and the picker and checks each complete piece's SHA-1;
 * a worker (piece_writer_worker.ts) writes the good pieces, keeps the whole-file SHA-1
 * running in file order and flushes to disk as the download goes, so the end of a download
 * has little left to do. At most MAX_STARTED_PIECES pieces are in memory at once.
 *
 * @module
 */

import { Bitfield } from "../lib/bitfield.ts";
import { errorMessage, UserError } from "../lib/errors.ts";
import { pieceHash, type TorrentInfo } from "../lib/metainfo.ts";
import { PIECE_LENGTH, pieceCount, pieceSize } from "../lib/pieces.ts";
import { type PeerEndpoint, Refusal } from "../lib/protocol.ts";
import { TICKET_LIFETIME_MS, ticketLifetimeMs } from "../lib/ticket.ts";
import { IdentityError } from "../lib/transport.ts";
import { connectPeer, type PeerContext } from "./connection.ts";
import { Picker } from "./picker.ts";
import { PieceSlots } from "./piece_slots.ts";
import {
  exists,
  isIntactPiece,
  partPathFor,
  PieceFile,
  promotePartFile,
  verifiedPieces,
} from "./storage.ts";
import type { WriterReply, WriterRequest } from "./piece_writer_worker.ts";
import type { HeldTorrent, PeerHandle, PieceSink, TorrentRegistry } from "./torrents.ts";

/** What a download needs from the tracker. */
export interface DownloadTracker {
  findPeers(group: string, infoHash: string): Promise<{ peers: PeerEndpoint[]; ticket: string }>;
  /** Says it is downloading (answered with holders to try) or stopped (answered with none). */
  announce(
    group: string,
    infoHash: string,
    state: "downloading" | "stopped",
  ): Promise<PeerEndpoint[]>;
  /** Records the finished file as shared by this user, so it is served and remembered. */
  shareCompleted(download: Download, mtimeMs: number): Promise<void>;
}

/** D: downloading (also while waiting or paused), C: complete, F: failed. */
export type DownloadState = "D" | "C" | "F";

/**
 * What a download is doing, finer than its state: getting pieces, waiting for a peer that
 * has what it misses, paused (stopped until resumed, its verified pieces kept), or over.
 */
export type DownloadActivity = "downloading" | "waiting" | "paused" | "complete" | "failed";

/** What one peer gave this download. */
export interface PeerContribution {
  peer: string;
  bytes: number;
  pieces: number;
}

/** How a download starts. */
export interface DownloadOptions {
  group: string;
  name: string;
  /** Final path: `<destination>/<name>`. */
  path: string;
  info: TorrentInfo;
  infoHash: Uint8Array;
  /** Whole-file SHA-1 (hex) the tracker recorded. */
  sha1: string;
  ticket: string;
  peers: PeerEndpoint[];
  tracker: DownloadTracker;
  registry: TorrentRegistry;
  context: PeerContext;
  /**
   * Fail when no piece arrives for this long while some piece has no holder. Default: never;
   * the download waits for a holder, asking the tracker again with backoff.
   */
  stallTimeoutMs?: number;
  /**
   * A peer that delivers nothing for this long while it has requests of ours is dropped and
   * not used again by this download (its blocks go to others). Default 30 s.
   */
  requestTimeoutMs?: number;
  /**
   * True while our own download limit sets the pace: peers then wait on us, not we on them,
   * and none is dropped for delivering nothing.
   */
  throttled?: () => boolean;
  /** Pieces known verified when it was paused, shown while it stays paused from the start. */
  piecesDoneHint?: number;
  /** Told when the download completes or fails. */
  onFinish: (download: Download) => void;
  /** Told once per peer and certificate when a peer is not who the tracker said. */
  onPeerRefused?: (download: Download, peer: string, reason: string) => void;
}

const MAX_PEERS = 50;
const MIN_PIPELINE = 16;
const MAX_PIPELINE = 128;
/** Requests in flight per peer cover this much of its measured rate. */
const PIPELINE_SECONDS = 0.25;
const TICK_MS = 250;
/**
 * Pieces held in memory at once, from their first block until the writer has written them
 * (12 MiB; the writer may keep 4 MiB more, piece_writer_worker.ts): enough to keep several
 * peers' pipelines full while a write waits, and a bound on a download's memory whatever the
 * file size. A disk slower than the network holds the peers back instead.
 */
const MAX_STARTED_PIECES = 24;
/** Pieces the writer may keep in memory just ahead of its whole-file hash (4 MiB). */
const MAX_KEPT_BY_WRITER = 8;
/*
 * When a download asks the tracker for peers (each ask costs the tracker a ticket signature,
 * and its log a line). Its start asks once (`locate_file`), and its announce brings the
 * holders the tracker knows then (so of two downloaders starting together, the second to
 * announce learns of the first, which it dials). From then on it asks only:
 *
 * - while it waits: no holder connected, or some missing piece on none of its peers, and no
 *   dial of a holder under way for less than `DIAL_GRACE_MS`: after `waitingRefreshMs`;
 * - when its ticket is due for renewal (a third of its life left, some minutes);
 * - otherwise every `PEER_DISCOVERY_MS`, while below `MAX_PEERS`, to meet holders that
 *   came online since (a seeder back, a device of the sharer).
 *
 * A download fed by its peers asks nothing else: it once asked after 250 ms, 500 ms, 1 s and
 * 2 s, then every 3 s whatever it was doing, which in a large swarm was most of the tracker's
 * load and all of its log.
 */

/** How often a download fed by its peers looks for new ones (below `MAX_PEERS`). */
export const PEER_DISCOVERY_MS = 30_000;
/**
 * While a download waits for a holder, it asks the tracker again after 500 ms, then 1 s, 2 s,
 * 4 s and every 8 s from then on: a holder that comes back is found within 8 s, and a
 * download that waits for days costs the tracker one request per 8 s. The sequence starts
 * over only once the download was fed for `WAITING_REFRESH_MAX_MS` on end: a download whose
 * pieces come and go (a capped sharer hides each piece's first copy from all but one
 * downloader, peer/first_copies.ts) waits for moments again and again, and asked every
 * 500 ms through them.
 */
export const WAITING_REFRESH_MAX_MS = 8_000;
const WAITING_REFRESH_FIRST_MS = 500;
/**
 * A dial of a holder under way for less than this (TCP, TLS, handshakes; a few round trips)
 * stands for a holder on its way: a waiting download does not ask for others meanwhile.
 * One that takes longer is likely to a holder that is gone (a connect to an address that
 * drops packets takes minutes to fail), and the tracker may know another.
 */
const DIAL_GRACE_MS = 5_000;
/**
 * A holder that dialled us before we knew of it (of downloaders starting together, the first
 * to announce learns of no other) is dialled back, so that what it sends us comes over a
 * connection we opened, which reads with Deno's TLS: received over the one it opened,
 * through `node:tls`, pieces cost three times the CPU, and Deno 2.9's `node:tls` keeps 64 KiB
 * read buffers it let go of (measured in the busiest S3 downloader at its peak: 340 of them,
 * 22 MiB). Its endpoint and serving certificate come from the tracker: one ask per such
 * holder, and at most one every `DIAL_BACK_ASK_MS`, the first at once. S3 at 1 GiB, four
 * alternating rounds of three runs: the busiest downloader peaked at 150-159 MiB before,
 * 131-132 after; seconds (median of the 12 runs 12.8 either way) and CPU unchanged.
 */
const DIAL_BACK_ASK_MS = 5_000;

/** How long a waiting download leaves the tracker alone after its `asked`-th ask (from 0). */
export function waitingRefreshMs(asked: number): number {
  return Math.min(WAITING_REFRESH_MAX_MS, WAITING_REFRESH_FIRST_MS * 2 ** Math.min(asked, 16));
}

interface PeerStats {
  bytes: number;
  pieces: number;
  /** Bytes in the current rate window. */
  windowBytes: number;
  rateBytesPerSecond: number;
}

/** A running (or finished) download of one file. */
export class Download implements PieceSink {
  readonly group: string;
  readonly name: string;
  readonly path: string;
  readonly partPath: string;
  readonly info: TorrentInfo;
  readonly infoHashHex: string;
  readonly sha1: string;
  readonly piecesTotal: number;
  state: DownloadState = "D";
  /** Why it failed, or what it is waiting for ("paused" while paused). */
  reason = "";
  /** Stopped by the user until resumed: no connection, no request, not served. */
  paused = false;
  /** Whether a part file of an earlier attempt was there at the start (its pieces kept). */
  partFound = false;
  readonly startedAt = Date.now();
  finishedAt?: number;

  readonly #options: DownloadOptions;
  #ticket = "";
  #picker?: Picker;
  #torrent?: HeldTorrent;
  readonly #peers = new Set<PeerHandle>();
  /** The ready connections we opened, by the remote's listening address. */
  readonly #outgoingByAddress = new Map<string, PeerHandle>();
  /**
   * Every connection we opened, by the endpoint the tracker handed out for it
   * (`endpointKey`), from the dial until it ends: its handle once the handshakes are done.
   * An endpoint is dialled once at a time, whether its connection is ready, in its
   * handshakes or still connecting. (Not by the address a connection ends up with: for a
   * holder named by host name that is its IP, which matched nothing it was offered at, and
   * every refresh opened one more connection to it, up to 50. Not by device either: clients
   * sharing a state directory share one.)
   */
  readonly #dialled = new Map<string, PeerHandle | undefined>();
  readonly #stats = new Map<string, PeerStats>();
  /** Addresses (as seen, and as handed out) that sent a bad piece: never used again here. */
  readonly #banned = new Set<string>();
  /** Since when each peer with requests of ours has delivered nothing (ms). */
  readonly #waitingSince = new Map<PeerHandle, number>();
  /** The last peer dropped for delivering nothing, said with the reason the download waits. */
  #lastDropped = "";
  /** Peers (address and the fingerprint the tracker gave) that failed to prove who they are. */
  readonly #refused = new Set<string>();
  readonly #strikes = new Map<string, number>();
  /**
   * Every piece in memory has a slot: started ones here, checked ones at the writer. Made
   * when the download starts and let go when it ends.
   */
  #slots?: PieceSlots;
  /** The slot of each started piece, by index. */
  readonly #slotOf = new Map<number, number>();
  #verified = 0;
  #writer?: Worker;
  #writerFinished?: PromiseWithResolvers<string>;
  #lastProgressAt = Date.now();
  /** When it last asked the tracker for peers (its start asked: the locate). */
  #lastPeerRefreshAt = Date.now();
  /** Asks while waiting since it was last fed for a while, for the waiting backoff. */
  #waitingRefreshes = 0;
  /** True while it has no peer, or none with some piece it misses. */
  #waiting = false;
  /** Since when it has not been waiting (undefined while it waits). */
  #fedSince?: number = undefined;
  /** Addresses of holders that dialled us, which we asked the tracker about once to dial back. */
  readonly #dialBackAsked = new Set<string>();
  /** When it last asked the tracker to dial back a holder that dialled it. */
  #lastDialBackAskAt = Number.NEGATIVE_INFINITY;
  /** When each dial of `#dialled` started, by the same key. */
  readonly #dialStartedAt = new Map<string, number>();
  /** Pieces verified, as remembered while paused before this run started. */
  readonly #piecesHint: number;
  /** Set once the torrent, writer and file are let go (pause or failure). */
  #released = false;
  #timer?: ReturnType<typeof setInterval>;
  /** When (local clock) the current ticket is due for renewal: a third of its life left. */
  #ticketRenewAt = 0;
  #refreshing = false;
  readonly #done = Promise.withResolvers<void>();
  #finishing = false;

  constructor(options: DownloadOptions) {
    this.#options = options;
    this.group = options.group;
    this.name = options.name;
    this.path = options.path;
    this.partPath = partPathFor(options.path);
    this.info = options.info;
    this.infoHashHex = options.infoHash.toHex();
    this.sha1 = options.sha1;
    this.piecesTotal = pieceCount(options.info.length);
    this.#piecesHint = Math.min(options.piecesDoneHint ?? 0, this.piecesTotal);
    this.#adoptTicket(options.ticket);
  }

  /**
   * A download that stays paused from the start (remembered as paused): it shows its
   * remembered progress and touches nothing until it is resumed as a new `Download`.
   */
  static paused(options: DownloadOptions): Download {
    const download = new Download(options);
    download.paused = true;
    download.reason = "paused";
    download.#released = true;
    return download;
  }

  /** Running: neither paused nor over. */
  get #running(): boolean {
    return this.state === "D" && !this.paused;
  }

  /** What it is doing now (see `DownloadActivity`). */
  get activity(): DownloadActivity {
    if (this.state === "C") return "complete";
    if (this.state === "F") return "failed";
    if (this.paused) return "paused";
    return this.#waiting ? "waiting" : "downloading";
  }

  /**
   * Takes a ticket from the tracker and times its renewal by its own lifetime, measured from
   * now on our clock (so the two clocks need not agree).
   */
  #adoptTicket(ticket: string): void {
    this.#ticket = ticket;
    const lifetimeMs = ticketLifetimeMs(ticket) ?? TICKET_LIFETIME_MS;
    this.#ticketRenewAt = Date.now() + (lifetimeMs * 2) / 3;
  }

  /** Pieces verified so far. */
  get piecesDone(): number {
    return this.#torrent?.have.count ?? this.#piecesHint;
  }

  /** Bytes of the verified pieces. */
  get bytesDone(): number {
    const have = this.#torrent?.have;
    // paused since a restart: what the part file held when it was remembered
    if (!have) return Math.min(this.piecesDone * PIECE_LENGTH, this.info.length);
    const last = this.piecesTotal - 1;
    const shortBy = last >= 0 && have.has(last)
      ? PIECE_LENGTH - pieceSize(this.info.length, last)
      : 0;
    return have.count * PIECE_LENGTH - shortBy;
  }

  /**
   * Peers this download is connected to now (ready connections); 0 once it has ended. A
   * peer both ends dialled at once has two connections and counts once.
   */
  get peersConnected(): number {
    if (this.state !== "D") return 0;
    let count = 0;
    for (const peer of this.#peers) if (!this.#isTwinned(peer)) count++;
    return count;
  }

  /** The torrent it fills, with its byte counters and rates (once started). */
  get torrent(): HeldTorrent | undefined {
    return this.#torrent;
  }

  /** The current ticket, presented to every peer. */
  get ticket(): string {
    return this.#ticket;
  }

  /** Settles when the download is complete or has failed. */
  get finished(): Promise<void> {
    return this.#done.promise;
  }

  /** What each peer contributed, most first. */
  contributions(): PeerContribution[] {
    return [...this.#stats].map(([peer, stats]) => ({
      peer,
      bytes: stats.bytes,
      pieces: stats.pieces,
    }))
      .sort((a, b) => b.bytes - a.bytes);
  }

  /** Opens the part file (keeping verified pieces of an earlier attempt) and starts. */
  async start(): Promise<void> {
    const resumed = await exists(this.partPath);
    this.partFound = resumed;
    const file = await PieceFile.openForWriting(this.partPath, this.info.length);
    try {
      const have = resumed
        ? bitfieldOf(await verifiedPieces(file, this.info.pieceHashes))
        : new Bitfield(this.piecesTotal);
      this.#picker = new Picker({
        fileLength: this.info.length,
        have,
        maxStarted: MAX_STARTED_PIECES,
      });
      this.#torrent = this.#options.registry.add({
        infoHash: this.#options.infoHash,
        infoHashHex: this.infoHashHex,
        info: this.info,
        file,
        have,
        groups: new Set([this.group]),
        sink: this,
      });
    } catch (error) {
      await file.close();
      throw error;
    }
    this.#verified = this.#torrent.have.count;
    this.#slots = new PieceSlots(MAX_STARTED_PIECES + MAX_KEPT_BY_WRITER);
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    if (this.#picker.isComplete) {
      queueMicrotask(() => this.#finish());
      return;
    }
    this.#connectAll(this.#options.peers);
    // holders that came since the locate, fellow downloaders that started with us among them
    this.#options.tracker.announce(this.group, this.infoHashHex, "downloading").then(
      (peers) => {
        if (this.#running) this.#connectAll(peers);
      },
      () => {},
    );
  }

  /** Stops the download, keeping verified pieces in the part file for a later resume. */
  async cancel(reason: string): Promise<void> {
    if (this.state !== "D") return;
    await this.#fail(reason, false);
  }

  /**
   * Stops the download until it is resumed (as a new `Download`, which checks the part file
   * again): its connections close, the tracker hears it stopped, the part file keeps its
   * verified pieces. False when it cannot be paused: it is over, paused, or finishing.
   */
  async pause(): Promise<boolean> {
    if (!this.#running || this.#finishing) return false;
    this.paused = true;
    this.reason = "paused";
    this.#waiting = false;
    await this.#release();
    return true;
  }

  // Peers

  #connectAll(peers: PeerEndpoint[]): void {
    for (const endpoint of peers) {
      if (this.#connectionCount() >= MAX_PEERS) return;
      const address = endpointKey(endpoint);
      // a holder that dialled us is dialled too: we fetch over ours (`DIAL_BACK_ASK_MS`)
      if (this.#banned.has(address) || this.#dialled.has(address)) continue;
      const identity = `${address} ${endpoint.fingerprint ?? ""}`;
      if (this.#refused.has(identity)) continue;
      this.#dialled.set(address, undefined);
      this.#dialStartedAt.set(address, Date.now());
      connectPeer(
        endpoint,
        this.#torrent!,
        this.#options.context,
        (peer) => this.#dialled.set(address, peer),
      )
        .catch((error) => {
          // refused or broken: the next refresh may offer it again, unless it is an impostor
          if (!(error instanceof IdentityError) || this.#refused.has(identity)) return;
          this.#refused.add(identity);
          this.#options.onPeerRefused?.(this, address, error.message);
        })
        .finally(() => {
          this.#dialled.delete(address);
          this.#dialStartedAt.delete(address);
        });
    }
  }

  /** True while a dial started less than `DIAL_GRACE_MS` ago has not yet become a peer. */
  #dialUnderWay(now: number): boolean {
    for (const [address, peer] of this.#dialled) {
      if (peer && this.#peers.has(peer)) continue;
      if (now - (this.#dialStartedAt.get(address) ?? 0) < DIAL_GRACE_MS) return true;
    }
    return false;
  }

  /** Connections of this download: ready ones, and those we opened that are not yet. */
  #connectionCount(): number {
    let count = this.#peers.size;
    for (const peer of this.#dialled.values()) if (!peer || !this.#peers.has(peer)) count++;
    return count;
  }

  /**
   * Asks the tracker for peers when a holder dialled us that we have not dialled nor asked
   * about yet (a connection's address is its listener's port, told in its extension
   * handshake, at its socket's IP), unless it asked for that less than `DIAL_BACK_ASK_MS`
   * ago; the reply has the holder's endpoint, which `#connectAll` dials.
   */
  #dialBackIfDue(now: number): void {
    if (this.#refreshing || now - this.#lastDialBackAskAt < DIAL_BACK_ASK_MS) return;
    if (this.#connectionCount() >= MAX_PEERS) return;
    let asking = false;
    for (const peer of this.#peers) {
      const address = peer.address;
      if (peer.isOutgoing || this.#dialled.has(address) || this.#banned.has(address)) continue;
      if (this.#dialBackAsked.has(address)) continue;
      this.#dialBackAsked.add(address);
      asking = true;
    }
    if (!asking) return;
    this.#lastDialBackAskAt = now;
    this.#refreshPeers();
  }

  /** Never uses this peer again for this file: as seen, nor as the tracker hands it out. */
  #ban(peer: PeerHandle): void {
    this.#banned.add(peer.address);
    for (const [address, dialled] of this.#dialled) {
      if (dialled === peer) this.#banned.add(address);
    }
  }

  /**
   * Asks the tracker for peers and a fresh ticket, and hands the ticket to every open
   * connection at once (ready or still in its handshakes): the renewal time is that of the
   * ticket the peers hold, so they must all hold the newest, and none stops serving us.
   */
  async #refreshPeers(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    this.#lastPeerRefreshAt = Date.now();
    try {
      const { peers, ticket } = await this.#options.tracker.findPeers(this.group, this.infoHashHex);
      this.#adoptTicket(ticket);
      if (!this.#running) return;
      for (const connection of this.#torrent?.connections ?? []) connection.sendTicket(ticket);
      this.#connectAll(peers);
    } catch (error) {
      // the file is gone from the group, or we are: no holder will ever come, so stop
      // waiting; otherwise the tracker may be away: connected peers carry on, we ask again
      if (error instanceof Refusal && (error.code === "not_found" || error.code === "forbidden")) {
        await this.#fail(`the tracker no longer offers it: ${error.message}`, true);
      }
    } finally {
      this.#refreshing = false;
    }
  }

  peerReady(peer: PeerHandle): void {
    if (!this.#running || this.#banned.has(peer.address)) return peer.close("not wanted");
    this.#peers.add(peer);
    if (peer.isOutgoing) this.#outgoingByAddress.set(peer.address, peer);
    this.#picker!.addPeer(peer, peer.pieces);
    this.#fill(peer);
    if (!peer.isOutgoing) this.#dialBackIfDue(Date.now());
  }

  peerHas(peer: PeerHandle, index: number): void {
    this.#picker?.peerHas(peer, index);
    this.#fill(peer);
  }

  peerUnchoked(peer: PeerHandle): void {
    this.#fill(peer);
  }

  peerChoked(peer: PeerHandle): void {
    this.#picker?.releaseRequests(peer);
    this.#waitingSince.delete(peer);
  }

  peerLeft(peer: PeerHandle): void {
    this.#waitingSince.delete(peer);
    if (!this.#peers.delete(peer)) return;
    // one that dials us again later is asked about again (at most every `DIAL_BACK_ASK_MS`)
    if (!peer.isOutgoing) this.#dialBackAsked.delete(peer.address);
    if (this.#outgoingByAddress.get(peer.address) === peer) {
      this.#outgoingByAddress.delete(peer.address);
    }
    // pieces only it had are dropped: their blocks are of no use until someone has them
    for (const index of this.#picker?.removePeer(peer) ?? []) {
      const slot = this.#slotOf.get(index);
      this.#slotOf.delete(index);
      if (slot !== undefined) this.#slots!.give(slot);
    }
    // its requests went back to the pool: hand them to the others
    this.#fillAll();
  }

  peerLost(peer: PeerHandle, index: number): void {
    if (!this.#peers.has(peer)) return;
    for (const dropped of this.#picker?.peerLost(peer, index) ?? []) {
      const slot = this.#slotOf.get(dropped);
      this.#slotOf.delete(dropped);
      if (slot !== undefined) this.#slots!.give(slot);
    }
    // its requests for the piece went back to the pool: the others may take them
    this.#fillAll();
  }

  /** Tops up a peer's pipeline, and tells it whether we are interested. */
  #fill(peer: PeerHandle): void {
    const picker = this.#picker;
    if (!picker || !this.#running || !this.#peers.has(peer)) return;
    const twinned = this.#isTwinned(peer);
    peer.sendInterested(!twinned && picker.isInteresting(peer));
    if (twinned || peer.isChokingUs) return;
    const want = this.#depth(peer) - picker.outstanding(peer);
    if (want <= 0) return;
    const requests = picker.pick(peer, want);
    if (requests.length > 0 && !this.#waitingSince.has(peer)) {
      this.#waitingSince.set(peer, Date.now());
    }
    peer.sendRequests(requests);
  }

  /**
   * True for a connection the remote opened while we have one open to it too (both dialled
   * at once, as downloaders starting together do): we fetch over ours only, which reads
   * with Deno's TLS (a third of `node:tls`'s CPU per byte received, lib/transport.ts), and
   * the remote fetches over the other. Eight capped downloaders (8 MiB/s, 64 MiB) had
   * received 40% of their blocks over the connections others opened; now 5%.
   */
  #isTwinned(peer: PeerHandle): boolean {
    if (peer.isOutgoing) return false;
    const twin = this.#outgoingByAddress.get(peer.address);
    return twin !== undefined && twin !== peer;
  }

  /** Requests to keep in flight to a peer: enough to cover its measured rate for a moment. */
  #depth(peer: PeerHandle): number {
    const rate = this.#stats.get(peer.address)?.rateBytesPerSecond ?? 0;
    return Math.min(
      MAX_PIPELINE,
      Math.max(MIN_PIPELINE, Math.ceil((rate * PIPELINE_SECONDS) / 16_384)),
    );
  }

  // Pieces

  blockArrived(peer: PeerHandle, index: number, begin: number, block: Uint8Array): void {
    const picker = this.#picker;
    if (!picker || !this.#running) return;
    const outcome = picker.blockReceived(peer, index, begin);
    if (picker.outstanding(peer) > 0) this.#waitingSince.set(peer, Date.now());
    else this.#waitingSince.delete(peer);
    if (!outcome.accepted) return;
    const slots = this.#slots!;
    let slot = this.#slotOf.get(index);
    if (slot === undefined) {
      slot = slots.take();
      this.#slotOf.set(index, slot);
    }
    slots.views[slot].set(block, begin);
    const stats = this.#statsOf(peer.address);
    stats.bytes += block.length;
    stats.windowBytes += block.length;
    for (const other of outcome.cancels) {
      (other as PeerHandle).sendCancel(index, begin, block.length);
    }
    if (outcome.pieceComplete) this.#pieceComplete(index, slot);
    // top up in batches: asking after every block costs more than it gains
    if (this.#picker!.outstanding(peer) * 2 <= this.#depth(peer)) this.#fill(peer);
  }

  #statsOf(address: string): PeerStats {
    let stats = this.#stats.get(address);
    if (!stats) {
      stats = { bytes: 0, pieces: 0, windowBytes: 0, rateBytesPerSecond: 0 };
      this.#stats.set(address, stats);
    }
    return stats;
  }

  /**
   * Every block is in: the piece's SHA-1 is checked here (the writer thread has the
   * whole-file hash to keep), then a good piece goes to the writer and a bad one is fetched
   * again, its senders blamed.
   */
  #pieceComplete(index: number, slot: number): void {
    const picker = this.#picker!;
    this.#slotOf.delete(index);
    const contributors = picker.contributors(index) as PeerHandle[];
    const slots = this.#slots!;
    const piece = slots.views[slot].subarray(0, pieceSize(this.info.length, index));
    if (!isIntactPiece(piece, pieceHash(this.info, index))) {
      slots.give(slot);
      const roomMade = picker.pieceFailed(index);
      this.#blame(contributors, index);
      if (roomMade) this.#fillAll();
      return;
    }
    for (const peer of contributors) this.#statsOf(peer.address).pieces++;
    // the slot goes to the writer and comes back once the piece is written
    this.#writerThread().postMessage({ type: "write", index, slot } satisfies WriterRequest);
  }

  /** Tops up every peer (after a piece ends while the picker was full: those it held back). */
  #fillAll(): void {
    for (const peer of this.#peers) this.#fill(peer);
  }

  /**
   * The writer thread, started when the first piece is to be written (or the download
   * finishes), not when it starts: `new Worker` holds this thread up to 10-15 ms while the
   * worker's runtime boots and costs 30-40 ms of CPU in all, and 16 downloads starting
   * together on two cores spent that while their first peers' handshakes waited.
   */
  #writerThread(): Worker {
    return this.#writer ?? this.#startWriter();
  }

  #startWriter(): Worker {
    const present = [...Array(this.piecesTotal).keys()].filter((i) => this.#torrent!.have.has(i));
    const writer = new Worker(new URL("./piece_writer_worker.ts", import.meta.url).href, {
      type: "module",
    });
    writer.onmessage = (event: MessageEvent<WriterReply>) => this.#onWriterReply(event.data);
    writer.onerror = (event) => {
      event.preventDefault();
      this.#fail(`the disk writer stopped: ${event.message}`, true);
    };
    const open: WriterRequest = {
      type: "open",
      path: this.partPath,
      identity: this.#torrent!.file.identity!,
      length: this.info.length,
      present,
      holes: this.#torrent!.file.created,
      slots: this.#slots!.memory,
      maxKept: MAX_KEPT_BY_WRITER,
    };
    writer.postMessage(open);
    this.#writer = writer;
    return writer;
  }

  #onWriterReply(reply: WriterReply): void {
    if (reply.type === "failed") {
      this.#writerFinished?.reject(new Error(reply.message));
      this.#fail(`cannot write ${this.partPath}: ${reply.message}`, true);
      return;
    }
    if (reply.type === "finished") return this.#writerFinished?.resolve(reply.sha1);
    if (!this.#running) return;
    if (reply.type === "released") {
      this.#slots!.give(reply.slot);
      return;
    }
    // a piece just ahead of the whole-file hash stays with the writer until the hash gets there
    if (reply.slot !== undefined) this.#slots!.give(reply.slot);
    if (this.#picker!.pieceVerified(reply.index)) this.#fillAll();
    this.#lastProgressAt = Date.now();
    // advertise only once the piece is on disk, where serving reads it from
    this.#options.registry.pieceAdded(this.#torrent!, reply.index);
    this.#verified++;
    if (this.#verified === this.piecesTotal) this.#finish();
  }

  #closeWriter(): void {
    this.#writer?.terminate();
    this.#writer = undefined;
  }

  /**
   * A piece failed its hash. A sole contributor is banned at once; when several shared it,
   * each takes a strike and two strikes ban.
   */
  #blame(contributors: PeerHandle[], index: number): void {
    for (const peer of contributors) {
      const strikes = (this.#strikes.get(peer.address) ?? 0) + (contributors.length === 1 ? 2 : 1);
      this.#strikes.set(peer.address, strikes);
      if (strikes >= 2) {
        this.#ban(peer);
        peer.close(`sent a corrupt piece ${index}`);
      }
    }
  }

  // Progress, stalls and the end

  /**
   * Drops peers that claim pieces and take requests but deliver nothing: without this, a
   * peer that unchokes and then keeps silent (keep-alives only) held its blocks for ever,
   * and since it "had" every piece, the stall rule never saw anything missing.
   */
  #dropSilentPeers(now: number): void {
    const timeoutMs = this.#options.requestTimeoutMs ?? 30_000;
    if (this.#options.throttled?.()) {
      // what they sent waits unread behind our limit: their silence counts from when it lifts
      for (const peer of this.#waitingSince.keys()) this.#waitingSince.set(peer, now);
      return;
    }
    for (const [peer, since] of this.#waitingSince) {
      if (now - since < timeoutMs) continue;
      const outstanding = this.#picker?.outstanding(peer) ?? 0;
      this.#waitingSince.delete(peer);
      if (outstanding === 0) continue;
      const seconds = Math.round(timeoutMs / 100) / 10;
      this.#lastDropped = `dropped ${peer.address}: it sent nothing for ${seconds} s ` +
        `with ${outstanding} request${outstanding === 1 ? "" : "s"} outstanding`;
      this.#ban(peer);
      peer.close(`sent nothing for ${seconds} s`);
    }
  }

  #tick(): void {
    if (!this.#running || !this.#picker) return;
    for (const stats of this.#stats.values()) {
      stats.rateBytesPerSecond = stats.rateBytesPerSecond * 0.5 +
        (stats.windowBytes * 1000 / TICK_MS) * 0.5;
      stats.windowBytes = 0;
    }
    const now = Date.now();
    this.#dropSilentPeers(now);
    this.#fillAll();
    const unavailable = this.#picker.unavailablePieces();
    const dropped = this.#lastDropped ? ` (${this.#lastDropped})` : "";
    const missing = `no connected peer has ${unavailable} missing piece${
      unavailable === 1 ? "" : "s"
    }`;
    this.reason = this.#peers.size === 0
      ? `waiting for a peer${dropped}`
      : unavailable > 0
      ? `waiting: ${missing}${dropped}`
      : "";
    this.#waiting = this.reason !== "";
    if (this.#waiting) this.#fedSince = undefined;
    else this.#fedSince ??= now;
    if (this.#fedSince !== undefined && now - this.#fedSince >= WAITING_REFRESH_MAX_MS) {
      this.#waitingRefreshes = 0;
    }
    const stallTimeoutMs = this.#options.stallTimeoutMs;
    if (
      stallTimeoutMs !== undefined && this.#waiting && now - this.#lastProgressAt > stallTimeoutMs
    ) {
      const problem = unavailable > 0 ? missing : "waiting for peers";
      this.#fail(`${problem}${dropped} for ${Math.round(stallTimeoutMs / 1000)} s`, true);
      return;
    }
    // when to ask the tracker: see PEER_DISCOVERY_MS above
    const short = this.#connectionCount() < MAX_PEERS;
    const sinceRefresh = now - this.#lastPeerRefreshAt;
    const waitingDue = this.#waiting && !this.#dialUnderWay(now) &&
      sinceRefresh >= waitingRefreshMs(this.#waitingRefreshes);
    const discoveryDue = !this.#waiting && sinceRefresh >= PEER_DISCOVERY_MS;
    // a ticket due for renewal is asked for every other tick until the tracker answers
    const renewalDue = now >= this.#ticketRenewAt && sinceRefresh >= TICK_MS * 2;
    if (short && waitingDue) this.#waitingRefreshes++;
    if ((short && (discoveryDue || waitingDue)) || renewalDue) this.#refreshPeers();
    else this.#dialBackIfDue(now);
  }

  async #finish(): Promise<void> {
    if (this.#finishing || this.state !== "D") return;
    this.#finishing = true;
    try {
      this.#writerFinished = Promise.withResolvers<string>();
      this.#writerThread().postMessage({ type: "finish" } satisfies WriterRequest);
      const actual = await this.#writerFinished.promise; // also fsynced
      this.#closeWriter();
      const file = this.#torrent!.file;
      if (actual !== this.sha1) {
        throw new UserError(`whole-file SHA-1 is ${actual}, expected ${this.sha1}`);
      }
      await promotePartFile(this.partPath, this.path, file.identity!);
      file.renamedTo(this.path);
      const { mtime } = await Deno.stat(this.path);
      this.state = "C";
      this.reason = "";
      this.finishedAt = Date.now();
      // two whole copies have nothing to trade: let go of peers that hold the whole file now,
      // not when our ticket runs out there (up to 11 minutes), so a holder keeps serving
      // state (and counts a connection of ours, connection.ts) only while we download
      for (const peer of [...this.#peers]) {
        if (peer.pieces.isComplete) peer.close("both peers have the whole file");
      }
      this.#stop();
      this.#torrent!.sink = undefined;
      await this.#options.tracker.shareCompleted(this, mtime?.getTime() ?? Date.now()).catch(
        () => {},
      );
      this.#options.onFinish(this);
    } catch (error) {
      await this.#fail(errorMessage(error), true);
    }
  }

  async #fail(reason: string, announce: boolean): Promise<void> {
    if (this.state !== "D") return;
    this.state = "F";
    this.reason = reason;
    this.finishedAt = Date.now();
    await this.#release();
    if (announce) this.#options.onFinish(this);
    this.#done.resolve();
  }

  /**
   * Lets go of everything a running download holds (peers, writer, the torrent it serves,
   * the part file) and tells the tracker it stopped; once only, so that a paused download
   * cancelled later never removes a torrent someone else registered since.
   */
  async #release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#stop();
    const torrent = this.#torrent;
    if (torrent) {
      torrent.sink = undefined;
      this.#closeWriter();
      if (this.#options.registry.get(this.infoHashHex) === torrent) {
        await this.#options.registry.remove(this.infoHashHex);
      }
      await torrent.file.close().catch(() => {});
    }
    this.#options.tracker.announce(this.group, this.infoHashHex, "stopped").catch(() => {});
  }

  #stop(): void {
    clearInterval(this.#timer);
    for (const peer of [...this.#peers]) this.#picker?.removePeer(peer);
    this.#peers.clear();
    this.#outgoingByAddress.clear();
    this.#dialBackAsked.clear();
    this.#slotOf.clear();
    this.#slots = undefined;
    if (this.state === "C") this.#done.resolve();
  }
}

/** `host:port` as the tracker handed it out (host names in lower case, as it compares them). */
function endpointKey(endpoint: PeerEndpoint): string {
  return `${endpoint.host.toLowerCase()}:${endpoint.port}`;
}

function bitfieldOf(pieces: boolean[]): Bitfield {
  const field = new Bitfield(pieces.length);
  pieces.forEach((present, index) => present && field.add(index));
  return field;
}
