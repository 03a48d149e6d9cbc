/**
 * The tracker's durable state as the handlers see it: users, sessions, groups, memberships,
 * join requests, files, shares and settings (the tracker's keys), behind one interface with
 * two implementations: `SqliteStore` (sqlite_store.ts, the embedded default) and
 * `PostgresStore` (postgres_store.ts, `--db postgres://...`). Only those two modules know SQL;
 * `openStore` (open_store.ts) picks one from the `--db` value.
 *
 * Every method returns a promise, because a database across a socket answers later; the
 * SQLite one answers at once (its promises are already settled). What must happen together
 * happens inside one method, as one transaction: a session and the eviction of the oldest
 * ones, a group and its first membership, a request turned into a membership, a leave with
 * its shares, ownership passing and the group's end, a file registered with its first share,
 * a share ended with its file. Between two calls, other requests (and, on PostgreSQL, other
 * tracker instances) may act: handlers treat what they read as a hint and what a write says
 * (created, removed, conflict) as the truth. The per-user limits (groups owned, requests
 * waiting, shares in a group) are counted and then written in two calls, so a user who sends
 * requests on k connections at once may pass a limit by at most k - 1 (each connection has
 * one request answered at a time).
 *
 * Live state: who is online holding what (presence.ts) and the events other clients must hear
 * of (event_bus.ts) are kept in memory by a tracker alone (SQLite); a store that several
 * instances share (PostgreSQL) also opens them shared, through `openLiveState`.
 *
 * @module
 */

import type { GroupSummary } from "../lib/protocol.ts";
import type { AttemptCounts } from "./attempt_counts.ts";
import type { EventBus } from "./event_bus.ts";
import type { PresenceBook } from "./presence.ts";

/** True when `db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/**
 * `db` fit to print: a URL without its password and parameters, a file path as it is.
 *
 * @example
 * ```ts
 * describeDb("postgres://tracker:secret@db:5432/swarmshare"); // "postgres://tracker@db:5432/swarmshare"
 * describeDb("/var/lib/swarmshare/tracker.db"); // unchanged
 * ```
 */
export function describeDb(db: string): string {
  if (!isPostgresUrl(db)) return db;
  try {
    const url = new URL(db);
    url.password = "";
    url.search = "";
    return url.toString();
  } catch {
    return "a postgres:// address that does not parse";
  }
}

/** Raised when a database cannot be opened or used, or was written by a newer build. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** What happened to a group when a member left it. */
export interface LeaveOutcome {
  /** The owner afterwards, or null when the group was deleted. */
  owner: string | null;
  deleted: boolean;
}

/** A file shared in a group, as the tracker knows it. */
export interface SharedFile {
  group: string;
  name: string;
  /** Lowercase hex SHA-1 of the bencoded info dictionary. */
  infoHash: string;
  size: number;
  /** Lowercase hex SHA-1 of the whole file. */
  sha1: string;
  /**
   * The bencoded info dictionary when it is at most one page (`isInlineInfo`); read back from
   * the store, a larger one is empty here (at 1 TiB it is 40 MiB, too much to load for every
   * lookup of its file) and `infoPage` reads it a page at a time.
   */
  info: Uint8Array;
  /** Bytes of the bencoded info dictionary. */
  infoLength: number;
}

/** A file as it is first shared: its whole info dictionary, whose length the store records. */
export type NewFile = Omit<SharedFile, "infoLength">;

/** One user's share of one file: where it lives on their machine. */
export interface Share extends SharedFile {
  path: string;
  mtimeMs: number;
}

/** One stored session (looked up by the digest of its token). */
export interface SessionRecord {
  tokenDigest: string;
  user: string;
  createdAt: number;
  lastSeenAt: number;
  /** SHA-256 of the client certificate that logged in; null on a plaintext link. */
  fingerprint: string | null;
}

/**
 * What `shareFile` did: "added" (a new file, with its first share), "same" (the file was
 * there with the same pieces and SHA-1: the share is recorded), "conflict" (the name holds
 * other pieces), "sha1_differs" (the same pieces under another whole-file SHA-1), "limit"
 * (a new share of the user's past `ShareLocation.maxSharesInGroup`) or "not_member" (the
 * user left the group meanwhile, with `ShareLocation.asMember`); nothing is written in the
 * last four.
 */
