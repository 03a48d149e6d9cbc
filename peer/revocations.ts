/**
 * The revocations this client heard from the tracker: which (user, group) lost membership
 * and when (tracker clock). A serving peer refuses tickets of a revoked pair issued at or
 * before that moment, so a user who rejoins is served again with a fresh ticket.
 *
 * Bounded twice: an entry is forgotten once no ticket issued before it can still be honoured
 * (the longest lifetime plus twice the clock skew after it, by the local clock), and at most
 * `MAX_REVOCATIONS` entries are kept, the oldest going first.
 *
 * @module
 */

import { CLOCK_SKEW_MS, TICKET_LIFETIME_MS, type TicketClaims } from "../lib/ticket.ts";

/** Most revocations remembered at once. */
export const MAX_REVOCATIONS = 10_000;

/** After this long no ticket issued before a revocation verifies any more. */
export const REVOCATION_TTL_MS = TICKET_LIFETIME_MS + 2 * CLOCK_SKEW_MS;

function keyOf(user: string, group: string): string {
  return `${user}\n${group}`;
}

/**
 * A bounded map (user, group) -> revoked-at.
 *
 * @example
 * ```ts
 * const revocations = new RevocationList();
 * revocations.add("bob", "films", 1_000);
 * revocations.refuses({ user: "bob", group: "films", issuedAt: 900 }); // true
 * ```
 */
export class RevocationList {
  /** Insertion order is age order: a renewed entry is moved to the end. */
  readonly #entries = new Map<string, { at: number; heardAt: number }>();
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? MAX_REVOCATIONS;
  }

  /** Entries kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** Records that `user` left `group` at `at` (tracker clock); a later time wins. */
  add(user: string, group: string, at: number): void {
    this.prune();
    const key = keyOf(user, group);
    const previous = this.#entries.get(key);
    this.#entries.delete(key);
    this.#entries.set(key, { at: Math.max(at, previous?.at ?? at), heardAt: this.#now() });
    while (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** The revocation time of a pair, if it is revoked. */
  revokedAt(user: string, group: string): number | undefined {
    return this.#entries.get(keyOf(user, group))?.at;
  }

  /**
   * True when a ticket with these claims must be refused: its (user, group) was revoked and
   * it was not issued after that (a ticket without `issuedAt` counts as older).
   */
  refuses(claims: Pick<TicketClaims, "user" | "group" | "issuedAt">): boolean {
    const at = this.revokedAt(claims.user, claims.group);
    if (at === undefined) return false;
    return claims.issuedAt === undefined || claims.issuedAt <= at;
  }

  /** Forgets the entries no ticket can outlive any more. */
  prune(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (now - entry.heardAt <= REVOCATION_TTL_MS) break; // the rest are younger
      this.#entries.delete(key);
    }
  }
}
