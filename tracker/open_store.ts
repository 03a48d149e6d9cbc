/**
 * Opens the store that a `--db` value names: a `postgres://` (or `postgresql://`) URL for
 * PostgreSQL, anything else a SQLite file (created when missing). The PostgreSQL driver is
 * loaded only when one is named, so the SQLite default starts as fast as before.
 *
 * @module
 */

import { SqliteStore } from "./sqlite_store.ts";
import { isPostgresUrl, type TrackerStore } from "./store.ts";

/** How a store is opened. */
export interface OpenStoreOptions {
  /** The clock rows are stamped with (ms); default `Date.now`. */
  now?: () => number;
}

/**
 * Opens (creating and migrating as needed) the store named by `db`: a `postgres://` URL or a
 * SQLite file path (`:memory:` for tests). Throws a `StoreError` when it cannot be used.
 *
 * @example
 * ```ts
 * const store = await openStore("postgres://tracker:secret@127.0.0.1:5432/swarmshare");
 * try {
 *   await store.createUser("alice", hash);
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export async function openStore(db: string, options: OpenStoreOptions = {}): Promise<TrackerStore> {
  if (isPostgresUrl(db)) {
    const { PostgresStore } = await import("./postgres_store.ts");
    return await PostgresStore.open(db, options);
  }
  return new SqliteStore(db, options);
}
