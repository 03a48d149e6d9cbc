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
/** Where a frame's header goes while its JSON is encoded: four NULs, four zero bytes. */
const HEADER_PLACE = "\0\0\0\0";
const encoder = new TextEncoder();

/** Encodes one message as a frame: length header plus JSON body. */
export function encodeFrame(message: unknown, maxFrameBytes = MAX_FRAME_BYTES): Uint8Array {
  // the header's place is four NUL characters (four zero bytes in UTF-8), filled in after:
  // one buffer a frame, not a body copied into a second one
  const frame = encoder.encode(HEADER_PLACE + JSON.stringify(message));
  const length = frame.length - HEADER_BYTES;
  if (length > maxFrameBytes) {
    throw new ProtocolError(`frame of ${length} bytes exceeds the ${maxFrameBytes}-byte limit`);
  }
  new DataView(frame.buffer, frame.byteOffset).setUint32(0, length);
  return frame;
}

/** The buffer a decoder keeps between frames at most (16 KiB): more only while a frame needs it. */
const KEPT_CAPACITY_BYTES = 16 * 1024;
/** What a decoder's buffer goes back to once a frame that needed more is read. */
const SMALL_CAPACITY_BYTES = 4 * 1024;
/** Frames longer than this (64 KiB) are read only with a share of a `FrameBudget`, if any. */
export const LARGE_FRAME_BYTES = 64 * 1024;

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

  /**
   * The whole length (header and body) of the frame being received, once its header is in
   * and while its body is not complete; otherwise undefined. A length over the limit is
   * for `next` to refuse.
   */
  get incompleteFrameBytes(): number | undefined {
    const frame = this.#frameBytes();
    return frame !== undefined && this.bufferedBytes < frame ? frame : undefined;
  }

  /** The length of the frame at the start of the buffer, once its header is in. */
  #frameBytes(): number | undefined {
    if (this.bufferedBytes < HEADER_BYTES) return undefined;
    const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset + this.#start);
    return HEADER_BYTES + view.getUint32(0);
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
    // small: a connection idle after one large frame holds 4 KiB, not the 64 KiB it once did
    const small = new Uint8Array(Math.max(SMALL_CAPACITY_BYTES, pending));
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
      // a frame whose length is known gets its room at once, and no more: doubling on the
      // way to a 1 MiB frame left up to 1 MiB of garbage, and 2 MiB of buffer
      const frame = this.#frameBytes();
      const limit = HEADER_BYTES + this.#maxFrameBytes();
      const wanted = frame !== undefined && frame <= limit
        ? frame
        : Math.max(this.#buffer.length * 2, 4096);
      const grown = new Uint8Array(Math.max(needed, wanted));
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
    }
    this.#start = 0;
    this.#end = pending;
  }
}

/**
 * Bytes as they arrive, one chunk at a time: what `readFrames` reads besides a stream. A
 * connection that hands out its chunks itself (lib/transport.ts `chunksOf`) is read without
 * a web stream between: a stream's pull, enqueue and read were 4% of the tracker's main
 * thread under load, for one chunk per request.
 */
export interface ChunkSource {
  /** The next bytes received, or null at the end of the stream. */
  readChunk(): Promise<Uint8Array | null>;
}

/**
 * Reads the next chunk into `decoder`: false at the end of the stream. The chunk lives in
 * this call only; in the caller's loop it stayed alive (V8 keeps a suspended function's
 * last values) while the reader waited for the next, up to 48 KiB per idle connection.
 */
async function pushNext(
  from: ReadableStreamDefaultReader<Uint8Array> | ChunkSource,
  decoder: FrameDecoder,
): Promise<boolean> {
  if ("readChunk" in from) {
    const chunk = await from.readChunk();
    if (chunk === null) return false;
    decoder.push(chunk);
    return true;
  }
  const { value, done } = await from.read();
  if (done) return false;
  decoder.push(value);
  return true;
}

/**
 * Bytes of large frames (longer than `LARGE_FRAME_BYTES`) that all the readers sharing it
 * may hold at once, from a large frame's header until the frame has been handled. A reader
 * whose next frame is large waits for its share before it reads the body; meanwhile it reads
 * nothing, so its sender is held back by TCP. So any number of connections each sending a
 * large frame costs this budget (and a few times it while they are decoded), not a megabyte
 * each. Waiters are served first come, first served; a frame larger than the whole budget
 * waits for all of it.
 */
export class FrameBudget {
  readonly totalBytes: number;
  #available: number;
  readonly #waiting: { bytes: number; resolve: () => void }[] = [];

  constructor(totalBytes: number) {
    if (!(totalBytes > 0)) throw new RangeError("a frame budget must be positive");
    this.totalBytes = totalBytes;
    this.#available = totalBytes;
  }

  /** Bytes not held by any reader. */
  get availableBytes(): number {
    return this.#available;
  }

  /** Readers waiting for their share. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves once `bytes` (at most the whole budget) are held for the caller. */
  acquire(bytes: number): Promise<number> {
    const share = Math.min(bytes, this.totalBytes);
    if (this.#waiting.length === 0 && share <= this.#available) {
      this.#available -= share;
      return Promise.resolve(share);
    }
    return new Promise((resolve) =>
      this.#waiting.push({ bytes: share, resolve: () => resolve(share) })
    );
  }

  /** Gives back what `acquire` resolved with. */
  release(share: number): void {
    this.#available += share;
    while (this.#waiting.length > 0 && this.#waiting[0].bytes <= this.#available) {
      const next = this.#waiting.shift()!;
      this.#available -= next.bytes;
      next.resolve();
    }
  }
}

/**
 * Reads frames from a byte stream (or a source of chunks) until it ends. A protocol violation throws
 * `ProtocolError`; the caller decides whether to answer before closing. With a `budget`, a
 * large frame's body is read only once its share of the budget is held, and the share is
 * given back when the caller asks for the next frame (it has handled this one) or stops.
 */
export async function* readFrames(
  source: ReadableStream<Uint8Array> | ChunkSource,
  maxFrameBytes: number | (() => number) = MAX_FRAME_BYTES,
  options: { budget?: FrameBudget } = {},
): AsyncGenerator<Record<string, unknown>> {
  const decoder = new FrameDecoder(maxFrameBytes);
  const reader = source instanceof ReadableStream ? source.getReader() : source;
  const budget = options.budget;
  let held = 0;
  try {
    while (true) {
      const incomplete = decoder.incompleteFrameBytes;
      if (budget && held === 0 && incomplete !== undefined && incomplete > LARGE_FRAME_BYTES) {
        held = await budget.acquire(incomplete);
      }
      if (!await pushNext(reader, decoder)) break;
      for (let message = decoder.next(); message; message = decoder.next()) {
        yield message;
        // the large frame, if one was held for, is the first that completed
        if (held > 0) {
          budget!.release(held);
          held = 0;
        }
      }
    }
    if (decoder.bufferedBytes > 0) {
      throw new ProtocolError(`stream ended inside a frame (${decoder.bufferedBytes} bytes left)`);
    }
  } finally {
    if (held > 0) budget!.release(held);
    if ("releaseLock" in reader) reader.releaseLock();
  }
}
