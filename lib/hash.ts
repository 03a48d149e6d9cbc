/**
 * Streaming SHA-1 of a file: the digest of every 512 KiB piece and of the whole file, in one
 * pass over a few reusable piece buffers (the next read is in flight while the current
 * piece is hashed), so memory stays at about 2 MiB whatever the file size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { UserError } from "./errors.ts";
import { PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount, pieceSize } from "./pieces.ts";

/** The hashes of a whole file. */
export interface FileHashes {
  length: number;
  /** Concatenated 20-byte piece digests. */
  pieceHashes: Uint8Array;
  /** Whole-file SHA-1, lowercase hex. */
  sha1: string;
}

async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new UserError("the file shrank while it was being read");
    done += bytesRead;
  }
}

/** The SHA-1 of `bytes` (20 bytes). */
export function sha1(bytes: Uint8Array): Uint8Array {
  return createHash("sha1").update(bytes).digest();
}

/** Piece buffers in rotation between reading, piece hashing and the whole-file worker. */
const BUFFERS = 4;
/** Reads in flight ahead of the piece being hashed. */
const READ_AHEAD = 1;

/**
 * Hashes a whole file as a stream: every piece and the whole. Every byte needs two SHA-1
 * passes; this thread hashes the pieces while a worker (sha1_worker.ts) keeps the whole-file
 * hash, each piece's buffer travelling to it and back without a copy. On two cores the file
 * is hashed at about one SHA-1 pass. Memory: four piece buffers, whatever the file size.
 */
export async function hashFile(path: string, signal?: AbortSignal): Promise<FileHashes> {
  const handle = await open(path, "r");
  const worker = new Worker(new URL("./sha1_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const { size: length } = await handle.stat();
    const count = pieceCount(length);
    const pieceHashes = new Uint8Array(count * PIECE_HASH_LENGTH);
    const free: ArrayBuffer[] = Array.from(
      { length: BUFFERS },
      () => new ArrayBuffer(PIECE_LENGTH),
    );
    const waiting: PromiseWithResolvers<ArrayBuffer>[] = [];
    const finished = Promise.withResolvers<string>();
    worker.onmessage = (event: MessageEvent<{ chunk?: ArrayBuffer; sha1?: string }>) => {
      if (event.data.sha1 !== undefined) return finished.resolve(event.data.sha1);
      const buffer = event.data.chunk!;
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(buffer);
      else free.push(buffer);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const error = new Error(`hashing failed: ${event.message}`);
      for (const waiter of waiting.splice(0)) waiter.reject(error);
      finished.reject(error);
    };
    const takeBuffer = () => {
      const buffer = free.pop();
      if (buffer) return buffer;
      const waiter = Promise.withResolvers<ArrayBuffer>();
      waiting.push(waiter);
      return waiter.promise;
    };
    const read = async (index: number) => {
      const buffer = await takeBuffer();
      const data = new Uint8Array(buffer, 0, pieceSize(length, index));
      await readFully(handle, data, index * PIECE_LENGTH);
      return data;
    };
    // reads run ahead while pieces are hashed
    const ahead: Promise<Uint8Array<ArrayBuffer>>[] = [];
    const readAhead = (index: number) => {
      if (index >= count) return;
      const reading = read(index);
      reading.catch(() => {}); // surfaces when awaited
      ahead.push(reading);
    };
    for (let index = 0; index < READ_AHEAD; index++) readAhead(index);
    for (let index = 0; index < count; index++) {
      signal?.throwIfAborted();
      const data = await ahead.shift()!;
      readAhead(index + READ_AHEAD);
      pieceHashes.set(createHash("sha1").update(data).digest(), index * PIECE_HASH_LENGTH);
      worker.postMessage({ chunk: data.buffer, length: data.length }, [data.buffer]);
    }
    worker.postMessage({ digest: true });
    return { length, pieceHashes, sha1: await finished.promise };
  } finally {
    worker.terminate();
    await handle.close();
  }
}
