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
import { type FileHandle, link, lstat, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UserError } from "../lib/errors.ts";
import { PIECE_LENGTH, pieceCount, pieceSize } from "../lib/pieces.ts";
import { PART_FILE_SUFFIX } from "../lib/protocol.ts";
import { currentUid } from "./state_dir.ts";

/** Which file on which device: what stays the same whatever name the file has. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** Random-access piece I/O on one file of a known length. */
export class PieceFile {
  /** Open from the start (part files), or from the first read (files served: see below). */
  #handle?: FileHandle;
  #opening?: Promise<FileHandle>;
  #path: string;
  readonly length: number;
  /** The very file opened (set for part files, which are checked against it later). */
  readonly identity?: FileIdentity;
  /**
   * True for a part file this open created: it is one hole (it was only truncated to its
   * length), so every byte not written since reads back as zero.
   */
  readonly created: boolean;
  #closed = false;

  private constructor(
    handle: FileHandle | undefined,
    path: string,
    length: number,
    identity?: FileIdentity,
    created = false,
  ) {
    this.#handle = handle;
    this.#path = path;
    this.length = length;
    this.identity = identity;
    this.created = created;
  }

  /** Where the file is. */
  get path(): string {
    return this.#path;
  }

  /** Notes that the open file was renamed (the handle stays valid). */
  renamedTo(path: string): void {
    this.#path = path;
  }

  /** Opens an existing complete file for serving (served from the handle, even renamed). */
  static async openForReading(path: string, length: number): Promise<PieceFile> {
    return new PieceFile(await open(path, "r"), path, length);
  }

  /**
   * An existing complete file to serve, opened at its first read: a user may share 100,000
   * files (1,000 in each of 100 groups), far more than a process may hold open, and only
   * those peers ask for need a descriptor.
   */
  static forReading(path: string, length: number): PieceFile {
    return new PieceFile(undefined, path, length);
  }

  async #file(): Promise<FileHandle> {
    if (this.#handle) return this.#handle;
    if (this.#closed) throw new UserError(`${this.path} is no longer served`);
    this.#opening ??= open(this.#path, "r").then(async (handle) => {
      // closed while it was opening: nothing keeps it
      if (this.#closed) {
        await handle.close();
        throw new UserError(`${this.path} is no longer served`);
      }
      return this.#handle = handle;
    }).finally(() => this.#opening = undefined);
    return await this.#opening;
  }

  /**
   * Opens (creating when missing) a part file sized to `length`, keeping what it holds. It
   * never follows a symbolic link, and an existing part file must be a regular file of this
   * user with no other name, so a download directory others can write to cannot point the
   * download at another file. New files get the mode the user's umask leaves of 0666.
   */
  static async openForWriting(path: string, length: number): Promise<PieceFile> {
    const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    let handle: FileHandle;
    let created = true;
    try {
      handle = await open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw refusal(path, error);
      created = false;
      // read-write, never truncated: a resumed download keeps its pieces
      handle = await open(path, O_RDWR | O_NOFOLLOW).catch((error) => {
        throw refusal(path, error);
      });
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new UserError(`${path} is not a regular file; not writing into it`);
      if (!created) {
        if (info.nlink !== 1) {
          throw new UserError(`${path} has other names (hard links); not writing into it`);
        }
        const uid = await currentUid(dirname(path));
        if (uid !== null && info.uid !== uid) {
          throw new UserError(`${path} belongs to another user; not writing into it`);
        }
      }
      if (info.size !== length) await handle.truncate(length);
      return new PieceFile(handle, path, length, { dev: info.dev, ino: info.ino }, created);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads `length` bytes at `offset` into `into` (or a new buffer). */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const target = into ? into.subarray(0, length) : new Uint8Array(length);
    const handle = await this.#file();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(target, done, length - done, offset + done);
      if (bytesRead === 0) throw new UserError(`${this.path} is shorter than expected`);
      done += bytesRead;
    }
    return target;
  }

  /** Writes `data` at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const handle = await this.#file();
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(
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
    await this.#handle?.close();
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
  return join(dirname(finalPath), `.${basename(finalPath)}${PART_FILE_SUFFIX}`);
}

/**
 * Gives the verified part file its final name, refusing to replace anything there, and only
 * if the part name still is the very file the download wrote (`identity`). A hard link claims
 * the name atomically (it fails if anything, even a dangling symlink, is there), is checked
 * to be that file (a swap between the check and the link is undone), then the part name
 * goes; where the file system has no hard links, it checks, then renames.
 */
export async function promotePartFile(
  partPath: string,
  finalPath: string,
  identity: FileIdentity,
): Promise<void> {
  const taken = () =>
    new UserError(`${finalPath} appeared while downloading; the download is kept at ${partPath}`);
  const replaced = () =>
    new UserError(`${partPath} was replaced while downloading; not giving it the final name`);
  if (!await isSameFile(partPath, identity)) throw replaced();
  try {
    await link(partPath, finalPath);
  } catch (error) {
    if (errorCode(error) === "EEXIST") throw taken();
    if (await exists(finalPath)) throw taken();
    await rename(partPath, finalPath);
    if (!await isSameFile(finalPath, identity)) throw replaced();
    return;
  }
  if (!await isSameFile(finalPath, identity)) {
    await unlink(finalPath); // the name we just made, for a file that is not ours
    throw replaced();
  }
  await unlink(partPath);
}

/** True when `path` names (without following a link) the regular file `identity`. */
async function isSameFile(path: string, identity: FileIdentity): Promise<boolean> {
  try {
    const info = await lstat(path);
    return info.isFile() && info.dev === identity.dev && info.ino === identity.ino;
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

/** A refused open, said in words: a symbolic link is the case that matters. */
function refusal(path: string, error: unknown): Error {
  if (errorCode(error) === "ELOOP") {
    return new UserError(`${path} is a symbolic link; not writing through it`);
  }
  return error as Error;
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
