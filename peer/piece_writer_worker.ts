/**
 * A download's disk side, on its own thread: writes each piece (already checked against its
 * SHA-1 by the download) at its offset, keeps the whole-file SHA-1 running in file order
 * (from the piece just written when it is the next in order, from a few pieces kept in memory
 * when they arrived just ahead of it, else read back from disk), starts a flush of what it
 * wrote through the page cache every 64 MiB without waiting for it, and at the end fsyncs
 * and reports the digest.
 *
 * Pieces go to the disk with direct I/O where the file system takes it: straight from their
 * slot, with no copy into the page cache and no writeback of it later. On the benchmark
 * machine (ext4 on a virtual disk) a gigabyte took 0.75 s that way, against 2.8-7.5 s written
 * through the cache and flushed, and a quarter of the CPU time. Direct I/O needs the memory,
 * offset and length aligned to the disk's blocks: slots are page-aligned (piece_slots.ts) and
 * pieces start at multiples of 512 KiB, so only a last piece of odd length is written through
 * the cache. Where a direct write fails and the same write through the cache succeeds (the
 * memory or the file system will not take direct I/O), every later write goes through the
 * cache; where both fail, the download fails with the error.
 *
 * Every byte of a download is hashed twice, once for its piece and once for the whole file.
 * The piece hash runs on the main thread and the whole-file hash here, so that on two cores
 * no thread has both: with both here, this thread alone set the pace of a download.
 *
 * Pieces live in slots of memory shared with the download (piece_slots.ts). Messages in:
 * `open`, `write` (the piece's slot, handed back with `written`, or later with `released` when
 * the writer kept it), `finish`, `close`. Messages out: `written`, `released`, `finished`,
 * `failed`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import { PIECE_LENGTH, pieceCount, pieceSize } from "../lib/pieces.ts";
import { slotViews } from "./piece_slots.ts";

/** What the download sends. */
export type WriterRequest =
  | {
    type: "open";
    path: string;
    /** The file the download opened and checked at `path`: the writer opens only that one. */
    identity: { dev: number; ino: number };
    length: number;
    present: number[];
    /**
     * The part file was created for this download and never written: one hole, reading as
     * zeros. A piece of zeros is then not written at all (sparse writes: a file of zeros
     * takes no disk space, as on the sharer's side); a resumed part file may hold stale
     * bytes where no piece was verified, so there every piece is written.
     */
    holes?: boolean;
    /** The download's piece slots. */
    slots: SharedArrayBuffer;
    /** Pieces the writer may keep in their slots ahead of the whole-file hash. */
    maxKept: number;
  }
  | { type: "write"; index: number; slot: number }
  | { type: "finish" }
  | { type: "close" };

/** What the writer answers. */
export type WriterReply =
  /** `slot` is missing when the writer keeps it until the whole-file hash reaches it. */
  | { type: "written"; index: number; slot?: number }
  /** A kept slot, hashed into the whole file and free again. */
  | { type: "released"; slot: number }
  /** `directBytes`: how much of the file was written with direct I/O. */
  | { type: "finished"; sha1: string; directBytes: number }
  | { type: "failed"; message: string };

/** Flush cached writes this often, so that the final fsync has little left to do. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;
/** Direct writes are of whole 4 KiB blocks (the largest logical block size in use) only. */
const DIRECT_BLOCK = 4096;
/**
 * A piece that arrives a little ahead of the whole-file hash (several peers finish their
 * pieces in any order) is kept in its slot until the hash reaches it, instead of being read
 * back from disk: at most `maxKept` pieces, at most KEEP_AHEAD pieces ahead.
 */
const KEEP_AHEAD = 16;

