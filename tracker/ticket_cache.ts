/**
 * Download tickets kept for reuse. The tracker signs a ticket for every `locate_file` and
 * `find_peers`, and a busy tracker is asked for the same (user, group, file, certificate) again
 * and again: each Ed25519 signature was ~8% of the main thread at 5,000 busy links. A ticket
 * signed a moment ago says the same thing, so it is handed out again for a short part of its
 * life instead of signing a new one.
 *
 * What keeps that safe:
 *
 * - A kept ticket is handed out only while it is younger than `reuseMs` (at most a tenth of
 *   its lifetime, and at most `MAX_TICKET_REUSE_MS`). A downloader renews its ticket when two
 *   thirds of the lifetime it reads in it have passed since it received it (peer/download.ts),
 *   so a ticket handed out that old still has more than a fifth of its life left at renewal.
 *   No ticket outlives what it was signed for: its expiry is in its signed claims.
 * - The caller checks membership before it asks for a ticket (as for a new one), and a leave
 *   drops every ticket kept for that user in that group (`revoked`): peers refuse tickets
 *   issued before a revocation, so a user who rejoins must get one signed after it.
 * - Only a tracker alone on its store keeps tickets (tracker/server.ts): it sees every leave
 *   as it happens. Instances sharing PostgreSQL hear of a leave elsewhere later, as an event;
 *   they sign every ticket.
 *
 * Memory: at most `maxKept` tickets (`MAX_KEPT_TICKETS`, about 600 bytes each with their key:
 * under 10 MiB), the oldest going first: those too old to hand out, and at the bound an
 * eighth of it at a time. A walk from the map's start passes every entry deleted there
 * since the table was last rebuilt (thousands, with tickets signed for many groups), so it
 * is taken only when something is due to go, not for every ticket signed.
 *
 * @module
 */

import type { TicketClaims } from "../lib/ticket.ts";

/** Tickets kept at most. */
export const MAX_KEPT_TICKETS = 16_384;

/** The longest a ticket is handed out again after it was signed. */
export const MAX_TICKET_REUSE_MS = 60_000;

/** The claims a ticket is asked for with (the signer stamps its times). */
export type TicketRequest = Omit<TicketClaims, "expiresAt" | "issuedAt">;

/** A signed ticket and when it was signed (ms, the signer's clock). */
export interface SignedTicket {
  ticket: string;
  issuedAt: number;
}

interface Kept extends SignedTicket {
  pair: string;
}

/** How long a ticket of `lifetimeMs` may be handed out again: a tenth of it, at most a minute. */
export function ticketReuseMs(lifetimeMs: number): number {
  return Math.min(MAX_TICKET_REUSE_MS, Math.floor(lifetimeMs / 10));
}

/**
 * Signed tickets by (user, group, info_hash, holder), reused while young.
 *
 * @example
 * ```ts
 * const cache = new TicketCache({ reuseMs: 60_000, sign: (claims) => signer.sign(claims) });
 * cache.issue({ user: "bob", group: "films", infoHash, holder }); // signed
 * cache.issue({ user: "bob", group: "films", infoHash, holder }); // the same ticket
 * cache.revoked("bob", "films"); // the next one is signed anew
 * ```
 */
export class TicketCache {
  readonly #sign: (claims: TicketRequest) => SignedTicket;
  readonly #now: () => number;
  readonly #reuseMs: number;
  readonly #maxKept: number;
  /** Insertion order is signing order: the oldest first. */
  readonly #kept = new Map<string, Kept>();
  /** The keys kept per (user, group), to drop them at a leave. */
  readonly #byPair = new Map<string, Set<string>>();
  /** When the oldest ticket kept (or one older) becomes too old to hand out. */
  #sweepAt = Infinity;

  constructor(options: {
    /** Signs a new ticket, stamped by the same clock as `now`. */
    sign: (claims: TicketRequest) => SignedTicket;
    /** How long after signing a ticket is handed out again; 0 keeps none. */
    reuseMs: number;
    /** Default `MAX_KEPT_TICKETS`. */
    maxKept?: number;
    /** Default `Date.now`, the signer's clock. */
    now?: () => number;
  }) {
    this.#sign = options.sign;
    this.#reuseMs = options.reuseMs;
    this.#maxKept = options.maxKept ?? MAX_KEPT_TICKETS;
    this.#now = options.now ?? Date.now;
  }

  /** Tickets kept. */
  get size(): number {
    return this.#kept.size;
  }

  /**
   * A ticket for these claims: one signed at most `reuseMs` ago, else a new one. The caller
   * has checked that the user is a member of the group.
   */
  issue(claims: TicketRequest): string {
    if (this.#reuseMs <= 0) return this.#sign(claims).ticket;
    const pair = `${claims.user}\n${claims.group}`;
    const key = `${pair}\n${claims.infoHash}\n${claims.holder ?? ""}`;
    const now = this.#now();
    const kept = this.#kept.get(key);
    if (kept !== undefined) {
      if (now - kept.issuedAt < this.#reuseMs && now >= kept.issuedAt) return kept.ticket;
      this.#drop(key, kept);
    }
    const signed = this.#sign(claims);
    this.#keep(key, { ticket: signed.ticket, issuedAt: signed.issuedAt, pair }, now);
    return signed.ticket;
  }

  /** `user` is out of `group` from now: no ticket kept for them there is handed out again. */
  revoked(user: string, group: string): void {
    const keys = this.#byPair.get(`${user}\n${group}`);
    if (keys === undefined) return;
    for (const key of keys) this.#kept.delete(key);
    this.#byPair.delete(`${user}\n${group}`);
  }

  #keep(key: string, entry: Kept, now: number): void {
    if (this.#kept.size >= this.#maxKept || now >= this.#sweepAt) this.#sweep(now);
    if (this.#kept.size === 0) this.#sweepAt = entry.issuedAt + this.#reuseMs;
    this.#kept.set(key, entry);
    let keys = this.#byPair.get(entry.pair);
    if (keys === undefined) this.#byPair.set(entry.pair, keys = new Set());
    keys.add(key);
  }

  /**
   * Drops the oldest tickets: those too old to hand out, and at the bound down to seven
   * eighths of it. Signing order is insertion order, so the first one kept is the oldest.
   */
  #sweep(now: number): void {
    const room = this.#kept.size >= this.#maxKept ? this.#maxKept - this.#maxKept / 8 : Infinity;
    this.#sweepAt = Infinity;
    for (const [key, kept] of this.#kept) {
      if (this.#kept.size < room && now - kept.issuedAt < this.#reuseMs) {
        this.#sweepAt = kept.issuedAt + this.#reuseMs;
        return;
      }
      this.#drop(key, kept);
    }
  }

  #drop(key: string, entry: Kept): void {
    this.#kept.delete(key);
    const keys = this.#byPair.get(entry.pair);
    keys?.delete(key);
    if (keys?.size === 0) this.#byPair.delete(entry.pair);
  }
}
