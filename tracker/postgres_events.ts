/**
 * The event bus between tracker instances on one PostgreSQL database: NOTIFY on one channel,
 * every instance LISTENing on it (the driver keeps one connection of its own for that). Each
 * message is one JSON envelope `{from, event}` (or `{from, ping}`), under
 * `MAX_PAYLOAD_BYTES`: PostgreSQL refuses payloads of 8000 bytes or more, so the long lists
 * (the users a notice is for, the members a revocation reaches) travel in several messages.
 *
 * A lost listening connection: the driver listens again when it reconnects, and this module
 * checks that it does, by sending itself a ping every `PING_INTERVAL_MS`; when none came back
 * for `LISTEN_STALE_MS` it listens anew. Either way the log says that the channel was lost and
 * that events sent meanwhile did not reach this instance (NOTIFY keeps nothing for a listener
 * that is away): clients connected here miss those notices, and learn of revocations and ended
 * sessions at their next request (their session is checked in the store; holders live in the
 * shared presence, postgres_presence.ts).
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

// deno-lint-ignore no-explicit-any
type Sql = postgres.Sql<any>;

type Envelope = { from: string; event: TrackerEvent } | { from: string; ping: number };

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

  private constructor(sql: Sql, instance: string, log: (line: string) => void) {
    this.#sql = sql;
    this.instance = instance;
    this.#log = log;
  }

  /** Listens on the channel (waits until the LISTEN is in place) and starts the pings. */
  static async open(
    sql: Sql,
    options: { instance: string; log: (line: string) => void; pingIntervalMs?: number },
  ): Promise<PostgresBus> {
    const bus = new PostgresBus(sql, options.instance, options.log);
    await bus.#listen();
    const intervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    bus.#timer = setInterval(() => bus.#ping(intervalMs * 3), intervalMs);
    return bus;
  }

  subscribe(handler: (event: TrackerEvent) => void): void {
    this.#handler = handler;
  }

  publish(event: TrackerEvent): void {
    for (const part of splitEvent(event)) this.#send({ from: this.instance, event: part });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#listening?.unlisten().catch(() => {});
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
              "was lost; events they sent meanwhile did not reach this instance",
          );
        }
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
          "other instances sent meanwhile did not reach this instance)",
      );
      const old = this.#listening;
      this.#listening = undefined;
      old?.unlisten().catch(() => {});
      this.#listen()
        .catch((error) => this.#log(`tracker: cannot listen for events: ${errorMessage(error)}`))
        .finally(() => this.#relistening = false);
    }
    this.#send({ from: this.instance, ping: ++this.#pings });
  }

  #send(envelope: Envelope): void {
    const payload = JSON.stringify(envelope);
    // bytes, not characters: the limit is PostgreSQL's, in bytes
    if (new TextEncoder().encode(payload).length > MAX_PAYLOAD_BYTES) {
      this.#log(`tracker: an event of ${payload.length} characters is too long to send; dropped`);
      return;
    }
    this.#sql.notify(EVENT_CHANNEL, payload).catch((error) => {
      if (!this.#closed) this.#log(`tracker: cannot send an event: ${errorMessage(error)}`);
    });
  }

  #receive(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload);
    } catch {
      this.#log("tracker: an event on the channel is not JSON; ignored");
      return;
    }
    if (envelope.from === this.instance) {
      // our own events were delivered here when they were made; pings say the channel works
      if ("ping" in envelope) this.#lastPongAt = Date.now();
      return;
    }
    if (!("event" in envelope)) return;
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
