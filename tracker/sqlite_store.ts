// The methods are synchronous underneath but async for the interface: a thrown error becomes
// a rejected promise, as it would from a database across a socket.
// deno-lint-ignore-file require-await
/**
 * The tracker's durable state in SQLite (`node:sqlite`, WAL), the embedded default store: one
 * file, one connection, synchronous underneath (its promises are settled when returned, and
 * each method runs whole before any other request's code, so a method is atomic even outside
 * a transaction). The schema is versioned with `PRAGMA user_version` and migrated forward
 * when the tracker opens the file.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { GroupSummary } from "../lib/protocol.ts";
import { INFO_PAGE_BYTES, infoPage, infoPageOffsets, isInlineInfo } from "../lib/info_pages.ts";
import {
  type LeaveOutcome,
  type NewFile,
  type SessionRecord,
  type Share,
  type SharedFile,
  type ShareLocation,
  type ShareOutcome,
  type ShareRestoreEntry,
  type StoreChange,
  StoreError,
  type TrackerStore,
  type UserCounts,
} from "./store.ts";

/** Each entry upgrades the schema by one version; never edit one that has shipped. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id            TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at    INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE sessions (
     token_digest TEXT PRIMARY KEY,
     user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     created_at   INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE groups (
     id         TEXT PRIMARY KEY,
     owner_id   TEXT NOT NULL REFERENCES users(id),
     created_at INTEGER NOT NULL
   ) STRICT;
   -- seq orders members by how long they have stood: ownership passes to the lowest.
   CREATE TABLE memberships (
     seq       INTEGER PRIMARY KEY AUTOINCREMENT,
     group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     user_id   TEXT NOT NULL REFERENCES users(id),
     joined_at INTEGER NOT NULL,
     UNIQUE (group_id, user_id)
   ) STRICT;
   CREATE TABLE join_requests (
     group_id     TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     user_id      TEXT NOT NULL REFERENCES users(id),
     requested_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, user_id)
   ) STRICT;`,
  // 2: files shared in groups, who shares them from where, and the tracker's own keys.
  `CREATE TABLE files (
     group_id   TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
     name       TEXT NOT NULL,
     info_hash  TEXT NOT NULL,
     size       INTEGER NOT NULL,
     sha1       TEXT NOT NULL,
     info       BLOB NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, name)
   ) STRICT;
   -- a share outlives logout: at the next login the client checks the file and serves it again
   CREATE TABLE shares (
     group_id  TEXT NOT NULL,
     name      TEXT NOT NULL,
     user_id   TEXT NOT NULL REFERENCES users(id),
     path      TEXT NOT NULL,
     size      INTEGER NOT NULL,
     mtime_ms  INTEGER NOT NULL,
     shared_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, name, user_id),
     FOREIGN KEY (group_id, name) REFERENCES files(group_id, name) ON DELETE CASCADE
   ) STRICT;
   CREATE INDEX shares_by_user ON shares(user_id);
   CREATE TABLE settings (
     key   TEXT PRIMARY KEY,
     value BLOB NOT NULL
   ) STRICT;`,
  // 3: a session is bound to the client certificate that logged in. Sessions from before
  // carry no fingerprint; binding them to "none" would let a stolen token resume over a
  // plaintext link, so they are dropped and their users log in once more.
  `DELETE FROM sessions;
   ALTER TABLE sessions ADD COLUMN fingerprint TEXT;
   CREATE INDEX sessions_by_user ON sessions(user_id, created_at);`,
  // 4: find_peers and announce look a file up by its info_hash, not by scanning the group.
  `CREATE INDEX files_by_hash ON files(group_id, info_hash);`,
  // 5: list_groups reads each group's member count from its row, kept by triggers (a page of
  // 500 groups counted 500 groups' memberships on every call); the per-user limits count
  // groups owned and requests waiting through indexes, not by scanning the tables.
  `ALTER TABLE groups ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;
   UPDATE groups SET member_count =
     (SELECT COUNT(*) FROM memberships m WHERE m.group_id = groups.id);
   CREATE TRIGGER memberships_counted AFTER INSERT ON memberships BEGIN
     UPDATE groups SET member_count = member_count + 1 WHERE id = NEW.group_id;
   END;
   CREATE TRIGGER memberships_uncounted AFTER DELETE ON memberships BEGIN
     UPDATE groups SET member_count = member_count - 1 WHERE id = OLD.group_id;
   END;
   CREATE INDEX groups_by_owner ON groups(owner_id);
   CREATE INDEX join_requests_by_user ON join_requests(user_id);
   DROP INDEX shares_by_user;
   CREATE INDEX shares_by_user ON shares(user_id, group_id, name);
   CREATE INDEX sessions_by_last_seen ON sessions(last_seen_at);`,
  // 6: an info dictionary larger than one page (lib/info_pages.ts) is kept one row per page:
  // get_info read the whole BLOB (40 MiB for 1 TiB) for each of its 80 pages. files.info keeps
  // a dictionary of at most one page, and is empty for a larger one; info_length is its length.
  `ALTER TABLE files ADD COLUMN info_length INTEGER NOT NULL DEFAULT 0;
   UPDATE files SET info_length = length(info);
   CREATE TABLE info_pages (
     group_id TEXT NOT NULL,
     name     TEXT NOT NULL,
     page     INTEGER NOT NULL,
     data     BLOB NOT NULL,
     PRIMARY KEY (group_id, name, page),
     FOREIGN KEY (group_id, name) REFERENCES files(group_id, name) ON DELETE CASCADE
   ) STRICT;
   WITH RECURSIVE cut(group_id, name, page, pages) AS (
     SELECT group_id, name, 0, (info_length + ${INFO_PAGE_BYTES} - 1) / ${INFO_PAGE_BYTES}
     FROM files WHERE info_length > ${INFO_PAGE_BYTES}
     UNION ALL
     SELECT group_id, name, page + 1, pages FROM cut WHERE page + 1 < pages
   )
   INSERT INTO info_pages (group_id, name, page, data)
   SELECT cut.group_id, cut.name, cut.page,
          substr(f.info, cut.page * ${INFO_PAGE_BYTES} + 1, ${INFO_PAGE_BYTES})
   FROM cut JOIN files f ON f.group_id = cut.group_id AND f.name = cut.name;
   UPDATE files SET info = x'' WHERE info_length > ${INFO_PAGE_BYTES};`,
];

/** What each per-user limit counts (`countsOf`): one user's rows, through an index. */
const COUNTS = {
  groupsOwned: "SELECT COUNT(*) AS n FROM groups WHERE owner_id = ?",
  pendingRequests: "SELECT COUNT(*) AS n FROM join_requests WHERE user_id = ?",
  sharesInGroup: "SELECT COUNT(*) AS n FROM shares WHERE user_id = ? AND group_id = ?",
} as const;

