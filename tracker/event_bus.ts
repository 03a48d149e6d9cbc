/**
 * What one tracker instance tells the others: events that must reach clients connected to
 * another instance on the same database. A notice (join request, answer, new file) for some
 * users, a revocation (a user left a group, or the group ended with its last member), a
 * session that ended (evicted, logged out everywhere), and a serving address taken over by
 * another client of the same user.
 *
 * Every instance delivers its own events to its own connections at once (events.ts,
 * sessions.ts), as a single tracker always did; the bus carries them to the other instances.
 * `LocalBus` is the bus of a tracker alone (SQLite): nobody else to tell. `PostgresBus`
 * (postgres_events.ts) sends them through PostgreSQL's NOTIFY to every instance that LISTENs.
 *
 * @module
 */

import type { NoticePush } from "../lib/protocol.ts";

/** A notice as handlers give it (events.ts). */
type NoticeEvent = Exclude<NoticePush, { push: "more_notices" }>;

/** What travels between instances. */
export type TrackerEvent =
  /** Tell the logged-in connections of `users` (all but `except`). */
  | { kind: "notice"; users: string[]; except?: string; notice: NoticeEvent }
  /**
   * `user` is out of `group` from `at`: tell the holders in the group and the connections of
   * the user and of `members` (the members before the leave). A long list of members comes
   * in several parts; the holders and the user are told with part 0 only.
   */
  | { kind: "revoke"; user: string; group: string; members: string[]; at: number; part?: number }
  /** The session stored under `digest` ended: its connections are logged out. */
  | { kind: "session_ended"; digest: string }
  /**
   * Connection `connection` of instance `instance` no longer serves for `user` at
   * `host:port`: another client of theirs registered there.
   */
  | {
    kind: "superseded";
    instance: string;
    connection: number;
    user: string;
    host: string;
    port: number;
  };

/** Where events go to reach the other instances. */
export interface EventBus {
  /** This instance's id ("local" alone). */
  readonly instance: string;
  /** Sends an event to every other instance; never throws (what cannot go is logged). */
  publish(event: TrackerEvent): void;
  /** Events from other instances go to `handler` (one handler; a second replaces it). */
  subscribe(handler: (event: TrackerEvent) => void): void;
  /** Stops listening; idempotent. */
  close(): Promise<void>;
}

/** The bus of a tracker with no other instance: there is nobody to tell. */
export class LocalBus implements EventBus {
  readonly instance = "local";
  publish(_event: TrackerEvent): void {}
  subscribe(_handler: (event: TrackerEvent) => void): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Splits `items` into runs whose JSON (with `overheadBytes` more for the rest of the event)
 * stays within `maxBytes`, so that a revocation naming thousands of members travels as
 * several messages each under the channel's limit. An item longer than the limit on its own
 * travels alone (ids are at most 64 characters, far below it).
 */
export function chunkByBytes(
  items: readonly string[],
  maxBytes: number,
  overheadBytes: number,
): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = overheadBytes;
  const encoder = new TextEncoder();
  for (const item of items) {
    const size = encoder.encode(JSON.stringify(item)).length + 1;
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = overheadBytes;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0 || chunks.length === 0) chunks.push(current);
  return chunks;
}
