/**
 * A set of piece indexes in the BitTorrent wire layout: the high bit of byte 0 is piece 0,
 * and the spare bits after the last piece are zero. The same bytes go into a `bitfield`
 * message unchanged.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** Which of `size` pieces are present. */
export class Bitfield {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    this.size = size;
    this.bytes = bytes ?? new Uint8Array(Math.ceil(size / 8));
    if (bytes) { for (let i = 0; i < size; i++) if (this.has(i)) this.#count++; }
  }

  /**
   * Reads a peer's bitfield message body; throws `ProtocolError` when its length is wrong or
   * a spare bit is set (BEP 3 requires both).
   */
  static fromWire(size: number, payload: Uint8Array): Bitfield {
    if (payload.length !== Math.ceil(size / 8)) {
      throw new ProtocolError(`bitfield of ${payload.length} bytes for ${size} pieces`);
    }
    const spare = payload.length * 8 - size;
    if (spare > 0 && (payload[payload.length - 1] & ((1 << spare) - 1)) !== 0) {
      throw new ProtocolError("bitfield has bits set past the last piece");
    }
    return new Bitfield(size, payload.slice());
  }

  /** How many pieces are present. */
  get count(): number {
    return this.#count;
  }

  /** True when every piece is present. */
  get isComplete(): boolean {
    return this.#count === this.size;
  }

  has(index: number): boolean {
    return (this.bytes[index >> 3] & (0x80 >> (index & 7))) !== 0;
  }

  /** Marks a piece present; returns false when it already was. */
  add(index: number): boolean {
    if (index < 0 || index >= this.size) throw new RangeError(`piece ${index} out of range`);
    if (this.has(index)) return false;
    this.bytes[index >> 3] |= 0x80 >> (index & 7);
    this.#count++;
    return true;
  }

  /** Marks a piece absent. */
  delete(index: number): void {
    if (!this.has(index)) return;
    this.bytes[index >> 3] &= ~(0x80 >> (index & 7));
    this.#count--;
  }

  /** A bitfield with every piece present. */
  static full(size: number): Bitfield {
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) field.add(i);
    return field;
  }
}
