/**
 * What `hashFile` (hash.ts) and its helper thread (hash_worker.ts) share: a ring of piece
 * buffers in shared memory and a few cells that say which pieces are read, which are hashed,
 * and how far the whole-file hash has come.
 *
 * Reading a piece and hashing a piece are claimed through two counters, in piece order, so
 * each is done exactly once, by whichever thread gets to it first; the whole-file hash, which
 * must see the pieces in order, belongs to the main thread. A piece's slot is reused once
 * both hashes have seen it. Every change bumps one `epoch` cell, which is what a thread with
 * nothing to do waits on.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { UserError } from "./errors.ts";
import { PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount, pieceSize } from "./pieces.ts";

/** Piece buffers in the ring: enough to ride out uneven reads and scheduling. */
export const RING_SLOTS = 8;

/** Cells of the control array. */
const READS_CLAIMED = 0; // pieces taken for reading so far
const HASHES_CLAIMED = 1; // pieces taken for piece hashing so far
const WHOLE_DONE = 2; // pieces fed to the whole-file hash so far
const EPOCH = 3; // bumped on every change
const STOP = 4; // set when the job is over, for whatever reason
const CONTROL_LENGTH = 5;

/** Which file a path names, so that a second opener can tell it opened the same one. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The slots and cells of a ring, which one job after another can use. */
export interface RingMemory {
  control: SharedArrayBuffer;
  /** Per slot: 1 + the index of the piece read into it (0: none yet). */
  read: SharedArrayBuffer;
  /** Per slot: 1 + the index of the last piece hashed in it (0: none yet). */
  hashed: SharedArrayBuffer;
  ring: SharedArrayBuffer;
}

export const RingMemory = {
  /**
   * Memory for a ring of `slots` piece buffers. Its pages are made resident only as they
   * are first written; `resident` does that at once, so that the jobs that reuse it never
   * pay for it (see `makeResident`).
   */
  create(slots: number = RING_SLOTS, { resident = false } = {}): RingMemory {
    const cells = (n: number) => new SharedArrayBuffer(n * Int32Array.BYTES_PER_ELEMENT);
    const ring = new SharedArrayBuffer(slots * PIECE_LENGTH);
    if (resident) makeResident(new Uint8Array(ring));
    return { control: cells(CONTROL_LENGTH), read: cells(slots), hashed: cells(slots), ring };
  },
};

/**
 * Writes every page of `bytes` once both ways a job will touch it: by the kernel, reading
 * /dev/zero into it (as file reads will), and by this thread. On this project's virtual
 * machine a page's first write costs about 16 µs, and the first touch of a page by the
 * kernel or by a thread, where the other one touched it before, up to 8 µs more: a fresh
 * ring slowed the first piece reads from 0.05 to 1 ms and the first whole-file hash steps
 * from 0.3 to 1 ms. Elsewhere this is a 4 MiB memset and read.
 */
function makeResident(bytes: Uint8Array): void {
  try {
    using zero = Deno.openSync("/dev/zero");
    for (let done = 0; done < bytes.length;) {
      const read = zero.readSync(bytes.subarray(done));
      if (!read) break;
      done += read;
    }
  } catch {
    // no /dev/zero here: the fill below does what can be done
  }
  bytes.fill(0);
}

/** The shared memory of one job: what is posted to the helper. */
export interface HashRingMemory extends RingMemory {
  path: string;
  length: number;
  /** The file the main thread has open at `path` (absent where the system gives no inode). */
  identity?: FileIdentity;
  /** 20 bytes per piece. */
  digests: SharedArrayBuffer;
}

/** The helper thread has left a job: every step was claimed, or the job stopped. */
export interface HelperDone {
  done: true;
}

/** Why the helper thread left a job before it was done. */
export interface HelperGone {
  gone: string;
}

/** One thread's view of a job's shared memory. */
export class HashRing {
  readonly memory: HashRingMemory;
  readonly count: number;
  readonly #control: Int32Array;
  readonly #read: Int32Array;
  readonly #hashed: Int32Array;
  readonly #slots: Uint8Array[];
  readonly #digests: Uint8Array;

  /**
   * A new ring for the file at `path`, of `length` bytes: in `kept` memory (of a job that
   * is over) when given, else in memory of its own, as many slots as the file needs.
   */
  static create(
    path: string,
    length: number,
    identity?: FileIdentity,
    kept?: RingMemory,
  ): HashRing {
    const count = pieceCount(length);
    let memory = kept;
    if (memory) {
      // a new job starts from no claims, no reads, no hashes; the slots' bytes are overwritten
      for (const cells of [memory.control, memory.read, memory.hashed]) {
        new Int32Array(cells).fill(0);
      }
    } else {
      memory = RingMemory.create(Math.max(1, Math.min(RING_SLOTS, count)));
    }
    return new HashRing({
      ...memory,
      path,
      length,
      identity,
      digests: new SharedArrayBuffer(count * PIECE_HASH_LENGTH),
    });
  }

  constructor(memory: HashRingMemory) {
    this.memory = memory;
    this.count = pieceCount(memory.length);
    this.#control = new Int32Array(memory.control);
    this.#read = new Int32Array(memory.read);
    this.#hashed = new Int32Array(memory.hashed);
    this.#slots = Array.from(
      { length: this.#read.length },
      (_, slot) => new Uint8Array(memory.ring, slot * PIECE_LENGTH, PIECE_LENGTH),
    );
    this.#digests = new Uint8Array(memory.digests);
  }

