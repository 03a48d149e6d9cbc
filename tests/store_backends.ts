/**
 * The stores the store-level tests run against: SQLite in a temp dir always, and PostgreSQL
 * when it is installed (a real server started for the test, tests/postgres_server.ts). Each
 * backend opens stores on named databases, so a test can start from an empty one or open the
 * same one again.
 *
 * @module
 */

import { PostgresStore } from "../tracker/postgres_store.ts";
import { SqliteStore } from "../tracker/sqlite_store.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { TempDir } from "./harness.ts";
import { PostgresServer, postgresUnavailable } from "./postgres_server.ts";

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

/** A PostgreSQL server of its own, one database per name. */
export const POSTGRES: StoreKind = {
  name: "postgres",
  unavailable: await postgresUnavailable(),
  async start() {
    const server = await PostgresServer.start();
    const made = new Set<string>();
    return {
      async open(name, options) {
        if (!made.has(name)) {
          await server.createDatabase(name);
          made.add(name);
        }
        return await PostgresStore.open(server.url(name), options);
      },
      [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
    };
  },
};

/**
 * Every kind of store, in the order tests run them. Where PostgreSQL is not installed, its
 * tests are skipped (the run says so once) and the others run.
 */
export function storeKinds(): StoreKind[] {
  return [SQLITE, POSTGRES];
}
