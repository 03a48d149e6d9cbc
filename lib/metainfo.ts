/**
 * The torrent of a shared file: a standard single-file info dictionary (BEP 3) with `length`,
 * `name`, `piece length` (always 512 KiB here), `pieces` (the SHA-1 of every piece) and
 * `private: 1` (BEP 27: peers come only from the tracker, as group privacy requires). The
 * info_hash, SHA-1 of the bencoded dictionary, identifies the file everywhere.
 *
 * @module
 */

import { type BDict, decode, encode } from "./bencode.ts";
import { ProtocolError } from "./errors.ts";
import { fileNameProblem } from "./protocol.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount } from "./pieces.ts";

/** What a single-file info dictionary says. */
export interface TorrentInfo {
  name: string;
  /** File length in bytes. */
  length: number;
  /** Concatenated 20-byte SHA-1 digests, one per piece. */
  pieceHashes: Uint8Array;
}

const ALLOWED_KEYS = new Set(["length", "name", "piece length", "pieces", "private"]);
// ignoreBOM: a leading U+FEFF is part of the name (stripped, the name would not encode back
// to the info dictionary it came from)
const nameDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The bencoded info dictionary of `info`. */
export function encodeInfo(info: TorrentInfo): Uint8Array {
  const dict: BDict = new Map();
  dict.set("length", info.length);
  dict.set("name", new TextEncoder().encode(info.name));
  dict.set("piece length", PIECE_LENGTH);
  dict.set("pieces", info.pieceHashes);
  dict.set("private", 1);
  return encode(dict);
}

/**
 * Reads and checks an info dictionary: canonical bencoding, single file, our piece length,
 * one hash per piece, a safe file name. Throws `ProtocolError` naming the first problem.
 */
export function parseInfo(bytes: Uint8Array): TorrentInfo {
  const dict = decode(bytes);
  if (!(dict instanceof Map)) throw new ProtocolError("info is not a dictionary");
  for (const key of dict.keys()) {
    if (!ALLOWED_KEYS.has(key)) throw new ProtocolError(`info has an unsupported key "${key}"`);
  }
  const length = dict.get("length");
  const nameBytes = dict.get("name");
  const pieceLength = dict.get("piece length");
  const pieces = dict.get("pieces");
  if (typeof length !== "number" || length < 0) throw new ProtocolError("info length is invalid");
  if (length > MAX_FILE_BYTES) {
    throw new ProtocolError(`info length ${length} is over the ${MAX_FILE_BYTES}-byte limit`);
  }
  if (pieceLength !== PIECE_LENGTH) {
    throw new ProtocolError(`piece length must be ${PIECE_LENGTH}, not ${pieceLength}`);
  }
  if (!(pieces instanceof Uint8Array) || pieces.length !== pieceCount(length) * PIECE_HASH_LENGTH) {
    throw new ProtocolError("info pieces do not match the file length");
  }
  const privateFlag = dict.get("private");
  if (privateFlag !== undefined && privateFlag !== 0 && privateFlag !== 1) {
    throw new ProtocolError("info private flag must be 0 or 1");
  }
  if (!(nameBytes instanceof Uint8Array)) throw new ProtocolError("info name is missing");
  let name: string;
  try {
    name = nameDecoder.decode(nameBytes);
  } catch {
    throw new ProtocolError("info name is not UTF-8");
  }
  const problem = fileNameProblem(name);
  if (problem) throw new ProtocolError(problem);
  // a view, not a copy: at 1 TiB the hashes are 40 MiB, and callers keep the bytes anyway
  return { name, length, pieceHashes: pieces };
}

/**
 * The exact length of `encodeInfo`'s output for a file of `length` bytes whose name is
 * `nameBytes` bytes of UTF-8: what a client expects before it fetches an info dictionary in
 * pages, so a tracker cannot make it allocate more than the file's own dictionary.
 */
export function encodedInfoLength(nameBytes: number, length: number): number {
  const piecesBytes = pieceCount(length) * PIECE_HASH_LENGTH;
  const digits = (value: number) => String(value).length;
  return "d6:lengthi".length + digits(length) + "e4:name".length + digits(nameBytes) + 1 +
    nameBytes + `12:piece lengthi${PIECE_LENGTH}e6:pieces`.length + digits(piecesBytes) + 1 +
    piecesBytes + "7:privatei1ee".length;
}

/**
 * The largest info dictionary Swarmshare takes from anyone: a 1 TiB file (`MAX_FILE_BYTES`)
 * with a 255-byte name: 40 MiB of piece hashes and 342 bytes of keys, numbers and name
 * (41,943,382 bytes). Checked before anything is allocated for one.
 */
export const MAX_INFO_BYTES = encodedInfoLength(255, MAX_FILE_BYTES);

/** The info_hash: SHA-1 of the bencoded info dictionary, 20 bytes. */
export async function infoHash(infoBytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-1", infoBytes as Uint8Array<ArrayBuffer>));
}

/** The info_hash as lowercase hex. */
export async function infoHashHex(infoBytes: Uint8Array): Promise<string> {
  return (await infoHash(infoBytes)).toHex();
}

/** The expected SHA-1 of piece `index`. */
export function pieceHash(info: TorrentInfo, index: number): Uint8Array {
  return info.pieceHashes.subarray(index * PIECE_HASH_LENGTH, (index + 1) * PIECE_HASH_LENGTH);
}
