/**
 * Streaming SHA-1 of a file: the digest of every 512 KiB piece and of the whole file, in one
 * read of the file through a ring of eight piece buffers, so memory stays at about 4 MiB
 * whatever the file size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { UserError } from "./errors.ts";
import { PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount } from "./pieces.ts";
import { CONTROL_LENGTH, type HashJob, type HashReply, raiseStop } from "./hash_job.ts";

/** The hashes of a whole file. */
export interface FileHashes {
  length: number;
  /** Concatenated 20-byte piece digests. */
  pieceHashes: Uint8Array;
  /** Whole-file SHA-1, lowercase hex. */
  sha1: string;
}

/** The SHA-1 of `bytes` (20 bytes). */
export function sha1(bytes: Uint8Array): Uint8Array {
  return createHash("sha1").update(bytes).digest();
}

/** Piece buffers shared by the two hashing threads: enough to ride out uneven reads. */
const RING_SLOTS = 8;

/** One hashing thread: its reply, or an error reply if the thread itself fails. */
function startHashThread(): { worker: Worker; reply: Promise<HashReply> } {
  const worker = new Worker(new URL("./hash_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const reply = Promise.withResolvers<HashReply>();
  worker.onmessage = (event: MessageEvent<HashReply>) => reply.resolve(event.data);
  worker.onerror = (event) => {
    event.preventDefault();
    reply.resolve({ error: event.message });
  };
  return { worker, reply: reply.promise };
}

/**
 * Hashes a whole file as a stream: every piece and the whole. Every byte needs two SHA-1
 * passes and the whole-file one cannot be split, so two threads (hash_worker.ts) share the
 * work: one reads and hashes pieces, the other keeps the whole-file hash and takes a share of
 * the pieces; they hand piece buffers over through shared memory, without copies or
 * messages. On two cores a file hashes in little more than one SHA-1 pass, and this thread
 * stays free meanwhile.
 */
export async function hashFile(path: string, signal?: AbortSignal): Promise<FileHashes> {
  signal?.throwIfAborted();
  // the threads start up while the file is looked at
  const threads = [startHashThread(), startHashThread()];
  const control = new SharedArrayBuffer(CONTROL_LENGTH * Int32Array.BYTES_PER_ELEMENT);
  const stop = () => raiseStop(new Int32Array(control));
  const aborted = Promise.withResolvers<never>();
  aborted.promise.catch(() => {}); // surfaces through the race below
  const onAbort = () => aborted.reject(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new UserError(`${path} is not a regular file`);
    const length = info.size;
    const count = pieceCount(length);
    const job: Omit<HashJob, "role"> = {
      path,
      length,
      control,
      ring: new SharedArrayBuffer(Math.max(1, Math.min(RING_SLOTS, count)) * PIECE_LENGTH),
      digests: new SharedArrayBuffer(count * PIECE_HASH_LENGTH),
    };
    threads[0].worker.postMessage({ ...job, role: "reader" } satisfies HashJob);
    threads[1].worker.postMessage({ ...job, role: "whole" } satisfies HashJob);
    const replies = await Promise.race([
      Promise.all(threads.map((thread) => thread.reply)),
      aborted.promise,
    ]);
    // the first real cause wins over the other thread's "stopped"
    const failure = replies.find((reply) => "error" in reply && reply.error !== "stopped") ??
      replies.find((reply) => "error" in reply);
    if (failure && "error" in failure) throw new UserError(failure.error);
    const whole = replies.find((reply) => "sha1" in reply);
    if (!whole || !("sha1" in whole)) throw new Error("the whole-file hash did not arrive");
    return { length, pieceHashes: new Uint8Array(job.digests).slice(), sha1: whole.sha1 };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop();
    for (const thread of threads) thread.worker.terminate();
  }
}
