/**
 * How many connections one user may have served by this client at once: in all, and per
 * file. The listener already caps connections in all and per remote address before any TLS
 * work (lib/transport.ts); these caps apply once a ticket has said whose a connection is, so
 * one member cannot take this client's memory and leave none for the others.
 *
 * What a real downloader needs: a download opens at most one connection to each holder
 * (peer/download.ts dials an address once and not again while connected), a client runs at
 * most one download of a file (peer/file_sharing.ts refuses a second), and a finished
 * download lets go of holders that have the whole file. So a user holds here one connection
 * per file per device fetching it at that moment.
 *
 * Memory, worst case, of one connection served here (peer/connection.ts, lib/transport.ts):
 *
 * - 450 KiB unread bytes: node:tls stops reading at 256 KiB buffered, plus a chunk of at
 *   most 48 KiB that came as it stopped, and what the runtime's TLS socket had taken from
 *   the kernel by then, about 150 KiB (lib/transport.ts; before that stop was made on the
 *   TCP socket too, it took all there was);
 * - 128 KiB wire reader buffer: 64 KiB to start, doubled at most once (no message it takes
 *   is longer than 64 KiB, bitfields up to 64 KiB included: files up to 256 GiB);
 * - 1 MiB of pieces being sent: one run buffer of a whole piece (512 KiB), and its
 *   encrypted copy until the kernel takes it (the next run waits for that);
 * - under 100 KiB else: TLS state, up to 512 queued requests, up to 4 tickets being checked.
 *
 * `WORST_BYTES_PER_CONNECTION`, 1.75 MiB, so one user costs this client at most
 * `MAX_SERVED_PER_USER` x 1.75 MiB = 56 MiB, and one (user, file) 7 MiB. (Measured on
 * loopback, 256 served connections that each asked for two whole pieces and read nothing
 * grew a seeder by 0.6 MiB each: the kernel took the encrypted pieces, and nothing was left
 * unread.) A connection with no ticket yet holds no run buffer (under 0.7 MiB) and lasts at
 * most 10 s unless a ticket verifies.
 *
 * All connections together, served or not, are bounded by `MAX_PEER_CONNECTIONS` (256),
 * which the peer listener enforces from the TCP accept on (peer/client.ts): at most
 * 256 x 1.75 MiB = 448 MiB above the client's own (about 90 MiB), so under 576 MiB in all
 * whatever `ulimit -n` allows (the listener's descriptor cap alone, `connectionCap()`, was
 * up to 16,384 connections: 28 GiB).
 *
 * @module
 */

/**
 * Connections one user may have served here at once, over all files: 32 files fetched at
 * the same moment from this one holder, over all of the user's devices. A person does not
 * start that many; a script that starts more gets the rest as others finish (a refused
 * download asks again every half second).
 */
export const MAX_SERVED_PER_USER = 32;

/**
 * Connections one user may have served here at once for one file: one per device fetching
 * it (a client or two per person), with room for a connection being replaced while the old
 * one is still closing.
 */
export const MAX_SERVED_PER_USER_FILE = 4;

/** What one connection served here holds at most (see the module's notes). */
export const WORST_BYTES_PER_CONNECTION = 1.75 * 1024 * 1024;

/**
 * Connections the peer listener holds at once, in all states (TLS handshake, BitTorrent
 * handshake, ticket check, served). A seeder in a group-based swarm serves the members of
 * its groups: each member fetching a file holds one connection to it per holder (downloads
 * dial each holder once), so 256 is a group of 100 fetching two new files from this one
 * client at the same moment with room to spare; holders beyond a downloader's first 50 are
 * never dialled, and a popular file soon has more holders to spread over. The 257th is
 * closed as it comes, like the 129th from one address, and gets in once one ends.
 */
export const MAX_PEER_CONNECTIONS = 256;

/** Who holds a place, as the caps count it. */
interface Place {
  user: string;
  infoHashHex: string;
  userFile: string;
}

/** Told when a connection takes a place (it is served from now on) and when it gives it back. */
export interface ServingObserver {
  served(connection: object, user: string, infoHashHex: string): void;
  released(connection: object, user: string, infoHashHex: string): void;
}

/** Counts the connections served per user and per (user, file); refuses past the caps. */
export class ServingCaps {
  readonly #perUser = new Map<string, number>();
  readonly #perUserFile = new Map<string, number>();
  readonly #places = new Map<object, Place>();
  readonly #maxPerUser: number;
  readonly #maxPerUserFile: number;
  readonly #observer?: ServingObserver;

  constructor(
    options: { maxPerUser?: number; maxPerUserFile?: number; observer?: ServingObserver } = {},
  ) {
    this.#maxPerUser = options.maxPerUser ?? MAX_SERVED_PER_USER;
    this.#maxPerUserFile = options.maxPerUserFile ?? MAX_SERVED_PER_USER_FILE;
    this.#observer = options.observer;
  }

  /**
   * Takes a place for `connection`, served under a ticket of `user` for the file
   * `infoHashHex`: undefined when taken (or already held), else why it is refused.
   */
  admit(connection: object, user: string, infoHashHex: string): string | undefined {
    if (this.#places.has(connection)) return undefined;
    const userFile = `${user}\n${infoHashHex}`;
    const forUser = this.#perUser.get(user) ?? 0;
    const forFile = this.#perUserFile.get(userFile) ?? 0;
    if (forFile >= this.#maxPerUserFile) {
      return `${user} already has ${forFile} connections for this file here, the most one ` +
        `user may have`;
    }
    if (forUser >= this.#maxPerUser) {
      return `${user} already has ${forUser} connections here, the most one user may have`;
    }
    this.#perUser.set(user, forUser + 1);
    this.#perUserFile.set(userFile, forFile + 1);
    this.#places.set(connection, { user, infoHashHex, userFile });
    this.#observer?.served(connection, user, infoHashHex);
    return undefined;
  }

  /** Gives back the place of a connection that ended (nothing when it held none). */
  release(connection: object): void {
    const place = this.#places.get(connection);
    if (!place) return;
    this.#places.delete(connection);
    decrement(this.#perUser, place.user);
    decrement(this.#perUserFile, place.userFile);
    this.#observer?.released(connection, place.user, place.infoHashHex);
  }

  /** Connections served now, over every user. */
  get served(): number {
    return this.#places.size;
  }

  /** Connections served under `user`'s tickets now. */
  servedFor(user: string): number {
    return this.#perUser.get(user) ?? 0;
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
