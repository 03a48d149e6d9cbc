/**
 * Streaming SHA-1 of a file: the digest of every 512 KiB piece and of the whole file. Each
 * of two threads reads the file through a piece buffer of its own, so what it holds is 1 MiB
 * of buffers and 24 bytes a piece of digests and flags, whatever the file size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { UserError } from "./errors.ts";
import { PIECE_LENGTH } from "./pieces.ts";
import {
  type FileIdentity,
  HashJob,
  type HelperDone,
  type HelperGone,
  PieceReader,
  residentPieceBuffer,
} from "./hash_job.ts";
/** The hashes of a whole file. */
export interface FileHashes {
  length: number;
  /** Concatenated 20-byte piece digests. */
  pieceHashes: Uint8Array;
  /** Whole-file SHA-1, lowercase hex. */
  sha1: string;
}

/** How `hashFile` runs; the defaults suit every caller. */
export interface HashOptions {
  signal?: AbortSignal;
  /**
   * The helper thread's module, or null for none. By default the `helperThread` when it is
   * free, else a helper (hash_worker.ts) started for this file if it has at least
   * HELPER_MIN_PIECES pieces and the machine more than one core.
   */
  helper?: URL | null;
  /** A helper thread kept started between files, to use when it is free. */
  helperThread?: HelperThread;
  /**
   * Told the bytes read so far and the file's length every few milliseconds (when the main
   * thread lets its event loop run) and once at the end; for a progress line.
   */
  onProgress?: (bytesHashed: number, bytesTotal: number) => void;
}

/** The SHA-1 of `bytes` (20 bytes). */
export function sha1(bytes: Uint8Array): Uint8Array {
  return createHash("sha1").update(bytes).digest();
}

/**
 * Smaller files are hashed by the main thread alone unless a kept helper is free: a new
 * helper takes about 50 ms to start, the time the main thread needs for some 64 pieces.
 */
export const HELPER_MIN_PIECES = 64;

/** The helper that hashFile uses unless told otherwise. */
const HELPER_MODULE = new URL("./hash_worker.ts", import.meta.url);

/** A helper pays only where it gets a core of its own. */
const helperCanRun = () => navigator.hardwareConcurrency > 1;

/**
 * The main thread lets the event loop run at least this often while it hashes, so that the
 * client goes on serving peers and answering. A turn of a client's event loop costs about
 * 65 µs here: every 2 ms that was 3% of a file's hashing.
 */
const YIELD_EVERY_MS = 5;

/**
 * A helper that hashes nothing for this long is taken to be stuck, and what it claimed is
 * hashed on the main thread: a piece takes it about 0.4 ms.
 */
const HELPER_STALL_MS = 100;

/** A helper thread working on one file's job. */
export interface Helper {
  /** Resolves if the helper gives up on this file or dies. */
  failed: Promise<void>;
  /** Resolves once the helper is off the file, done or not. */
  left: Promise<void>;
  /** Lets the thread go once the job is stopped. */
  release(): void;
}

/** What a helper thread says when it leaves a file. */
type HelperReply = MessageEvent<HelperDone | HelperGone>;

/** Starts `module` (a helper such as hash_worker.ts) on `job`; undefined if it cannot start. */
export function startHelper(job: HashJob, module: URL): Helper | undefined {
  let worker: Worker;
  try {
    worker = new Worker(module.href, { type: "module" });
  } catch {
    return undefined; // the main thread hashes alone
  }
  const failed = Promise.withResolvers<void>();
  const left = Promise.withResolvers<void>();
  // a helper that gives up says so (HelperGone); one that crashes raises an error event
  worker.onmessage = (event: HelperReply) => {
    if ("gone" in event.data) failed.resolve();
    left.resolve();
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failed.resolve();
    left.resolve();
  };
  worker.postMessage(job.memory);
  return { failed: failed.promise, left: left.promise, release: () => worker.terminate() };
}

/** What hashing one file works with: the shared job, a helper on it, the main thread's buffer. */
export interface HashingSetup {
  job: HashJob;
  helper?: Helper;
  /** The main thread's piece buffer. */
  buffer: Uint8Array;
}

/** A file the kept thread is lent for, until both threads are off it. */
interface Loan {
  /** Resolves if the helper gives up on the file or dies. */
  failed: PromiseWithResolvers<void>;
  /** Resolves once the helper is off the file. */
  left: PromiseWithResolvers<void>;
  /** Resolves once both threads are off the file. */
  over: PromiseWithResolvers<void>;
  helperLeft: boolean;
  mainLeft: boolean;
}

