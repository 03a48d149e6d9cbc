/**
 * Opens the store that a `--db` value names: today a SQLite file (created when missing).
 *
 * @module
 */

import { SqliteStore } from "./sqlite_store.ts";
import type { TrackerStore } from "./store.ts";

/** How a store is opened. */
export interface OpenStoreOptions {
  /** The clock rows are stamped with (ms); default `Date.now`. */
  now?: () => number;
}

/**
 * Opens (creating and migrating as needed) the store named by `db`: a SQLite file path
 * (`:memory:` for tests). Throws a `StoreError` when it cannot be used.
 *
 * @example
 * ```ts
 * const store = await openStore("/var/lib/swarmshare/tracker.db");
 * try {
 *   await store.createUser("alice", hash);
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export function openStore(db: string, options: OpenStoreOptions = {}): Promise<TrackerStore> {
  return Promise.resolve().then(() => new SqliteStore(db, options));
}
