/**
 * The stores the store-level tests run against: SQLite in a temp dir always, and PostgreSQL
 * when it is installed (a real server started for the test, tests/postgres_server.ts). Each
 * backend opens stores on named databases, so a test can start from an empty one or open the
 * same one again.
 *
 * @module
 */

import { SqliteStore } from "../tracker/sqlite_store.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { TempDir } from "./harness.ts";

/** Where stores come from for one test: a temp dir of SQLite files, or a server. */
export interface StoreBackend extends AsyncDisposable {
  /** Opens (creating when new, migrating) the store on database `name`. */
  open(name: string, options?: { now?: () => number }): Promise<TrackerStore>;
}

/** One kind of store the tests run against. */
export interface StoreKind {
  name: "sqlite" | "postgres";
  /** Why the kind cannot run here (its tests are then skipped), or undefined. */
  unavailable?: string;
  start(): Promise<StoreBackend>;
}

/** SQLite files in a fresh temp dir. */
export const SQLITE: StoreKind = {
  name: "sqlite",
  async start() {
    const dir = await TempDir.create();
    return {
      open: (name, options) => Promise.resolve(new SqliteStore(dir.join(`${name}.db`), options)),
      [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
    };
  },
};

/** Every kind of store, in the order tests run them. */
export function storeKinds(): StoreKind[] {
  return [SQLITE];
}
