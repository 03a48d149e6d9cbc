/**
 * A download's piece buffers: a fixed number of 512 KiB slots in one SharedArrayBuffer that
 * the download and its disk writer (piece_writer_worker.ts) both see. Pieces travel between
 * the two threads as slot numbers, so no buffer is copied or transferred per piece. They used
 * to be transferred ArrayBuffers, and each transfer makes a new ArrayBuffer on the other side
 * (V8 counts it as fresh external memory): with slots, S2 (three seeders) took ~15% less time
 * and CPU over three interleaved benchmark rounds.
 *
 * Free slots are reused last-freed first, so a download touches only as many slots as it
 * really has in use at once: the pages of the others are never made resident.
 *
 * @module
 */

import { PIECE_LENGTH } from "../lib/pieces.ts";

/** The slots of one download, on the thread that hands them out. */
export class PieceSlots {
  readonly memory: SharedArrayBuffer;
  /** One view per slot, made once. */
  readonly views: Uint8Array[];
  readonly #free: number[];

  constructor(count: number) {
    this.memory = new SharedArrayBuffer(count * PIECE_LENGTH);
    this.views = slotViews(this.memory);
    // popped from the end: slot 0 first
    this.#free = Array.from({ length: count }, (_, slot) => count - 1 - slot);
  }

  /** A free slot; throws when every slot is taken (the caller bounds its pieces). */
  take(): number {
    const slot = this.#free.pop();
    if (slot === undefined) throw new Error("no free piece slot");
    return slot;
  }

  give(slot: number): void {
    this.#free.push(slot);
  }

  get freeCount(): number {
    return this.#free.length;
  }
}

/** A view of every slot of `memory` (on the writer's side too). */
export function slotViews(memory: SharedArrayBuffer): Uint8Array[] {
  return Array.from(
    { length: memory.byteLength / PIECE_LENGTH },
    (_, slot) => new Uint8Array(memory, slot * PIECE_LENGTH, PIECE_LENGTH),
  );
}
