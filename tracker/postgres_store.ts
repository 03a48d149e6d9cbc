/**
 * The tracker's durable state in PostgreSQL (`--db postgres://user:password@host:port/db`),
 * through the `postgres` driver (porsager, pinned in deno.json): a bounded pool of
 * connections, statements prepared once per connection, every statement bounded in time.
 * The schema is versioned in the table `swarmshare_schema` and migrated forward when a
 * tracker opens the database, under an advisory lock so that instances starting together
 * migrate it once.
 *
 * Text keys compare as bytes (`COLLATE "C"`), as SQLite compares them, so pages by id or name
 * come in the same order on both stores. Where the SQLite store relies on one method running
 * whole, this one runs a transaction (READ COMMITTED) and locks the rows it decides on first:
 * a user's row when a session is made (the per-user bound holds across instances), the
 * group's row when a member leaves (ownership passes once), a file's row when a share of it
 * is added or ended (a file is dropped with its last share, never under a new one).
 *
 * @module
 */

import postgres from "postgres";
import type { GroupSummary } from "../lib/protocol.ts";
import { ATTEMPTS_SCHEMA, PostgresAttemptCounts } from "./postgres_attempts.ts";
import { EVENTS_SCHEMA, PostgresBus } from "./postgres_events.ts";
import {
  PostgresPresence,
  PRESENCE_SCHEMA,
  PRESENCE_SESSIONS_SCHEMA,
} from "./postgres_presence.ts";
import { concatBytes } from "../lib/bytes.ts";
import { INFO_PAGE_BYTES, infoPage, infoPageOffsets, isInlineInfo } from "../lib/info_pages.ts";
import {
  describeDb,
  type LeaveOutcome,
  type NewFile,
  type SessionRecord,
  type Share,
  type SharedFile,
  type SharedLiveState,
  type ShareLocation,
  type ShareOutcome,
  type ShareRestoreEntry,
  type StoreChange,
  StoreError,
  type TrackerStore,
  type UserCounts,
} from "./store.ts";

/**
 * Connections one tracker holds at most. A query waits in the driver's queue for a free one;
 * that queue holds at most one request per client connection (each has one request answered
 * at a time), and a request that waited its turn too long is answered "busy" (turns.ts). A
 * database serving several instances must allow this many per instance, and one more for
 * its LISTEN (postgres_events.ts; one of the ten carries the presence heartbeat,
 * postgres_presence.ts): 11 per instance, and PostgreSQL's default `max_connections` is 100.
 */
export const POOL_MAX_CONNECTIONS = 10;
/** A statement running longer than this is cancelled, and its request fails as internal. */
export const STATEMENT_TIMEOUT_MS = 5_000;
/** Waiting for a row lock longer than this fails the statement (a stuck transaction elsewhere). */
const LOCK_TIMEOUT_MS = 2_000;
/** A transaction left open and idle this long is ended by the server (a lost instance). */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;
/** Connecting to the server gives up after this long (s). */
const CONNECT_TIMEOUT_S = 10;
/** A pooled connection idle this long is closed (s). */
const IDLE_CONNECTION_TIMEOUT_S = 60;
/** Closing waits this long for queries in flight before it cuts them (s). */
const CLOSE_TIMEOUT_S = 5;
/** The advisory lock migrations take (any fixed number: "swarms" in ASCII). */
const MIGRATION_LOCK_ID = 0x7377_6172_6d73;

