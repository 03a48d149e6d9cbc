/**
 * A rate limit shared by every connection of a client (one for what it sends, one for what
 * it receives): a token bucket refilled at the rate, holding at most one second's worth, so
 * short bursts pass and the average holds. Waiters are served in order. The rate can change
 * while the client runs (`set_limits`); a waiter notices within `RECHECK_MS`.
 *
 * @module
 */

/** A waiter looks at the bucket at least this often, so a new rate applies at once. */
const RECHECK_MS = 50;

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
    // a new limit starts with a full second's worth, as the first one did
    this.#tokens = bytesPerSecond ?? 0;
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
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#updatedAt) / 1000) * rate);
      this.#updatedAt = now;
      if (this.#tokens >= Math.min(bytes, rate)) {
        // a take larger than the bucket goes into debt, paid by the next callers
        this.#tokens -= bytes;
        return;
      }
      const needMs = ((Math.min(bytes, rate) - this.#tokens) / rate) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.min(RECHECK_MS, needMs)));
    }
  }
}