/** Owners a store keeps at most (each a few hundred bytes). */
const MAX_KEPT_ANSWERS = 100_000;
/**
 * Membership answers a store keeps at most: 40-60 bytes each (a map entry under its group's,
 * the user's name shared with its connection; 18.5 MiB measured for 500,000), so under
 * 64 MiB. A directory of 10,000 groups of 50 has 500,000 memberships; with 100,000 kept,
 * most asks missed.
 */
const MAX_KEPT_MEMBERSHIPS = 1_000_000;
/**
 * Bytes of file rows (their inline info dictionaries, and a few hundred bytes each besides) a
 * store keeps at most for `file`: 16 MiB.
 */
const MAX_KEPT_FILE_BYTES = 16 * 1024 * 1024;
/** What a kept file row costs besides its info dictionary (names, hashes, map entries). */
const KEPT_FILE_OVERHEAD_BYTES = 512;

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

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

/** The tracker's state in one SQLite file. One instance owns the connection. */
export class SqliteStore implements TrackerStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #statements = new Map<string, StatementSync>();
  readonly #watchers: ((change: StoreChange) => void)[] = [];
  /**
   * Every request about a group asks its owner and whether the asker is a member: answers
   * kept (this process is the only writer; each write that changes one drops it), at most
   * `MAX_KEPT_ANSWERS` owners and `MAX_KEPT_MEMBERSHIPS` memberships. They were 6% of the
   * tracker's main thread under load.
   */
  readonly #owners = new Map<string, string | null>();
  readonly #memberships = new Map<string, Map<string, boolean>>();
  #keptMemberships = 0;
  /**
   * `locate_file` looks its file up by group and name on every call (4% of the main thread
   * under load): rows (and "no such file") kept by group until a write changes that group's
   * files, at most `MAX_KEPT_FILE_BYTES`.
   */
  readonly #files = new Map<string, Map<string, SharedFile | null>>();
  #keptFileBytes = 0;

  /**
   * Opens (creating if needed) and migrates the database at `path` (`:memory:` for tests).
   * The file and its -wal and -shm companions are private (0600): they hold password hashes
   * and the tracker's private keys.
   */
  constructor(path: string, options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    const isFile = path !== ":memory:" && path !== "" && !path.startsWith("file:");
    try {
      // SQLite gives -wal and -shm the mode of the database file, so make that one 0600 first
      if (isFile) Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
      this.#db = new DatabaseSync(path);
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec("PRAGMA synchronous = NORMAL");
      this.#db.exec("PRAGMA foreign_keys = ON");
      this.#db.exec("PRAGMA busy_timeout = 5000");
    } catch (error) {
      throw new StoreError(`cannot open database ${path}: ${(error as Error).message}`);
    }
    try {
      this.#migrate();
      if (isFile) makePrivate([path, `${path}-wal`, `${path}-shm`]);
    } catch (error) {
      this.#db.close();
      throw error instanceof StoreError ? error : new StoreError(
        `cannot use database ${path}: ${(error as Error).message}`,
      );
    }
  }

  /** Checkpoints the WAL and closes the file; the store is unusable afterwards. */
  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    this.#db.close();
  }

  #migrate(): void {
    const { user_version: version } = this.#db.prepare("PRAGMA user_version").get() as {
      user_version: number;
    };
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `database schema version ${version} is newer than this tracker understands (${SCHEMA_VERSION})`,
      );
    }
    for (let next = version; next < SCHEMA_VERSION; next++) {
      this.#transaction(() => {
        this.#db.exec(MIGRATIONS[next]);
        this.#db.exec(`PRAGMA user_version = ${next + 1}`);
      });
    }
  }

  /** This process is the database's only writer: every change is reported. */
  watch(listener: (change: StoreChange) => void): boolean {
    this.#watchers.push(listener);
    return true;
  }

  #changed(change: StoreChange): void {
    if (change.kind === "files") this.#forgetFiles(change.group);
    for (const watcher of this.#watchers) watcher(change);
  }

  /**
   * How SQLite runs each statement this store has prepared so far (`EXPLAIN QUERY PLAN`, one
   * line per step): tests check that none scans a table whose size grows with the directory.
   */
  queryPlans(): Map<string, string[]> {
    const plans = new Map<string, string[]>();
    for (const text of this.#statements.keys()) {
      const steps = this.#db.prepare(`EXPLAIN QUERY PLAN ${text}`).all() as { detail: string }[];
      plans.set(text, steps.map((step) => step.detail));
    }
    return plans;
  }

  #sql(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  #transaction<T>(body: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  // Users and sessions

  async createUser(user: string, passwordHash: string): Promise<boolean> {
    const result = this.#sql(
      "INSERT INTO users (id, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ).run(user, passwordHash, this.#now());
    return result.changes === 1;
  }

  async passwordHash(user: string): Promise<string | undefined> {
    const row = this.#sql("SELECT password_hash FROM users WHERE id = ?").get(user) as
      | { password_hash: string }
      | undefined;
    return row?.password_hash;
  }

  async createSession(
    tokenDigest: string,
    user: string,
    fingerprint: string | null,
    maxPerUser: number,
  ): Promise<string[]> {
    return this.#transaction(() => {
      const now = this.#now();
      this.#sql(
        `INSERT INTO sessions (token_digest, user_id, created_at, last_seen_at, fingerprint)
         VALUES (?, ?, ?, ?, ?)`,
      ).run(tokenDigest, user, now, now, fingerprint);
      const evicted = this.#sql(
        `SELECT token_digest FROM sessions WHERE user_id = ?
         ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?`,
      ).all(user, maxPerUser) as { token_digest: string }[];
      for (const row of evicted) this.#deleteSession(row.token_digest);
      return evicted.map((row) => row.token_digest);
    });
  }

  async session(tokenDigest: string): Promise<SessionRecord | undefined> {
    const row = this.#sql(
      `SELECT token_digest, user_id, created_at, last_seen_at, fingerprint
       FROM sessions WHERE token_digest = ?`,
    ).get(tokenDigest) as SessionRow | undefined;
    return row && sessionRecord(row);
  }

  async userSessions(user: string): Promise<SessionRecord[]> {
    const rows = this.#sql(
      `SELECT token_digest, user_id, created_at, last_seen_at, fingerprint
       FROM sessions WHERE user_id = ? ORDER BY created_at DESC, rowid DESC`,
    ).all(user) as unknown as SessionRow[];
    return rows.map(sessionRecord);
  }

  async touchSession(tokenDigest: string, idleSince: number): Promise<boolean> {
    const result = this.#sql(
      "UPDATE sessions SET last_seen_at = ? WHERE token_digest = ? AND last_seen_at >= ?",
    ).run(this.#now(), tokenDigest, idleSince);
    return result.changes === 1;
  }

  async deleteSession(tokenDigest: string): Promise<void> {
    this.#deleteSession(tokenDigest);
  }

  #deleteSession(tokenDigest: string): void {
    this.#sql("DELETE FROM sessions WHERE token_digest = ?").run(tokenDigest);
  }

  async pruneSessions(maxIdleMs: number): Promise<number> {
    const result = this.#sql("DELETE FROM sessions WHERE last_seen_at < ?").run(
      this.#now() - maxIdleMs,
    );
    return Number(result.changes);
  }

  // Groups

  async createGroup(group: string, owner: string, maxOwned?: number): Promise<boolean | "limit"> {
    const created = this.#transaction((): boolean | "limit" => {
      if (maxOwned !== undefined && this.#count("groupsOwned", owner) >= maxOwned) {
        return "limit";
      }
      const now = this.#now();
      const created = this.#sql(
        "INSERT INTO groups (id, owner_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      ).run(group, owner, now);
      if (created.changes !== 1) return false;
      this.#sql("INSERT INTO memberships (group_id, user_id, joined_at) VALUES (?, ?, ?)")
        .run(group, owner, now);
      return true;
    });
    this.#forgetGroup(group);
    if (created === true) this.#changed({ kind: "groups" });
    return created;
  }

  async groupOwner(group: string): Promise<string | undefined> {
    let owner = this.#owners.get(group);
    if (owner === undefined) {
      owner = this.#groupOwner(group) ?? null;
      if (this.#owners.size >= MAX_KEPT_ANSWERS) this.#owners.clear();
      this.#owners.set(group, owner);
    }
    return owner ?? undefined;
  }

  #groupOwner(group: string): string | undefined {
    const row = this.#sql("SELECT owner_id FROM groups WHERE id = ?").get(group) as
      | { owner_id: string }
      | undefined;
    return row?.owner_id;
  }

  async members(group: string): Promise<string[]> {
    return (this.#sql("SELECT user_id FROM memberships WHERE group_id = ? ORDER BY seq")
      .all(group) as { user_id: string }[]).map((row) => row.user_id);
  }

  async isMember(group: string, user: string): Promise<boolean> {
    return this.#isMember(group, user);
  }

  /** `isMember`, answered from the kept answers when it can (each write drops those it changes). */
  #isMember(group: string, user: string): boolean {
    let members = this.#memberships.get(group);
    let member = members?.get(user);
    if (member === undefined) {
      member = this.#sql("SELECT 1 FROM memberships WHERE group_id = ? AND user_id = ?")
        .get(group, user) !== undefined;
      if (this.#keptMemberships >= MAX_KEPT_MEMBERSHIPS) this.#forgetMemberships();
      if (!members) this.#memberships.set(group, members = new Map());
      members.set(user, member);
      this.#keptMemberships++;
    }
    return member;
  }

  #forgetMemberships(group?: string): void {
    if (group === undefined) {
      this.#memberships.clear();
      this.#keptMemberships = 0;
      return;
    }
    this.#keptMemberships -= this.#memberships.get(group)?.size ?? 0;
    this.#memberships.delete(group);
  }

  /** Drops the kept answers about `group` (its owner, who is a member). */
  #forgetGroup(group: string): void {
    this.#owners.delete(group);
    this.#forgetMemberships(group);
  }

  async countsOf(user: string, group?: string): Promise<UserCounts> {
    return {
      groupsOwned: this.#count("groupsOwned", user),
      pendingRequests: this.#count("pendingRequests", user),
      sharesInGroup: group === undefined ? 0 : this.#count("sharesInGroup", user, group),
    };
  }

  /** What a per-user limit counts, as `countsOf` reports it (also inside the writes). */
  #count(what: keyof typeof COUNTS, ...params: string[]): number {
    return Number((this.#sql(COUNTS[what]).get(...params) as { n: number }).n);
  }

  async hasShare(group: string, name: string, user: string): Promise<boolean> {
    return this.#hasShare(group, name, user);
  }

  #hasShare(group: string, name: string, user: string): boolean {
    return this.#sql("SELECT 1 FROM shares WHERE group_id = ? AND name = ? AND user_id = ?")
      .get(group, name, user) !== undefined;
  }

  async addJoinRequest(
    group: string,
    user: string,
    maxPending?: number,
  ): Promise<boolean | "limit"> {
    return this.#transaction(() => {
      if (
        maxPending !== undefined && this.#count("pendingRequests", user) >= maxPending
      ) {
        return "limit";
      }
      const result = this.#sql(
        `INSERT INTO join_requests (group_id, user_id, requested_at) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ).run(group, user, this.#now());
      return result.changes === 1;
    });
  }

  async joinRequests(group: string): Promise<string[]> {
    const rows = this.#sql(
      "SELECT user_id FROM join_requests WHERE group_id = ? ORDER BY requested_at, rowid",
    ).all(group) as { user_id: string }[];
    return rows.map((row) => row.user_id);
  }

  async acceptJoinRequest(group: string, user: string): Promise<boolean> {
    const accepted = this.#transaction(() => {
      const removed = this.#sql("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?")
        .run(group, user);
      if (removed.changes !== 1) return false;
      this.#sql("INSERT INTO memberships (group_id, user_id, joined_at) VALUES (?, ?, ?)")
        .run(group, user, this.#now());
      return true;
    });
    this.#forgetGroup(group);
    if (accepted) this.#changed({ kind: "groups" });
    return accepted;
  }

  async rejectJoinRequest(group: string, user: string): Promise<boolean> {
    return this.#sql("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?")
      .run(group, user).changes === 1;
  }

  async leaveGroup(group: string, user: string): Promise<LeaveOutcome> {
    this.#forgetGroup(group);
    const outcome = this.#transaction((): LeaveOutcome => {
      this.#removeSharesInGroup(group, user);
      this.#sql("DELETE FROM memberships WHERE group_id = ? AND user_id = ?").run(group, user);
      const owner = this.#groupOwner(group);
      if (owner !== user) return { owner: owner ?? null, deleted: false };
      const successor = this.#sql(
        "SELECT user_id FROM memberships WHERE group_id = ? ORDER BY seq LIMIT 1",
      ).get(group) as { user_id: string } | undefined;
      if (!successor) {
        this.#sql("DELETE FROM groups WHERE id = ?").run(group);
        return { owner: null, deleted: true };
      }
      this.#sql("UPDATE groups SET owner_id = ? WHERE id = ?").run(successor.user_id, group);
      return { owner: successor.user_id, deleted: false };
    });
    this.#changed({ kind: "groups" });
    this.#changed({ kind: "files", group });
    return outcome;
  }

  async listGroups(after = "", limit = -1): Promise<GroupSummary[]> {
    // member_count is kept by triggers: a page costs its own rows, not its memberships
    return this.#sql(
      `SELECT id AS "group", owner_id AS owner, member_count AS members
       FROM groups WHERE id > ? ORDER BY id LIMIT ?`,
    ).all(after, limit) as unknown as GroupSummary[];
  }

  // Files and shares

  async shareFile(file: NewFile, share: ShareLocation): Promise<ShareOutcome> {
    const outcome = this.#transaction((): ShareOutcome => {
      if (share.asMember && !this.#isMember(file.group, share.user)) return "not_member";
      // a share the user has already is refreshed, not counted (the count reads up to 1,000)
      if (
        share.maxSharesInGroup !== undefined &&
        !this.#hasShare(file.group, file.name, share.user) &&
        this.#count("sharesInGroup", share.user, file.group) >= share.maxSharesInGroup
      ) {
        return "limit";
      }
      const existing = this.#file(file.group, file.name);
      if (existing && existing.infoHash !== file.infoHash) return "conflict";
      if (existing && existing.sha1 !== file.sha1) return "sha1_differs";
      if (!existing) {
        const inline = isInlineInfo(file.info.length);
        this.#sql(
          `INSERT INTO files (group_id, name, info_hash, size, sha1, info, info_length, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          file.group,
          file.name,
          file.infoHash,
          file.size,
          file.sha1,
          inline ? file.info : new Uint8Array(),
          file.info.length,
          this.#now(),
        );
        if (!inline) {
          const insert = this.#sql(
            "INSERT INTO info_pages (group_id, name, page, data) VALUES (?, ?, ?, ?)",
          );
          for (const offset of infoPageOffsets(file.info.length)) {
            insert.run(
              file.group,
              file.name,
              offset / INFO_PAGE_BYTES,
              infoPage(file.info, offset),
            );
          }
        }
      }
      this.#sql(
        `INSERT INTO shares (group_id, name, user_id, path, size, mtime_ms, shared_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (group_id, name, user_id)
         DO UPDATE SET path = excluded.path, size = excluded.size, mtime_ms = excluded.mtime_ms`,
      ).run(
        file.group,
        file.name,
        share.user,
        share.path,
        file.size,
        share.mtimeMs,
        this.#now(),
      );
      return existing ? "same" : "added";
    });
    if (outcome === "added") this.#changed({ kind: "files", group: file.group });
    return outcome;
  }

  async restoreShares(user: string, shares: readonly ShareRestoreEntry[]): Promise<boolean[]> {
    return this.#transaction(() =>
      shares.map((share) => {
        const row = this.#sql(
          `SELECT s.path, s.mtime_ms FROM shares s
           JOIN files f ON f.group_id = s.group_id AND f.name = s.name
           WHERE s.group_id = ? AND s.name = ? AND s.user_id = ? AND f.info_hash = ?`,
        ).get(share.group, share.name, user, share.infoHash) as
          | { path: string; mtime_ms: number }
          | undefined;
        if (!row) return false;
        // most shares come back where they were: a read, no write
        if (row.path !== share.path || row.mtime_ms !== share.mtimeMs) {
          this.#sql(
            "UPDATE shares SET path = ?, mtime_ms = ? WHERE group_id = ? AND name = ? AND user_id = ?",
          ).run(share.path, share.mtimeMs, share.group, share.name, user);
        }
        return true;
      })
    );
  }

  async file(group: string, name: string): Promise<SharedFile | undefined> {
    let files = this.#files.get(group);
    let file = files?.get(name);
    if (file === undefined) {
      file = this.#file(group, name) ?? null;
      const bytes = (file?.info.length ?? 0) + KEPT_FILE_OVERHEAD_BYTES;
      if (this.#keptFileBytes + bytes > MAX_KEPT_FILE_BYTES) {
        this.#files.clear();
        this.#keptFileBytes = 0;
        files = undefined;
      }
      if (!files) this.#files.set(group, files = new Map());
      files.set(name, file);
      this.#keptFileBytes += bytes;
    }
    return file ?? undefined;
  }

  /** Drops the kept rows of `group`'s files (a file added or gone there). */
  #forgetFiles(group: string): void {
    const files = this.#files.get(group);
    if (!files) return;
    for (const file of files.values()) {
      this.#keptFileBytes -= (file?.info.length ?? 0) + KEPT_FILE_OVERHEAD_BYTES;
    }
    this.#files.delete(group);
  }

  #file(group: string, name: string): SharedFile | undefined {
    const row = this.#sql(
      `SELECT group_id, name, info_hash, size, sha1, ${INFO_COLUMNS} FROM files
       WHERE group_id = ? AND name = ?`,
    ).get(group, name) as FileRow | undefined;
    return row && fileOf(row);
  }

  async fileByHash(group: string, infoHash: string): Promise<SharedFile | undefined> {
    const row = this.#sql(
      `SELECT group_id, name, info_hash, size, sha1, ${INFO_COLUMNS} FROM files
       WHERE group_id = ? AND info_hash = ? LIMIT 1`,
    ).get(group, infoHash) as FileRow | undefined;
    return row && fileOf(row);
  }

  async infoPage(
    group: string,
    infoHash: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    // substr on a BLOB counts bytes from 1; it reads at most one page's row
    const file = this.#sql(
      `SELECT name, info_length, substr(info, ?, ?) AS inline FROM files
       WHERE group_id = ? AND info_hash = ? LIMIT 1`,
    ).get(offset + 1, length, group, infoHash) as
      | { name: string; info_length: number; inline: Uint8Array }
      | undefined;
    if (!file) return undefined;
    if (isInlineInfo(file.info_length)) return file.inline;
    // the rows of the pages asked for, each read whole: one for a page at a page's offset
    const bytes = new Uint8Array(Math.max(0, Math.min(length, file.info_length - offset)));
    const read = this.#sql(
      "SELECT data FROM info_pages WHERE group_id = ? AND name = ? AND page = ?",
    );
    for (let at = 0; at < bytes.length;) {
      const page = Math.floor((offset + at) / INFO_PAGE_BYTES);
      const row = read.get(group, file.name, page) as { data: Uint8Array } | undefined;
      if (!row) return undefined;
      const from = offset + at - page * INFO_PAGE_BYTES;
      const part = row.data.subarray(from, from + bytes.length - at);
      if (part.length === 0) return undefined;
      bytes.set(part, at);
      at += part.length;
    }
    return bytes;
  }

  async filesPage(
    group: string,
    after: string,
    limit: number,
  ): Promise<{ name: string; size: number; sha1: string; infoHash: string }[]> {
    return (this.#sql(
      `SELECT name, size, sha1, info_hash FROM files
       WHERE group_id = ? AND name > ? ORDER BY name LIMIT ?`,
    ).all(group, after, limit) as unknown as Omit<FileRow, "group_id" | "info" | "info_length">[])
      .map((row) => ({
        name: row.name,
        size: row.size,
        sha1: row.sha1,
        infoHash: row.info_hash,
      }));
  }

  async removeShare(
    group: string,
    name: string,
    user: string,
  ): Promise<{ removed: boolean; fileGone: boolean }> {
    const outcome = this.#transaction(() => {
      const removed =
        this.#sql("DELETE FROM shares WHERE group_id = ? AND name = ? AND user_id = ?")
          .run(group, name, user).changes === 1;
      return { removed, fileGone: this.#dropFileIfUnshared(group, name) };
    });
    if (outcome.fileGone) this.#changed({ kind: "files", group });
    return outcome;
  }

  #removeSharesInGroup(group: string, user: string): void {
    const rows = this.#sql("DELETE FROM shares WHERE group_id = ? AND user_id = ? RETURNING name")
      .all(group, user) as { name: string }[];
    for (const { name } of rows) this.#dropFileIfUnshared(group, name);
  }

  async sharesOf(
    user: string,
    page: { after?: { group: string; name: string }; limit?: number } = {},
  ): Promise<Share[]> {
    const after = page.after ?? { group: "", name: "" };
    // on the shares' columns, so a page is a range of shares_by_user: on the files' columns
    // SQLite sorted all of the user's later shares for every page (a login with 100,000
    // shares spent most of its time there)
    const rows = this.#sql(
      `SELECT f.group_id, f.name, f.info_hash, f.size, f.sha1, ${INFO_COLUMNS_OF_F}, s.path,
              s.mtime_ms
       FROM shares s JOIN files f ON f.group_id = s.group_id AND f.name = s.name
       WHERE s.user_id = ? AND (s.group_id, s.name) > (?, ?)
       ORDER BY s.group_id, s.name LIMIT ?`,
    ).all(user, after.group, after.name, page.limit ?? -1) as unknown as (FileRow & {
      path: string;
      mtime_ms: number;
    })[];
    return rows.map((row) => ({ ...fileOf(row), path: row.path, mtimeMs: row.mtime_ms }));
  }

  #dropFileIfUnshared(group: string, name: string): boolean {
    const result = this.#sql(
      `DELETE FROM files WHERE group_id = ? AND name = ?
       AND NOT EXISTS (SELECT 1 FROM shares WHERE group_id = ? AND name = ?)`,
    ).run(group, name, group, name);
    return result.changes === 1;
  }

  // Settings

  async setting(key: string): Promise<Uint8Array | undefined> {
    const row = this.#sql("SELECT value FROM settings WHERE key = ?").get(key) as
      | { value: Uint8Array }
      | undefined;
    return row?.value;
  }

  async putSetting(key: string, value: Uint8Array): Promise<void> {
    this.#sql(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value",
    )
      .run(key, value);
  }

  async claimSetting(key: string, value: Uint8Array): Promise<Uint8Array> {
    this.#sql("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING").run(
      key,
      value,
    );
    return (await this.setting(key))!;
  }
}

/** Tightens existing files to 0600 (databases made before they held keys were 0644). */
function makePrivate(paths: string[]): void {
  if (Deno.build.os === "windows") return;
  for (const path of paths) {
    try {
      if ((Deno.statSync(path).mode! & 0o777) !== 0o600) Deno.chmodSync(path, 0o600);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/**
 * The info dictionary of a file when it fits one page, else an empty BLOB (its pages are rows
 * of info_pages), and its length.
 */
const INFO_COLUMNS = "info, info_length";
const INFO_COLUMNS_OF_F = "f.info, f.info_length";

interface FileRow {
  group_id: string;
  name: string;
  info_hash: string;
  size: number;
  sha1: string;
  info: Uint8Array;
  info_length: number;
}

function fileOf(row: FileRow): SharedFile {
  return {
    group: row.group_id,
    name: row.name,
    infoHash: row.info_hash,
    size: row.size,
    sha1: row.sha1,
    info: row.info,
    infoLength: row.info_length,
  };
}
