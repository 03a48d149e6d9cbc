/**
 * Password hashing on the tracker, bounded and fair. Each scrypt takes 32 MiB and ~0.1 s of a
 * core, so unbounded it let 50 concurrent attempts lift the tracker past a gigabyte and a
 * dozen attempts a second from one address keep every login waiting in one queue. Here:
 *
 * - at most `concurrency` hashes run at once (memory: concurrency x 32 MiB);
 * - waiting work queues per source (the remote address), and sources take turns, so a flood
 *   from one address delays an honest user elsewhere by at most one hash per busy source;
 * - a source may have at most `maxWaitingPerSource` attempts queued or running, and at most
 *   `attemptsPerSourcePerWindow` per window; an account at most `failuresPerAccountPerWindow`
 *   failed logins per window. Beyond that a request is refused at once, without hashing, with
 *   `too many attempts; try again in N s`.
 *
 * The windows are counted where `counts` keeps them (attempt_counts.ts): in this process for
 * a tracker alone, in the database shared by several instances (postgres_attempts.ts), so
 * that guesses spread over instances are throttled as one. Hashes at once and attempts in
 * flight stay per instance: they bound this process's memory and CPU.
 *
 * @module
 */

import { type AttemptCounts, type AttemptVerdict, MemoryAttemptCounts } from "./attempt_counts.ts";
import { RequestError } from "./context.ts";

/** How the work is bounded. */
export interface PasswordWorkOptions {
  /** Hashes running at once. Default 2 (64 MiB of scrypt memory at most). */
  concurrency?: number;
  /** Attempts one source may have queued or running. Default 4. */
  maxWaitingPerSource?: number;
  /** Attempts one source may start per window. Default 30. */
  attemptsPerSourcePerWindow?: number;
  /** Failed logins one account may have per window before it is throttled. Default 20. */
  failuresPerAccountPerWindow?: number;
  /** The window of the counts above. Default 60 s. */
  windowMs?: number;
  /**
   * Sources and accounts counted at once in memory; the oldest counts go first. Default
   * 10,000. Unused with `counts`.
   */
  maxTracked?: number;
  /** The clock of the counts in memory. Unused with `counts`. */
  now?: () => number;
  /** Where the windows are counted. Default: in this process's memory. */
  counts?: AttemptCounts;
}

interface Waiting {
  start(): void;
}

/** The tracker's password hashing, shared by every connection. */
export class PasswordWork {
  readonly #concurrency: number;
  readonly #maxWaitingPerSource: number;
  readonly #attemptsPerSource: number;
  readonly #failuresPerAccount: number;
  readonly #windowMs: number;
  readonly #counts: AttemptCounts;
  /** Queued work by source, in the order sources take turns. */
  readonly #queues = new Map<string, Waiting[]>();
  /** Work queued or running, by source. */
  readonly #inFlight = new Map<string, number>();
  /** When each source with work in flight last had a hash started (a running count). */
  readonly #lastStarted = new Map<string, number>();
  #starts = 0;
  #running = 0;

  constructor(options: PasswordWorkOptions = {}) {
    this.#concurrency = options.concurrency ?? 2;
    this.#maxWaitingPerSource = options.maxWaitingPerSource ?? 4;
    this.#attemptsPerSource = options.attemptsPerSourcePerWindow ?? 30;
    this.#failuresPerAccount = options.failuresPerAccountPerWindow ?? 20;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#counts = options.counts ??
      new MemoryAttemptCounts({ maxTracked: options.maxTracked, now: options.now });
  }

  /** Hashes running now, for tests and measurements. */
  get running(): number {
    return this.#running;
  }

  /**
   * Runs `hash` when it is `source`'s turn and a slot is free. Refuses at once (a
   * `RequestError` "rate_limited") when the source or `account` is over its limits.
   */
  async run<T>(source: string, account: string | undefined, hash: () => Promise<T>): Promise<T> {
    // before any wait: attempts sent together from one source are counted in flight at once
    const inFlight = this.#inFlight.get(source) ?? 0;
    if (inFlight >= this.#maxWaitingPerSource) throw tooMany(1_000);
    this.#inFlight.set(source, inFlight + 1);
    try {
      if (account !== undefined) {
        refuseUnless(
          await this.#counts.check(failuresKey(account), this.#failuresPerAccount, this.#windowMs),
        );
      }
      refuseUnless(
        await this.#counts.take(sourceKey(source), this.#attemptsPerSource, this.#windowMs),
      );
      await this.#turn(source);
      try {
        return await hash();
      } finally {
        this.#running--;
        this.#next();
      }
    } finally {
      const left = (this.#inFlight.get(source) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(source, left);
      else {
        this.#inFlight.delete(source);
        this.#lastStarted.delete(source);
      }
    }
  }

  /** Counts a failed login against `account`. */
  recordFailure(account: string): Promise<void> {
    return this.#counts.add(failuresKey(account), this.#windowMs);
  }

  #turn(source: string): Promise<void> {
    if (this.#running < this.#concurrency && this.#queues.size === 0) {
      this.#started(source);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.#queues.get(source) ?? [];
      queue.push({ start: resolve });
      this.#queues.set(source, queue);
    });
  }

  /** Starts the head of the queue of the waiting source served longest ago (or never). */
  #next(): void {
    while (this.#running < this.#concurrency && this.#queues.size > 0) {
      let source = "";
      let oldest = Infinity;
      for (const waiting of this.#queues.keys()) {
        const served = this.#lastStarted.get(waiting) ?? -1;
        if (served < oldest) [source, oldest] = [waiting, served];
      }
      const queue = this.#queues.get(source)!;
      const waiting = queue.shift()!;
      if (queue.length === 0) this.#queues.delete(source);
      this.#started(source);
      waiting.start();
    }
  }

  #started(source: string): void {
    this.#running++;
    // only sources with work queued or running are remembered: bounded by the connections
    this.#lastStarted.set(source, this.#starts++);
  }
}

const sourceKey = (source: string) => `source:${source}`;
const failuresKey = (account: string) => `failures:${account}`;

function refuseUnless(verdict: AttemptVerdict): void {
  if (!verdict.allowed) throw tooMany(verdict.retryAfterMs);
}

function tooMany(retryAfterMs: number): RequestError {
  return new RequestError(
    "rate_limited",
    `too many attempts; try again in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s`,
  );
}