/** True when every byte of `bytes` is zero (four at a time where they are aligned). */
export function isAllZero(bytes: Uint8Array): boolean {
  let aligned = 0;
  if (bytes.byteOffset % 4 === 0) {
    aligned = bytes.length - (bytes.length % 4);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, aligned / 4);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  }
  for (let i = aligned; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The state of one open part file. */
class PieceWriter {
  readonly #fd: number;
  /** The same file opened for direct writes, while the file system takes them. */
  #directFd: number | undefined;
  readonly #length: number;
  readonly #count: number;
  readonly #written: Uint8Array;
  readonly #whole: Hash = createHash("sha1");
  readonly #scratch = new Uint8Array(PIECE_LENGTH);
  readonly #slots: Uint8Array[];
  readonly #maxKept: number;
  /** Slots of pieces written ahead of the cursor and still in memory, by piece index. */
  readonly #kept = new Map<number, number>();
  readonly #release: (slot: number) => void;
  #cursor = 0;
  #unsynced = 0;
  /** Bytes written directly so far. */
  #directBytes = 0;
  /** A flush of earlier writes is running on the runtime's blocking pool. */
  #syncing = false;
  /** Pieces of zeros are left as holes (see `holes` in the open request). */
  readonly #holes: boolean;

  constructor(
    open: Extract<WriterRequest, { type: "open" }>,
    release: (slot: number) => void,
  ) {
    const { path, length, present, identity } = open;
    this.#fd = openSame(path, fs.constants.O_RDWR, identity);
    this.#directFd = openDirect(path, identity);
    this.#slots = slotViews(open.slots);
    this.#maxKept = open.maxKept;
    this.#release = release;
    this.#length = length;
    this.#holes = open.holes === true;
    this.#count = pieceCount(length);
    this.#written = new Uint8Array(this.#count);
    for (const index of present) this.#written[index] = 1;
    this.catchUp();
  }

  /**
   * Writes piece `index`, whose bytes start slot `slot`. Returns "kept" when the writer holds
   * on to the slot (it comes back through `release`), else "written". The whole-file hash
   * takes in this piece when it is next in order, but goes no further: `catchUp` does that,
   * once the download has heard the piece is written.
   */
  write(index: number, slot: number): "written" | "kept" {
    if (!(index >= 0 && index < this.#count)) throw new Error(`piece ${index} out of range`);
    if (!(slot >= 0 && slot < this.#slots.length)) throw new Error(`slot ${slot} out of range`);
    const piece = this.#slots[slot].subarray(0, pieceSize(this.#length, index));
    if (!(this.#holes && isAllZero(piece))) {
      for (let done = 0; done < piece.length;) {
        done += this.#writeSome(piece.subarray(done), index * PIECE_LENGTH + done);
      }
    }
    this.#written[index] = 1;
    if (this.#unsynced >= SYNC_EVERY_BYTES && !this.#syncing) {
      // off this thread: waiting here would stall the pieces queued behind this one, and
      // their buffers with them; the fsync in finish() covers whatever is still unflushed
      this.#syncing = true;
      fs.fdatasync(this.#fd, () => this.#syncing = false);
      this.#unsynced = 0;
    }
    if (index === this.#cursor) {
      this.#whole.update(piece);
      this.#cursor++;
      return "written";
    }
    if (index - this.#cursor <= KEEP_AHEAD && this.#kept.size < this.#maxKept) {
      this.#kept.set(index, slot);
      return "kept";
    }
    // the cursor's piece is still missing, so there is nothing to advance over yet: this
    // piece is read back from disk when the cursor gets here
    return "written";
  }

  /** Writes some of `bytes` at `offset`, directly when it can; how many it wrote. */
  #writeSome(bytes: Uint8Array, offset: number): number {
    const aligned = (bytes.byteOffset | bytes.length | offset) % DIRECT_BLOCK === 0;
    if (this.#directFd === undefined || !aligned) return this.#writeCached(bytes, offset);
    try {
      const written = fs.writeSync(this.#directFd, bytes, 0, bytes.length, offset);
      this.#directBytes += written;
      return written;
    } catch {
      // EINVAL for memory or a file system that will not do direct I/O, other codes from some
      // file systems that open with O_DIRECT but refuse the write: the cache takes it, and
      // every later one; if it cannot either, the disk is the problem and this fails
      const written = this.#writeCached(bytes, offset);
      fs.closeSync(this.#directFd);
      this.#directFd = undefined;
      return written;
    }
  }

  #writeCached(bytes: Uint8Array, offset: number): number {
    const written = fs.writeSync(this.#fd, bytes, 0, bytes.length, offset);
    this.#unsynced += written;
    return written;
  }

  /**
   * Moves the whole-file hash over the written pieces it has reached: kept ones from their
   * slots (handing the slots to `release`), the others read back from disk.
   */
  catchUp(): void {
    while (this.#cursor < this.#count && this.#written[this.#cursor]) {
      const slot = this.#kept.get(this.#cursor);
      if (slot !== undefined) {
        this.#kept.delete(this.#cursor);
        this.#whole.update(this.#slots[slot].subarray(0, pieceSize(this.#length, this.#cursor)));
        this.#release(slot);
      } else {
        this.#whole.update(this.#readBack(this.#cursor));
      }
      this.#cursor++;
    }
  }

  #readBack(index: number): Uint8Array {
    const size = pieceSize(this.#length, index);
    const piece = this.#scratch.subarray(0, size);
    for (let done = 0; done < size;) {
      const read = fs.readSync(this.#fd, piece, done, size - done, index * PIECE_LENGTH + done);
      if (read === 0) throw new Error("the part file is shorter than expected");
      done += read;
    }
    return piece;
  }

  finish(): Extract<WriterReply, { type: "finished" }> {
    if (this.#cursor !== this.#count) throw new Error(`piece ${this.#cursor} was never written`);
    fs.fsyncSync(this.#fd);
    return { type: "finished", sha1: this.#whole.digest("hex"), directBytes: this.#directBytes };
  }

  close(): void {
    if (this.#directFd !== undefined) fs.closeSync(this.#directFd);
    fs.closeSync(this.#fd);
  }
}

/**
 * Opens `path` without following a symbolic link, and only if it still is the file the
 * download checked (`identity`): a part file swapped for another mid-download is refused.
 */
function openSame(path: string, flags: number, identity: { dev: number; ino: number }): number {
  const fd = fs.openSync(path, flags | fs.constants.O_NOFOLLOW);
  const info = fs.fstatSync(fd);
  if (!info.isFile() || info.dev !== identity.dev || info.ino !== identity.ino) {
    fs.closeSync(fd);
    throw new Error(`${path} is no longer the part file this download opened`);
  }
  return fd;
}

/** `path` opened for direct writes; undefined where the system has no such thing for it. */
function openDirect(path: string, identity: { dev: number; ino: number }): number | undefined {
  const { O_DIRECT, O_WRONLY } = fs.constants;
  if (O_DIRECT === undefined) return undefined;
  try {
    return openSame(path, O_WRONLY | O_DIRECT, identity);
  } catch {
    return undefined;
  }
}

let writer: PieceWriter | undefined;

self.onmessage = (event: MessageEvent<WriterRequest>) => {
  const request = event.data;
  try {
    switch (request.type) {
      case "open":
        writer = new PieceWriter(
          request,
          (slot) => self.postMessage({ type: "released", slot } satisfies WriterReply),
        );
        return;
      case "write": {
        const { index, slot } = request;
        const kept = writer!.write(index, slot) === "kept";
        self.postMessage(
          (kept
            ? { type: "written", index }
            : { type: "written", index, slot }) satisfies WriterReply,
        );
        // after the reply: a piece that filled a gap may have the hash read back many after
        // it (16 downloaders at 8 MiB/s: up to 170 ms on the busy machine), and peers waiting
        // for this piece hear of it only once the download has the reply
        writer!.catchUp();
        return;
      }
      case "finish":
        self.postMessage(writer!.finish() satisfies WriterReply);
        return;
      case "close":
        writer?.close();
        writer = undefined;
        self.close();
        return;
    }
  } catch (error) {
    self.postMessage({ type: "failed", message: (error as Error).message } satisfies WriterReply);
  }
};
