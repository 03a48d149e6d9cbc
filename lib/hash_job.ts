/**
 * What `hashFile` (hash.ts) and its helper thread (hash_worker.ts) share while they hash one
 * file: a counter through which piece hashes are claimed in piece order, so that each is done
 * exactly once by whichever thread gets to it first, a flag per piece once its digest is in,
 * and the digests. Each thread reads the pieces it needs into a buffer of its own
 * (`PieceReader`): the main thread every piece, for the whole-file hash, hashing a piece
 * itself where the helper has not claimed it yet; the helper the pieces it claims.
 *
 * No piece bytes are shared. They used to be, in a ring of buffers both threads read, and
 * every read into a slot the other core had touched cost 3-4 times a read into a buffer of
 * the thread's own (the other core's copies of its cache lines must be taken away first):
 * more than reading every piece twice, once per thread.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { UserError } from "./errors.ts";
import { PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount, pieceSize } from "./pieces.ts";

/** Cells of the control array. */
const CLAIMED = 0; // piece hashes claimed so far: pieces 0..CLAIMED-1 are someone's
const EPOCH = 1; // bumped whenever a piece is claimed or hashed, or the job stops
const STOP = 2; // set when the job is over, for whatever reason
const CONTROL_LENGTH = 3;

/** Which file a path names, so that a second opener can tell it opened the same one. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The shared memory of one job: what is posted to the helper. */
export interface HashJobMemory {
  path: string;
  length: number;
  /** The file the main thread has open at `path` (absent where the system gives no inode). */
  identity?: FileIdentity;
  control: SharedArrayBuffer;
  /** Per piece: 1 once its digest is in. */
  hashed: SharedArrayBuffer;
  /** 20 bytes per piece. */
  digests: SharedArrayBuffer;
}

/** The helper thread has left a job: every piece hash was claimed, or the job stopped. */
export interface HelperDone {
  done: true;
}

/** Why the helper thread left a job before it was done. */
export interface HelperGone {
  gone: string;
}

/** One thread's view of a job's shared memory. */
export class HashJob {
  readonly memory: HashJobMemory;
  readonly count: number;
  readonly #control: Int32Array;
  readonly #hashed: Int32Array;
  readonly #digests: Uint8Array;

  /** A new job for the file at `path`, of `length` bytes. */
  static create(path: string, length: number, identity?: FileIdentity): HashJob {
    const count = pieceCount(length);
    return new HashJob({
      path,
      length,
      identity,
      control: new SharedArrayBuffer(CONTROL_LENGTH * Int32Array.BYTES_PER_ELEMENT),
      hashed: new SharedArrayBuffer(count * Int32Array.BYTES_PER_ELEMENT),
      digests: new SharedArrayBuffer(count * PIECE_HASH_LENGTH),
    });
  }

  constructor(memory: HashJobMemory) {
    this.memory = memory;
    this.count = pieceCount(memory.length);
    this.#control = new Int32Array(memory.control);
    this.#hashed = new Int32Array(memory.hashed);
    this.#digests = new Uint8Array(memory.digests);
  }

  // Claiming

