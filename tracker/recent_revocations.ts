/**
 * The revocations of the last minutes, by group, for holders that come online. A holder
 * whose link was down when a member left (the tracker restarted, its network dropped, its
 * push queue overflowed) never heard of it, and would serve the leaver on an older ticket
 * until that ticket ran out. So when a connection starts holding files in a group, the
 * group's recent revocations are pushed to it first (tracker/events.ts `replayRevocations`).
 *
 * Only revocations that an honoured ticket can still predate matter: tickets live at most
 * `TICKET_LIFETIME_MS`, clocks may differ by `CLOCK_SKEW_MS` either way, so each is kept
 * `REVOCATION_REPLAY_MS` by this tracker's clock.
 *
 * Memory: at most `MAX_RECENT_REVOCATIONS` kept (a few hundred bytes each, under 4 MiB), the
 * oldest going first, and a group's newest `MAX_REPLAYED_PER_GROUP` (what a replay sends: a
 * client's push queue holds 256, see `ClientEvents.replayRevocations`), so a few busy groups
 * cannot push the others' out.
 *
 * @module
 */

import { CLOCK_SKEW_MS, TICKET_LIFETIME_MS } from "../lib/ticket.ts";

/** How long a revocation is replayed: no ticket issued before it verifies after that. */
export const REVOCATION_REPLAY_MS = TICKET_LIFETIME_MS + 2 * CLOCK_SKEW_MS;

/** Revocations kept at most, all groups together. */
export const MAX_RECENT_REVOCATIONS = 10_000;

/** Revocations replayed at most for one group, the newest. */
export const MAX_REPLAYED_PER_GROUP = 64;

/** One revocation: `user` out of `group` at `at` (tracker clock, ms). */
export interface Revocation {
  user: string;
  group: string;
  at: number;
}

/** Recent revocations by group, oldest first. */
export class RecentRevocations {
  /** By `group\nuser`, in the order recorded: the oldest first. */
  readonly #entries = new Map<string, Revocation>();
  readonly #byGroup = new Map<string, Set<string>>();
  readonly #now: () => number;
  readonly #maxKept: number;

  constructor(options: { now?: () => number; maxKept?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxKept = options.maxKept ?? MAX_RECENT_REVOCATIONS;
  }

  /** Revocations kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** Records a revocation (again: the later time wins, and it counts as the newest). */
  add(revocation: Revocation): void {
    this.#prune();
    const key = `${revocation.group}\n${revocation.user}`;
    const previous = this.#entries.get(key);
    if (previous) this.#drop(key, previous);
    this.#entries.set(key, { ...revocation, at: Math.max(revocation.at, previous?.at ?? 0) });
    let keys = this.#byGroup.get(revocation.group);
    if (!keys) this.#byGroup.set(revocation.group, keys = new Set());
    keys.add(key);
    if (keys.size > MAX_REPLAYED_PER_GROUP) {
      const oldest = keys.values().next().value!;
      this.#drop(oldest, this.#entries.get(oldest)!);
    }
    while (this.#entries.size > this.#maxKept) {
      const [oldest, entry] = this.#entries.entries().next().value!;
      this.#drop(oldest, entry);
    }
  }

  /** The group's revocations still worth replaying, the newest `MAX_REPLAYED_PER_GROUP`. */
  inGroup(group: string): Revocation[] {
    this.#prune();
    const keys = this.#byGroup.get(group);
    if (!keys) return [];
    return [...keys].map((key) => this.#entries.get(key)!);
  }

  /** Forgets the revocations older than `REVOCATION_REPLAY_MS`, from the oldest. */
  #prune(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (now - entry.at < REVOCATION_REPLAY_MS) return;
      this.#drop(key, entry);
    }
  }

  #drop(key: string, entry: Revocation): void {
    this.#entries.delete(key);
    const keys = this.#byGroup.get(entry.group);
    keys?.delete(key);
    if (keys?.size === 0) this.#byGroup.delete(entry.group);
  }
}
