/**
 * The helper thread of `hashFile` (hash.ts): hashes pieces that have been read, and reads
 * pieces when there is nothing to hash, claiming each step in the shared ring
 * (hash_ring.ts), until every step is claimed or the job stops. It posts nothing back: the
 * ring is the result, and if this thread fails the main thread finishes the work alone.
 *
 * In: one `HashRingMemory`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { HashRing, type HashRingMemory } from "./hash_ring.ts";

self.onmessage = (event: MessageEvent<HashRingMemory>) => {
  const ring = new HashRing(event.data);
  using file = Deno.openSync(ring.memory.path);
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
};
