/**
 * Which block to ask which peer for. Pure bookkeeping, no I/O: it sees which pieces each
 * connected peer has, what we hold, and what is in flight, and hands out requests.
 *
 * - The first `randomFirst` pieces are picked at random (a new peer soon has something to
 *   trade); after that, rarest first across connected peers. While other downloaders are
 *   connected, ties are broken at random: among all tied pieces for a request to a seeder
 *   (downloaders starting together then ask it for different pieces, and the sharer sends
 *   about one copy of the file instead of 2.7), among the first NEAR_TIES in file order for a
 *   request to another downloader. With only seeders connected, ties go in file order.
 * - A started piece belongs to the peer that started it, so a bad piece can usually be
 *   blamed on one peer: its remaining blocks go to that peer first, and to others only when
 *   they have nothing new to fetch (or the owner left).
 * - At most `maxStarted` pieces are started and not yet verified or failed. The caller holds a
 *   piece in memory over that span, so this bounds its memory whatever the file size, the
 *   number of peers or the speed of the disk.
 * - Endgame: once every missing block is in flight, idle peers get duplicate requests for
 *   blocks already asked of others (never twice of one peer), and when a block arrives the
 *   other requests for it are returned for cancelling. A slow peer cannot hold the tail.
 *
 * @module
 */

import { Bitfield } from "../lib/bitfield.ts";
import { BLOCK_LENGTH, blockCount, blockSize, pieceCount, pieceSize } from "../lib/pieces.ts";

/**
 * After the random start, ties among the rarest pieces are drawn from this many of the lowest
 * index. Four downloaders and a seeder (benchmark S3, 1 GiB) over four interleaved rounds
 * against ties drawn from all pieces: 9.6-10.1 s against 11.1-16.0 s, and 18.5-19.6 CPU s
 * against 21-31, because far fewer pieces land beyond what the writer keeps in memory (30-48%
 * read back from disk for the whole-file hash, against 97%); the downloaders still served a
 * quarter of what they received to one another. Eight was halfway (12.6 s).
 */
export const NEAR_TIES = 4;

/** Any value but `undefined` that identifies a peer (its connection object, an id). */
export type PeerKey = unknown;

/** One block request. */
export interface BlockRequest {
  index: number;
  begin: number;
  length: number;
}

/** What a received block means. */
export interface BlockOutcome {
  /** False when the block was not wanted (not requested, or already in): drop it. */
  accepted: boolean;
  /** Every block of the piece is in: verify it now. */
  pieceComplete: boolean;
  /** Other peers asked for the same block in endgame: send them cancels. */
  cancels: readonly PeerKey[];
}

const NO_CANCELS: readonly PeerKey[] = Object.freeze([]);

/**
 * Which peers each block of one piece is requested from. Outside endgame that is one peer at
 * most, so each block has one slot, and endgame duplicates go to a map made on first use.
 * Started pieces live long enough to reach V8's old generation, where a Set per block (32 per
 * piece) piled up as garbage between major collections and grew a download's heap with the
 * file size.
 */
class BlockRequests {
  /** The first peer each block is asked of; `undefined` when none. */
  readonly #first: PeerKey[];
  /** Endgame: the further peers a block is asked of. */
  #more?: Map<number, PeerKey[]>;

  constructor(blocks: number) {
    this.#first = new Array(blocks).fill(undefined);
  }

