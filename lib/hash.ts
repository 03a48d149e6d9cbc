/**
 * Streaming SHA-1 of a file: the digest of every 512 KiB piece and of the whole file, in one
 * read of the file through a ring of eight piece buffers, so memory stays at about 4 MiB
 * whatever the file size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { UserError } from "./errors.ts";
import {
  type FileIdentity,
  HashRing,
  type HelperDone,
  type HelperGone,
  RING_SLOTS,
  RingMemory,
} from "./hash_ring.ts";

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

/** The main thread lets the event loop run at least this often while it hashes. */
const YIELD_EVERY_MS = 2;

/** How long to wait for the helper before looking whether it is still alive. */
const HELPER_CHECK_MS = 100;

/** A helper thread working on one file's ring. */
export interface Helper {
  /** Resolves if the helper gives up on this file or dies. */
  failed: Promise<void>;
  /** Lets the thread go once the ring is stopped. */
  release(): void;
}

/** What a helper thread says when it leaves a file. */
type HelperReply = MessageEvent<HelperDone | HelperGone>;

/** Starts `module` (a helper such as hash_worker.ts) on `ring`; undefined if it cannot start. */
export function startHelper(ring: HashRing, module: URL): Helper | undefined {
  let worker: Worker;
  try {
    worker = new Worker(module.href, { type: "module" });
  } catch {
    return undefined; // the main thread hashes alone
  }
  const failed = Promise.withResolvers<void>();
  // a helper that gives up says so (HelperGone); one that crashes raises an error event
  worker.onmessage = (event: HelperReply) => {
    if ("gone" in event.data) failed.resolve();
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failed.resolve();
  };
  worker.postMessage(ring.memory);
  return { failed: failed.promise, release: () => worker.terminate() };
}

/** A ring with a helper thread at work on it. */
export interface RingWithHelper {
  ring: HashRing;
  helper: Helper;
}

/**
 * A helper thread kept started between files, one file at a time, so that hashing a file
 * starts on two cores at once: a new thread takes 40-100 ms to start, 5-10% of hashing a
 * gigabyte. It keeps its ring's memory too, made resident when it starts, because a fresh
 * ring's pages cost about 20 ms to bring in here (hash_ring.ts `makeResident`). It costs about 22 MiB while it waits. On a
 * one-core machine it starts nothing.
 */
export class HelperThread implements Disposable {
  #worker: Worker | undefined;
  /** Free for the next file whenever the thread is. */
  #memory: RingMemory | undefined;
  /** The file it works on: `failed` if the helper gives up on it or dies, `left` when it is off it. */
  #job: { failed: PromiseWithResolvers<void>; left: PromiseWithResolvers<void> } | undefined;
  #filesTaken = 0;
  #disposed = false;

  constructor(module: URL = HELPER_MODULE) {
    if (!helperCanRun()) return;
    try {
      this.#worker = new Worker(module.href, { type: "module" });
    } catch {
      return; // every file starts a helper of its own
    }
    this.#memory = RingMemory.create(RING_SLOTS, { resident: true });
    this.#worker.onmessage = (event: HelperReply) => {
      if ("gone" in event.data) this.#job?.failed.resolve();
      this.#endJob();
      if (this.#disposed) this.#terminate();
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#job?.failed.resolve();
      this.#endJob();
      this.#terminate();
    };
  }

  /** How many files it has been lent so far. */
  get filesTaken(): number {
    return this.#filesTaken;
  }

  /** True while the thread can take a file. */
  get isFree(): boolean {
    return this.#worker !== undefined && this.#job === undefined && !this.#disposed;
  }

  /** Resolves once the thread is off its file (at once if it has none). */
  whenFree(): Promise<void> {
    return this.#job?.left.promise ?? Promise.resolve();
  }

  /**
   * A ring for the file at `path` in the thread's kept memory, with the thread put to work on
   * it (see `HashRing.create`); undefined if the thread is busy with another file or gone.
   * The memory is the next file's once the thread has left this one: until then a read it
   * is blocked in could still land there.
   */
  lend(path: string, length: number, identity: FileIdentity): RingWithHelper | undefined {
    if (!this.isFree) return undefined;
    const ring = HashRing.create(path, length, identity, this.#memory);
    const job = { failed: Promise.withResolvers<void>(), left: Promise.withResolvers<void>() };
    this.#job = job;
    this.#filesTaken++;
    this.#worker!.postMessage(ring.memory);
    // the thread leaves the file by itself once the ring is stopped, and says so
    return { ring, helper: { failed: job.failed.promise, release: () => {} } };
  }

  /**
   * Ends the thread; one at work on a file ends when it leaves it, because a read it is
   * blocked in could still land in the ring. Until then the process cannot exit by itself.
   */
  [Symbol.dispose](): void {
    this.#disposed = true;
    if (!this.#job) this.#terminate();
  }

  #endJob(): void {
    this.#job?.left.resolve();
    this.#job = undefined;
  }

  #terminate(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#memory = undefined;
  }
}