  /** Takes the hash of piece `index` if it is the next unclaimed one; true if it is now ours. */
  claim(index: number): boolean {
    if (index >= this.count) return false;
    if (Atomics.compareExchange(this.#control, CLAIMED, index, index + 1) !== index) return false;
    this.#bump();
    return true;
  }

  /** Takes the hash of the next unclaimed piece: its index, or -1 once every piece is claimed. */
  claimNext(): number {
    for (let index = this.claimed; index < this.count; index = this.claimed) {
      if (this.claim(index)) return index;
    }
    return -1;
  }

  /** How many piece hashes have been claimed so far (they are claimed in piece order). */
  get claimed(): number {
    return Atomics.load(this.#control, CLAIMED);
  }

  // Hashing

  /** Hashes `piece`, the bytes of piece `index` (claimed), into the digests. */
  hashPiece(index: number, piece: Uint8Array): void {
    const digest = createHash("sha1").update(piece).digest();
    this.#digests.set(digest, index * PIECE_HASH_LENGTH);
    Atomics.store(this.#hashed, index, 1);
    this.#bump();
  }

  isHashed(index: number): boolean {
    return Atomics.load(this.#hashed, index) === 1;
  }

  /** A copy of every piece digest, to outlive the shared memory. */
  digests(): Uint8Array {
    return this.#digests.slice();
  }

  // Waiting and stopping

  /** Changes whenever a piece is claimed or hashed, or the job stops: read, look, then wait. */
  get epoch(): number {
    return Atomics.load(this.#control, EPOCH);
  }

  /** Resolves when something changed since `epoch`, or after `ms`. */
  async changed(epoch: number, ms: number): Promise<void> {
    const waiting = Atomics.waitAsync(this.#control, EPOCH, epoch, ms);
    if (waiting.async) await waiting.value;
  }

  get isStopped(): boolean {
    return Atomics.load(this.#control, STOP) !== 0;
  }

  /** Ends the job: the helper leaves it after the piece it is on. */
  stop(): void {
    Atomics.store(this.#control, STOP, 1);
    this.#bump();
  }

  #bump(): void {
    Atomics.add(this.#control, EPOCH, 1);
    Atomics.notify(this.#control, EPOCH);
  }
}

/**
 * Reads whole pieces of one file through a handle and a piece buffer that belong to one
 * thread. It seeks only when the piece asked for is not the next one, so reading in order
 * costs one read call a piece.
 */
export class PieceReader {
  readonly #file: Deno.FsFile;
  readonly #length: number;
  readonly #buffer: Uint8Array;
  /** Where the handle is: the piece after the last one read. */
  #next = 0;

  /** Reads the `length`-byte file open as `file` into `buffer` (a piece long at least). */
  constructor(file: Deno.FsFile, length: number, buffer: Uint8Array) {
    if (buffer.length < Math.min(length, PIECE_LENGTH)) {
      throw new RangeError(`a piece buffer of ${buffer.length} bytes is too small`);
    }
    this.#file = file;
    this.#length = length;
    this.#buffer = buffer;
  }

  /** Piece `index`, in the buffer (valid until the next read). */
  read(index: number): Uint8Array {
    const piece = this.#buffer.subarray(0, pieceSize(this.#length, index));
    if (index !== this.#next) this.#file.seekSync(index * PIECE_LENGTH, Deno.SeekMode.Start);
    this.#next = -1; // unknown, should the read fail midway
    for (let done = 0; done < piece.length;) {
      const read = this.#file.readSync(piece.subarray(done));
      if (read === null || read === 0) {
        throw new UserError("the file shrank while it was being read");
      }
      done += read;
    }
    this.#next = index + 1;
    return piece;
  }
}

/**
 * A piece buffer whose pages are resident, written once both ways a read and a hash will
 * touch them: by the kernel, reading /dev/zero into it (as file reads will), and by this
 * thread (by this thread alone where /dev/zero cannot be opened). On this project's virtual
 * machine a page's first write costs about 16 µs, and the first touch of a page by the kernel
 * or by a thread, where the other one touched it before, up to 8 µs more: a fresh buffer
 * slowed a thread's first piece reads from 0.05 to 1 ms and its first hashes from 0.3 to 1 ms.
 * Elsewhere this is a 512 KiB read and memset.
 */
export function residentPieceBuffer(): Uint8Array {
  const buffer = new Uint8Array(PIECE_LENGTH);
  try {
    using zero = Deno.openSync("/dev/zero");
    for (let done = 0; done < buffer.length;) {
      const read = zero.readSync(buffer.subarray(done));
      if (!read) break;
      done += read;
    }
  } catch {
    // no /dev/zero here: the fill below does what can be done
  }
  buffer.fill(0);
  return buffer;
}