  count(block: number): number {
    if (this.#first[block] === undefined) return 0;
    return 1 + (this.#more?.get(block)?.length ?? 0);
  }

  has(block: number, peer: PeerKey): boolean {
    return this.#first[block] === peer || (this.#more?.get(block)?.includes(peer) ?? false);
  }

  /** Every peer `block` is asked of. */
  peers(block: number): PeerKey[] {
    if (this.#first[block] === undefined) return [];
    return [this.#first[block], ...this.#more?.get(block) ?? []];
  }

  add(block: number, peer: PeerKey): void {
    if (this.#first[block] === undefined) {
      this.#first[block] = peer;
      return;
    }
    this.#more ??= new Map();
    const more = this.#more.get(block);
    if (more) more.push(peer);
    else this.#more.set(block, [peer]);
  }

  delete(block: number, peer: PeerKey): void {
    const more = this.#more?.get(block);
    if (this.#first[block] === peer) {
      this.#first[block] = more?.shift();
    } else if (more) {
      const at = more.indexOf(peer);
      if (at >= 0) more.splice(at, 1);
    }
    if (more?.length === 0) this.#more!.delete(block);
  }

  clear(block: number): void {
    this.#first[block] = undefined;
    this.#more?.delete(block);
  }
}

interface PieceProgress {
  index: number;
  size: number;
  blocks: number;
  requests: BlockRequests;
  received: Uint8Array;
  receivedCount: number;
  /** Blocks neither received nor asked of anyone: what a peer can still be given. */
  unrequested: number;
  /** The peer that started the piece; undefined once it left. */
  owner: PeerKey | undefined;
  /** Peers that delivered blocks of this piece. */
  contributors: Set<PeerKey>;
}

/** How the picker behaves. */
export interface PickerOptions {
  fileLength: number;
  /** Pieces already verified (a resumed download); copied, not kept. */
  have: Bitfield;
  /** Pieces picked at random before rarest first takes over. Default 4. */
  randomFirst?: number;
  /** Random source in [0, 1); injectable for deterministic tests. */
  random?: () => number;
  /** Pieces started and not yet verified or failed, at most. Default: no limit. */
  maxStarted?: number;
}

/** The request strategy of one download. */
export class Picker {
  readonly #fileLength: number;
  readonly #pieceCount: number;
  readonly #have: Bitfield;
  readonly #randomFirst: number;
  readonly #random: () => number;
  readonly #maxStarted: number;
  /** How many connected peers have each piece. */
  readonly #availability: Uint32Array;
  readonly #peers = new Map<PeerKey, Bitfield>();
  /** Per peer: how many pieces it has that we still need (kept up to date, read in O(1)). */
  readonly #wanted = new Map<PeerKey, number>();
  readonly #progress = new Map<number, PieceProgress>();
  /** Outstanding requests per peer, as `index * 65536 + block`. */
  readonly #outstanding = new Map<PeerKey, Set<number>>();

  constructor(options: PickerOptions) {
    this.#fileLength = options.fileLength;
    this.#pieceCount = pieceCount(options.fileLength);
    // copies: the picker's view moves ahead of what is on disk and of what peers said
    this.#have = new Bitfield(this.#pieceCount, options.have.bytes.slice());
    this.#randomFirst = options.randomFirst ?? 4;
    this.#random = options.random ?? Math.random;
    this.#maxStarted = options.maxStarted ?? Infinity;
    this.#availability = new Uint32Array(this.#pieceCount);
  }

  /** True when every piece is verified. */
  get isComplete(): boolean {
    return this.#have.isComplete;
  }

  /** True when no new piece may be started until a started one is verified or fails. */
  get isFull(): boolean {
    return this.#progress.size >= this.#maxStarted;
  }

  /** True once every missing block has been requested from someone. */
  get isEndgame(): boolean {
    // started pieces are never verified ones, so this counts the missing pieces not started
    if (this.#pieceCount - this.#have.count - this.#progress.size > 0) return false;
    for (const progress of this.#progress.values()) if (progress.unrequested > 0) return false;
    return true;
  }

  /** How many requests are in flight to `peer`. */
  outstanding(peer: PeerKey): number {
    return this.#outstanding.get(peer)?.size ?? 0;
  }

  /** A peer connected with these pieces (copied: later news comes through `peerHas`). */
  addPeer(peer: PeerKey, pieces: Bitfield): void {
    if (this.#peers.has(peer)) this.removePeer(peer);
    this.#peers.set(peer, new Bitfield(this.#pieceCount, pieces.bytes.slice()));
    this.#outstanding.set(peer, new Set());
    let wanted = 0;
    for (let index = 0; index < this.#pieceCount; index++) {
      if (!pieces.has(index)) continue;
      this.#availability[index]++;
      if (!this.#have.has(index)) wanted++;
    }
    this.#wanted.set(peer, wanted);
  }

  /** A peer announced a piece (`have`). */
  peerHas(peer: PeerKey, index: number): void {
    const pieces = this.#peers.get(peer);
    if (!pieces || !pieces.add(index)) return;
    this.#availability[index]++;
    if (!this.#have.has(index)) this.#wanted.set(peer, this.#wanted.get(peer)! + 1);
  }

  /**
   * A peer no longer offers a piece (BEP 54 `lt_donthave`: a capped sharer sending it to
   * someone else first). Its requests for the piece go back to the pool. Returns the piece
   * when it was started here, nothing of it has come and no connected peer has it any more:
   * it is dropped, so that it holds no place under `maxStarted` (the caller lets go of it).
   */
  peerLost(peer: PeerKey, index: number): number[] {
    const pieces = this.#peers.get(peer);
    if (!pieces?.has(index)) return [];
    pieces.delete(index);
    this.#availability[index]--;
    if (!this.#have.has(index)) this.#wanted.set(peer, this.#wanted.get(peer)! - 1);
    const progress = this.#progress.get(index);
    if (!progress) return [];
    const outstanding = this.#outstanding.get(peer);
    for (let block = 0; block < progress.blocks; block++) {
      if (!progress.requests.has(block, peer)) continue;
      progress.requests.delete(block, peer);
      outstanding?.delete(index * 65536 + block);
      if (progress.requests.count(block) === 0 && !progress.received[block]) {
        progress.unrequested++;
      }
    }
    if (progress.owner === peer) progress.owner = undefined;
    if (this.#availability[index] === 0 && progress.receivedCount === 0) {
      this.#progress.delete(index);
      return [index];
    }
    return [];
  }

  /** True when `peer` has a piece we still need. */
  isInteresting(peer: PeerKey): boolean {
    return (this.#wanted.get(peer) ?? 0) > 0;
  }

  /**
   * A peer left: its requests go back to the pool and its pieces lose their owner. Returns
   * the unfinished pieces no connected peer has any more: they are dropped, blocks and all,
   * so that they do not hold places under `maxStarted` (the caller lets go of their blocks).
   */
  removePeer(peer: PeerKey): number[] {
    const pieces = this.#peers.get(peer);
    if (!pieces) return [];
    this.releaseRequests(peer);
    for (let index = 0; index < this.#pieceCount; index++) {
      if (pieces.has(index)) this.#availability[index]--;
    }
    const dropped: number[] = [];
    for (const progress of this.#progress.values()) {
      if (progress.owner === peer) progress.owner = undefined;
      const unfinished = progress.receivedCount < progress.blocks;
      if (unfinished && this.#availability[progress.index] === 0) dropped.push(progress.index);
    }
    for (const index of dropped) this.#progress.delete(index);
    this.#peers.delete(peer);
    this.#wanted.delete(peer);
    this.#outstanding.delete(peer);
    return dropped;
  }

  /** Forgets every request in flight to `peer` (it choked us, or is going away). */
  releaseRequests(peer: PeerKey): void {
    const keys = this.#outstanding.get(peer);
    if (!keys) return;
    for (const key of keys) {
      const progress = this.#progress.get(Math.floor(key / 65536));
      const block = key % 65536;
      if (!progress) continue;
      progress.requests.delete(block, peer);
      if (progress.requests.count(block) === 0 && !progress.received[block]) {
        progress.unrequested++;
      }
    }
    keys.clear();
    for (const progress of this.#progress.values()) {
      if (progress.owner === peer) progress.owner = undefined;
    }
  }

  /** Up to `max` new requests for `peer`, recorded as in flight. */
  pick(peer: PeerKey, max: number): BlockRequest[] {
    const pieces = this.#peers.get(peer);
    const outstanding = this.#outstanding.get(peer);
    if (!pieces || !outstanding || max <= 0) return [];
    const requests: BlockRequest[] = [];
    // 1. blocks of pieces this peer started, or that lost their owner
    for (const progress of this.#progress.values()) {
      if (requests.length >= max) return requests;
      if (!pieces.has(progress.index)) continue;
      if (progress.owner !== peer && progress.owner !== undefined) continue;
      if (this.#takeBlocks(progress, peer, outstanding, max - requests.length, requests, false)) {
        progress.owner = peer;
      }
    }
    // 2. new pieces: random at first, then rarest first, while there is room for them
    while (requests.length < max && !this.isFull) {
      const index = this.#choosePiece(pieces);
      if (index === undefined) break;
      const progress = this.#start(index, peer);
      this.#takeBlocks(progress, peer, outstanding, max - requests.length, requests, false);
    }
    // 3. nothing new left for this peer: help with blocks of pieces others started
    for (const progress of this.#progress.values()) {
      if (requests.length >= max) return requests;
      if (!pieces.has(progress.index) || progress.owner === peer) continue;
      this.#takeBlocks(progress, peer, outstanding, max - requests.length, requests, false);
    }
    // 4. endgame: duplicate what others are already fetching
    if (requests.length < max && this.isEndgame) {
      const candidates = [...this.#progress.values()].filter((progress) =>
        pieces.has(progress.index)
      );
      candidates.sort((a, b) => (a.blocks - a.receivedCount) - (b.blocks - b.receivedCount));
      for (const progress of candidates) {
        if (requests.length >= max) break;
        this.#takeBlocks(progress, peer, outstanding, max - requests.length, requests, true);
      }
    }
    return requests;
  }

  /** Takes up to `max` blocks of a piece for `peer`; true when it took any. */
  #takeBlocks(
    progress: PieceProgress,
    peer: PeerKey,
    outstanding: Set<number>,
    max: number,
    into: BlockRequest[],
    duplicate: boolean,
  ): boolean {
    // pick() asks this of every started piece, often: most have nothing left to hand out
    if (!duplicate && progress.unrequested === 0) return false;
    let taken = 0;
    for (let block = 0; block < progress.blocks && taken < max; block++) {
      if (progress.received[block]) continue;
      const requests = progress.requests;
      const askers = requests.count(block);
      if (duplicate ? requests.has(block, peer) : askers > 0) continue;
      if (askers === 0) progress.unrequested--;
      requests.add(block, peer);
      outstanding.add(progress.index * 65536 + block);
      into.push({
        index: progress.index,
        begin: block * BLOCK_LENGTH,
        length: blockSize(progress.size, block),
      });
      taken++;
    }
    return taken > 0;
  }

  /**
   * Random ties spread downloaders over different pieces, so they have something to trade;
   * taken from the first few in file order, pieces still arrive close to the whole-file hash,
   * which follows them in memory (peer/piece_writer_worker.ts) instead of reading them back.
   * With only complete seeders connected there is nobody to trade with: ties then go to the
   * lowest index, and pieces arrive in file order. From a seeder while other downloaders are
   * connected, ties are drawn from all tied pieces: a flash crowd (one sharer capped at 8
   * MiB/s, 8 downloaders, 256 MiB) took 86.0 s with the sharer sending 2.70 copies when they
   * all drew from the first four, and 35.3 s (efficiency 0.37 -> 0.91) with 1.07 copies.
   */
  #choosePiece(pieces: Bitfield): number | undefined {
    const randomPhase = this.#have.count < this.#randomFirst;
    let onlySeeders = true;
    for (const peerPieces of this.#peers.values()) onlySeeders &&= peerPieces.isComplete;
    const randomTies = randomPhase || !onlySeeders;
    // from a seeder while other downloaders are around: spread over every tied piece, so the
    // downloaders ask the seeder for different pieces and trade the rest among themselves
    const spread = randomPhase || (!onlySeeders && pieces.isComplete);
    let best: number | undefined;
    let bestRarity = Infinity;
    let ties = 0;
    for (let index = 0; index < this.#pieceCount; index++) {
      if (!pieces.has(index) || this.#have.has(index) || this.#progress.has(index)) continue;
      const rarity = randomPhase ? 0 : this.#availability[index];
      if (rarity < bestRarity) {
        best = index;
        bestRarity = rarity;
        ties = 1;
      } else if (
        randomTies && rarity === bestRarity && (spread || ties < NEAR_TIES) &&
        this.#random() * ++ties < 1
      ) {
        best = index; // reservoir sampling: each tied piece in reach equally likely
      }
    }
    return best;
  }

  #start(index: number, owner: PeerKey): PieceProgress {
    const size = pieceSize(this.#fileLength, index);
    const blocks = blockCount(size);
    const progress: PieceProgress = {
      index,
      size,
      blocks,
      requests: new BlockRequests(blocks),
      received: new Uint8Array(blocks),
      receivedCount: 0,
      unrequested: blocks,
      owner,
      contributors: new Set(),
    };
    this.#progress.set(index, progress);
    return progress;
  }

  /** A block arrived from `peer`. */
  blockReceived(peer: PeerKey, index: number, begin: number): BlockOutcome {
    const progress = this.#progress.get(index);
    const block = begin / BLOCK_LENGTH;
    if (!progress?.requests.has(block, peer) || progress.received[block]) {
      return { accepted: false, pieceComplete: false, cancels: NO_CANCELS };
    }
    progress.received[block] = 1;
    progress.receivedCount++;
    progress.contributors.add(peer);
    const key = index * 65536 + block;
    let cancels = NO_CANCELS;
    if (progress.requests.count(block) > 1) {
      cancels = progress.requests.peers(block).filter((other) => other !== peer);
      for (const other of cancels) this.#outstanding.get(other)?.delete(key);
    }
    this.#outstanding.get(peer)?.delete(key);
    progress.requests.clear(block);
    return { accepted: true, pieceComplete: progress.receivedCount === progress.blocks, cancels };
  }

  /** Peers that delivered blocks of a piece (to blame when it fails its hash). */
  contributors(index: number): PeerKey[] {
    return [...this.#progress.get(index)?.contributors ?? []];
  }

  /** A complete piece matched its hash. True when that made room for a new piece. */
  pieceVerified(index: number): boolean {
    const roomMade = this.#end(index);
    if (this.#have.add(index)) {
      for (const [peer, pieces] of this.#peers) {
        if (pieces.has(index)) this.#wanted.set(peer, this.#wanted.get(peer)! - 1);
      }
    }
    return roomMade;
  }

  /**
   * A complete piece failed its hash: every block is wanted again, from anyone. True when
   * that made room for a new piece.
   */
  pieceFailed(index: number): boolean {
    return this.#end(index);
  }

  /** Forgets a started piece; true when that made room under `maxStarted` for a new one. */
  #end(index: number): boolean {
    const wasFull = this.isFull;
    this.#progress.delete(index);
    return wasFull && !this.isFull;
  }

  /** Missing pieces no connected peer has: what the download is waiting for. */
  unavailablePieces(): number {
    let count = 0;
    for (let index = 0; index < this.#pieceCount; index++) {
      if (!this.#have.has(index) && this.#availability[index] === 0) count++;
    }
    return count;
  }
}
