/**
 * Length-prefixed JSON framing for the tracker link: a 4-byte big-endian body length, then
 * that many bytes of UTF-8 JSON. The length is checked against the limit before any of the
 * body is buffered, so a peer cannot make us allocate more than `maxFrameBytes`.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** The largest frame body either side accepts. */
export const MAX_FRAME_BYTES = 1 << 20;

const HEADER_BYTES = 4;
const encoder = new TextEncoder();

/** Encodes one message as a frame: length header plus JSON body. */
export function encodeFrame(message: unknown, maxFrameBytes = MAX_FRAME_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.length > maxFrameBytes) {
    throw new ProtocolError(
      `frame of ${body.length} bytes exceeds the ${maxFrameBytes}-byte limit`,
    );
  }
  const frame = new Uint8Array(HEADER_BYTES + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, HEADER_BYTES);
  return frame;
}

/** The buffer a decoder keeps between frames at most (64 KiB): more only while a frame needs it. */
const KEPT_CAPACITY_BYTES = 64 * 1024;

/**
 * Incremental decoder: `push` bytes as they arrive, then take whole messages with `next`.
 * Throws `ProtocolError` for an oversized length (as soon as the header is in), for a body
 * that is not UTF-8 JSON, and for a JSON value that is not an object.
 */
export class FrameDecoder {
  #buffer = new Uint8Array(0);
  #start = 0;
  #end = 0;
  readonly #maxFrameBytes: () => number;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });

  /** `maxFrameBytes`: a number, or asked afresh for each frame (a limit that changes). */
  constructor(maxFrameBytes: number | (() => number) = MAX_FRAME_BYTES) {
    this.#maxFrameBytes = typeof maxFrameBytes === "number" ? () => maxFrameBytes : maxFrameBytes;
  }

  /** Bytes received but not yet returned as a message. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** Bytes the decoder holds memory for (its buffer), whatever is in it. */
  get capacityBytes(): number {
    return this.#buffer.length;
  }

  /** Appends received bytes. */
  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) this.#makeRoom(chunk.length);
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** The next complete message, or `undefined` until more bytes arrive. */
  next(): Record<string, unknown> | undefined {
    if (this.bufferedBytes < HEADER_BYTES) return undefined;
    const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset + this.#start);
    const length = view.getUint32(0);
    const limit = this.#maxFrameBytes();
    if (length > limit) {
      throw new ProtocolError(`frame of ${length} bytes exceeds the ${limit}-byte limit`);
    }
    if (this.bufferedBytes < HEADER_BYTES + length) return undefined;
    const bodyStart = this.#start + HEADER_BYTES;
    const body = this.#buffer.subarray(bodyStart, bodyStart + length);
    this.#start = bodyStart + length;
    let value: unknown;
    try {
      value = JSON.parse(this.#decoder.decode(body));
    } catch {
      throw new ProtocolError("frame body is not valid UTF-8 JSON");
    } finally {
      this.#shrinkAfterLargeFrame();
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ProtocolError("frame body is not a JSON object");
    }
    return value as Record<string, unknown>;
  }

  /**
   * One large frame must not cost a connection its size for as long as it lives: once the
   * buffer has grown past `KEPT_CAPACITY_BYTES` and what is left in it fits, it goes back
   * to a small one.
   */
  #shrinkAfterLargeFrame(): void {
    if (this.#buffer.length <= KEPT_CAPACITY_BYTES) return;
    const pending = this.bufferedBytes;
    if (pending > KEPT_CAPACITY_BYTES / 2) return;
    const small = new Uint8Array(KEPT_CAPACITY_BYTES);
    small.set(this.#buffer.subarray(this.#start, this.#end));
    this.#buffer = small;
    this.#start = 0;
    this.#end = pending;
  }

  #makeRoom(incoming: number): void {
    const pending = this.bufferedBytes;
    const needed = pending + incoming;
    if (needed <= this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    } else {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2, 4096));
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
    }
    this.#start = 0;
    this.#end = pending;
  }
}

/**
 * Reads frames from a byte stream until it ends. A protocol violation throws
 * `ProtocolError`; the caller decides whether to answer before closing.
 */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
  maxFrameBytes: number | (() => number) = MAX_FRAME_BYTES,
): AsyncGenerator<Record<string, unknown>> {
  const decoder = new FrameDecoder(maxFrameBytes);
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      decoder.push(value);
      for (let message = decoder.next(); message; message = decoder.next()) yield message;
    }
    if (decoder.bufferedBytes > 0) {
      throw new ProtocolError(`stream ended inside a frame (${decoder.bufferedBytes} bytes left)`);
    }
  } finally {
    reader.releaseLock();
  }
}
