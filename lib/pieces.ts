/**
 * Piece and block arithmetic, the protocol constants it rests on, and nothing else. Offsets
 * are plain numbers: exact up to 2^53 bytes, so files past 4 GiB are fine.
 *
 * @module
 */

/** Every Swarmshare torrent uses 512 KiB pieces. */
export const PIECE_LENGTH = 524_288;

/** Requests ask for 16 KiB blocks, the size every BitTorrent client serves. */
export const BLOCK_LENGTH = 16_384;

/** Blocks in a full piece. */
export const BLOCKS_PER_PIECE = PIECE_LENGTH / BLOCK_LENGTH;

/** Length of one SHA-1 digest in the `pieces` string. */
export const PIECE_HASH_LENGTH = 20;

/**
 * The largest file Swarmshare shares: 1 TiB, 2,097,152 pieces, whose info dictionary holds
 * 40 MiB of piece hashes. An info dictionary too large for one tracker frame travels in pages
 * (lib/info_pages.ts), so this bound is set by memory (one 40 MiB buffer per shared or
 * downloaded file), not by the frame.
 */
export const MAX_FILE_BYTES = 1024 ** 4;

/** How many pieces a file of `fileLength` bytes has (0 for an empty file). */
export function pieceCount(fileLength: number): number {
  return Math.ceil(fileLength / PIECE_LENGTH);
}

/** Bytes in piece `index`: full except the last. */
export function pieceSize(fileLength: number, index: number): number {
  const count = pieceCount(fileLength);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`piece ${index} out of range for ${count} pieces`);
  }
  return index < count - 1 ? PIECE_LENGTH : fileLength - index * PIECE_LENGTH;
}

/** Byte offset of piece `index` in the file. */
export function pieceOffset(index: number): number {
  return index * PIECE_LENGTH;
}

/** Blocks in a piece of `size` bytes. */
export function blockCount(size: number): number {
  return Math.ceil(size / BLOCK_LENGTH);
}

/** Bytes in block `block` of a piece of `size` bytes: full except the last. */
export function blockSize(size: number, block: number): number {
  if (!(Number.isInteger(block) && block >= 0 && block < blockCount(size))) {
    throw new RangeError(`block ${block} is not in a piece of ${size} bytes`);
  }
  return Math.min(BLOCK_LENGTH, size - block * BLOCK_LENGTH);
}

/** True when `index` names a piece of a file of `fileLength` bytes. */
export function isPieceIndex(fileLength: number, index: number): boolean {
  return Number.isInteger(index) && index >= 0 && index < pieceCount(fileLength);
}

/**
 * True when `begin`/`length` names a whole block of piece `index` as we hand them out:
 * aligned to `BLOCK_LENGTH`, inside the piece, and the full block size.
 */
export function isValidBlock(
  fileLength: number,
  index: number,
  begin: number,
  length: number,
): boolean {
  if (!isPieceIndex(fileLength, index)) return false;
  const size = pieceSize(fileLength, index);
  return Number.isInteger(begin) && begin >= 0 && begin < size && begin % BLOCK_LENGTH === 0 &&
    length === blockSize(size, begin / BLOCK_LENGTH);
}

/** True when a request may be served: inside the piece and at most one block long. */
export function isServableRequest(
  fileLength: number,
  index: number,
  begin: number,
  length: number,
): boolean {
  if (!isPieceIndex(fileLength, index)) return false;
  return Number.isInteger(begin) && begin >= 0 && Number.isInteger(length) && length > 0 &&
    length <= BLOCK_LENGTH && begin + length <= pieceSize(fileLength, index);
}
