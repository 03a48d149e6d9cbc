/**
 * Who is online holding what, right now: for each group and file, the connected clients that
 * serve it, complete (seeders) or partial (downloaders announcing their pieces). This is live
 * state only; it empties when a client disconnects or logs out, and starts empty on restart,
 * when clients reconnect and announce again.
 *
 * Only holders at a registered address are handed out (and counted): one whose serving
 * address the tracker verified (address_checks.ts). A user has one presence per address: a
 * client of the same user registering the same host:port replaces the one there before
 * (which is gone, or stale: both cannot serve there), while their devices at other addresses
 * stay apart. Downloaders get a random sample of holders, so every holder gets its share of
 * them however many there are and in whatever order they came.
 *
 * `PresenceBook` is what the handlers see; `Presence` below keeps it in this process's memory
 * (one tracker, the SQLite default, and each instance's own connections on PostgreSQL), and
 * `PostgresPresence` (postgres_presence.ts) shares it between instances on one database.
 * Reads that only concern this instance's own connections (`isRegistered`, `connectionsIn`)
 * answer at once; the others may take a round trip to the database.
 *
 * @module
 */

import type { PeerAddress, PeerEndpoint } from "../lib/protocol.ts";

/** One online client that holds (part of) a file. */
export interface Holder {
  connectionId: number;
  user: string;
  address: PeerEndpoint;
  complete: boolean;
}

function keyOf(group: string, infoHash: string): string {
  return `${group}\n${infoHash}`;
}

function addressKey(user: string, address: PeerAddress): string {
  // host names are case-blind (IPv6 hex too)
  return `${user}\n${address.host.toLowerCase()}\n${address.port}`;
}

/** A uniform random number in [0, 1) from the system's secure generator. */
function secureRandom(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
}

/**
 * Up to `limit` of `items`, chosen uniformly at random and in random order (a partial
 * Fisher-Yates shuffle of a copy; `random` gives numbers in [0, 1)).
 */