export type ShareOutcome =
  | "added"
  | "same"
  | "conflict"
  | "sha1_differs"
  | "limit"
  | "not_member";

/** A share of the user's named to be served again (`restore_shares`), where it is now. */
export interface ShareRestoreEntry {
  group: string;
  name: string;
  /** The file's info_hash as the client knows it: a file shared anew under the name is not it. */
  infoHash: string;
  path: string;
  mtimeMs: number;
}

/** Where one user keeps a shared file, for serving it again after a login. */
export interface ShareLocation {
  user: string;
  path: string;
  mtimeMs: number;
  /**
   * The most shares `user` may have in the file's group: a new one beyond it is refused
   * ("limit"), counted inside the write, so requests of one user on several connections
   * (or instances) at once cannot pass it together. None when absent.
   */
  maxSharesInGroup?: number;
  /**
   * The share is a member's: refused ("not_member") when `user` is not one of the group at
   * the write (checked when the request began, but a leave may come between).
   */
  asMember?: boolean;
}

/** How many of each thing a user has: what the per-user limits count. */
export interface UserCounts {
  groupsOwned: number;
  pendingRequests: number;
  /** Shares in the group asked about (0 when none was). */
  sharesInGroup: number;
}

/**
 * What a write changed, as listings show it: the group list (a group made or gone, its
 * owner or member count), or one group's file list (a file added or gone).
 */
export type StoreChange = { kind: "groups" } | { kind: "files"; group: string };

/** Presence and events shared by the tracker instances on one database. */
export interface SharedLiveState {
  /** This instance's id among them (random, new at each start). */
  instance: string;
  presence: PresenceBook;
  bus: EventBus;
  /** Login attempt counts, so that the throttles hold across instances (password_work.ts). */
  attempts: AttemptCounts;
}

/** Typed access to the tracker's durable state. One instance owns its connections. */
export interface TrackerStore {
  /**
   * Presence and events shared with the other tracker instances on this database, for a store
   * several instances can share (PostgreSQL); absent where one tracker has the store alone
   * (SQLite: its presence stays in memory). Close both before the store.
   */
  openLiveState?(options: { log: (line: string) => void }): Promise<SharedLiveState>;

  /** Writes what is pending and closes; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;

  /**
   * Calls `listener` after every write that changes a listing, before the write's promise
   * settles, and returns true, when this store sees every write to its database (so what
   * was read may be kept until `listener` says otherwise); returns false, registering
   * nothing, when others write there unseen (several tracker instances on PostgreSQL).
   */
  watch(listener: (change: StoreChange) => void): boolean;

  // Users and sessions

  /** Adds a user; false when the id is taken. */
  createUser(user: string, passwordHash: string): Promise<boolean>;
  /** The stored password hash of a user, or undefined when there is no such user. */
  passwordHash(user: string): Promise<string | undefined>;
  /**
   * Records a session under the digest of its token, bound to `fingerprint`. A user keeps at
   * most `maxPerUser` sessions: the oldest beyond that are deleted, and their digests returned
   * so that their connections can be logged out.
   */
  createSession(
    tokenDigest: string,
    user: string,
    fingerprint: string | null,
    maxPerUser: number,
  ): Promise<string[]>;
  /** The session stored under a token digest, or undefined. Does not count as a use. */
  session(tokenDigest: string): Promise<SessionRecord | undefined>;
  /** A user's sessions, newest first. */
  userSessions(user: string): Promise<SessionRecord[]>;
  /**
   * Records a use of a session now, unless it was last used before `idleSince` (then it has
   * expired and is left alone). False when there is no live session under the digest.
   */
  touchSession(tokenDigest: string, idleSince: number): Promise<boolean>;
  /** Ends a session. */
  deleteSession(tokenDigest: string): Promise<void>;
  /** Removes sessions unused for longer than `maxIdleMs`; returns how many went. */
  pruneSessions(maxIdleMs: number): Promise<number>;

  // Groups

