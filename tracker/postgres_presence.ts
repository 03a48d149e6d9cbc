/**
 * Who is online holding what, shared by every tracker instance on one PostgreSQL database.
 * Each instance keeps its own connections in memory (a `Presence`, for what only concerns
 * them and to publish again) and writes them to three UNLOGGED tables (live state: no WAL, and
 * emptied after a crash of the database, when every client connects and announces again):
 *
 * - `tracker_instances`: one row per running instance, its heartbeat stamped with the
 *   database's clock (instances' clocks never compare) every `HEARTBEAT_INTERVAL_MS`;
 * - `presence_addresses`: the verified serving address of each connection, keyed by
 *   (instance, connection), unique by (user, host, port): one presence per user and address
 *   across all instances; a registration elsewhere takes the address over and tells the
 *   instance that had it (event_bus.ts);
 * - `presence_holders`: what each connection holds, keyed by (group, info_hash, instance,
 *   connection);
 * - `presence_sessions`: the login session each logged-in connection acts under (the digest
 *   its token is stored by), keyed by (instance, connection), so that `list_sessions` on any
 *   instance shows a session online wherever it is used.
 *
 * Rows of an instance go with its row (ON DELETE CASCADE). An instance whose heartbeat is older
 * than `INSTANCE_TTL_MS` is dead: its holders are not handed out from then (every read joins
 * the live instances), so a SIGKILLed instance's holders are handed out at most 5 s after it
 * died, and its rows are deleted by the next heartbeat of any instance after that. An instance
 * that was only slow (its heartbeat late, its rows reaped) finds its row gone at its next
 * heartbeat and writes its connections again.
 *
 * Holders handed out keep the bounds of presence.ts: at most `limit` (50) per reply, seeders
 * first, each kind in random order (PostgreSQL's `random()`, not the secure generator the
 * in-memory presence uses), only at registered addresses.
 *
 * @module
 */

import type postgres from "postgres";
import { errorMessage } from "../lib/errors.ts";
import type { PeerEndpoint } from "../lib/protocol.ts";
import type { EventBus } from "./event_bus.ts";
import { type Holder, Presence, type PresenceBook } from "./presence.ts";

/** How often an instance stamps its row (and deletes the rows of dead instances). */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/**
 * An instance whose heartbeat is older than this is dead: its holders are no longer handed
 * out. Five heartbeats, so that a busy instance is not taken for dead.
 */
export const INSTANCE_TTL_MS = 5_000;

// deno-lint-ignore no-explicit-any
type Sql = postgres.Sql<any>;

/** PostgreSQL's SQLSTATE for a row whose referenced row is missing. */
const FOREIGN_KEY_VIOLATION = "23503";

/** The tables, created by the store's migration 3 (postgres_store.ts). */
export const PRESENCE_SCHEMA = `
  CREATE UNLOGGED TABLE tracker_instances (
    id           TEXT COLLATE "C" PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
  );
  CREATE UNLOGGED TABLE presence_addresses (
    instance_id   TEXT COLLATE "C" NOT NULL REFERENCES tracker_instances(id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL,
    host          TEXT COLLATE "C" NOT NULL,
    port          INTEGER NOT NULL,
    endpoint      TEXT NOT NULL,
    PRIMARY KEY (instance_id, connection_id),
    UNIQUE (user_id, host, port)
  );
  CREATE UNLOGGED TABLE presence_holders (
    group_id      TEXT COLLATE "C" NOT NULL,
    info_hash     TEXT COLLATE "C" NOT NULL,
    instance_id   TEXT COLLATE "C" NOT NULL REFERENCES tracker_instances(id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL,
    complete      BOOLEAN NOT NULL,
    PRIMARY KEY (group_id, info_hash, instance_id, connection_id)
  );
  CREATE INDEX presence_holders_by_connection ON presence_holders(instance_id, connection_id);
  CREATE INDEX presence_holders_by_user ON presence_holders(user_id, group_id);`;