  get slotCount(): number {
    return this.#slots.length;
  }

  /** The buffer that holds piece `index`, cut to the piece's size. */
  piece(index: number): Uint8Array {
    return this.#slots[index % this.#slots.length].subarray(
      0,
      pieceSize(this.memory.length, index),
    );
  }

  // Reading

  /** Takes the next piece to read, if its slot is free; its index, or -1. */
  claimRead(): number {
    const index = Atomics.load(this.#control, READS_CLAIMED);
    if (index >= this.count) return -1;
    const previous = index - this.#slots.length; // the piece the slot holds
    if (previous >= 0 && !(this.isHashed(previous) && this.wholeDone > previous)) return -1;
    return Atomics.compareExchange(this.#control, READS_CLAIMED, index, index + 1) === index
      ? index
      : -1;
  }

  /** Reads piece `index` into its slot through `file`, a handle of this thread's own. */
  readPiece(file: Deno.FsFile, index: number): void {
    const piece = this.piece(index);
    file.seekSync(index * PIECE_LENGTH, Deno.SeekMode.Start);
    for (let done = 0; done < piece.length;) {
      const read = file.readSync(piece.subarray(done));
      if (read === null || read === 0) {
        throw new UserError("the file shrank while it was being read");
      }
      done += read;
    }
    this.#settle(this.#read, index);
  }

  isRead(index: number): boolean {
    return Atomics.load(this.#read, index % this.#slots.length) === index + 1;
  }

  // Hashing

  /** Takes the next piece to hash, if it has been read; its index, or -1. */
  claimHash(): number {
    const index = Atomics.load(this.#control, HASHES_CLAIMED);
    if (index >= this.count || !this.isRead(index)) return -1;
    return Atomics.compareExchange(this.#control, HASHES_CLAIMED, index, index + 1) === index
      ? index
      : -1;
  }

  /** Hashes piece `index` (claimed, and read) into the digests. */
  hashPiece(index: number): void {
    const digest = createHash("sha1").update(this.piece(index)).digest();
    this.#digests.set(digest, index * PIECE_HASH_LENGTH);
    this.#settle(this.#hashed, index);
  }

  isHashed(index: number): boolean {
    return Atomics.load(this.#hashed, index % this.#slots.length) === index + 1;
  }

  /** How many pieces have been taken for reading and for hashing so far. */
  get claims(): { reads: number; hashes: number } {
    return {
      reads: Atomics.load(this.#control, READS_CLAIMED),
      hashes: Atomics.load(this.#control, HASHES_CLAIMED),
    };
  }

  /** True when every piece has been taken for reading and for hashing. */
  get isAllClaimed(): boolean {
    return Atomics.load(this.#control, READS_CLAIMED) >= this.count &&
      Atomics.load(this.#control, HASHES_CLAIMED) >= this.count;
  }

  /**
   * Finishes the step a thread that died had claimed and not done: a piece read or a piece
   * hash. Only for a thread that is gone, so that nothing changes meanwhile.
   */
  finishAbandoned(file: Deno.FsFile): void {
    const reads = Atomics.load(this.#control, READS_CLAIMED);
    for (let index = this.wholeDone; index < reads; index++) {
      if (!this.isRead(index)) this.readPiece(file, index);
    }
    const hashes = Atomics.load(this.#control, HASHES_CLAIMED);
    for (let index = Math.max(0, hashes - this.#slots.length); index < hashes; index++) {
      // a slot that holds a later piece was hashed before it was reused
      if (this.isRead(index) && !this.isHashed(index)) this.hashPiece(index);
    }
  }

  // The whole-file hash (main thread)

  get wholeDone(): number {
    return Atomics.load(this.#control, WHOLE_DONE);
  }

  /** Says that the whole-file hash has seen piece `index`. */
  markWholeDone(index: number): void {
    Atomics.store(this.#control, WHOLE_DONE, index + 1);
    this.#bump();
  }

  // Waiting

  /** Changes with everything above: read before looking, then wait on it. */
  get epoch(): number {
    return Atomics.load(this.#control, EPOCH);
  }

  /** Blocks (on the helper) until something changed since `epoch`, or 1 s. */
  waitForChange(epoch: number): void {
    Atomics.wait(this.#control, EPOCH, epoch, 1000);
  }

  /** Resolves when something changed since `epoch`, or after `ms`. */
  async changed(epoch: number, ms: number): Promise<void> {
    const waiting = Atomics.waitAsync(this.#control, EPOCH, epoch, ms);
    if (waiting.async) await waiting.value;
  }

  get isStopped(): boolean {
    return Atomics.load(this.#control, STOP) !== 0;
  }

  /** Ends the job and wakes a waiting helper, so it sees that now. */
  stop(): void {
    Atomics.store(this.#control, STOP, 1);
    this.#bump();
  }

  /** A copy of every piece digest, to outlive the shared memory. */
  digests(): Uint8Array {
    return this.#digests.slice();
  }

  #settle(cells: Int32Array, index: number): void {
    Atomics.store(cells, index % this.#slots.length, index + 1);
    this.#bump();
  }

  #bump(): void {
    Atomics.add(this.#control, EPOCH, 1);
    Atomics.notify(this.#control, EPOCH);
  }
}