/**
 * A helper thread kept started between files, one file at a time, so that hashing a file
 * starts on two cores at once: a new thread takes 40-100 ms to start, 5-10% of hashing a
 * gigabyte. It keeps the main thread's piece buffer for its files too. Both threads' buffers
 * are made resident when it starts, because on this machine the first reads and hashes in
 * fresh memory cost about 1 ms a piece instead of 0.05 and 0.3 (hash_job.ts
 * `residentPieceBuffer`). It costs about 16 MiB while it waits. On a one-core machine it
 * starts nothing.
 */
export class HelperThread implements Disposable {
  #worker: Worker | undefined;
  /** The main thread's piece buffer for the files the thread takes. */
  #buffer: Uint8Array | undefined;
  #loan: Loan | undefined;
  #filesTaken = 0;
  #disposed = false;

  constructor(module: URL = HELPER_MODULE) {
    if (!helperCanRun()) return;
    try {
      this.#worker = new Worker(module.href, { type: "module" });
    } catch {
      return; // every file starts a helper of its own
    }
    this.#buffer = residentPieceBuffer();
    this.#worker.onmessage = (event: HelperReply) => {
      const loan = this.#loan;
      if (!loan) return;
      if ("gone" in event.data) loan.failed.resolve();
      this.#helperLeft(loan);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#terminate(); // a thread that died takes no more files
    };
  }

  /** How many files it has been lent so far. */
  get filesTaken(): number {
    return this.#filesTaken;
  }

  /** True while the thread can take a file. */
  get isFree(): boolean {
    return this.#worker !== undefined && this.#loan === undefined && !this.#disposed;
  }

  /** Resolves once both threads are off the file it is lent for (at once if it has none). */
  whenFree(): Promise<void> {
    return this.#loan?.over.promise ?? Promise.resolve();
  }

  /**
   * A job for the file at `path` with the thread put to work on it, and the kept buffer for
   * the main thread's part; undefined if the thread is busy with another file or gone. The
   * helper leaves the file by itself once the job is stopped; the buffer is the next file's
   * once the main thread has released the helper too.
   */
  lend(path: string, length: number, identity: FileIdentity): Required<HashingSetup> | undefined {
    if (!this.isFree) return undefined;
    const job = HashJob.create(path, length, identity);
    const loan: Loan = {
      failed: Promise.withResolvers<void>(),
      left: Promise.withResolvers<void>(),
      over: Promise.withResolvers<void>(),
      helperLeft: false,
      mainLeft: false,
    };
    this.#loan = loan;
    this.#filesTaken++;
    this.#worker!.postMessage(job.memory);
    const release = () => {
      loan.mainLeft = true;
      this.#settle(loan);
    };
    const helper = { failed: loan.failed.promise, left: loan.left.promise, release };
    return { job, helper, buffer: this.#buffer! };
  }

  /** Ends the thread at once; the file it may be at work on is left to the main thread. */
  [Symbol.dispose](): void {
    this.#disposed = true;
    this.#terminate();
  }

  #helperLeft(loan: Loan): void {
    loan.helperLeft = true;
    loan.left.resolve();
    this.#settle(loan);
  }

  /** Ends the loan once both threads are off the file. */
  #settle(loan: Loan): void {
    if (!loan.helperLeft || !loan.mainLeft) return;
    loan.over.resolve();
    if (this.#loan === loan) this.#loan = undefined;
  }

  #terminate(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#buffer = undefined;
    const loan = this.#loan;
    if (!loan) return;
    loan.failed.resolve();
    this.#helperLeft(loan);
  }
}

/**
 * Hashes a whole file as a stream: every piece and the whole.
 *
 * Every byte is hashed twice, and the whole-file hash cannot be split. The main thread reads
 * every piece for the whole-file hash; a helper thread (hash_worker.ts) claims piece hashes
 * one after another and reads what it claims; the main thread hashes a piece itself when the
 * helper has not claimed it by the time it gets there (hash_job.ts). So the work balances by
 * itself: until the helper has started, and if it ever fails, the main thread does it all. On
 * two cores a file hashes in little more than one SHA-1 pass. The main thread lets its event
 * loop run every few milliseconds meanwhile; its reads block (about 0.05 ms a piece from the
 * page cache, a few ms from a slow disk), because an async read's round trip cost more here
 * than the read itself. The two threads read the file apart, so a file that changes while it
 * is hashed may give hashes of no one version of it: callers compare its size and mtime
 * before and after.
 */
