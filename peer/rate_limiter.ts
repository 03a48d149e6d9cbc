/**
 * A rate limit shared by every connection of a client (one for what it sends, one for what
 * it receives): a token bucket refilled at the rate, holding at most `BUCKET_SECONDS` worth,
 * so short bursts pass and the average holds. Waiters are served in order. The rate can change
 * while the client runs (`set_limits`); a waiter notices within `RECHECK_MS`.
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

/** Limits how fast bytes may pass; no limit while the rate is `undefined`. */
export class RateLimiter {
  #bytesPerSecond: number | undefined;
  #tokens = 0;
  #updatedAt = performance.now();
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;

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
    return this.#waiting > 0;
  }

  /** Resolves once `bytes` may pass (at once without a limit and nobody waiting). */
  take(bytes: number): Promise<void> {
    if (this.#bytesPerSecond === undefined && this.#waiting === 0) return Promise.resolve();
    this.#waiting++;
    const turn = this.#queue.then(() => this.#wait(bytes)).finally(() => this.#waiting--);
    this.#queue = turn;
    return turn;
  }

  async #wait(bytes: number): Promise<void> {
    while (this.#bytesPerSecond !== undefined) {
      const rate = this.#bytesPerSecond;
      const now = performance.now();
      const bucket = rate * BUCKET_SECONDS;
      this.#tokens = Math.min(bucket, this.#tokens + ((now - this.#updatedAt) / 1000) * rate);
      this.#updatedAt = now;
      if (this.#tokens >= Math.min(bytes, bucket)) {
        // a take larger than the bucket goes into debt, paid by the next callers
        this.#tokens -= bytes;
        return;
      }
      const needMs = ((Math.min(bytes, bucket) - this.#tokens) / rate) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.min(RECHECK_MS, needMs)));
    }
  }
}
