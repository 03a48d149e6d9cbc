/**
 * One writer per tracker connection: replies and pushes go out through a single chain of
 * writes, so a push sent while a reply is being written never interleaves bytes with it.
 * Replies are awaited by the connection's request loop (one at a time); pushes are not, so
 * they are bounded: a connection with more than `maxQueuedPushes` pushes not yet written is
 * not reading, and is closed rather than let to grow the tracker's memory.
 *
 * @module
 */

import { ProtocolError } from "../lib/errors.ts";
import { encodeFrame, MAX_FRAME_BYTES } from "../lib/frame.ts";
import { closeQuietly } from "../lib/io.ts";
import type { Push, Response } from "../lib/protocol.ts";
import type { ByteConn } from "../lib/transport.ts";
import { Deadline } from "./deadline.ts";

/** Pushes a connection may have waiting to be written before it is dropped. */
export const MAX_QUEUED_PUSHES = 256;

/**
 * The longest one frame may take to be written (30 s): a client that stops reading is
 * closed, so a reply it never takes (up to 1 MiB) is not held for ever, and its connection's
 * idle timer (paused while the tracker answers) cannot be held off by it.
 */
export const WRITE_TIMEOUT_MS = 30_000;

/** Serialises every frame written to one connection. */
export class FrameWriter {
  readonly #conn: ByteConn;
  readonly #maxQueuedPushes: number;
  /** Runs while a frame is being written: one that takes too long closes the connection. */
  readonly #writing: Deadline;
  #chain: Promise<void> = Promise.resolve();
  #queuedPushes = 0;
  #closed = false;

  constructor(
    conn: ByteConn,
    options: { maxQueuedPushes?: number; writeTimeoutMs?: number } = {},
  ) {
    this.#conn = conn;
    this.#maxQueuedPushes = options.maxQueuedPushes ?? MAX_QUEUED_PUSHES;
    this.#writing = new Deadline(options.writeTimeoutMs ?? WRITE_TIMEOUT_MS, () => this.close());
  }

  /** Writes one frame, closing the connection if the far end does not take it in time. */
  async #write(frame: Uint8Array): Promise<void> {
    this.#writing.start();
    try {
      // as writeAll, without a promise of its own: a TLS connection takes the whole frame at once
      let written = await this.#conn.write(frame);
      while (written < frame.length) written += await this.#conn.write(frame.subarray(written));
    } finally {
      this.#writing.stop();
    }
  }

  /** Pushes that may wait at once; one more closes the connection. */
  get maxQueuedPushes(): number {
    return this.#maxQueuedPushes;
  }

  /** Pushes waiting to be written. */
  get queuedPushes(): number {
    return this.#queuedPushes;
  }

  /**
   * Writes a reply after everything queued before it; rejects when the write fails. A reply
   * that does not fit a frame goes out as an error for that request alone (no listing or
   * file is meant to be that large; if one is, the connection still lives). `dataJson`, when
   * given, is `response.data` as JSON already (a kept page, tracker/reply_cache.ts): it is
   * copied into the frame rather than serialized again.
   */
  reply(response: Response, dataJson?: Uint8Array): Promise<void> {
    let frame: Uint8Array;
    try {
      frame = response.ok && dataJson !== undefined
        ? encodeReplyFrame(response.id, dataJson)
        : encodeFrame(response);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      frame = encodeFrame(
        {
          id: response.id,
          ok: false,
          error: { code: "internal", message: `the reply is too large: ${error.message}` },
        } satisfies Response,
      );
    }
    const written = this.#chain.then(() => this.#write(frame));
    this.#chain = written.catch(() => {});
    return written;
  }

  /**
   * Queues a push; never waits. Returns false (and closes the connection) when the
   * connection already has `maxQueuedPushes` waiting, or is closed.
   */
  push(push: Push): boolean {
    if (this.#closed) return false;
    if (this.#queuedPushes >= this.#maxQueuedPushes) {
      this.close();
      return false;
    }
    const frame = encodeFrame(push);
    this.#queuedPushes++;
    this.#chain = this.#chain
      .then(() => this.#closed ? undefined : this.#write(frame))
      .catch(() => this.close())
      .finally(() => this.#queuedPushes--);
    return true;
  }

  /** Closes the connection; later pushes are refused. */
  close(): void {
    this.#closed = true;
    this.#writing.clear();
    closeQuietly(this.#conn);
  }
}

const CLOSING_BRACE = 0x7d;

/**
 * The frame of `{"id":id,"ok":true,"data":<dataJson>}`, as `encodeFrame` would make it of
 * the parsed data; throws `ProtocolError` when it passes the frame limit.
 */
export function encodeReplyFrame(id: number, dataJson: Uint8Array): Uint8Array {
  // ASCII (an id is a number): its characters are its bytes, copied without an encoder
  const head = `{"id":${JSON.stringify(id)},"ok":true,"data":`;
  const length = head.length + dataJson.length + 1;
  if (length > MAX_FRAME_BYTES) {
    throw new ProtocolError(`frame of ${length} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
  }
  const frame = new Uint8Array(4 + length);
  new DataView(frame.buffer).setUint32(0, length);
  for (let i = 0; i < head.length; i++) frame[4 + i] = head.charCodeAt(i);
  frame.set(dataJson, 4 + head.length);
  frame[frame.length - 1] = CLOSING_BRACE;
  return frame;
}
