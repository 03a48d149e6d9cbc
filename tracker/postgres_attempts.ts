/**
 * Login attempt counts shared by every tracker instance on one PostgreSQL database
 * (attempt_counts.ts): one row per key in the UNLOGGED table `login_attempts` (a crash of the
 * database forgets the counts, as a restart of a tracker alone does), each counted by one
 * atomic upsert stamped with the database's clock (instances' clocks never compare).
 *
 * Rows are bounded: every `PRUNE_INTERVAL_MS`, and after every `maxRows / 10` counts made by
 * this instance, it deletes the rows whose window has ended and, past `maxRows`, the oldest
 * windows (as the counts in memory forget their oldest keys).
 *
 * @module
 */

import type postgres from "postgres";
import { errorMessage } from "../lib/errors.ts";
import type { AttemptCounts, AttemptVerdict } from "./attempt_counts.ts";

/** How often an instance deletes ended windows. */
export const PRUNE_INTERVAL_MS = 10_000;
/** Keys counted at once, as many as a tracker alone keeps in memory. */
export const MAX_ATTEMPT_ROWS = 10_000;

// deno-lint-ignore no-explicit-any
type Sql = postgres.Sql<any>;

/** The table, created by the store's migration 4 (postgres_store.ts). */
export const ATTEMPTS_SCHEMA = `
  CREATE UNLOGGED TABLE login_attempts (
    key          TEXT COLLATE "C" PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER NOT NULL
  );
  CREATE INDEX login_attempts_by_window ON login_attempts(window_start);`;

/** A count no window reaches: `add` counts past any limit. */
const UNLIMITED = 2 ** 31 - 2;

/** Attempt counts in the shared database. */
export class PostgresAttemptCounts implements AttemptCounts {
  readonly #sql: Sql;
  readonly #log: (line: string) => void;
  readonly #maxRows: number;
  /** The longest window asked about: rows older than it are over for every throttle. */
  #longestWindowMs = 0;
  #countsSincePrune = 0;
  #pruning?: Promise<void>;
  readonly #timer: ReturnType<typeof setInterval>;

  /** `maxRows` defaults to `MAX_ATTEMPT_ROWS`, `pruneIntervalMs` to `PRUNE_INTERVAL_MS`. */
  constructor(
    sql: Sql,
    options: { log: (line: string) => void; maxRows?: number; pruneIntervalMs?: number },
  ) {
    this.#sql = sql;
    this.#log = options.log;
    this.#maxRows = options.maxRows ?? MAX_ATTEMPT_ROWS;
    this.#timer = setInterval(() => this.prune(), options.pruneIntervalMs ?? PRUNE_INTERVAL_MS);
  }

  async take(key: string, limit: number, windowMs: number): Promise<AttemptVerdict> {
    this.#longestWindowMs = Math.max(this.#longestWindowMs, windowMs);
    // one statement: instances counting the same key at once are serialised on its row. The
    // count stops one past the limit, so that a refused attempt is told apart and counts no
    // further.
    const [row] = await this.#sql<{ count: number; left_ms: number }[]>`
      INSERT INTO login_attempts AS a (key, window_start, count) VALUES (${key}, now(), 1)
      ON CONFLICT (key) DO UPDATE SET
        window_start = CASE WHEN a.window_start <= now() - ${windowMs}::float8 * interval '1 ms'
          THEN now() ELSE a.window_start END,
        count = CASE WHEN a.window_start <= now() - ${windowMs}::float8 * interval '1 ms'
          THEN 1 ELSE LEAST(a.count + 1, ${limit}::int + 1) END
      RETURNING count,
        (EXTRACT(EPOCH FROM (window_start - now())) * 1000 + ${windowMs}::float8)::float8
          AS left_ms`;
    if (++this.#countsSincePrune >= Math.max(1, Math.floor(this.#maxRows / 10))) {
      this.prune().catch(() => {});
    }
    return row.count <= limit ? { allowed: true } : { allowed: false, retryAfterMs: row.left_ms };
  }

  async check(key: string, limit: number, windowMs: number): Promise<AttemptVerdict> {
    const [row] = await this.#sql<{ count: number; left_ms: number }[]>`
      SELECT count,
        (EXTRACT(EPOCH FROM (window_start - now())) * 1000 + ${windowMs}::float8)::float8
          AS left_ms
      FROM login_attempts
      WHERE key = ${key} AND window_start > now() - ${windowMs}::float8 * interval '1 ms'`;
    return row === undefined || row.count < limit
      ? { allowed: true }
      : { allowed: false, retryAfterMs: row.left_ms };
  }

  async add(key: string, windowMs: number): Promise<void> {
    await this.take(key, UNLIMITED, windowMs);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#pruning;
  }

  /**
   * Deletes the windows that ended and, past `maxRows`, the oldest; resolves when done (a
   * failure is logged, never thrown). Runs by itself; public for tests.
   */
  prune(): Promise<void> {
    this.#pruning ??= (async () => {
      this.#countsSincePrune = 0;
      if (this.#longestWindowMs > 0) {
        await this.#sql`
          DELETE FROM login_attempts
          WHERE window_start <= now() - ${this.#longestWindowMs}::float8 * interval '1 ms'`;
      }
      // past the bound, the oldest windows go, as the counts in memory forget theirs
      await this.#sql`
        DELETE FROM login_attempts WHERE key IN (
          SELECT key FROM login_attempts ORDER BY window_start DESC OFFSET ${this.#maxRows})`;
    })()
      .catch((error) => this.#log(`tracker: cannot prune login attempts: ${errorMessage(error)}`))
      .finally(() => this.#pruning = undefined);
    return this.#pruning;
  }
}