/** The sessions in use, created by the store's migration 5 (postgres_store.ts). */
export const PRESENCE_SESSIONS_SCHEMA = `
  CREATE UNLOGGED TABLE presence_sessions (
    instance_id   TEXT COLLATE "C" NOT NULL REFERENCES tracker_instances(id) ON DELETE CASCADE,
    connection_id BIGINT NOT NULL,
    token_digest  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (instance_id, connection_id)
  );
  CREATE INDEX presence_sessions_by_digest ON presence_sessions(token_digest);`;

/** Presence shared through PostgreSQL; one per tracker instance. */
export class PostgresPresence implements PresenceBook {
  readonly #sql: Sql;
  readonly #instance: string;
  readonly #bus: EventBus;
  readonly #log: (line: string) => void;
  readonly #local = new Presence();
  /** This instance's registered endpoints, to hand out and to publish again. */
  readonly #endpoints = new Map<number, { user: string; endpoint: PeerEndpoint }>();
  /** The session each of this instance's logged-in connections acts under, to publish again. */
  readonly #sessions = new Map<number, string>();
  /** Each connection's writes, in the order they were made. */
  readonly #chains = new Map<number, Promise<void>>();
  readonly #ttl: number;
  #timer?: ReturnType<typeof setInterval>;
  #beating?: Promise<void>;
  /**
   * The connection heartbeats go on, out of the pool: a busy instance's queue of requests
   * must not delay its heartbeat until the others take it for dead.
   */
  // deno-lint-ignore no-explicit-any
  #beat?: postgres.ReservedSql<any>;
  #closed?: Promise<void>;

  private constructor(
    sql: Sql,
    options: { instance: string; bus: EventBus; log: (line: string) => void; ttlMs: number },
  ) {
    this.#sql = sql;
    this.#instance = options.instance;
    this.#bus = options.bus;
    this.#log = options.log;
    this.#ttl = options.ttlMs;
  }

