/**
 * A rate limit shared by every connection of a client (one for what it sends, one for what
 * it receives): a token bucket refilled at the rate, holding at most `BUCKET_SECONDS` worth,
 * so short bursts pass and the average holds. Waiters are served oldest piece first (see
 * `RateLimiter`). The rate can change while the client runs (`set_limits`); waiters notice
 * within `RECHECK_MS`.
 *
 * @module
 */

/** A waiter looks at the bucket at least this often, so a new rate applies at once. */
const RECHECK_MS = 50;

/**
 * The burst a limit lets through after a pause, in seconds of its rate. It was 1 s: a capped
 * sharer idle before a flash crowd then sent its first second's worth at once, 8 MiB at
 * 8 MiB/s, and a 64 MiB swarm "beat" the sharer's bound S/u_s by 11% (efficiency 1.11 in
 * `deno task bench --scenarios C4`), which a real link does not do. A quarter second still
 * rides out the event loop's pauses (a busy client may not look at the bucket for 100 ms).
 */
export const BUCKET_SECONDS = 0.25;

/** One caller waiting for the bucket. */
interface Waiter {
  bytes: number;
  rank: number;
  resolve: () => void;
}

/**
 * Limits how fast bytes may pass; no limit while the rate is `undefined`.
 *
 * Waiters are served lowest rank first, in order of arrival among equal ranks; a rank is a
 * `performance.now()` time, by default the moment of the call, which makes the order first
 * come, first served. A capped uploader ranks each run of a piece by the moment it started
 * serving that piece (peer/connection.ts), so it finishes the pieces it started before it
 * starts others: one at a time at the whole rate rather than sixteen at a sixteenth each.
 * A piece then reaches its downloader, which can pass it on, in 1/16 of the time, and the
 * pieces a sharer sends last do not all land together at the very end for the swarm to
 * trade afterwards (`deno task bench --scenarios C16`, docs/benchmarks.md).
 *
 * Waiters are bounded by their callers: one per served connection and one per connection
 * downloading (peer/serving_caps.ts `MAX_PEER_CONNECTIONS`, download.ts `MAX_PEERS`).
 */
export class RateLimiter {
  #bytesPerSecond: number | undefined;
  #tokens = 0;
  #updatedAt = performance.now();
  /** Sorted by rank, arrival order among equal ranks. */
  readonly #waiters: Waiter[] = [];
  #pumping = false;

  constructor(bytesPerSecond?: number) {
    this.rate = bytesPerSecond;
  }

  /** Bytes per second, or `undefined` for no limit. */
  get rate(): number | undefined {
    return this.#bytesPerSecond;
  }

  set rate(bytesPerSecond: number | undefined) {
    if (bytesPerSecond !== undefined && !(bytesPerSecond > 0 && Number.isFinite(bytesPerSecond))) {
      throw new RangeError("the rate must be positive");
    }
    this.#bytesPerSecond = bytesPerSecond;
    // a new limit starts with a full bucket, as the first one did
    this.#tokens = (bytesPerSecond ?? 0) * BUCKET_SECONDS;
    this.#updatedAt = performance.now();
  }

  /** True while some caller waits for the bucket: the limit, not the peers, sets the pace. */
  get saturated(): boolean {
    return this.#waiters.length > 0;
  }

  /**
   * Resolves once `bytes` may pass (at once without a limit and nobody waiting). Among
   * waiters, the lowest `rank` goes first (see the class notes).
   */
  take(bytes: number, rank: number = performance.now()): Promise<void> {
    if (this.#bytesPerSecond === undefined && this.#waiters.length === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    let at = this.#waiters.length;
    while (at > 0 && this.#waiters[at - 1].rank > rank) at--;
    this.#waiters.splice(at, 0, { bytes, rank, resolve });
    if (!this.#pumping) this.#pump();
    return promise;
  }

  /** Lets waiters through as the bucket allows, until none is left. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#waiters.length > 0) {
        const rate = this.#bytesPerSecond;
        if (rate === undefined) {
          this.#waiters.shift()!.resolve();
          continue;
        }
        const now = performance.now();
        const bucket = rate * BUCKET_SECONDS;
        this.#tokens = Math.min(bucket, this.#tokens + ((now - this.#updatedAt) / 1000) * rate);
        this.#updatedAt = now;
        const head = this.#waiters[0];
        if (this.#tokens >= Math.min(head.bytes, bucket)) {
          // a take larger than the bucket goes into debt, paid by the next callers
          this.#tokens -= head.bytes;
          this.#waiters.shift();
          head.resolve();
          continue;
        }
        const needMs = ((Math.min(head.bytes, bucket) - this.#tokens) / rate) * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.min(RECHECK_MS, needMs)));
      }
    } finally {
      this.#pumping = false;
    }
  }
}
