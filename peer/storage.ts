/**
 * Pieces on disk: one open file per torrent, read and written at offsets with positional I/O
 * (never the whole file in memory, and no seek shared between concurrent requests). A
 * download writes into a part file beside its destination, which becomes the final name only
 * after the whole-file SHA-1 matched.
 *
 * @module
 */

import { sha1 } from "../lib/hash.ts";
import { constants } from "node:fs";
import { type FileHandle, link, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UserError } from "../lib/errors.ts";
import { PIECE_LENGTH, pieceCount, pieceSize } from "../lib/pieces.ts";

/** Random-access piece I/O on one file of a known length. */
export class PieceFile {
  readonly #handle: FileHandle;
  #path: string;
  readonly length: number;
  #closed = false;

  private constructor(handle: FileHandle, path: string, length: number) {
    this.#handle = handle;
    this.#path = path;
    this.length = length;
  }

  /** Where the file is. */
  get path(): string {
    return this.#path;
  }

  /** Notes that the open file was renamed (the handle stays valid). */
  renamedTo(path: string): void {
    this.#path = path;
  }

  /** Opens an existing complete file for serving. */
  static async openForReading(path: string, length: number): Promise<PieceFile> {
    return new PieceFile(await open(path, "r"), path, length);
  }

  /** Opens (creating when missing) a part file sized to `length`, keeping what it holds. */
  static async openForWriting(path: string, length: number): Promise<PieceFile> {
    // read-write, created when missing, never truncated: a resumed download keeps its pieces
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    const { size } = await handle.stat();
    if (size !== length) await handle.truncate(length);
    return new PieceFile(handle, path, length);
  }

  /** Reads `length` bytes at `offset` into `into` (or a new buffer). */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const target = into ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#handle.read(target, done, length - done, offset + done);
      if (bytesRead === 0) throw new UserError(`${this.path} is shorter than expected`);
      done += bytesRead;
    }
    return target;
  }

  /** Writes `data` at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#handle.write(
        data,
        done,
        data.length - done,
        offset + done,
      );
      done += bytesWritten;
    }
  }

  /** Reads piece `index` whole. */
  readPiece(index: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.read(index * PIECE_LENGTH, pieceSize(this.length, index), into);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

/**
 * Which pieces of a part file already hold the right data, by hashing each against the
 * torrent's piece hashes: what lets an interrupted download resume without fetching again.
 */
export async function verifiedPieces(
  file: PieceFile,
  pieceHashes: Uint8Array,
): Promise<boolean[]> {
  const count = pieceCount(file.length);
  const buffer = new Uint8Array(PIECE_LENGTH);
  const verified = new Array<boolean>(count).fill(false);
  for (let index = 0; index < count; index++) {
    const piece = await file.readPiece(index, buffer);
    verified[index] = isIntactPiece(piece, pieceHashes.subarray(index * 20, index * 20 + 20));
  }
  return verified;
}

/** True when `piece` has the SHA-1 `expected` (its entry in the torrent's piece hashes). */
export function isIntactPiece(piece: Uint8Array, expected: Uint8Array): boolean {
  return equalBytes(sha1(piece), expected);
}

/** True when two byte arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The hidden part file a download writes into, beside its final path. */
export function partPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.swarmshare-part`);
}

/**
 * Moves a verified part file to its final name, refusing to replace anything there. A hard
 * link claims the name atomically (it fails if anything, even a dangling symlink, is there),
 * then the part name goes; where the file system has no hard links, it checks, then renames.
 */
export async function promotePartFile(partPath: string, finalPath: string): Promise<void> {
  const taken = () =>
    new UserError(`${finalPath} appeared while downloading; the download is kept at ${partPath}`);
  try {
    await link(partPath, finalPath);
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") throw taken();
    if (await exists(finalPath)) throw taken();
    await rename(partPath, finalPath);
    return;
  }
  await unlink(partPath);
}

/** True when something exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
