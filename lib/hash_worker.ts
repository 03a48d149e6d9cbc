/**
 * One of the two threads of `hashFile` (hash.ts). They share a ring of piece slots and a
 * small control array (SharedArrayBuffers) and hand pieces over with Atomics, so no buffer
 * is copied or posted per piece:
 *
 * - the `reader` reads each piece into the next free slot, publishes it, then hashes it;
 * - the `whole` thread feeds every published slot to the running whole-file SHA-1, then frees
 *   it. It also hashes every SHARE-th piece, so that the reader, which pays for the reads,
 *   finishes at about the same time.
 *
 * In: one `HashJob` (hash_job.ts). Out: `{sha1}` from `whole`, `{done: true}` from `reader`, or
 * `{error}` from either after it has raised the stop flag.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";
import {
  type HashJob,
  type HashReply,
  PIECES_READ,
  PIECES_RELEASED,
  raiseStop,
  SHARE,
  STOP,
} from "./hash_job.ts";
import { PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount, pieceSize } from "./pieces.ts";

/** Thrown out of a wait when the other side stopped; it has already reported why. */
class Stopped extends Error {
  override message = "stopped";
}

/** Blocks until `control[index] >= atLeast`; throws `Stopped` once the job is stopped. */
function waitFor(control: Int32Array, index: number, atLeast: number): void {
  for (;;) {
    if (Atomics.load(control, STOP) !== 0) throw new Stopped();
    const seen = Atomics.load(control, index);
    if (seen >= atLeast) return;
    Atomics.wait(control, index, seen, 1000);
  }
}

function publish(control: Int32Array, index: number, value: number): void {
  Atomics.store(control, index, value);
  Atomics.notify(control, index);
}

function hashPiece(piece: Uint8Array, digests: Uint8Array, index: number): void {
  digests.set(createHash("sha1").update(piece).digest(), index * PIECE_HASH_LENGTH);
}

function runReader(job: HashJob, control: Int32Array, slots: Uint8Array[], digests: Uint8Array) {
  using file = Deno.openSync(job.path);
  const count = pieceCount(job.length);
  for (let index = 0; index < count; index++) {
    waitFor(control, PIECES_RELEASED, index - slots.length + 1);
    const piece = slots[index % slots.length].subarray(0, pieceSize(job.length, index));
    for (let done = 0; done < piece.length;) {
      const read = file.readSync(piece.subarray(done));
      if (read === null || read === 0) throw new Error("the file shrank while it was being read");
      done += read;
    }
    publish(control, PIECES_READ, index + 1);
    if (index % SHARE !== SHARE - 1) hashPiece(piece, digests, index);
  }
}

function runWhole(job: HashJob, control: Int32Array, slots: Uint8Array[], digests: Uint8Array) {
  const whole = createHash("sha1");
  const count = pieceCount(job.length);
  for (let index = 0; index < count; index++) {
    waitFor(control, PIECES_READ, index + 1);
    const piece = slots[index % slots.length].subarray(0, pieceSize(job.length, index));
    whole.update(piece);
    if (index % SHARE === SHARE - 1) hashPiece(piece, digests, index);
    publish(control, PIECES_RELEASED, index + 1);
  }
  return whole.digest("hex");
}

self.onmessage = (event: MessageEvent<HashJob>) => {
  const job = event.data;
  const control = new Int32Array(job.control);
  const slots = Array.from(
    { length: job.ring.byteLength / PIECE_LENGTH },
    (_, slot) => new Uint8Array(job.ring, slot * PIECE_LENGTH, PIECE_LENGTH),
  );
  const digests = new Uint8Array(job.digests);
  let reply: HashReply;
  try {
    if (job.role === "reader") {
      runReader(job, control, slots, digests);
      reply = { done: true };
    } else {
      reply = { sha1: runWhole(job, control, slots, digests) };
    }
  } catch (error) {
    raiseStop(control);
    reply = { error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
