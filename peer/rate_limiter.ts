/**
 * An upload rate limit shared by every connection of a client: a token bucket refilled at
 * `bytesPerSecond`, holding at most one second's worth, so short bursts pass and the
 * average holds. Waiters are served in order.
 *
 * @module
 */

/** Limits how fast bytes may be sent. */
export class RateLimiter {
  readonly #bytesPerSecond: number;
  #tokens: number;
  #updatedAt = performance.now();
  #queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) throw new RangeError("the rate must be positive");
    this.#bytesPerSecond = bytesPerSecond;
    this.#tokens = bytesPerSecond;
  }

  /** Resolves once `bytes` may be sent. */
  take(bytes: number): Promise<void> {
    const turn = this.#queue.then(() => this.#wait(bytes));
    this.#queue = turn;
    return turn;
  }

  async #wait(bytes: number): Promise<void> {
    const now = performance.now();
    this.#tokens = Math.min(
      this.#bytesPerSecond,
      this.#tokens + ((now - this.#updatedAt) / 1000) * this.#bytesPerSecond,
    );
    this.#updatedAt = now;
    this.#tokens -= bytes;
    if (this.#tokens < 0) {
      // a debt is paid by waiting for the refill; the next caller starts from zero
      await new Promise((resolve) =>
        setTimeout(resolve, (-this.#tokens / this.#bytesPerSecond) * 1000)
      );
      this.#tokens = 0;
      this.#updatedAt = performance.now();
    }
  }
}
