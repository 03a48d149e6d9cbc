/**
 * Login sessions on the tracker: their rules (bound to the client certificate that logged
 * in, expired after an idle spell, at most so many per user) and the live registry of which
 * connection acts under which session, so that ending a session logs out every connection
 * using it. The rows themselves live in the store.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { SessionSummary } from "../lib/protocol.ts";
import { newSessionToken, tokenDigest } from "./auth.ts";
import type { ConnectionState } from "./context.ts";
import type { EventBus } from "./event_bus.ts";
import type { PresenceBook } from "./presence.ts";
import type { TrackerStore } from "./store.ts";

/** Default for `maxIdleMs`: a session unused for 14 days is refused and deleted. */
export const DEFAULT_SESSION_MAX_IDLE_MS = 14 * 24 * 3600_000;
/** A user keeps at most this many sessions; creating one more deletes the oldest. */
export const MAX_SESSIONS_PER_USER = 100;
/** A connection writes its session's last use at most this often, to spare the database. */
export const SESSION_TOUCH_INTERVAL_MS = 60_000;

/** The message of every refused resume, whatever the reason, so that it tells nothing. */
export const SESSION_EXPIRED = "the session has expired: log in again";

/** The public id of a session: 8 hex of a SHA-256 of its token digest (never the token). */
export function sessionId(digest: string): string {
  return createHash("sha256").update(digest).digest("hex").slice(0, 8);
}

/** How sessions behave. */
export interface SessionOptions {
  store: TrackerStore;
  /** Live holdings of a connection are released when it is logged out. */
  presence: PresenceBook;
  /** Ended sessions are told to other instances through it (their connections log out). */
  bus?: EventBus;
  /** Default `DEFAULT_SESSION_MAX_IDLE_MS`. */
  maxIdleMs?: number;
  /** Default `MAX_SESSIONS_PER_USER`. */
  maxPerUser?: number;
  /** Default `Date.now`; the store should use the same clock. */
  now?: () => number;
}

/** The sessions of one tracker and the connections acting under them. */
export class Sessions {
  readonly #store: TrackerStore;
  readonly #presence: PresenceBook;
  readonly #bus?: EventBus;
  readonly #maxIdleMs: number;
  readonly #maxPerUser: number;
  readonly #now: () => number;
  readonly #connections = new Map<string, Set<ConnectionState>>();

  constructor(options: SessionOptions) {
    this.#store = options.store;
    this.#presence = options.presence;
    this.#bus = options.bus;
    this.#maxIdleMs = options.maxIdleMs ?? DEFAULT_SESSION_MAX_IDLE_MS;
    this.#maxPerUser = options.maxPerUser ?? MAX_SESSIONS_PER_USER;
    this.#now = options.now ?? Date.now;
  }

  /** Drops sessions idle for too long (at start); returns how many went. */
  prune(): Promise<number> {
    return this.#store.pruneSessions(this.#maxIdleMs);
  }

