/**
 * Whose request the tracker answers next. Every connection asks for a turn before its
 * request is handled (a connection answers one request at a time, so it holds at most one
 * place in line); turns are granted first come, first served, a bounded batch per pass of
 * the event loop, so that reading and writing sockets goes on between batches and the time a
 * request waits for its turn is the tracker's whole backlog, visible here.
 *
 * A request that waited longer than `busyAfterMs` is not handled: it is answered at once with
 * "the tracker is busy", well before the client gives up on it (20 s), and without spending
 * what the backlog lacks on work whose answer would come too late.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** What a waiting request gets. */
export type Turn = "go" | "busy";

/** Default for `busyAfterMs`: a quarter of the client's 20 s request timeout. */
export const DEFAULT_BUSY_AFTER_MS = 5_000;
/**
 * Turns granted per pass of the event loop. Requests take ~0.02-1 ms each, so a batch is at
 * most a few tens of ms of work before sockets are served again.
 */
const TURNS_PER_PASS = 32;

interface Waiting {
  since: number;
  grant: (turn: Turn) => void;
}

export class Turns {
  readonly #busyAfterMs: number;
  readonly #now: () => number;
  /** At most one entry per open connection: bounded by the tracker's connection cap. */
  readonly #line: Waiting[] = [];
  #head = 0;
  #scheduled = false;

  constructor(options: { busyAfterMs?: number; now?: () => number } = {}) {
    this.#busyAfterMs = options.busyAfterMs ?? DEFAULT_BUSY_AFTER_MS;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Requests waiting for their turn. */
  get waiting(): number {
    return this.#line.length - this.#head;
  }

  /** Resolves when it is this request's turn: "go", or "busy" if it waited too long. */
  next(): Promise<Turn> {
    const { promise, resolve } = Promise.withResolvers<Turn>();
    this.#line.push({ since: this.#now(), grant: resolve });
    this.#schedule();
    return promise;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#pass());
  }

  #pass(): void {
    this.#scheduled = false;
    const now = this.#now();
    for (let granted = 0; granted < TURNS_PER_PASS && this.#head < this.#line.length;) {
      const waiting = this.#line[this.#head++];
      if (now - waiting.since > this.#busyAfterMs) {
        waiting.grant("busy");
      } else {
        waiting.grant("go");
        granted++;
      }
    }
    // drop the granted part of the line when it is all granted, or now and then
    if (this.#head === this.#line.length) {
      this.#line.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#line.length) {
      this.#line.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#head < this.#line.length) this.#schedule();
  }
}
