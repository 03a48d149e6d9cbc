/**
 * Info dictionaries too large for one tracker frame, moved in pages of `INFO_PAGE_BYTES`.
 *
 * Why the tracker keeps the whole dictionary and hands it out in pages, rather than peers
 * trading it among themselves as BitTorrent's metadata extension (BEP 9) does: the tracker is
 * already the pinned party every client trusts for a file's name, size and info_hash and the
 * one that enforces group access, and it already keeps each file's dictionary. Keeping it
 * there means a user's shares are served again at login on any device without hashing the
 * file again (1 TiB takes ten minutes), a download can be resumed while no holder is online,
 * and the peer wire stays as it is (no per-connection metadata state to bound). The cost is
 * the tracker's: up to 40 MiB stored per 1 TiB file, sent once per download in 80 frames that
 * take their turn with every other request, and a bounded staging area while a client shares.
 *
 * Every page is checked as it comes (its offset is where the last one ended, its length is a
 * full page but for the last), the whole is checked against the info_hash before anything uses
 * it, and the total is known before the first page: the file's own dictionary length, never
 * more than `MAX_INFO_BYTES`. A dictionary of at most one page travels inline, as before.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { infoHashHex, MAX_INFO_BYTES } from "./metainfo.ts";

/**
 * Bytes of an info dictionary in one page: 512 KiB, 683 KiB as base64, which leaves a 1 MiB
 * frame room for the rest of its message (a path of up to 4 KiB, names, a ticket). An info
 * dictionary of at most this many bytes (files up to about 13 GiB) travels inline.
 */
export const INFO_PAGE_BYTES = 512 * 1024;

/** True when an info dictionary of `length` bytes travels inline rather than in pages. */
export function isInlineInfo(length: number): boolean {
  return length <= INFO_PAGE_BYTES;
}

/** Throws `ProtocolError` unless `length` may be an info dictionary's length. */
export function checkInfoLength(length: number): void {
  if (!Number.isSafeInteger(length) || length <= 0 || length > MAX_INFO_BYTES) {
    throw new ProtocolError(
      `an info dictionary of ${length} bytes is not possible (at most ${MAX_INFO_BYTES})`,
    );
  }
}

/**
 * Throws `ProtocolError` unless `offset` starts a page of an info dictionary of `length`
 * bytes; returns the page's length.
 */
export function infoPageLength(length: number, offset: number): number {
  checkInfoLength(length);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= length) {
    throw new ProtocolError(`offset ${offset} is outside an info dictionary of ${length} bytes`);
  }
  if (offset % INFO_PAGE_BYTES !== 0) {
    throw new ProtocolError(`offset ${offset} does not start a page of ${INFO_PAGE_BYTES} bytes`);
  }
  return Math.min(INFO_PAGE_BYTES, length - offset);
}

/** The page of `info` at `offset` (a view, not a copy). */
export function infoPage(info: Uint8Array, offset: number): Uint8Array {
  return info.subarray(offset, offset + infoPageLength(info.length, offset));
}

/** The offsets of the pages of an info dictionary of `length` bytes, in order. */
export function* infoPageOffsets(length: number): Generator<number> {
  checkInfoLength(length);
  for (let offset = 0; offset < length; offset += INFO_PAGE_BYTES) yield offset;
}

/**
 * Takes an info dictionary in pages from someone not trusted: its length is fixed up front
 * (and bounded by `MAX_INFO_BYTES`), pages must come in order and be whole, and `finish`
 * gives the bytes only when their SHA-1 is the expected info_hash. Holds one buffer of the
 * dictionary's length and nothing else.
 *
 * @example
 * ```ts
 * const receiver = new InfoReceiver(infoHashHex, infoLength);
 * while (!receiver.isComplete) receiver.add(receiver.received, await fetchPage(receiver.received));
 * const info = await receiver.finish();
 * ```
 */
export class InfoReceiver {
  readonly #bytes: Uint8Array;
  #received = 0;

  constructor(readonly infoHashHex: string, readonly length: number) {
    checkInfoLength(length);
    this.#bytes = new Uint8Array(length);
  }

  /** Bytes taken so far: the offset of the next page. */
  get received(): number {
    return this.#received;
  }

  get isComplete(): boolean {
    return this.#received === this.length;
  }

  /** Takes the page at `offset`. Throws `ProtocolError` when it is not the next whole page. */
  add(offset: number, page: Uint8Array): void {
    if (this.isComplete) throw new ProtocolError("the info dictionary is already complete");
    if (offset !== this.#received) {
      throw new ProtocolError(`info page at ${offset}, expected the one at ${this.#received}`);
    }
    const expected = infoPageLength(this.length, offset);
    if (page.length !== expected) {
      throw new ProtocolError(
        `info page at ${offset} has ${page.length} bytes, expected ${expected}`,
      );
    }
    this.#bytes.set(page, offset);
    this.#received += page.length;
  }

  /** The whole dictionary, once its SHA-1 is the expected info_hash; else `ProtocolError`. */
  async finish(): Promise<Uint8Array> {
    if (!this.isComplete) {
      throw new ProtocolError(
        `the info dictionary is incomplete: ${this.#received} of ${this.length} bytes`,
      );
    }
    if (await infoHashHex(this.#bytes) !== this.infoHashHex) {
      throw new ProtocolError("the info dictionary does not match its info_hash");
    }
    return this.#bytes;
  }
}
