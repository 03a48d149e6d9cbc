/**
 * The helper thread of `hashFile` (hash.ts): hashes pieces that have been read, and reads
 * pieces when there is nothing to hash, claiming each step in the shared ring
 * (hash_ring.ts), until every step is claimed or the job stops. The ring is the result; if
 * this thread cannot go on, it says so and the main thread finishes its claimed step and the
 * rest alone. The thread then waits for the next job: a client keeps one started, so that an
 * upload does not wait for a thread to start.
 *
 * In: a `HashRingMemory` per job. Out: one `HelperDone` or `HelperGone` per job.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  type FileIdentity,
  HashRing,
  type HashRingMemory,
  type HelperDone,
  type HelperGone,
} from "./hash_ring.ts";

const isSameFile = (info: Deno.FileInfo, identity: FileIdentity) =>
  info.isFile && info.dev === identity.dev && info.ino === identity.ino;

/**
 * The file the main thread has open, opened again here; undefined when `path` now names
 * another file (replaced by a rename, say), whose bytes must not be mixed in.
 */
function openSameFile(memory: HashRingMemory): Deno.FsFile | undefined {
  const { path, identity } = memory;
  // looked at first: opening a named pipe put there meanwhile would block
  if (!identity || !isSameFile(Deno.statSync(path), identity)) return undefined;
  const file = Deno.openSync(path);
  if (isSameFile(file.statSync(), identity)) return file;
  file.close();
  return undefined;
}

function work(ring: HashRing, file: Deno.FsFile): void {
  while (!ring.isStopped && !ring.isAllClaimed) {
    const epoch = ring.epoch;
    const hash = ring.claimHash();
    if (hash >= 0) {
      ring.hashPiece(hash);
      continue;
    }
    const read = ring.claimRead();
    if (read >= 0) {
      ring.readPiece(file, read);
      continue;
    }
    ring.waitForChange(epoch);
  }
}

/** Works on one job; what to tell the main thread, exactly once. */
function workOn(ring: HashRing): HelperDone | HelperGone {
  try {
    using file = openSameFile(ring.memory);
    if (!file) return { gone: "the path names another file now" };
    work(ring, file);
  } catch (error) {
    // a step claimed here may be unfinished: the main thread redoes it
    return { gone: String(error) };
  }
  return { done: true };
}

self.onmessage = (event: MessageEvent<HashRingMemory>) => {
  self.postMessage(workOn(new HashRing(event.data)));
};
