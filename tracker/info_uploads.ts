/**
 * Info dictionaries on their way in: a client sharing a file whose dictionary does not fit one
 * frame sends it in `put_info` pages, then `share_file` takes it (lib/info_pages.ts says why).
 * One dictionary per connection at most, dropped when the connection closes or starts another,
 * and all of them together within one budget, so clients sharing large files at once cannot
 * make the tracker hold more than `MAX_STAGED_INFO_BYTES`.
 *
 * @module
 */

import { errorMessage } from "../lib/errors.ts";
import { InfoReceiver } from "../lib/info_pages.ts";
import { RequestError } from "./context.ts";

/**
 * Bytes of info dictionaries the tracker holds for shares in progress, all connections
 * together: 256 MiB, six dictionaries of 1 TiB files at once. Past it, a new one is refused
 * as `busy` (the client tries again in a moment).
 */
export const MAX_STAGED_INFO_BYTES = 256 * 1024 * 1024;

/** The dictionaries being shared in pages, by connection. */
export class InfoUploads {
  readonly #byConnection = new Map<number, InfoReceiver>();
  #bytes = 0;

  constructor(readonly budgetBytes: number = MAX_STAGED_INFO_BYTES) {}

  /** Bytes held now, all connections together. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Takes one page from `connectionId`: offset 0 starts a dictionary (dropping any other of
   * the connection's), later pages continue it in order. Returns the bytes held so far.
   * Refuses, holding nothing more, a page that is not the next one or a budget overrun.
   */
  put(
    connectionId: number,
    infoHash: string,
    length: number,
    offset: number,
    page: Uint8Array,
  ): number {
    let receiver = this.#byConnection.get(connectionId);
    if (offset === 0) {
      this.drop(connectionId);
      if (this.#bytes + length > this.budgetBytes) {
        throw new RequestError(
          "busy",
          "the tracker is taking in other large shares; try again in a moment",
        );
      }
      try {
        receiver = new InfoReceiver(infoHash, length);
      } catch (error) {
        throw new RequestError("bad_request", errorMessage(error));
      }
      this.#byConnection.set(connectionId, receiver);
      this.#bytes += length;
    }
    if (!receiver || receiver.infoHashHex !== infoHash || receiver.length !== length) {
      throw new RequestError("bad_request", "an info page of a dictionary not started here");
    }
    try {
      receiver.add(offset, page);
    } catch (error) {
      this.drop(connectionId);
      throw new RequestError("bad_request", errorMessage(error));
    }
    return receiver.received;
  }

  /**
   * The whole dictionary with this info_hash that `connectionId` sent, checked against the
   * info_hash, and no longer held here.
   */
  async take(connectionId: number, infoHash: string): Promise<Uint8Array> {
    const receiver = this.#byConnection.get(connectionId);
    if (!receiver || receiver.infoHashHex !== infoHash) {
      throw new RequestError(
        "bad_request",
        "share_file without an info dictionary names one not sent in put_info pages",
      );
    }
    this.drop(connectionId);
    try {
      return await receiver.finish();
    } catch (error) {
      throw new RequestError("bad_request", errorMessage(error));
    }
  }

  /** Forgets the connection's dictionary, if any (it closed, or started another). */
  drop(connectionId: number): void {
    const receiver = this.#byConnection.get(connectionId);
    if (!receiver) return;
    this.#byConnection.delete(connectionId);
    this.#bytes -= receiver.length;
  }
}
