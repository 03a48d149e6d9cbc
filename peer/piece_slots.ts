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
 * The memory starts on a page boundary, so that the writer can hand slots to the disk with
 * direct I/O, which needs aligned buffers: a shared WebAssembly memory is mapped by whole
 * pages, where a plain SharedArrayBuffer may start anywhere.
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
    this.memory = pageAlignedMemory(count * PIECE_LENGTH);
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

/** WebAssembly's page: 64 KiB, of which a piece is a whole number. */
const WASM_PAGE = 65536;

/**
 * `bytes` of zeroed shared memory that starts on a page boundary; a plain SharedArrayBuffer,
 * which may start anywhere, for a size of no whole number of 64 KiB pages or if the runtime
 * cannot make one (the writer then writes through the cache).
 * V8 maps a WebAssembly memory with mmap, so it starts on a page; the standard does not
 * promise it, which is why the writer still falls back where a direct write is refused.
 */
export function pageAlignedMemory(bytes: number): SharedArrayBuffer {
  const pages = bytes / WASM_PAGE;
  if (!Number.isInteger(pages)) return new SharedArrayBuffer(bytes);
  try {
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    return memory.buffer as SharedArrayBuffer;
  } catch {
    return new SharedArrayBuffer(bytes);
  }
}

/** A view of every slot of `memory` (on the writer's side too). */
export function slotViews(memory: SharedArrayBuffer): Uint8Array[] {
  return Array.from(
    { length: memory.byteLength / PIECE_LENGTH },
    (_, slot) => new Uint8Array(memory, slot * PIECE_LENGTH, PIECE_LENGTH),
  );
}