  /**
   * Enters instance `instance` (its row, the first heartbeat) and starts its heartbeat.
   * `heartbeatMs` and `ttlMs` default to `HEARTBEAT_INTERVAL_MS` and `INSTANCE_TTL_MS`.
   */
  static async open(
    sql: Sql,
    options: {
      instance: string;
      bus: EventBus;
      log: (line: string) => void;
      heartbeatMs?: number;
      ttlMs?: number;
    },
  ): Promise<PostgresPresence> {
    const presence = new PostgresPresence(sql, {
      ...options,
      ttlMs: options.ttlMs ?? INSTANCE_TTL_MS,
    });
    await presence.#heartbeat();
    presence.#timer = setInterval(() => {
      presence.#beating ??= presence.#heartbeat()
        .catch((error) =>
          presence.#log(`tracker: presence heartbeat failed: ${errorMessage(error)}`)
        )
        .finally(() => presence.#beating = undefined);
    }, options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS);
    return presence;
  }

  /** Stops the heartbeat and removes this instance's rows (its clients are gone with it). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      await this.#beating;
      this.#beat?.release();
      this.#beat = undefined;
      await Promise.all(this.#chains.values());
      await this.#sql`DELETE FROM tracker_instances WHERE id = ${this.#instance}`
        .catch((error) => this.#log(`tracker: cannot leave the presence: ${errorMessage(error)}`));
    })();
    return this.#closed;
  }

  async register(
    connectionId: number,
    user: string,
    address: PeerEndpoint,
  ): Promise<number | undefined> {
    const replaced = this.#local.register(connectionId, user, address);
    if (replaced !== undefined) this.#endpoints.delete(replaced);
    const endpoint: PeerEndpoint = { ...address };
    this.#endpoints.set(connectionId, { user, endpoint });
    await this.#enqueue(
      connectionId,
      () => this.#present(() => this.#writeRegistration(connectionId, user, endpoint)),
    );
    return replaced;
  }

  isRegistered(connectionId: number, user: string): boolean {
    return this.#local.isRegistered(connectionId, user);
  }

  hold(group: string, infoHash: string, holder: Holder): Promise<void> {
    this.#local.hold(group, infoHash, holder);
    return this.#enqueue(
      holder.connectionId,
      () => this.#present(() => this.#writeHolding(group, infoHash, holder)),
    );
  }

  holdAll(files: readonly { group: string; infoHash: string }[], holder: Holder): Promise<void> {
    this.#local.holdAll(files, holder);
    return this.#enqueue(
      holder.connectionId,
      () => this.#present(() => this.#writeHoldings(files, holder)),
    );
  }

  release(group: string, infoHash: string, connectionId: number): Promise<void> {
    this.#local.release(group, infoHash, connectionId);
    return this.#quietly(this.#enqueue(connectionId, async () => {
      await this.#sql`
        DELETE FROM presence_holders WHERE group_id = ${group} AND info_hash = ${infoHash}
        AND instance_id = ${this.#instance} AND connection_id = ${connectionId}`;
    }));
  }

  releaseConnection(connectionId: number): Promise<void> {
    this.#local.releaseConnection(connectionId);
    this.#endpoints.delete(connectionId);
    return this.#quietly(this.#enqueue(connectionId, async () => {
      await this.#sql`
        DELETE FROM presence_holders
        WHERE instance_id = ${this.#instance} AND connection_id = ${connectionId}`;
      await this.#sql`
        DELETE FROM presence_addresses
        WHERE instance_id = ${this.#instance} AND connection_id = ${connectionId}`;
    }));
  }

  releaseUser(user: string, group: string, infoHash?: string): Promise<void> {
    this.#local.releaseUser(user, group, infoHash);
    // every instance's clients of the user: their own instances learn of it by the event
    // that goes with it (a revocation), or hand out nothing more of it from now anyway
    return this.#quietly(
      infoHash === undefined
        ? this.#sql`DELETE FROM presence_holders WHERE user_id = ${user} AND group_id = ${group}`
        : this.#sql`
          DELETE FROM presence_holders
          WHERE user_id = ${user} AND group_id = ${group} AND info_hash = ${infoHash}`,
    );
  }

  actAs(connectionId: number, digest: string | undefined): Promise<void> {
    if (digest === undefined) {
      if (!this.#sessions.delete(connectionId)) return Promise.resolve();
      return this.#quietly(this.#enqueue(connectionId, async () => {
        await this.#sql`
          DELETE FROM presence_sessions
          WHERE instance_id = ${this.#instance} AND connection_id = ${connectionId}`;
      }));
    }
    this.#sessions.set(connectionId, digest);
    return this.#quietly(this.#enqueue(
      connectionId,
      () => this.#present(() => this.#writeSession(connectionId, digest)),
    ));
  }

  async sessionsOnline(digests: readonly string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.#sql<{ token_digest: string }[]>`
      SELECT DISTINCT s.token_digest
      FROM presence_sessions s JOIN tracker_instances i ON i.id = s.instance_id
      WHERE s.token_digest = ANY(${digests as string[]}::text[])
        AND i.heartbeat_at > now() - ${this.#ttl}::float8 * interval '1 millisecond'`;
    return new Set(rows.map((row) => row.token_digest));
  }

  async heldElsewhere(
    user: string,
    group: string,
    infoHash: string,
    connectionId: number,
  ): Promise<boolean> {
    if (this.#local.heldElsewhere(user, group, infoHash, connectionId)) return true;
    const rows = await this.#sql`
      SELECT 1 FROM presence_holders h JOIN tracker_instances i ON i.id = h.instance_id
      WHERE h.group_id = ${group} AND h.info_hash = ${infoHash} AND h.user_id = ${user}
        AND h.complete AND NOT (h.instance_id = ${this.#instance} AND h.connection_id = ${connectionId})
        AND i.heartbeat_at > now() - ${this.#ttl}::float8 * interval '1 millisecond'
      LIMIT 1`;
    return rows.length > 0;
  }

  connectionsIn(group: string): Set<number> {
    return this.#local.connectionsIn(group);
  }

  async seedersOf(group: string, infoHashes: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map(infoHashes.map((hash) => [hash, 0]));
    if (infoHashes.length === 0) return counts;
    const rows = await this.#sql<{ info_hash: string; seeders: number }[]>`
      SELECT h.info_hash, COUNT(*)::int AS seeders
      FROM presence_holders h
      JOIN presence_addresses a ON a.instance_id = h.instance_id
        AND a.connection_id = h.connection_id AND a.user_id = h.user_id
      JOIN tracker_instances i ON i.id = h.instance_id
      WHERE h.group_id = ${group} AND h.info_hash = ANY(${infoHashes as string[]}::text[])
        AND h.complete AND i.heartbeat_at > now() - ${this.#ttl}::float8 * interval '1 millisecond'
      GROUP BY h.info_hash`;
    for (const row of rows) counts.set(row.info_hash, row.seeders);
    return counts;
  }

  async handOut(
    group: string,
    infoHash: string,
    exclude: number,
    limit: number,
  ): Promise<Holder[]> {
    const rows = await this.#sql<
      {
        instance_id: string;
        connection_id: number;
        user_id: string;
        complete: boolean;
        endpoint: string;
      }[]
    >`
      SELECT h.instance_id, h.connection_id, h.user_id, h.complete, a.endpoint
      FROM presence_holders h
      JOIN presence_addresses a ON a.instance_id = h.instance_id
        AND a.connection_id = h.connection_id AND a.user_id = h.user_id
      JOIN tracker_instances i ON i.id = h.instance_id
      WHERE h.group_id = ${group} AND h.info_hash = ${infoHash}
        AND NOT (h.instance_id = ${this.#instance} AND h.connection_id = ${exclude})
        AND i.heartbeat_at > now() - ${this.#ttl}::float8 * interval '1 millisecond'
      ORDER BY h.complete DESC, random()
      LIMIT ${limit}`;
    return rows.map((row) => ({
      // another instance's connection ids mean nothing here
      connectionId: row.instance_id === this.#instance ? row.connection_id : 0,
      user: row.user_id,
      address: JSON.parse(row.endpoint) as PeerEndpoint,
      complete: row.complete,
    }));
  }

  /** Takes the address for this connection; whoever had it loses it and what it held. */
  async #writeRegistration(connectionId: number, user: string, endpoint: PeerEndpoint) {
    const host = endpoint.host.toLowerCase();
    const superseded = await this.#sql.begin(async (tx) => {
      // registrations of one address, from any instance, one at a time
      await tx`SELECT pg_advisory_xact_lock(hashtext(${`${user}\n${host}\n${endpoint.port}`}))`;
      const previous = await tx<{ instance_id: string; connection_id: number }[]>`
        DELETE FROM presence_addresses
        WHERE user_id = ${user} AND host = ${host} AND port = ${endpoint.port}
          AND NOT (instance_id = ${this.#instance} AND connection_id = ${connectionId})
        RETURNING instance_id, connection_id`;
      for (const row of previous) {
        await tx`DELETE FROM presence_holders
                 WHERE instance_id = ${row.instance_id} AND connection_id = ${row.connection_id}`;
      }
      await tx`
        INSERT INTO presence_addresses (instance_id, connection_id, user_id, host, port, endpoint)
        VALUES (${this.#instance}, ${connectionId}, ${user}, ${host}, ${endpoint.port},
                ${JSON.stringify(endpoint)})
        ON CONFLICT (instance_id, connection_id) DO UPDATE SET user_id = excluded.user_id,
          host = excluded.host, port = excluded.port, endpoint = excluded.endpoint`;
      return previous;
    }) as unknown as { instance_id: string; connection_id: number }[];
    for (const row of superseded) {
      if (row.instance_id === this.#instance) continue;
      this.#bus.publish({
        kind: "superseded",
        instance: row.instance_id,
        connection: row.connection_id,
        user,
        host: endpoint.host,
        port: endpoint.port,
      });
    }
  }

  async #writeHolding(group: string, infoHash: string, holder: Holder): Promise<void> {
    await this.#sql`
      INSERT INTO presence_holders (group_id, info_hash, instance_id, connection_id, user_id, complete)
      VALUES (${group}, ${infoHash}, ${this.#instance}, ${holder.connectionId}, ${holder.user},
              ${holder.complete})
      ON CONFLICT (group_id, info_hash, instance_id, connection_id)
      DO UPDATE SET user_id = excluded.user_id, complete = excluded.complete`;
  }

  async #writeSession(connectionId: number, digest: string): Promise<void> {
    await this.#sql`
      INSERT INTO presence_sessions (instance_id, connection_id, token_digest)
      VALUES (${this.#instance}, ${connectionId}, ${digest})
      ON CONFLICT (instance_id, connection_id) DO UPDATE SET token_digest = excluded.token_digest`;
  }

  /** `#writeHolding` of many files in one statement (a login serving its shares again). */
  async #writeHoldings(
    files: readonly { group: string; infoHash: string }[],
    holder: Holder,
  ): Promise<void> {
    if (files.length === 0) return;
    await this.#sql`
      INSERT INTO presence_holders (group_id, info_hash, instance_id, connection_id, user_id, complete)
      SELECT DISTINCT ON (f.group_id, f.info_hash) f.group_id, f.info_hash, ${this.#instance},
             ${holder.connectionId}, ${holder.user}, ${holder.complete}
      FROM unnest(${files.map((file) => file.group)}::text[],
                  ${files.map((file) => file.infoHash)}::text[]) AS f(group_id, info_hash)
      ON CONFLICT (group_id, info_hash, instance_id, connection_id)
      DO UPDATE SET user_id = excluded.user_id, complete = excluded.complete`;
  }

  /**
   * Stamps this instance's row and deletes dead instances (their rows go with them). A row
   * that was gone (this instance was taken for dead) is made again with everything it holds.
   */
  async #heartbeat(): Promise<void> {
    const beat = this.#beat ??= await this.#sql.reserve();
    let row: { inserted: boolean };
    try {
      [row] = await beat<{ inserted: boolean }[]>`
        INSERT INTO tracker_instances (id) VALUES (${this.#instance})
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
        RETURNING (xmax = 0) AS inserted`;
      await beat`
        DELETE FROM tracker_instances
        WHERE heartbeat_at < now() - ${this.#ttl}::float8 * interval '1 millisecond'`;
    } catch (error) {
      // a lost connection: the next heartbeat takes another
      beat.release();
      if (this.#beat === beat) this.#beat = undefined;
      throw error;
    }
    if (
      row.inserted &&
      (this.#endpoints.size > 0 || this.#sessions.size > 0 ||
        this.#local.snapshot().holdings.length > 0)
    ) {
      this.#log(
        "tracker: this instance was taken for dead (no heartbeat); publishing its clients again",
      );
      await this.#republish();
    }
  }

  /**
   * Runs a write that needs this instance's row; when the row is gone (taken for dead between
   * two heartbeats: the write breaks its foreign key), makes it again, publishes everything
   * again in the background, and runs the write once more.
   */
  async #present(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if ((error as { code?: string }).code !== FOREIGN_KEY_VIOLATION) throw error;
      const [row] = await this.#sql<{ inserted: boolean }[]>`
        INSERT INTO tracker_instances (id) VALUES (${this.#instance})
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
        RETURNING (xmax = 0) AS inserted`;
      if (row.inserted) {
        this.#log("tracker: this instance was taken for dead; publishing its clients again");
        this.#republish().catch((error) =>
          this.#log(`tracker: cannot publish the clients again: ${errorMessage(error)}`)
        );
      }
      await write();
    }
  }

  async #republish(): Promise<void> {
    for (const [connectionId, { user, endpoint }] of this.#endpoints) {
      await this.#enqueue(
        connectionId,
        () => this.#writeRegistration(connectionId, user, endpoint),
      );
    }
    for (const { group, infoHash, holder } of this.#local.snapshot().holdings) {
      await this.#enqueue(holder.connectionId, () => this.#writeHolding(group, infoHash, holder));
    }
    for (const [connectionId, digest] of this.#sessions) {
      await this.#enqueue(connectionId, () => this.#writeSession(connectionId, digest));
    }
  }

  #enqueue(connectionId: number, write: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(connectionId) ?? Promise.resolve();
    const next = previous.then(write);
    const settled = next.catch(() => {});
    this.#chains.set(connectionId, settled);
    settled.then(() => {
      if (this.#chains.get(connectionId) === settled) this.#chains.delete(connectionId);
    });
    return next;
  }

  /**
   * A write that could not be made is logged: its rows stay until the connection's
   * instance stops or is taken for dead (the in-memory presence of this instance has let go).
   */
  async #quietly(write: Promise<unknown>): Promise<void> {
    try {
      await write;
    } catch (error) {
      this.#log(`tracker: presence write failed: ${errorMessage(error)}`);
    }
  }
}