export async function hashFile(path: string, options: HashOptions = {}): Promise<FileHashes> {
  options.signal?.throwIfAborted();
  // looked at before it is opened: opening a named pipe would wait for a writer
  if (!(await Deno.stat(path)).isFile) throw new UserError(`${path} is not a regular file`);
  using file = await Deno.open(path);
  const info = await file.stat();
  if (!info.isFile) throw new UserError(`${path} is not a regular file`);
  return await hashOpenFile(file, path, info, options);
}

/**
 * `hashFile` of the first `size` bytes of `file`, open at `path`, whose device and inode are
 * given (from its `stat`). A helper opens `path` itself and works only if that is still the
 * same file.
 */
export async function hashOpenFile(
  file: Deno.FsFile,
  path: string,
  { size, dev, ino }: Pick<Deno.FileInfo, "size" | "dev" | "ino">,
  options: HashOptions = {},
): Promise<FileHashes> {
  const identity = ino === null ? undefined : { dev, ino };
  const { job, helper, buffer } = setUp(path, size, identity, options);
  try {
    return await hashInJob(
      new PieceReader(file, size, buffer),
      job,
      helper,
      options.signal,
      options.onProgress,
    );
  } finally {
    job.stop();
    helper?.release();
  }
}

/**
 * A job for the file at `path`, with the helper `options` ask for, if any: the kept thread
 * whenever it is free, whatever the size, since it costs nothing to start; else a thread
 * started for this file, if it is large enough to pay for that. A helper needs the file's
 * identity, to check that it opens the same file.
 */
function setUp(
  path: string,
  length: number,
  identity: FileIdentity | undefined,
  options: HashOptions,
): HashingSetup {
  if (identity && options.helper === undefined) {
    const kept = options.helperThread?.lend(path, length, identity);
    if (kept) return kept;
  }
  const job = HashJob.create(path, length, identity);
  // used for this file only: made resident, it would cost what its first reads cost
  const buffer = new Uint8Array(Math.min(length, PIECE_LENGTH));
  if (!identity) return { job, buffer };
  if (options.helper !== undefined) {
    const helper = options.helper ? startHelper(job, options.helper) : undefined;
    return { job, helper, buffer };
  }
  if (job.count < HELPER_MIN_PIECES || !helperCanRun()) return { job, buffer };
  return { job, helper: startHelper(job, HELPER_MODULE), buffer };
}

/**
 * The main thread's part of `hashOpenFile`, reading through `reader` on a job that `helper`
 * (if any) works on too: every piece for the whole-file hash, and the hash of every piece
 * the helper has not claimed by then, or left unhashed when it gave up.
 */
export async function hashInJob(
  reader: PieceReader,
  job: HashJob,
  helper: Helper | undefined,
  signal?: AbortSignal,
  onProgress?: (bytesHashed: number, bytesTotal: number) => void,
): Promise<FileHashes> {
  const whole = createHash("sha1");
  const length = job.memory.length;
  let yielded = performance.now();
  for (let index = 0; index < job.count; index++) {
    signal?.throwIfAborted();
    const piece = reader.read(index);
    whole.update(piece);
    if (job.claim(index)) job.hashPiece(index, piece);
    if (performance.now() - yielded >= YIELD_EVERY_MS) {
      onProgress?.(Math.min(length, (index + 1) * PIECE_LENGTH), length);
      await new Promise((resolve) => setImmediate(resolve));
      yielded = performance.now();
    }
  }
  // every piece is claimed now; the helper may still be on its last ones
  await helperPieces(reader, job, helper, signal);
  onProgress?.(length, length);
  return { length, pieceHashes: job.digests(), sha1: whole.digest("hex") };
}

/**
 * Waits for the pieces `helper` claimed to be hashed, and hashes here those it left: all of
 * them once it gives up or dies, or hashes nothing for HELPER_STALL_MS (a read can block on a
 * file system that hangs). Should a stalled helper come back, it writes the same digests.
 */
async function helperPieces(
  reader: PieceReader,
  job: HashJob,
  helper: Helper | undefined,
  signal?: AbortSignal,
): Promise<void> {
  let leftToUs = !helper;
  const aborted = Promise.withResolvers<void>();
  const onAbort = () => aborted.resolve();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (let index = 0; index < job.count;) {
      signal?.throwIfAborted();
      const epoch = job.epoch;
      if (job.isHashed(index)) {
        index++;
      } else if (leftToUs) {
        job.hashPiece(index, reader.read(index));
      } else {
        leftToUs = await Promise.race([
          job.changed(epoch, HELPER_STALL_MS).then(() => job.epoch === epoch),
          helper!.failed.then(() => true),
          aborted.promise.then(() => false),
        ]);
      }
    }
    signal?.throwIfAborted();
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
