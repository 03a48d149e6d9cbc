/**
 * What `hashFile` (hash.ts) and its two threads (hash_worker.ts) share: the job each thread
 * is given, its reply, and the cells of the shared control array.
 *
 * @module
 */

/** Indexes into the shared control array. */
export const PIECES_READ = 0;
export const PIECES_RELEASED = 1;
export const STOP = 2;
export const CONTROL_LENGTH = 3;

/** Raises the stop flag and wakes a thread waiting on any cell, so it sees the flag now. */
export function raiseStop(control: Int32Array): void {
  Atomics.store(control, STOP, 1);
  for (let cell = 0; cell < CONTROL_LENGTH; cell++) Atomics.notify(control, cell);
}

/** The whole-file thread also hashes every SHARE-th piece (reads cost about a ninth of a hash). */
export const SHARE = 9;

/** The work given to one hashing thread. */
export interface HashJob {
  role: "reader" | "whole";
  path: string;
  length: number;
  /** Int32Array view: PIECES_READ, PIECES_RELEASED, STOP. */
  control: SharedArrayBuffer;
  /** `slots` piece buffers of PIECE_LENGTH bytes. */
  ring: SharedArrayBuffer;
  /** 20 bytes per piece. */
  digests: SharedArrayBuffer;
}

export type HashReply = { sha1: string } | { done: true } | { error: string };
