/**
 * Counts of login attempts in fixed windows, by key (a source address, an account), for the
 * throttles of password_work.ts. `MemoryAttemptCounts` keeps them in this process: a tracker
 * alone (SQLite). Several instances on one PostgreSQL database share them through it
 * (postgres_attempts.ts), so that an attacker spreading guesses over K instances gets the
 * attempts of one, not K times as many.
 *
 * A window starts at a key's first attempt and lasts `windowMs`; the next attempt after it
 * starts a new one.
 *
 * @module
 */

/** The outcome of counting: allowed, or refused with the milliseconds left in its window. */
export type AttemptVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Where attempts are counted. Keys of different throttles must not collide (prefix them). */
export interface AttemptCounts {
  /**
   * Counts one attempt under `key` unless `limit` were counted already in its window; refused
   * attempts are not counted.
   */
  take(key: string, limit: number, windowMs: number): Promise<AttemptVerdict>;
  /** Whether `key` may have one more attempt (`limit` per window), without counting one. */
  check(key: string, limit: number, windowMs: number): Promise<AttemptVerdict>;
  /** Counts one attempt under `key`, however many there were. */
  add(key: string, windowMs: number): Promise<void>;
  /** Stops background work (pruning); idempotent. */
  close?(): Promise<void>;
}

interface Count {
  windowStart: number;
  count: number;
}

const ALLOWED: AttemptVerdict = { allowed: true };

/**
 * Attempt counts in this process's memory, at most `maxTracked` keys (the oldest windows go
 * first when more come).
 *
 * @example
 * ```ts
 * const counts = new MemoryAttemptCounts({ maxTracked: 10_000 });
 * const verdict = await counts.take("source:10.0.0.1", 30, 60_000);
 * if (!verdict.allowed) console.log(`wait ${verdict.retryAfterMs} ms`);
 * ```
 */
export class MemoryAttemptCounts implements AttemptCounts {
  readonly #counts = new Map<string, Count>();
  readonly #maxTracked: number;
  readonly #now: () => number;

  /** `maxTracked` defaults to 10,000 keys, `now` to `Date.now`. */
  constructor(options: { maxTracked?: number; now?: () => number } = {}) {
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  take(key: string, limit: number, windowMs: number): Promise<AttemptVerdict> {
    const verdict = this.#verdict(key, limit, windowMs, this.#now());
    if (verdict.allowed) this.#count(key, windowMs, this.#now());
    return Promise.resolve(verdict);
  }

  check(key: string, limit: number, windowMs: number): Promise<AttemptVerdict> {
    return Promise.resolve(this.#verdict(key, limit, windowMs, this.#now()));
  }

  add(key: string, windowMs: number): Promise<void> {
    this.#count(key, windowMs, this.#now());
    return Promise.resolve();
  }

  #verdict(key: string, limit: number, windowMs: number, now: number): AttemptVerdict {
    const entry = this.#counts.get(key);
    if (!entry || now - entry.windowStart >= windowMs || entry.count < limit) return ALLOWED;
    return { allowed: false, retryAfterMs: entry.windowStart + windowMs - now };
  }

  #count(key: string, windowMs: number, now: number): void {
    let entry = this.#counts.get(key);
    if (!entry || now - entry.windowStart >= windowMs) {
      this.#counts.delete(key);
      entry = { windowStart: now, count: 0 };
      // bounded: the oldest windows go first (a map keeps insertion order)
      while (this.#counts.size >= this.#maxTracked) {
        this.#counts.delete(this.#counts.keys().next().value!);
      }
      this.#counts.set(key, entry);
    }
    entry.count++;
  }
}