  /** Starts a session for `user` on `connection`, bound to its certificate; returns the token. */
  async start(connection: ConnectionState, user: string): Promise<string> {
    const token = newSessionToken();
    const digest = tokenDigest(token);
    const evicted = await this.#store.createSession(
      digest,
      user,
      connection.fingerprint ?? null,
      this.#maxPerUser,
    );
    for (const old of evicted) {
      this.#logOutConnections(old);
      this.#bus?.publish({ kind: "session_ended", digest: old });
    }
    this.#attach(connection, user, digest);
    return token;
  }

  /**
   * Resumes the session of `token` on `connection`: the user, or undefined when the token is
   * unknown, idle for too long (the session is then deleted) or bound to another certificate
   * than the one this connection presented. The caller refuses all three alike.
   */
  async resume(connection: ConnectionState, token: string): Promise<string | undefined> {
    const digest = tokenDigest(token);
    const record = await this.#store.session(digest);
    if (!record) return undefined;
    if (record.lastSeenAt < this.#idleSince()) {
      await this.end(digest);
      return undefined;
    }
    if (record.fingerprint !== (connection.fingerprint ?? null)) return undefined;
    if (!(await this.#store.touchSession(digest, this.#idleSince()))) return undefined;
    if (connection.tokenDigest) this.#detach(connection);
    this.#attach(connection, record.user, digest);
    return record.user;
  }

  /**
   * Counts a request on `connection` as a use of its session, writing it at most once per
   * `SESSION_TOUCH_INTERVAL_MS`. A session that has meanwhile expired or gone is ended and the
   * connection logged out, so the request is refused as unauthenticated. Returns undefined
   * when there was nothing to write (nearly every request: no promise made for it).
   */
  touch(connection: ConnectionState): Promise<void> | undefined {
    const digest = connection.tokenDigest;
    if (!digest) return undefined;
    const now = this.#now();
    if (now - (connection.sessionSeenAt ?? 0) < SESSION_TOUCH_INTERVAL_MS) return undefined;
    return this.#touchStored(connection, digest, now);
  }

  async #touchStored(connection: ConnectionState, digest: string, now: number): Promise<void> {
    if (await this.#store.touchSession(digest, this.#idleSince())) {
      connection.sessionSeenAt = now;
    } else {
      await this.end(digest);
    }
  }

  /** Deletes a session and logs out every connection acting under it. */
  async end(digest: string): Promise<void> {
    await this.#store.deleteSession(digest);
    this.#logOutConnections(digest);
    this.#bus?.publish({ kind: "session_ended", digest });
  }

  /** A session ended on another instance: its connections here are logged out. */
  endedElsewhere(digest: string): void {
    this.#logOutConnections(digest);
  }

  /**
   * The sessions of the connection's user, newest first, as `list_sessions` reports them: one
   * is online while a connection acts under it here or, with a shared presence, on any live
   * instance.
   */
  async list(connection: ConnectionState, user: string): Promise<SessionSummary[]> {
    const records = await this.#store.userSessions(user);
    const elsewhere = await this.#presence.sessionsOnline?.(
      records.map((record) => record.tokenDigest),
    ) ?? new Set<string>();
    return records.map((record) => ({
      id: sessionId(record.tokenDigest),
      created_at: record.createdAt,
      last_seen_at: record.lastSeenAt,
      fingerprint: record.fingerprint,
      current: record.tokenDigest === connection.tokenDigest,
      online: (this.#connections.get(record.tokenDigest)?.size ?? 0) > 0 ||
        elsewhere.has(record.tokenDigest),
    }));
  }

  /**
   * Ends the user's sessions named by `scope` ("all", "others", or a public id) and returns how
   * many ended; undefined when `scope` is an id that names none of the user's sessions.
   */
  async endSessions(
    connection: ConnectionState,
    user: string,
    scope: string,
  ): Promise<number | undefined> {
    const chosen = (await this.#store.userSessions(user)).filter((record) =>
      scope === "all" ||
      (scope === "others" && record.tokenDigest !== connection.tokenDigest) ||
      sessionId(record.tokenDigest) === scope
    );
    if (scope !== "all" && scope !== "others" && chosen.length === 0) return undefined;
    for (const record of chosen) await this.end(record.tokenDigest);
    return chosen.length;
  }

  /** Forgets a connection that closed (its session stays, to be resumed). */
  disconnected(connection: ConnectionState): void {
    this.#detach(connection);
  }

  #idleSince(): number {
    return this.#now() - this.#maxIdleMs;
  }

  #attach(connection: ConnectionState, user: string, digest: string): void {
    connection.user = user;
    connection.replayedGroups = undefined;
    connection.tokenDigest = digest;
    connection.sessionSeenAt = this.#now();
    // a connection that closed while the store answered is not kept for its session's end
    if (connection.closed) return;
    let set = this.#connections.get(digest);
    if (!set) this.#connections.set(digest, set = new Set());
    set.add(connection);
    void this.#presence.actAs?.(connection.id, digest);
  }

  #detach(connection: ConnectionState): void {
    const digest = connection.tokenDigest;
    if (!digest) return;
    const set = this.#connections.get(digest);
    set?.delete(connection);
    if (set?.size === 0) this.#connections.delete(digest);
    void this.#presence.actAs?.(connection.id, undefined);
  }

  #logOutConnections(digest: string): void {
    const set = this.#connections.get(digest);
    this.#connections.delete(digest);
    for (const connection of set ?? []) {
      connection.user = undefined;
      connection.replayedGroups = undefined;
      connection.tokenDigest = undefined;
      connection.sessionSeenAt = undefined;
      void this.#presence.actAs?.(connection.id, undefined);
      // the client stops serving once it learns; the tracker stops pointing peers at it now
      this.#presence.releaseConnection(connection.id);
    }
  }
}