  /**
   * Creates a group with `owner` as owner and first member; false when the id is taken,
   * "limit" when `owner` owns `maxOwned` groups already (counted inside the write, so
   * requests at once on several connections or instances cannot pass it together).
   */
  createGroup(group: string, owner: string, maxOwned?: number): Promise<boolean | "limit">;
  /** The owner of a group, or undefined when the group does not exist. */
  groupOwner(group: string): Promise<string | undefined>;
  /** The user ids of a group's members, longest-standing first. */
  members(group: string): Promise<string[]>;
  /** True when `user` is a member of `group`. */
  isMember(group: string, user: string): Promise<boolean>;
  /** How many of each thing `user` has (shares counted in `group` when given). */
  countsOf(user: string, group?: string): Promise<UserCounts>;
  /** True when `user` shares `group/name`. */
  hasShare(group: string, name: string, user: string): Promise<boolean>;
  /**
   * Files a join request; false when one is already pending, "limit" when `user` has
   * `maxPending` pending already (counted inside the write, as `createGroup`'s limit).
   */
  addJoinRequest(group: string, user: string, maxPending?: number): Promise<boolean | "limit">;
  /** Users waiting to join `group`, oldest request first. */
  joinRequests(group: string): Promise<string[]>;
  /** Turns a pending request into a membership; false when there was no such request. */
  acceptJoinRequest(group: string, user: string): Promise<boolean>;
  /** Drops a pending request without a membership; false when there was no such request. */
  rejectJoinRequest(group: string, user: string): Promise<boolean>;
  /**
   * Removes `user` from `group`, with their shares there. An owner who leaves hands the group
   * to the longest-standing remaining member; the last member to leave deletes it. The caller
   * checked membership.
   */
  leaveGroup(group: string, user: string): Promise<LeaveOutcome>;
  /** Groups with their owner and member count, by id, after `after`, at most `limit` (all: -1). */
  listGroups(after?: string, limit?: number): Promise<GroupSummary[]>;

  // Files and shares

  /**
   * Registers `file` in its group unless it is there, and records (or refreshes) that
   * `share.user` shares it from `share.path`: see `ShareOutcome`.
   */
  shareFile(file: NewFile, share: ShareLocation): Promise<ShareOutcome>;
  /**
   * Records where `user` holds each of `shares` now, for those `user` shares already under
   * that name with that info_hash; the rest are left alone. Returns, in order, whether each
   * was such a share. One batch is one transaction (SQLite) or one statement (PostgreSQL):
   * a login serving 100,000 shares again writes in batches, not a share at a time.
   */
  restoreShares(user: string, shares: readonly ShareRestoreEntry[]): Promise<boolean[]>;
  /** A file by group and name. */
  file(group: string, name: string): Promise<SharedFile | undefined>;
  /** The file of a group with this info_hash. */
  fileByHash(group: string, infoHash: string): Promise<SharedFile | undefined>;
  /**
   * `length` bytes of the info dictionary of the file of `group` with this info_hash, from
   * `offset`, without loading the rest of it; undefined when there is no such file.
   */
  infoPage(
    group: string,
    infoHash: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined>;
  /** A page of a group's files by name, after `after`, without their info dictionaries. */
  filesPage(
    group: string,
    after: string,
    limit: number,
  ): Promise<{ name: string; size: number; sha1: string; infoHash: string }[]>;
  /**
   * Ends `user`'s share of `group/name`; a file nobody shares any more is forgotten.
   * Returns whether there was such a share and whether the file went with it.
   */
  removeShare(
    group: string,
    name: string,
    user: string,
  ): Promise<{ removed: boolean; fileGone: boolean }>;
  /**
   * Shares of `user`, with their files, for serving again after login: at most `limit`, in
   * (group, name) order, after `after` when given (a page that changes under it skips nothing).
   */
  sharesOf(
    user: string,
    page?: { after?: { group: string; name: string }; limit?: number },
  ): Promise<Share[]>;

  // Settings

  /** A stored setting, or undefined. */
  setting(key: string): Promise<Uint8Array | undefined>;
  /** Stores a setting. */
  putSetting(key: string, value: Uint8Array): Promise<void>;
  /**
   * Stores `value` under `key` unless a value is there already, and returns what is stored
   * afterwards: trackers starting together on one empty database each offer a key they made,
   * and all of them go on with the first one written.
   */
  claimSetting(key: string, value: Uint8Array): Promise<Uint8Array>;
}