export function randomSample<T>(items: readonly T[], limit: number, random: () => number): T[] {
  const pool = [...items];
  const count = Math.min(limit, pool.length);
  for (let i = 0; i < count; i++) {
    const j = i + Math.min(pool.length - i - 1, Math.floor(random() * (pool.length - i)));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

/**
 * Who is online holding what, as the handlers use it. Writes of one connection take effect in
 * the order they are made; the release methods never fail (a shared presence logs what it
 * could not write). Holders handed out keep the
 * bounds above: a random sample of at most `limit`, only at registered addresses, one per user
 * and address.
 */
export interface PresenceBook {
  /** See `Presence.register`; returns the id of this instance's connection that lost it. */
  register(
    connectionId: number,
    user: string,
    address: PeerAddress,
  ): number | undefined | Promise<number | undefined>;
  /** True when holders of this instance's `connectionId` under `user` are handed out. */
  isRegistered(connectionId: number, user: string): boolean;
  hold(group: string, infoHash: string, holder: Holder): void | Promise<void>;
  /** `hold` of each of `files` by one holder: on a shared presence, one write for them all. */
  holdAll(
    files: readonly { group: string; infoHash: string }[],
    holder: Holder,
  ): void | Promise<void>;
  release(group: string, infoHash: string, connectionId: number): void | Promise<void>;
  releaseConnection(connectionId: number): void | Promise<void>;
  /** Every client of `user`, on every instance, stops holding in `group` (one file or all). */
  releaseUser(user: string, group: string, infoHash?: string): void | Promise<void>;
  heldElsewhere(
    user: string,
    group: string,
    infoHash: string,
    connectionId: number,
  ): boolean | Promise<boolean>;
  /** This instance's connections holding any file in `group`. */
  connectionsIn(group: string): Set<number>;
  /** Seeders handed out per info_hash, for one page of a group's files. */
  seedersOf(
    group: string,
    infoHashes: readonly string[],
  ): Map<string, number> | Promise<Map<string, number>>;
  handOut(
    group: string,
    infoHash: string,
    exclude: number,
    limit: number,
  ): Holder[] | Promise<Holder[]>;
  /**
   * Records that this instance's `connectionId` acts under the session stored as `digest`
   * (undefined: under none any more), for other instances to see it online; never fails. A
   * presence in memory has nothing to share: sessions.ts keeps its own connections.
   */
  actAs?(connectionId: number, digest: string | undefined): Promise<void>;
  /** Of `digests`, the sessions some live connection acts under, on any instance. */
  sessionsOnline?(digests: readonly string[]): Promise<Set<string>>;
  /** Stops timers and leaves the shared state (a shared presence); idempotent. */
  close?(): Promise<void>;
}

/** The live map of holders, indexed both ways so a disconnect costs only its own entries. */
export class Presence implements PresenceBook {
  readonly #holders = new Map<string, Map<number, Holder>>();
  readonly #keysByConnection = new Map<number, Set<string>>();
  /** Connections whose address is registered (verified), by user and address; and back. */
  readonly #registered = new Map<string, number>();
  readonly #registrations = new Map<number, { user: string; key: string }>();
  readonly #random: () => number;

  /** `random`: numbers in [0, 1) for sampling holders; default the secure generator. */
  constructor(options: { random?: () => number } = {}) {
    this.#random = options.random ?? secureRandom;
  }

  /**
   * Registers the verified serving `address` of `connectionId` for `user`: its holders are
   * handed out from now. Another connection of `user` registered at the same address loses
   * everything it held there; its id is returned (to be told), else undefined.
   */
  register(connectionId: number, user: string, address: PeerAddress): number | undefined {
    const key = addressKey(user, address);
    const current = this.#registrations.get(connectionId);
    if (current?.key === key) return undefined;
    if (current) this.#unregister(connectionId);
    const previous = this.#registered.get(key);
    if (previous !== undefined) this.releaseConnection(previous);
    this.#registered.set(key, connectionId);
    this.#registrations.set(connectionId, { user, key });
    return previous;
  }

  /** True when holders of `connectionId` under `user` are handed out. */
  isRegistered(connectionId: number, user: string): boolean {
    return this.#registrations.get(connectionId)?.user === user;
  }

  /** Records that a connection holds a file in a group (replacing what it said before). */
  hold(group: string, infoHash: string, holder: Holder): void {
    const key = keyOf(group, infoHash);
    let holders = this.#holders.get(key);
    if (!holders) this.#holders.set(key, holders = new Map());
    holders.set(holder.connectionId, holder);
    let keys = this.#keysByConnection.get(holder.connectionId);
    if (!keys) this.#keysByConnection.set(holder.connectionId, keys = new Set());
    keys.add(key);
  }

  /** `hold` of each of `files` by one holder. */
  holdAll(files: readonly { group: string; infoHash: string }[], holder: Holder): void {
    for (const file of files) this.hold(file.group, file.infoHash, holder);
  }

  /** A connection no longer holds a file in a group. */
  release(group: string, infoHash: string, connectionId: number): void {
    this.#releaseKey(keyOf(group, infoHash), connectionId);
  }

  /** Forgets everything a connection held, and its registration (it logged out or went away). */
  releaseConnection(connectionId: number): void {
    for (const key of this.#keysByConnection.get(connectionId) ?? []) {
      this.#releaseKey(key, connectionId);
    }
    this.#keysByConnection.delete(connectionId);
    this.#unregister(connectionId);
  }

  /** Forgets what any connection of `user` holds in `group`, optionally only one file. */
  releaseUser(user: string, group: string, infoHash?: string): void {
    const prefix = infoHash === undefined ? `${group}\n` : keyOf(group, infoHash);
    for (const [key, holders] of this.#holders) {
      if (infoHash === undefined ? !key.startsWith(prefix) : key !== prefix) continue;
      for (const holder of [...holders.values()]) {
        if (holder.user === user) this.#releaseKey(key, holder.connectionId);
      }
    }
  }

  /**
   * True when a connection of `user` other than `connectionId` holds the whole file (another
   * device of theirs, online; registered or not, since it is theirs either way).
   */
  heldElsewhere(user: string, group: string, infoHash: string, connectionId: number): boolean {
    for (const holder of this.#holders.get(keyOf(group, infoHash))?.values() ?? []) {
      if (holder.user === user && holder.complete && holder.connectionId !== connectionId) {
        return true;
      }
    }
    return false;
  }

  /** The connections holding any file in `group`. */
  connectionsIn(group: string): Set<number> {
    const ids = new Set<number>();
    const prefix = `${group}\n`;
    for (const [key, holders] of this.#holders) {
      if (!key.startsWith(prefix)) continue;
      for (const id of holders.keys()) ids.add(id);
    }
    return ids;
  }

  /** The online holders of a file in a group that are handed out (at a registered address). */
  holders(group: string, infoHash: string): Holder[] {
    return [...this.#holders.get(keyOf(group, infoHash))?.values() ?? []]
      .filter((holder) => this.isRegistered(holder.connectionId, holder.user));
  }

  /** How many of those have the whole file. */
  seeders(group: string, infoHash: string): number {
    return this.holders(group, infoHash).filter((holder) => holder.complete).length;
  }

  /** `seeders` for each of `infoHashes`. */
  seedersOf(group: string, infoHashes: readonly string[]): Map<string, number> {
    return new Map(infoHashes.map((hash) => [hash, this.seeders(group, hash)]));
  }

  /** The registered addresses, by connection, and every holding: to publish them again. */
  snapshot(): {
    registrations: { connectionId: number; user: string }[];
    holdings: { group: string; infoHash: string; holder: Holder }[];
  } {
    const registrations = [...this.#registrations].map(([connectionId, { user }]) => ({
      connectionId,
      user,
    }));
    const holdings: { group: string; infoHash: string; holder: Holder }[] = [];
    for (const [key, holders] of this.#holders) {
      const [group, infoHash] = key.split("\n");
      for (const holder of holders.values()) holdings.push({ group, infoHash, holder });
    }
    return { registrations, holdings };
  }

  /**
   * What a downloader gets: at most `limit` holders of the file other than connection
   * `exclude`, seeders first; each kind a uniform random sample in random order.
   */
  handOut(group: string, infoHash: string, exclude: number, limit: number): Holder[] {
    const others = this.holders(group, infoHash).filter((h) => h.connectionId !== exclude);
    const seeders = randomSample(others.filter((h) => h.complete), limit, this.#random);
    const partial = randomSample(
      others.filter((h) => !h.complete),
      limit - seeders.length,
      this.#random,
    );
    return [...seeders, ...partial];
  }

  #unregister(connectionId: number): void {
    const registration = this.#registrations.get(connectionId);
    if (!registration) return;
    this.#registrations.delete(connectionId);
    if (this.#registered.get(registration.key) === connectionId) {
      this.#registered.delete(registration.key);
    }
  }

  #releaseKey(key: string, connectionId: number): void {
    const holders = this.#holders.get(key);
    if (!holders?.delete(connectionId)) return;
    if (holders.size === 0) this.#holders.delete(key);
    this.#keysByConnection.get(connectionId)?.delete(key);
  }
}
