/**
 * Transfer rates over a moving window, measured from byte counters that only ever grow.
 *
 * Nothing is done per block: the connections already count their bytes with one addition
 * (peer/connection.ts), and a rate is the difference between the counter now and a sample of
 * it taken about five seconds ago. Samples are kept one per one-second bucket (the first
 * taken in each second), in a ring of six, so the window is the last 5 to 6 seconds; a timer
 * takes a sample once a second (peer/file_sharing.ts), and every reading takes one too.
 *
 * @module
 */

/** One bucket of the window. */
export const RATE_BUCKET_MS = 1_000;
/** Buckets in the window: a rate covers the last 5 to 6 seconds. */
export const RATE_WINDOW_BUCKETS = 5;
const SLOTS = RATE_WINDOW_BUCKETS + 1;

/**
 * The rate of one growing byte counter over the last RATE_WINDOW_BUCKETS seconds.
 *
 * @example
 * ```ts
 * const window = new RateWindow();
 * window.record(0, 0);
 * window.bytesPerSecond(5_000_000, 5_000); // 1_000_000
 * ```
 */
export class RateWindow {
  readonly #times = new Float64Array(SLOTS);
  readonly #totals = new Float64Array(SLOTS);
  /** The bucket (ms / RATE_BUCKET_MS) of the newest sample; -1: none yet. */
  #newestBucket = -1;
  #newest = -1;
  #count = 0;

  /** Takes a sample of `total` (bytes so far) at `nowMs`: kept if it is its bucket's first. */
  record(total: number, nowMs: number): void {
    const bucket = Math.floor(nowMs / RATE_BUCKET_MS);
    if (bucket === this.#newestBucket) return;
    this.#newestBucket = bucket;
    this.#newest = (this.#newest + 1) % SLOTS;
    this.#times[this.#newest] = nowMs;
    this.#totals[this.#newest] = total;
    if (this.#count < SLOTS) this.#count++;
  }

  /**
   * Bytes per second from the oldest sample still in the window to `total` now (0 before
   * any sample, or when no time has passed). A counter that stopped being sampled for a
   * while (no timer ran) is measured from its newest sample, however old.
   */
  bytesPerSecond(total: number, nowMs: number): number {
    let rate = 0;
    if (this.#count > 0) {
      const oldestBucket = Math.floor(nowMs / RATE_BUCKET_MS) - RATE_WINDOW_BUCKETS;
      let from = this.#newest;
      for (let age = 1; age < this.#count; age++) {
        const slot = (this.#newest - age + SLOTS) % SLOTS;
        if (Math.floor(this.#times[slot] / RATE_BUCKET_MS) < oldestBucket) break;
        from = slot;
      }
      const elapsedMs = nowMs - this.#times[from];
      if (elapsedMs > 0) rate = Math.max(0, (total - this.#totals[from]) * 1000 / elapsedMs);
    }
    this.record(total, nowMs);
    return rate;
  }
}

/** Byte counters of a transfer in both directions, as connections and torrents keep them. */
export interface TransferCounts {
  /** Bytes of piece data received. */
  bytesReceived: number;
  /** Bytes of piece data sent. */
  bytesServed: number;
}

/** The down and up rates of one pair of counters. */
export class TransferRates {
  readonly down = new RateWindow();
  readonly up = new RateWindow();

  /** Samples both counters (once a second, from a timer). */
  record(counts: TransferCounts, nowMs: number): void {
    this.down.record(counts.bytesReceived, nowMs);
    this.up.record(counts.bytesServed, nowMs);
  }

  /** Both rates now, in bytes per second. */
  read(counts: TransferCounts, nowMs: number): { down: number; up: number } {
    return {
      down: this.down.bytesPerSecond(counts.bytesReceived, nowMs),
      up: this.up.bytesPerSecond(counts.bytesServed, nowMs),
    };
  }
}
