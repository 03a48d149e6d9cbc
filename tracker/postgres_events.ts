/**
 * The event bus between tracker instances on one PostgreSQL database: NOTIFY on one channel,
 * every instance LISTENing on it (the driver keeps one connection of its own for that). Each
 * message is one JSON envelope `{from, seq, event}` (or `{from, ping}`), under
 * `MAX_PAYLOAD_BYTES`: PostgreSQL refuses payloads of 8000 bytes or more, so the long lists
 * (the users a notice is for, the members a revocation reaches) travel in several messages.
 *
 * NOTIFY keeps nothing for a listener that is away, so every event is also written to the
 * UNLOGGED table `tracker_events` under a sequence number, in the same transaction as its
 * NOTIFY. Events are written one at a time across instances (a transaction-scoped advisory
 * lock), so sequence order is commit order is the order notifications arrive in. Each
 * instance remembers the last number it has seen; when its listening connection comes back
 * (the driver listens again when it reconnects; this module checks it does by sending itself
 * a ping every `PING_INTERVAL_MS`, and listens anew when none came back for
 * `LISTEN_STALE_MS`) it reads the events after that number from the table and delivers them
 * before any newer notification: clients connected to it hear what they missed, late.
 *
 * The table is bounded: every `PRUNE_EVERY_PINGS` pings an instance deletes events older
 * than `EVENT_KEEP_MS` and all but the newest `MAX_KEPT_EVENTS`. An instance away longer, or
 * a database that crashed (its UNLOGGED tables are emptied), loses events: the log says so.
 * An event that cannot be written (the database down) is lost at its source, and logged.
 *
 * @module
 */

import type postgres from "postgres";
import { errorMessage } from "../lib/errors.ts";
import { chunkByBytes, type EventBus, type TrackerEvent } from "./event_bus.ts";

/** The channel every instance listens on. */
export const EVENT_CHANNEL = "swarmshare_events";
/** One message at most (PostgreSQL's limit is 8000 bytes; room for the envelope's quoting). */
export const MAX_PAYLOAD_BYTES = 7_800;
/** How often an instance pings itself through the channel. */
export const PING_INTERVAL_MS = 2_000;
/** No ping back for this long: the channel is taken for lost and listened to again. */
export const LISTEN_STALE_MS = 6_000;
/** Events are kept this long for instances whose listening connection was away. */
export const EVENT_KEEP_MS = 10 * 60_000;
/** At most this many events are kept. */
export const MAX_KEPT_EVENTS = 10_000;
/** Events are pruned every this many pings (20 s at the default interval). */
const PRUNE_EVERY_PINGS = 10;
/** The advisory lock events are written under, one at a time ("events" in ASCII). */
const EVENTS_LOCK_ID = 0x6576_656e_7473;

/** The table, created by the store's migration 6 (postgres_store.ts). */
export const EVENTS_SCHEMA = `
  CREATE UNLOGGED TABLE tracker_events (
    seq     BIGSERIAL PRIMARY KEY,
    made_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload TEXT NOT NULL
  );
  CREATE INDEX tracker_events_by_time ON tracker_events(made_at);`;

// deno-lint-ignore no-explicit-any
type Sql = postgres.Sql<any>;

type Envelope =
  | { from: string; seq: number; event: TrackerEvent }
  | { from: string; ping: number };

/** Events between instances through NOTIFY/LISTEN. */
export class PostgresBus implements EventBus {
  readonly instance: string;
  readonly #sql: Sql;
  readonly #log: (line: string) => void;
  #handler: (event: TrackerEvent) => void = () => {};
  #listening?: { unlisten(): Promise<void> };
  #listens = 0;
  #lastPongAt = Date.now();
  #pings = 0;
  #timer?: ReturnType<typeof setInterval>;
  #relistening = false;
  #closed = false;
  #maxKept = MAX_KEPT_EVENTS;
  /** The newest event's number seen here (delivered, or our own). */
  #lastSeq = 0;
  /** Notifications held while the missed events are read, to keep their order. */
  #held?: string[];
  #catchingUp?: Promise<void>;
  /** This instance's events, written in the order they were published. */
  #publishing: Promise<void> = Promise.resolve();

