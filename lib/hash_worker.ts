/**
 * The helper thread of `hashFile` (hash.ts): claims piece hashes one after another in the
 * shared job (hash_job.ts), reads each claimed piece into a buffer of its own and hashes it,
 * until every piece is claimed or the job stops. It never waits for the main thread. The
 * digests are the result; if this thread cannot go on, it says so and the main thread hashes
 * the piece it had claimed, and the rest. The thread then waits for the next job: a client
 * keeps one started, so that an upload does not wait for a thread to start.
 *
 * In: a `HashJobMemory` per job. Out: one `HelperDone` or `HelperGone` per job.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  type FileIdentity,
  HashJob,
  type HashJobMemory,
  type HelperDone,
  type HelperGone,
  PieceReader,
  residentPieceBuffer,
} from "./hash_job.ts";

/** Made resident before the first job arrives (messages wait for the module to load). */
const buffer = residentPieceBuffer();

const isSameFile = (info: Deno.FileInfo, identity: FileIdentity) =>
  info.isFile && info.dev === identity.dev && info.ino === identity.ino;

/**
 * The file the main thread has open, opened again here; undefined when `path` now names
 * another file (replaced by a rename, say), whose bytes must not be mixed in.
 */
function openSameFile(memory: HashJobMemory): Deno.FsFile | undefined {
  const { path, identity } = memory;
  // looked at first: opening a named pipe put there meanwhile would block
  if (!identity || !isSameFile(Deno.statSync(path), identity)) return undefined;
  const file = Deno.openSync(path);
  if (isSameFile(file.statSync(), identity)) return file;
  file.close();
  return undefined;
}

function work(job: HashJob, reader: PieceReader): void {
  while (!job.isStopped) {
    const index = job.claimNext();
    if (index < 0) return;
    job.hashPiece(index, reader.read(index));
  }
}

/** Works on one job; what to tell the main thread, exactly once. */
function workOn(job: HashJob): HelperDone | HelperGone {
  try {
    using file = openSameFile(job.memory);
    if (!file) return { gone: "the path names another file now" };
    work(job, new PieceReader(file, job.memory.length, buffer));
  } catch (error) {
    // a piece claimed here may be unhashed: the main thread hashes it
    return { gone: String(error) };
  }
  return { done: true };
}

self.onmessage = (event: MessageEvent<HashJobMemory>) => {
  self.postMessage(workOn(new HashJob(event.data)));
};
