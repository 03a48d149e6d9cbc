/**
 * Which tracker the link tries next, and after what pause: the decision alone, no sockets or
 * timers, so that it can be tested as a table. The trackers are the seed and the `--tracker`
 * instances of one deployment (peer/tracker_addresses.ts), in order.
 *
 * When the tracker in use fails (unreachable, or its connection ends), the others are tried
 * at once, one after the other: an instance that died is left in the time it takes to dial
 * the next, and requests wait meanwhile instead of failing. Only when every tracker failed
 * since the last good connection is it an outage: from then on each attempt goes to the next
 * tracker in turn after a pause that doubles from `initial` to `max`, so a client whose
 * trackers are all down tries one every `max` at most and says so as often. A tracker that
 * comes back is found at its turn; the client stays on the one it uses until that one fails.
 *
 * @example
 * ```ts
 * const rotation = new TrackerRotation(2, { initial: 100, max: 5_000 });
 * rotation.failed(); // { index: 1, delayMs: 0, outage: false }: the second, at once
 * rotation.failed(); // { index: 0, delayMs: 100, outage: true }: both failed
 * rotation.failed(); // { index: 1, delayMs: 200, outage: true }
 * rotation.connected(); // 0: the second is in use now, in place of the first (a switch)
 * ```
 *
 * @module
 */

/** The attempt after a failure. */
export interface NextAttempt {
  /** Which tracker (its position in the list). */
  index: number;
  /** How long to wait before dialling it. */
  delayMs: number;
  /** Every tracker failed since the last good connection (each failure from then on too). */
  outage: boolean;
}

/** First and longest pause between attempts once every tracker failed. */
export interface Backoff {
  initial: number;
  max: number;
}

/** The link's choice of tracker over time. */
export class TrackerRotation {
  readonly #count: number;
  readonly #backoff: Backoff;
  #current = 0;
  /** The tracker of the last good connection: at first the seed, the one the user named. */
  #inUse = 0;
  /** Failures since the last good connection. */
  #failures = 0;
  #delayMs: number;

  /** `count`: how many trackers, at least 1 (the seed). */
  constructor(count: number, backoff: Backoff) {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`a rotation needs at least one tracker, not ${count}`);
    }
    this.#count = count;
    this.#backoff = backoff;
    this.#delayMs = backoff.initial;
  }

  /** The tracker to dial now (or being dialled, or connected). */
  get current(): number {
    return this.#current;
  }

  /** The tracker of the last good connection (the seed before any). */
  get inUse(): number {
    return this.#inUse;
  }

  /**
   * The current tracker failed: to be dialled, or its connection ended. Says which tracker
   * comes next and when.
   */
  failed(): NextAttempt {
    this.#failures++;
    this.#current = (this.#current + 1) % this.#count;
    if (this.#failures < this.#count) {
      return { index: this.#current, delayMs: 0, outage: false };
    }
    const delayMs = this.#delayMs;
    this.#delayMs = Math.min(this.#delayMs * 2, this.#backoff.max);
    return { index: this.#current, delayMs, outage: true };
  }

  /**
   * The current tracker is connected (greeted and resumed): the next failure starts a new
   * round from it, with the shortest pause. Returns the tracker it replaces when it is
   * another one than the last in use (a switch), else undefined.
   */
  connected(): number | undefined {
    const left = this.#inUse === this.#current ? undefined : this.#inUse;
    this.#inUse = this.#current;
    this.#failures = 0;
    this.#delayMs = this.#backoff.initial;
    return left;
  }
}