  private constructor(sql: Sql, instance: string, log: (line: string) => void) {
    this.#sql = sql;
    this.instance = instance;
    this.#log = log;
  }

  /** Listens on the channel (waits until the LISTEN is in place) and starts the pings. */
  static async open(
    sql: Sql,
    options: {
      instance: string;
      log: (line: string) => void;
      pingIntervalMs?: number;
      /** Events kept at most; default `MAX_KEPT_EVENTS`. */
      maxKeptEvents?: number;
    },
  ): Promise<PostgresBus> {
    const bus = new PostgresBus(sql, options.instance, options.log);
    bus.#maxKept = options.maxKeptEvents ?? MAX_KEPT_EVENTS;
    // events from now on: older ones were for clients this instance never had
    const [row] = await sql<
      { seq: number | null }[]
    >`SELECT max(seq)::float8 AS seq FROM tracker_events`;
    bus.#lastSeq = row.seq ?? 0;
    await bus.#listen();
    const intervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    bus.#timer = setInterval(() => bus.#ping(intervalMs * 3), intervalMs);
    return bus;
  }

  subscribe(handler: (event: TrackerEvent) => void): void {
    this.#handler = handler;
  }

  publish(event: TrackerEvent): void {
    for (const part of splitEvent(event)) {
      this.#publishing = this.#publishing.then(() => this.#write(part));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#publishing;
    await this.#catchingUp;
    await this.#listening?.unlisten().catch(() => {});
  }

  /** Writes `event` to the table and notifies it, in one transaction; never throws. */
  async #write(event: TrackerEvent): Promise<void> {
    // the number is not known before the row is written: the payload's room is checked first
    const longest = JSON.stringify({ from: this.instance, seq: Number.MAX_SAFE_INTEGER, event });
    if (new TextEncoder().encode(longest).length > MAX_PAYLOAD_BYTES) {
      this.#log(`tracker: an event of ${longest.length} characters is too long to send; dropped`);
      return;
    }
    try {
      await this.#sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${EVENTS_LOCK_ID})`;
        const [row] = await tx<{ seq: number }[]>`
          SELECT nextval(pg_get_serial_sequence('tracker_events', 'seq'))::float8 AS seq`;
        const payload = JSON.stringify({ from: this.instance, seq: row.seq, event });
        await tx`INSERT INTO tracker_events (seq, payload) VALUES (${row.seq}, ${payload})`;
        await tx`SELECT pg_notify(${EVENT_CHANNEL}, ${payload})`;
      });
    } catch (error) {
      if (!this.#closed) this.#log(`tracker: cannot send an event: ${errorMessage(error)}`);
    }
  }

  async #listen(): Promise<void> {
    const listening = await this.#sql.listen(
      EVENT_CHANNEL,
      (payload) => this.#receive(payload),
      () => {
        // called at every LISTEN, the first and each after the driver reconnected
        if (this.#listens++ > 0) {
          this.#log(
            "tracker: listening to other instances again after the event channel's connection " +
              "was lost; reading the events they sent meanwhile",
          );
        }
        // what was sent while nobody here listened (at the first LISTEN: since the start)
        this.#catchUp();
      },
    );
    this.#listening = listening;
    this.#lastPongAt = Date.now();
  }

  #ping(staleMs: number): void {
    if (this.#closed) return;
    if (Date.now() - this.#lastPongAt > staleMs && !this.#relistening) {
      this.#relistening = true;
      this.#log(
        `tracker: no word on the event channel for ${staleMs} ms; listening again (events ` +
          "other instances sent meanwhile are read when it is back)",
      );
      const old = this.#listening;
      this.#listening = undefined;
      old?.unlisten().catch(() => {});
      this.#listen()
        .catch((error) => this.#log(`tracker: cannot listen for events: ${errorMessage(error)}`))
        .finally(() => this.#relistening = false);
    }
    this.#sql.notify(EVENT_CHANNEL, JSON.stringify({ from: this.instance, ping: ++this.#pings }))
      .catch((error) => {
        if (!this.#closed) {
          this.#log(`tracker: cannot ping the event channel: ${errorMessage(error)}`);
        }
      });
    if (this.#pings % PRUNE_EVERY_PINGS === 0) this.prune();
  }

  /**
   * Deletes the events older than `EVENT_KEEP_MS` and all but the newest `maxKeptEvents`;
   * never throws (a failure is logged). Runs by itself; public for tests.
   */
  async prune(): Promise<void> {
    await this.#sql`
      DELETE FROM tracker_events
      WHERE made_at < now() - ${EVENT_KEEP_MS}::float8 * interval '1 ms'
         OR seq <= (SELECT max(seq) FROM tracker_events) - ${this.#maxKept}`
      .catch((error) => {
        if (!this.#closed) this.#log(`tracker: cannot prune events: ${errorMessage(error)}`);
      });
  }

  /**
   * Reads the events after the last one seen and delivers them; notifications arriving
   * meanwhile wait, then go through in order (those already read are skipped by number).
   */
  #catchUp(): void {
    if (this.#catchingUp) return;
    this.#held ??= [];
    this.#catchingUp = (async () => {
      try {
        const after = this.#lastSeq;
        const rows = await this.#sql<{ seq: number; payload: string }[]>`
          SELECT seq::float8 AS seq, payload FROM tracker_events WHERE seq > ${after}
          ORDER BY seq LIMIT ${this.#maxKept}`;
        const [oldest] = await this.#sql<{ seq: number | null }[]>`
          SELECT min(seq)::float8 AS seq FROM tracker_events`;
        if (after > 0 && oldest.seq !== null && oldest.seq > after + 1) {
          this.#log(
            "tracker: events from other instances were pruned before this instance could " +
              "read them; its clients missed them",
          );
        }
        for (const row of rows) this.#deliver(row.payload);
      } catch (error) {
        this.#log(
          "tracker: cannot read the events other instances sent meanwhile; its clients " +
            `missed them: ${errorMessage(error)}`,
        );
        // what was held goes on as if nothing was missed, rather than wait for the table
        const first = this.#held?.[0];
        const seq = first === undefined ? undefined : (JSON.parse(first) as { seq?: unknown }).seq;
        if (typeof seq === "number") this.#lastSeq = Math.max(this.#lastSeq, seq - 1);
      } finally {
        const held = this.#held ?? [];
        this.#held = undefined;
        this.#catchingUp = undefined;
        // through #receive: a gap among them (a rolled-back event) holds the rest again
        for (const payload of held) this.#receive(payload);
      }
    })();
  }

  #receive(payload: string): void {
    if (this.#held) {
      this.#held.push(payload);
      return;
    }
    this.#deliver(payload);
  }

  #deliver(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload);
    } catch {
      this.#log("tracker: an event on the channel is not JSON; ignored");
      return;
    }
    if ("ping" in envelope) {
      // our own pings say the channel works
      if (envelope.from === this.instance) this.#lastPongAt = Date.now();
      return;
    }
    if (typeof envelope.seq !== "number" || !("event" in envelope)) return;
    // read already (a notification that came while the table was read)
    if (envelope.seq <= this.#lastSeq) return;
    if (envelope.seq > this.#lastSeq + 1 && !this.#catchingUp) {
      // numbers are given in the order notifications arrive: one skipped was missed here
      // (or its transaction rolled back). This one waits for the table to be read first
      this.#catchUp();
      this.#held!.push(payload);
      return;
    }
    this.#lastSeq = envelope.seq;
    // our own events were delivered here when they were made
    if (envelope.from === this.instance) return;
    try {
      this.#handler(envelope.event);
    } catch (error) {
      this.#log(`tracker: an event from another instance failed: ${errorMessage(error)}`);
    }
  }
}

/** Room the rest of an event takes beside its list (user ids, group, file name, quoting). */
const EVENT_OVERHEAD_BYTES = 2_000;

/** An event as events whose messages stay under the limit: long lists of users cut apart. */
export function splitEvent(event: TrackerEvent): TrackerEvent[] {
  const budget = MAX_PAYLOAD_BYTES;
  if (event.kind === "notice") {
    return chunkByBytes(event.users, budget, EVENT_OVERHEAD_BYTES).map((users) => ({
      ...event,
      users,
    }));
  }
  if (event.kind === "revoke") {
    return chunkByBytes(event.members, budget, EVENT_OVERHEAD_BYTES).map((members, part) => ({
      ...event,
      members,
      part,
    }));
  }
  return [event];
}