/**
 * Hashes a whole file as a stream: every piece and the whole.
 *
 * Every byte is read once and hashed twice, and the whole-file hash cannot be split. The
 * main thread keeps the whole-file hash; a helper thread (hash_worker.ts) hashes pieces; both
 * read pieces and hash pieces when their own work waits, claiming each step in a shared ring
 * (hash_ring.ts). So the work balances by itself: until the helper has started, and if it
 * ever fails, the main thread does it all. On two cores a file hashes in little more than one
 * SHA-1 pass. The main thread lets its event loop run every few milliseconds meanwhile; its
 * reads block (about 0.1 ms a piece from the page cache, a few ms from a slow disk), because
 * an async read's round trip cost more here than the read itself.
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
  const { ring, helper } = ringFor(path, size, identity, options);
  try {
    return await hashInRing(file, ring, helper, options.signal);
  } finally {
    ring.stop();
    helper?.release();
  }
}

/**
 * A ring for the file at `path`, with the helper `options` ask for, if any: the kept thread
 * whenever it is free, whatever the size, since it costs nothing to start; else a thread
 * started for this file, if it is large enough to pay for that. A helper needs the file's
 * identity, to check that it opens the same file.
 */
function ringFor(
  path: string,
  length: number,
  identity: FileIdentity | undefined,
  options: HashOptions,
): { ring: HashRing; helper?: Helper } {
  if (identity && options.helper === undefined) {
    const kept = options.helperThread?.lend(path, length, identity);
    if (kept) return kept;
  }
  const ring = HashRing.create(path, length, identity);
  if (!identity) return { ring };
  if (options.helper !== undefined) {
    return { ring, helper: options.helper ? startHelper(ring, options.helper) : undefined };
  }
  if (ring.count < HELPER_MIN_PIECES || !helperCanRun()) return { ring };
  return { ring, helper: startHelper(ring, HELPER_MODULE) };
}

/**
 * The main thread's part of `hashOpenFile`, on a ring that `helper` (if any) works on too:
 * the whole-file hash, and reads and piece hashes when it would otherwise wait.
 */
export async function hashInRing(
  file: Deno.FsFile,
  ring: HashRing,
  helper: Helper | undefined,
  signal?: AbortSignal,
): Promise<FileHashes> {
  let alone = !helper;
  /** Reads the next piece whose slot is free; false if there is none. */
  const read = () => {
    const index = ring.claimRead();
    if (index >= 0) ring.readPiece(file, index);
    return index >= 0;
  };
  /** Hashes the next piece read and not yet taken; false if there is none. */
  const hash = () => {
    const index = ring.claimHash();
    if (index >= 0) ring.hashPiece(index);
    return index >= 0;
  };
  const aborted = Promise.withResolvers<void>();
  const onAbort = () => aborted.resolve();
  signal?.addEventListener("abort", onAbort, { once: true });
  /** With no step to take: waits for the helper; should it have died, takes over its step. */
  const waitForHelper = async (epoch: number) => {
    // alone, this thread always has a step to take
    if (alone || !helper) throw new Error("hashing has no step to take and no helper");
    const died = await Promise.race([
      ring.changed(epoch, HELPER_CHECK_MS).then(() => false),
      helper.failed.then(() => true),
      aborted.promise.then(() => false),
    ]);
    signal?.throwIfAborted();
    if (died) {
      ring.finishAbandoned(file);
      alone = true;
    }
  };

  const whole = createHash("sha1");
  let yielded = performance.now();
  try {
    for (let next = 0; next < ring.count;) {
      signal?.throwIfAborted();
      const epoch = ring.epoch;
      if (ring.isRead(next)) {
        whole.update(ring.piece(next));
        ring.markWholeDone(next++);
      } else if (!read() && !hash()) {
        await waitForHelper(epoch);
      }
      if (performance.now() - yielded >= YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        yielded = performance.now();
      }
    }
    // the last pieces may still be unhashed (earlier ones were, before their slots were reused)
    for (let index = Math.max(0, ring.count - ring.slotCount); index < ring.count;) {
      const epoch = ring.epoch;
      signal?.throwIfAborted();
      if (ring.isHashed(index)) index++;
      else if (!hash() && !read()) await waitForHelper(epoch);
    }
    signal?.throwIfAborted();
    return { length: ring.memory.length, pieceHashes: ring.digests(), sha1: whole.digest("hex") };
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
