/**
 * Who gets the first copy of each piece from a sharer whose uplink is the bottleneck (an
 * upload limit is set and it holds the whole file).
 *
 * Downloaders that start together pick the rarest pieces at random, but none of them sees
 * what the others are fetching, so several ask the sharer for the same piece: with 16
 * downloaders and the sharer capped at 8 MiB/s, 15-20% of what it sent from the first second
 * on were second copies, and most of its last seconds (1.43 copies of the file in all). The
 * sharer is the one place that sees every request. So the first connection to ask for a
 * piece claims it; another asking for it while it is claimed is told the sharer no longer has
 * it (BEP 54 `lt_donthave`), drops its requests and picks another piece, and gets the claimed
 * one from the downloader that fetched it, which announces it to everyone. Should it find
 * nobody else with the piece, the sharer shows it the piece again after `SHOW_AGAIN_MS` and
 * then serves it (peer/connection.ts).
 *
 * A member who asks for every piece first and then fetches slowly, or not at all, costs the
 * others that `SHOW_AGAIN_MS` once per piece and connection, no more: a piece shown again is
 * served to whoever asks. State is one slot per piece of the file, freed when its claimant
 * leaves.
 *
 * @module
 */

import { pieceCount } from "../lib/pieces.ts";

/** How long a piece stays hidden from a connection before the sharer offers it again. */
export const SHOW_AGAIN_MS = 2_000;

export class FirstCopies {
  readonly #fileLength: number;
  /** The connection each piece's first copy goes to, once one asked. */
  readonly #claimant: unknown[];

  constructor(fileLength: number) {
    this.#fileLength = fileLength;
    this.#claimant = new Array(pieceCount(fileLength)).fill(undefined);
  }

  /** True when `who` may fetch the piece now: nobody else claimed it first. */
  mayFetch(index: number, who: unknown): boolean {
    const claimant = this.#claimant[index];
    if (claimant === undefined) this.#claimant[index] = who;
    return claimant === undefined || claimant === who;
  }

  /** `who` went away: the pieces it claimed may go to others (it may not have them all). */
  release(who: unknown): void {
    for (let index = 0; index < this.#claimant.length; index++) {
      if (this.#claimant[index] === who) this.#claimant[index] = undefined;
    }
  }
}
