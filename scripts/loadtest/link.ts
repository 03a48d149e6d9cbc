/**
 * One hand-spoken tracker link for the load generator: frames over TCP or TLS from a chosen
 * loopback address, requests pipelined and matched to replies by id. Also the address plan
 * (which loopback address each load user speaks from) and a bounded-concurrency helper.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { encodeFrame, FrameDecoder } from "../../lib/frame.ts";
import type { Identity } from "../../lib/identity.ts";

/** Links idle while others open are pinged this often (the tracker's idle timeout is 45 s). */
export const KEEPALIVE_MS = 15_000;

/** A reply frame as the tracker sends it. */
export type Reply = Record<string, unknown> & { id: number; ok: boolean };

const CLOSED: Reply = { id: 0, ok: false, error: { code: "closed" } };

/** A tracker link; requests may be pipelined, replies are matched by id. */
export class Link {
  readonly #socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  #outcomes?: OutcomeDecoder;
  #nextId = 1;
  closed = false;

  #settle(reply: Reply): void {
    const resolve = this.#waiting.get(reply.id);
    if (!resolve) return; // a push
    this.#waiting.delete(reply.id);
    resolve(reply);
  }

  /**
   * From now on, replies carry only their id and ok (and error, when not ok): the measured
   * load reads each reply whole but does not parse what a success carries, which would cost
   * the load generator more than the tracker spends making it.
   */
  outcomesOnly(): void {
    this.#outcomes ??= new OutcomeDecoder();
  }

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#outcomes) {
        this.#outcomes.push(chunk);
        for (let reply = this.#outcomes.next(); reply; reply = this.#outcomes.next()) {
          this.#settle(reply);
        }
        return;
      }
      this.#decoder.push(chunk);
      for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next()) {
        this.#settle(frame as Reply);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      for (const resolve of this.#waiting.values()) resolve(CLOSED);
      this.#waiting.clear();
    });
  }

  /** Connects from `localAddress` to the tracker at 127.0.0.1:`port` (TLS with `identity`). */
  static async open(
    port: number,
    localAddress: string,
    identity: Identity | undefined,
  ): Promise<Link> {
    const raw = net.connect({ host: "127.0.0.1", port, localAddress });
    const socket = identity
      ? tls.connect({
        socket: raw,
        cert: identity.certPem,
        key: identity.keyPem,
        rejectUnauthorized: false,
      })
      : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(identity ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    socket.setNoDelay(true);
    return new Link(socket);
  }

  /** Sends a request; resolves with its reply (a `closed` error if the link ends first). */
  request(message: Record<string, unknown>): Promise<Reply> {
    if (this.closed) return Promise.resolve(CLOSED);
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve) => this.#waiting.set(id, resolve));
    this.#socket.write(encodeFrame({ ...message, id }));
    return reply;
  }

  /** Sends a request and throws unless it succeeds. */
  async expect(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const reply = await this.request(message);
    if (!reply.ok) {
      throw new Error(`${message.type} refused: ${JSON.stringify(reply.error)}`);
    }
    return reply.data as Record<string, unknown>;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Load users are spread over 127.77.0.1 to 127.77.255.250, 250 to a /24. */
export const MAX_LOAD_ADDRESSES = 256 * 250;

/** The loopback address of load user `index` (127.77.0.1, 127.77.0.2, ...). */
export function userAddress(index: number): string {
  return `127.77.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/** Runs `task` over `items` with at most `limit` at once. */
export async function inTurn<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Splits frames and reads a reply's id and ok from its first bytes, as the tracker writes
 * them (`{"id":N,"ok":true,...`); a frame that does not start so (an error, a push) is
 * parsed whole.
 */
class OutcomeDecoder {
  #buffer = new Uint8Array(0);
  #start = 0;
  #end = 0;
  readonly #text = new TextDecoder();

  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const pending = this.#buffer.subarray(this.#start, this.#end);
      const needed = pending.length + chunk.length;
      const grown = needed <= this.#buffer.length
        ? this.#buffer
        : new Uint8Array(Math.ceil(needed / 8192) * 8192);
      if (grown === this.#buffer) grown.copyWithin(0, this.#start, this.#end);
      else grown.set(pending);
      this.#buffer = grown;
      this.#end = pending.length;
      this.#start = 0;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  next(): Reply | undefined {
    if (this.#end - this.#start < 4) return undefined;
    const view = new DataView(this.#buffer.buffer, this.#start);
    const length = view.getUint32(0);
    if (this.#end - this.#start < 4 + length) return undefined;
    const body = this.#buffer.subarray(this.#start + 4, this.#start + 4 + length);
    this.#start += 4 + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    const head = /^\{"id":(\d+),"ok":true[,}]/.exec(this.#text.decode(body.subarray(0, 40)));
    if (head) return { id: Number(head[1]), ok: true };
    return JSON.parse(this.#text.decode(body)) as Reply;
  }
}