/** Each entry upgrades the schema by one version; never edit one that has shipped. */
const MIGRATIONS: readonly string[] = [
  // 1: the schema of SQLite's version 4, in PostgreSQL's types. seq columns order rows made in
  // the same millisecond, as SQLite's rowid does.
  `CREATE TABLE users (
     id            TEXT COLLATE "C" PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at    BIGINT NOT NULL
   );
   CREATE TABLE sessions (
     token_digest TEXT COLLATE "C" PRIMARY KEY,
     seq          BIGSERIAL NOT NULL,
     user_id      TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     created_at   BIGINT NOT NULL,
     last_seen_at BIGINT NOT NULL,
     fingerprint  TEXT
   );
   CREATE INDEX sessions_by_user ON sessions(user_id, created_at, seq);
   CREATE INDEX sessions_by_last_seen ON sessions(last_seen_at);
   CREATE TABLE groups (
     id         TEXT COLLATE "C" PRIMARY KEY,
     owner_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id),
     created_at BIGINT NOT NULL
   );
   CREATE INDEX groups_by_owner ON groups(owner_id);
   -- seq orders members by how long they have stood: ownership passes to the lowest.
   CREATE TABLE memberships (
     seq       BIGSERIAL PRIMARY KEY,
     group_id  TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     user_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id),
     joined_at BIGINT NOT NULL,
     UNIQUE (group_id, user_id)
   );
   CREATE TABLE join_requests (
     seq          BIGSERIAL NOT NULL,
     group_id     TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     user_id      TEXT COLLATE "C" NOT NULL REFERENCES users(id),
     requested_at BIGINT NOT NULL,
     PRIMARY KEY (group_id, user_id)
   );
   CREATE INDEX join_requests_by_user ON join_requests(user_id);
   CREATE TABLE files (
     group_id   TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     name       TEXT COLLATE "C" NOT NULL,
     info_hash  TEXT NOT NULL,
     size       BIGINT NOT NULL,
     sha1       TEXT NOT NULL,
     info       BYTEA NOT NULL,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (group_id, name)
   );
   CREATE INDEX files_by_hash ON files(group_id, info_hash);
   -- a share outlives logout: at the next login the client checks the file and serves it again
   CREATE TABLE shares (
     group_id  TEXT COLLATE "C" NOT NULL,
     name      TEXT COLLATE "C" NOT NULL,
     user_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id),
     path      TEXT NOT NULL,
     size      BIGINT NOT NULL,
     mtime_ms  BIGINT NOT NULL,
     shared_at BIGINT NOT NULL,
     PRIMARY KEY (group_id, name, user_id),
     FOREIGN KEY (group_id, name) REFERENCES files(group_id, name) ON DELETE CASCADE
   );
   CREATE INDEX shares_by_user ON shares(user_id, group_id, name);
   CREATE TABLE settings (
     key   TEXT COLLATE "C" PRIMARY KEY,
     value BYTEA NOT NULL
   );`,
  // 2: list_groups reads each group's member count from its row, kept by a trigger (a page
  // of 500 groups counted 500 groups' memberships on every call), as SQLite's version 5.
  `ALTER TABLE groups ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
   UPDATE groups SET member_count =
     (SELECT COUNT(*) FROM memberships m WHERE m.group_id = groups.id);
   CREATE FUNCTION count_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'INSERT' THEN
       UPDATE groups SET member_count = member_count + 1 WHERE id = NEW.group_id;
     ELSE
       UPDATE groups SET member_count = member_count - 1 WHERE id = OLD.group_id;
     END IF;
     RETURN NULL;
   END $$;
   CREATE TRIGGER memberships_counted AFTER INSERT OR DELETE ON memberships
     FOR EACH ROW EXECUTE FUNCTION count_memberships();`,
  // 3: live state shared by the instances: their heartbeats, serving addresses and holders
  PRESENCE_SCHEMA,
  // 4: login attempt counts shared by the instances
  ATTEMPTS_SCHEMA,
  // 5: the login session each connection acts under, for list_sessions on every instance
  PRESENCE_SESSIONS_SCHEMA,
  // 6: events between instances kept for a while, read again by one whose LISTEN was away
  EVENTS_SCHEMA,
  // 7: an info dictionary larger than one page (lib/info_pages.ts) is kept one row per page, as
  // SQLite's version 6: a page of a dictionary that compresses (a sparse file's alike piece
  // hashes) was decompressed from the dictionary's start. files.info keeps a dictionary of at
  // most one page, and is empty for a larger one; info_length is its length.
  `ALTER TABLE files ADD COLUMN info_length BIGINT NOT NULL DEFAULT 0;
   UPDATE files SET info_length = octet_length(info);
   CREATE TABLE info_pages (
     group_id TEXT COLLATE "C" NOT NULL,
     name     TEXT COLLATE "C" NOT NULL,
     page     INTEGER NOT NULL,
     data     BYTEA NOT NULL,
     PRIMARY KEY (group_id, name, page),
     FOREIGN KEY (group_id, name) REFERENCES files(group_id, name) ON DELETE CASCADE
   );
   INSERT INTO info_pages (group_id, name, page, data)
   SELECT f.group_id, f.name, p.page,
          substring(f.info from p.page * ${INFO_PAGE_BYTES} + 1 for ${INFO_PAGE_BYTES})
   FROM files f, generate_series(0, ((f.info_length - 1) / ${INFO_PAGE_BYTES})::int) AS p(page)
   WHERE f.info_length > ${INFO_PAGE_BYTES};
   UPDATE files SET info = ''::bytea WHERE info_length > ${INFO_PAGE_BYTES};`,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

type Sql = postgres.Sql<Record<string, never>>;
type Tx = postgres.TransactionSql<Record<string, never>>;

interface SessionRow {
  token_digest: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  fingerprint: string | null;
}

function sessionRecord(row: SessionRow): SessionRecord {
  return {
    tokenDigest: row.token_digest,
    user: row.user_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    fingerprint: row.fingerprint,
  };
}

interface FileRow {
  group_id: string;
  name: string;
  info_hash: string;
  size: number;
  sha1: string;
  info: Uint8Array;
  info_length: number;
}

/** The driver hands bytea out as a Node Buffer; the store's callers get a plain Uint8Array. */
function bytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

function fileOf(row: FileRow): SharedFile {
  return {
    group: row.group_id,
    name: row.name,
    infoHash: row.info_hash,
    size: row.size,
    sha1: row.sha1,
    info: bytes(row.info),
    infoLength: row.info_length,
  };
}

/** The tracker's state in a PostgreSQL database. One instance owns its pool. */
export class PostgresStore implements TrackerStore {
  readonly #sql: Sql;
  readonly #now: () => number;
  #closed?: Promise<void>;

  private constructor(sql: Sql, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /**
   * Connects to the database at `url` and migrates its schema. Throws a `StoreError` (naming
   * the database without its password) when it cannot be reached or used.
   */
  static async open(url: string, options: { now?: () => number } = {}): Promise<PostgresStore> {
    const shown = describeDb(url);
    let sql: Sql;
    try {
      sql = postgres(url, {
        max: POOL_MAX_CONNECTIONS,
        connect_timeout: CONNECT_TIMEOUT_S,
        idle_timeout: IDLE_CONNECTION_TIMEOUT_S,
        prepare: true,
        // BIGINT columns hold milliseconds and byte counts, all below 2^53
        types: {
          bigint: {
            to: 20,
            from: [20],
            serialize: (value: number) => String(value),
            parse: (text: string) => Number(text),
          },
        },
        connection: {
          application_name: "swarmshare-tracker",
          statement_timeout: STATEMENT_TIMEOUT_MS,
          lock_timeout: LOCK_TIMEOUT_MS,
          idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
        },
        // "already exists, skipping" and the like are not the operator's concern
        onnotice: () => {},
      }) as unknown as Sql;
    } catch (error) {
      throw new StoreError(`cannot open database ${shown}: ${(error as Error).message}`);
    }
    const store = new PostgresStore(sql, options.now ?? Date.now);
    try {
      // reaching the server and logging in, apart from what the schema may say after
      await sql`SELECT 1`;
    } catch (error) {
      await store.close();
      throw new StoreError(`cannot open database ${shown}: ${describe(error)}`);
    }
    try {
      await store.#migrate();
    } catch (error) {
      await store.close();
      if (error instanceof StoreError) throw error;
      throw new StoreError(`cannot use database ${shown}: ${describe(error)}`);
    }
    return store;
  }

  /**
   * Enters this database's shared live state as a new instance: the event bus (LISTEN) and
   * the presence with its heartbeat, and the login attempt counts (postgres_events.ts,
   * postgres_presence.ts, postgres_attempts.ts).
   */
  async openLiveState(options: { log: (line: string) => void }): Promise<SharedLiveState> {
    const instance = crypto.randomUUID();
    const bus = await PostgresBus.open(this.#sql, { instance, log: options.log });
    try {
      const presence = await PostgresPresence.open(this.#sql, { instance, bus, log: options.log });
      const attempts = new PostgresAttemptCounts(this.#sql, { log: options.log });
      return { instance, presence, bus, attempts };
    } catch (error) {
      await bus.close();
      throw error;
    }
  }

  /** Waits for queries in flight (a few seconds at most) and closes every connection. */
  close(): Promise<void> {
    this.#closed ??= this.#sql.end({ timeout: CLOSE_TIMEOUT_S });
    return this.#closed;
  }

  async #migrate(): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`;
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS swarmshare_schema (
           id      INTEGER PRIMARY KEY CHECK (id = 1),
           version INTEGER NOT NULL
         )`,
      );
      const [row] = await tx<{ version: number }[]>`SELECT version FROM swarmshare_schema`;
      const version = row?.version ?? 0;
      if (version > SCHEMA_VERSION) {
        throw new StoreError(
          `database schema version ${version} is newer than this tracker understands (${SCHEMA_VERSION})`,
        );
      }
      for (let next = version; next < SCHEMA_VERSION; next++) {
        await tx.unsafe(MIGRATIONS[next]);
      }
      await tx`INSERT INTO swarmshare_schema (id, version) VALUES (1, ${SCHEMA_VERSION})
               ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
    });
  }

  // Users and sessions

  async createUser(user: string, passwordHash: string): Promise<boolean> {
    const result = await this.#sql`
      INSERT INTO users (id, password_hash, created_at) VALUES (${user}, ${passwordHash}, ${this.#now()})
      ON CONFLICT DO NOTHING`;
    return result.count === 1;
  }

  async passwordHash(user: string): Promise<string | undefined> {
    const [row] = await this.#sql<{ password_hash: string }[]>`
      SELECT password_hash FROM users WHERE id = ${user}`;
    return row?.password_hash;
  }

  createSession(
    tokenDigest: string,
    user: string,
    fingerprint: string | null,
    maxPerUser: number,
  ): Promise<string[]> {
    return this.#transaction(async (tx) => {
      // one session made at a time per user, whichever instance makes it: the bound holds
      await tx`SELECT 1 FROM users WHERE id = ${user} FOR UPDATE`;
      const now = this.#now();
      await tx`
        INSERT INTO sessions (token_digest, user_id, created_at, last_seen_at, fingerprint)
        VALUES (${tokenDigest}, ${user}, ${now}, ${now}, ${fingerprint})`;
      const evicted = await tx<{ token_digest: string }[]>`
        DELETE FROM sessions WHERE token_digest IN (
          SELECT token_digest FROM sessions WHERE user_id = ${user}
          ORDER BY created_at DESC, seq DESC OFFSET ${maxPerUser})
        RETURNING token_digest`;
      return evicted.map((row) => row.token_digest);
    });
  }

  async session(tokenDigest: string): Promise<SessionRecord | undefined> {
    const [row] = await this.#sql<SessionRow[]>`
      SELECT token_digest, user_id, created_at, last_seen_at, fingerprint
      FROM sessions WHERE token_digest = ${tokenDigest}`;
    return row && sessionRecord(row);
  }

  async userSessions(user: string): Promise<SessionRecord[]> {
    const rows = await this.#sql<SessionRow[]>`
      SELECT token_digest, user_id, created_at, last_seen_at, fingerprint
      FROM sessions WHERE user_id = ${user} ORDER BY created_at DESC, seq DESC`;
    return rows.map(sessionRecord);
  }

  async touchSession(tokenDigest: string, idleSince: number): Promise<boolean> {
    const result = await this.#sql`
      UPDATE sessions SET last_seen_at = ${this.#now()}
      WHERE token_digest = ${tokenDigest} AND last_seen_at >= ${idleSince}`;
    return result.count === 1;
  }

  async deleteSession(tokenDigest: string): Promise<void> {
    await this.#sql`DELETE FROM sessions WHERE token_digest = ${tokenDigest}`;
  }

  async pruneSessions(maxIdleMs: number): Promise<number> {
    const result = await this.#sql`
      DELETE FROM sessions WHERE last_seen_at < ${this.#now() - maxIdleMs}`;
    return result.count;
  }

  /** Other tracker instances write to the database unseen: nothing read may be kept. */
  watch(_listener: (change: StoreChange) => void): boolean {
    return false;
  }

  // Groups

  createGroup(group: string, owner: string, maxOwned?: number): Promise<boolean | "limit"> {
    return this.#transaction(async (tx): Promise<boolean | "limit"> => {
      const now = this.#now();
      if (maxOwned !== undefined) {
        // the owner's row locked: one group made at a time per user, on every instance
        await tx`SELECT 1 FROM users WHERE id = ${owner} FOR UPDATE`;
        const [{ n }] = await tx<{ n: number }[]>`
          SELECT COUNT(*)::int AS n FROM groups WHERE owner_id = ${owner}`;
        if (n >= maxOwned) return "limit";
      }
      const created = await tx`
        INSERT INTO groups (id, owner_id, created_at) VALUES (${group}, ${owner}, ${now})
        ON CONFLICT DO NOTHING`;
      if (created.count !== 1) return false;
      await tx`INSERT INTO memberships (group_id, user_id, joined_at)
               VALUES (${group}, ${owner}, ${now})`;
      return true;
    });
  }

  async groupOwner(group: string): Promise<string | undefined> {
    const [row] = await this.#sql<{ owner_id: string }[]>`
      SELECT owner_id FROM groups WHERE id = ${group}`;
    return row?.owner_id;
  }

  async members(group: string): Promise<string[]> {
    const rows = await this.#sql<{ user_id: string }[]>`
      SELECT user_id FROM memberships WHERE group_id = ${group} ORDER BY seq`;
    return rows.map((row) => row.user_id);
  }

  async isMember(group: string, user: string): Promise<boolean> {
    const rows = await this.#sql`
      SELECT 1 FROM memberships WHERE group_id = ${group} AND user_id = ${user}`;
    return rows.length > 0;
  }

  async countsOf(user: string, group?: string): Promise<UserCounts> {
    const [row] = await this.#sql<
      { groups_owned: number; pending_requests: number; shares_in_group: number }[]
    >`
      SELECT
        (SELECT COUNT(*) FROM groups WHERE owner_id = ${user}) AS groups_owned,
        (SELECT COUNT(*) FROM join_requests WHERE user_id = ${user}) AS pending_requests,
        (SELECT COUNT(*) FROM shares WHERE user_id = ${user} AND group_id = ${group ?? null})
          AS shares_in_group`;
    return {
      groupsOwned: row.groups_owned,
      pendingRequests: row.pending_requests,
      sharesInGroup: row.shares_in_group,
    };
  }

  async hasShare(group: string, name: string, user: string): Promise<boolean> {
    const rows = await this.#sql`
      SELECT 1 FROM shares WHERE group_id = ${group} AND name = ${name} AND user_id = ${user}`;
    return rows.length > 0;
  }

  addJoinRequest(group: string, user: string, maxPending?: number): Promise<boolean | "limit"> {
    return this.#transaction(async (tx): Promise<boolean | "limit"> => {
      if (maxPending !== undefined) {
        // the user's row locked: one request filed at a time per user, on every instance
        await tx`SELECT 1 FROM users WHERE id = ${user} FOR UPDATE`;
        const [{ n }] = await tx<{ n: number }[]>`
          SELECT COUNT(*)::int AS n FROM join_requests WHERE user_id = ${user}`;
        if (n >= maxPending) return "limit";
      }
      const result = await tx`
        INSERT INTO join_requests (group_id, user_id, requested_at)
        VALUES (${group}, ${user}, ${this.#now()})
        ON CONFLICT DO NOTHING`;
      return result.count === 1;
    });
  }

  async joinRequests(group: string): Promise<string[]> {
    const rows = await this.#sql<{ user_id: string }[]>`
      SELECT user_id FROM join_requests WHERE group_id = ${group} ORDER BY requested_at, seq`;
    return rows.map((row) => row.user_id);
  }

  acceptJoinRequest(group: string, user: string): Promise<boolean> {
    return this.#transaction(async (tx) => {
      // the user's row first, as a request filed (addJoinRequest) takes it: no cycle
      await tx`SELECT 1 FROM users WHERE id = ${user} FOR UPDATE`;
      const removed = await tx`
        DELETE FROM join_requests WHERE group_id = ${group} AND user_id = ${user}`;
      if (removed.count !== 1) return false;
      await tx`INSERT INTO memberships (group_id, user_id, joined_at)
               VALUES (${group}, ${user}, ${this.#now()})
               ON CONFLICT DO NOTHING`;
      return true;
    });
  }

  async rejectJoinRequest(group: string, user: string): Promise<boolean> {
    const result = await this.#sql`
      DELETE FROM join_requests WHERE group_id = ${group} AND user_id = ${user}`;
    return result.count === 1;
  }

  leaveGroup(group: string, user: string): Promise<LeaveOutcome> {
    return this.#transaction(async (tx) => {
      // the group's row first: leaves in one group pass ownership one at a time
      const [owned] = await tx<{ owner_id: string }[]>`
        SELECT owner_id FROM groups WHERE id = ${group} FOR UPDATE`;
      await this.#removeSharesInGroup(tx, group, user);
      await tx`DELETE FROM memberships WHERE group_id = ${group} AND user_id = ${user}`;
      if (owned?.owner_id !== user) return { owner: owned?.owner_id ?? null, deleted: false };
      const [successor] = await tx<{ user_id: string }[]>`
        SELECT user_id FROM memberships WHERE group_id = ${group} ORDER BY seq LIMIT 1`;
      if (!successor) {
        await tx`DELETE FROM groups WHERE id = ${group}`;
        return { owner: null, deleted: true };
      }
      await tx`UPDATE groups SET owner_id = ${successor.user_id} WHERE id = ${group}`;
      return { owner: successor.user_id, deleted: false };
    });
  }

  async listGroups(after = "", limit = -1): Promise<GroupSummary[]> {
    // member_count is kept by a trigger: a page costs its own rows, not its memberships
    const rows = await this.#sql<{ group: string; owner: string; members: number }[]>`
      SELECT id AS "group", owner_id AS owner, member_count AS members
      FROM groups WHERE id > ${after} ORDER BY id LIMIT ${limit < 0 ? null : limit}`;
    return rows.map((row) => ({ group: row.group, owner: row.owner, members: row.members }));
  }

  // Files and shares

  shareFile(file: NewFile, share: ShareLocation): Promise<ShareOutcome> {
    return this.#transaction(async (tx) => {
      const now = this.#now();
      if (share.asMember || share.maxSharesInGroup !== undefined) {
        // the membership row locked: this user's shares in this group are written one at a
        // time, on every instance, so the count below cannot go stale before the insert, and
        // a leave cannot come between
        const member = await tx`
          SELECT 1 FROM memberships
          WHERE group_id = ${file.group} AND user_id = ${share.user} FOR UPDATE`;
        if (share.asMember && member.length === 0) return "not_member";
      }
      if (share.maxSharesInGroup !== undefined) {
        const [{ shared, n }] = await tx<{ shared: boolean; n: number }[]>`
          SELECT
            EXISTS (SELECT 1 FROM shares WHERE group_id = ${file.group}
                      AND name = ${file.name} AND user_id = ${share.user}) AS shared,
            (SELECT COUNT(*)::int FROM shares
              WHERE user_id = ${share.user} AND group_id = ${file.group}) AS n`;
        if (!shared && n >= share.maxSharesInGroup) return "limit";
      }
      // a concurrent insert of the same name waits for ours and then does nothing
      const inline = isInlineInfo(file.info.length);
      const added = await tx`
        INSERT INTO files (group_id, name, info_hash, size, sha1, info, info_length, created_at)
        VALUES (${file.group}, ${file.name}, ${file.infoHash}, ${file.size}, ${file.sha1},
                ${inline ? file.info : new Uint8Array()}, ${file.info.length}, ${now})
        ON CONFLICT DO NOTHING`;
      if (added.count === 1 && !inline) {
        for (const offset of infoPageOffsets(file.info.length)) {
          await tx`
            INSERT INTO info_pages (group_id, name, page, data)
            VALUES (${file.group}, ${file.name}, ${offset / INFO_PAGE_BYTES},
                    ${infoPage(file.info, offset)})`;
        }
      }
      if (added.count !== 1) {
        // locked: a share ended meanwhile cannot drop the file under the one made here
        const [existing] = await tx<{ info_hash: string; sha1: string }[]>`
          SELECT info_hash, sha1 FROM files
          WHERE group_id = ${file.group} AND name = ${file.name} FOR UPDATE`;
        if (!existing) throw new Error(`file "${file.name}" went while being shared`);
        if (existing.info_hash !== file.infoHash) return "conflict";
        if (existing.sha1 !== file.sha1) return "sha1_differs";
      }
      await tx`
        INSERT INTO shares (group_id, name, user_id, path, size, mtime_ms, shared_at)
        VALUES (${file.group}, ${file.name}, ${share.user}, ${share.path}, ${file.size},
                ${share.mtimeMs}, ${now})
        ON CONFLICT (group_id, name, user_id)
        DO UPDATE SET path = excluded.path, size = excluded.size, mtime_ms = excluded.mtime_ms`;
      return added.count === 1 ? "added" : "same";
    });
  }

  async restoreShares(user: string, shares: readonly ShareRestoreEntry[]): Promise<boolean[]> {
    if (shares.length === 0) return [];
    // one statement for the batch; a row whose path and mtime are unchanged is not written
    const rows = await this.#sql<{ at: number }[]>`
      WITH asked AS (
        SELECT a.at::int AS at, a.group_id COLLATE "C" AS group_id, a.name COLLATE "C" AS name,
               a.info_hash, a.path, a.mtime_ms
        FROM unnest(${shares.map((share) => share.group)}::text[],
                    ${shares.map((share) => share.name)}::text[],
                    ${shares.map((share) => share.infoHash)}::text[],
                    ${shares.map((share) => share.path)}::text[],
                    ${shares.map((share) => share.mtimeMs)}::bigint[])
          WITH ORDINALITY AS a(group_id, name, info_hash, path, mtime_ms, at)
      ), found AS (
        SELECT asked.* , (s.path <> asked.path OR s.mtime_ms <> asked.mtime_ms) AS moved
        FROM asked
        JOIN shares s ON s.group_id = asked.group_id AND s.name = asked.name AND s.user_id = ${user}
        JOIN files f ON f.group_id = s.group_id AND f.name = s.name
          AND f.info_hash = asked.info_hash
      ), moved AS (
        UPDATE shares s SET path = found.path, mtime_ms = found.mtime_ms FROM found
        WHERE found.moved AND s.group_id = found.group_id AND s.name = found.name
          AND s.user_id = ${user}
      )
      SELECT at FROM found`;
    const found = new Set(rows.map((row) => Number(row.at)));
    return shares.map((_, index) => found.has(index + 1));
  }

  async file(group: string, name: string): Promise<SharedFile | undefined> {
    const [row] = await this.#sql<FileRow[]>`
      SELECT group_id, name, info_hash, size, sha1,
             info, info_length
      FROM files WHERE group_id = ${group} AND name = ${name}`;
    return row && fileOf(row);
  }

  async fileByHash(group: string, infoHash: string): Promise<SharedFile | undefined> {
    const [row] = await this.#sql<FileRow[]>`
      SELECT group_id, name, info_hash, size, sha1,
             info, info_length
      FROM files WHERE group_id = ${group} AND info_hash = ${infoHash} LIMIT 1`;
    return row && fileOf(row);
  }

  async infoPage(
    group: string,
    infoHash: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    // substring of a bytea counts bytes from 1; files.info holds at most one page
    const [file] = await this.#sql<{ name: string; info_length: number; inline: Uint8Array }[]>`
      SELECT name, info_length, substring(info from ${offset + 1} for ${length}) AS inline
      FROM files WHERE group_id = ${group} AND info_hash = ${infoHash} LIMIT 1`;
    if (!file) return undefined;
    if (isInlineInfo(file.info_length)) return bytes(file.inline);
    // the rows of the pages asked for, each read whole: one for a page at a page's offset
    const first = Math.floor(offset / INFO_PAGE_BYTES);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / INFO_PAGE_BYTES);
    const rows = await this.#sql<{ page: number; data: Uint8Array }[]>`
      SELECT page, data FROM info_pages
      WHERE group_id = ${group} AND name = ${file.name} AND page BETWEEN ${first} AND ${last}
      ORDER BY page`;
    if (rows.length !== last - first + 1) return undefined;
    const whole = rows.length === 1
      ? bytes(rows[0].data)
      : concatBytes(...rows.map((row) => bytes(row.data)));
    const from = offset - first * INFO_PAGE_BYTES;
    return whole.slice(from, from + length);
  }

  async filesPage(
    group: string,
    after: string,
    limit: number,
  ): Promise<{ name: string; size: number; sha1: string; infoHash: string }[]> {
    const rows = await this.#sql<Omit<FileRow, "group_id" | "info" | "info_length">[]>`
      SELECT name, size, sha1, info_hash FROM files
      WHERE group_id = ${group} AND name > ${after} ORDER BY name LIMIT ${limit}`;
    return rows.map((row) => ({
      name: row.name,
      size: row.size,
      sha1: row.sha1,
      infoHash: row.info_hash,
    }));
  }

  removeShare(
    group: string,
    name: string,
    user: string,
  ): Promise<{ removed: boolean; fileGone: boolean }> {
    return this.#transaction(async (tx) => {
      // locked: a share being added meanwhile is either seen below or waits for the drop
      await tx`SELECT 1 FROM files WHERE group_id = ${group} AND name = ${name} FOR UPDATE`;
      const removed = await tx`
        DELETE FROM shares WHERE group_id = ${group} AND name = ${name} AND user_id = ${user}`;
      const fileGone = await this.#dropUnshared(tx, group, [name]);
      return { removed: removed.count === 1, fileGone: fileGone.length === 1 };
    });
  }

  async #removeSharesInGroup(tx: Tx, group: string, user: string): Promise<void> {
    // lock the files first, in one order for every transaction
    const files = await tx<{ name: string }[]>`
      SELECT f.name FROM files f JOIN shares s ON s.group_id = f.group_id AND s.name = f.name
      WHERE s.group_id = ${group} AND s.user_id = ${user}
      ORDER BY f.name FOR UPDATE OF f`;
    if (files.length === 0) return;
    await tx`DELETE FROM shares WHERE group_id = ${group} AND user_id = ${user}`;
    await this.#dropUnshared(tx, group, files.map((row) => row.name));
  }

  /** Drops the files among `names` that nobody shares any more; returns their names. */
  async #dropUnshared(tx: Tx, group: string, names: string[]): Promise<string[]> {
    const rows = await tx<{ name: string }[]>`
      DELETE FROM files f WHERE f.group_id = ${group} AND f.name = ANY(${names}::text[])
      AND NOT EXISTS (SELECT 1 FROM shares s WHERE s.group_id = f.group_id AND s.name = f.name)
      RETURNING f.name`;
    return rows.map((row) => row.name);
  }

  async sharesOf(
    user: string,
    page: { after?: { group: string; name: string }; limit?: number } = {},
  ): Promise<Share[]> {
    const after = page.after ?? { group: "", name: "" };
    const limit = page.limit === undefined || page.limit < 0 ? null : page.limit;
    const rows = await this.#sql<(FileRow & { path: string; mtime_ms: number })[]>`
      SELECT f.group_id, f.name, f.info_hash, f.size, f.sha1,
             f.info, f.info_length, s.path, s.mtime_ms
      FROM shares s JOIN files f ON f.group_id = s.group_id AND f.name = s.name
      WHERE s.user_id = ${user} AND (s.group_id, s.name) > (${after.group}, ${after.name})
      ORDER BY s.group_id, s.name LIMIT ${limit}`;
    return rows.map((row) => ({ ...fileOf(row), path: row.path, mtimeMs: row.mtime_ms }));
  }

  // Settings

  async setting(key: string): Promise<Uint8Array | undefined> {
    const [row] = await this.#sql<{ value: Uint8Array }[]>`
      SELECT value FROM settings WHERE key = ${key}`;
    return row && bytes(row.value);
  }

  async putSetting(key: string, value: Uint8Array): Promise<void> {
    await this.#sql`
      INSERT INTO settings (key, value) VALUES (${key}, ${value})
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
  }

  async claimSetting(key: string, value: Uint8Array): Promise<Uint8Array> {
    // a concurrent insert of the same key waits for ours, then does nothing: the read below
    // (a new snapshot, READ COMMITTED) sees whichever committed first
    await this
      .#sql`INSERT INTO settings (key, value) VALUES (${key}, ${value}) ON CONFLICT DO NOTHING`;
    const stored = await this.setting(key);
    if (!stored) throw new StoreError(`setting "${key}" vanished as it was written`);
    return stored;
  }

  async #transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    return await this.#sql.begin(body) as T;
  }
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message || (error as { code?: string }).code || "unknown error";
}
