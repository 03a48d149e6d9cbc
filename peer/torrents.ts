/**
 * What this client holds and may serve: one entry per info_hash, complete (shared or
 * downloaded) or partial (downloading), with its open file, the pieces present, and the
 * groups it is shared in (a ticket must name one of them). Incoming connections find their
 * torrent here; a running download plugs in as the torrent's `sink`.
 *
 * @module
 */

import type { FirstCopies } from "./first_copies.ts";
import type { Bitfield } from "../lib/bitfield.ts";
import type { TorrentInfo } from "../lib/metainfo.ts";
import type { TicketClaims } from "../lib/ticket.ts";
import { TransferRates } from "./rate_window.ts";
import type { PieceFile } from "./storage.ts";

/** Receives what connections learn about a torrent that is being downloaded. */
export interface PieceSink {
  /** A connection knows the remote's pieces and may be asked for blocks. */
  peerReady(peer: PeerHandle): void;
  peerHas(peer: PeerHandle, index: number): void;
  /** The remote no longer offers a piece (BEP 54 `lt_donthave`). */
  peerLost(peer: PeerHandle, index: number): void;
  peerUnchoked(peer: PeerHandle): void;
  peerChoked(peer: PeerHandle): void;
  /** A block arrived; `block` is only valid during the call. */
  blockArrived(peer: PeerHandle, index: number, begin: number, block: Uint8Array): void;
  peerLeft(peer: PeerHandle): void;
}

/** What a download may do with a connection. */
export interface PeerHandle {
  /** ip:port of the remote's peer listener when known, else of the socket. */
  readonly address: string;
  /** True when we opened the connection (lib/transport.ts: our side reads with Deno's TLS). */
  readonly isOutgoing: boolean;
  readonly pieces: Bitfield;
  readonly isChokingUs: boolean;
  sendInterested(interested: boolean): void;
  sendRequests(requests: readonly { index: number; begin: number; length: number }[]): void;
  sendCancel(index: number, begin: number, length: number): void;
  /** Ends the connection (a protocol breach or a bad piece). */
  close(reason: string): void;
  /** Hands the remote a fresher ticket of ours. */
  sendTicket(ticket: string): void;
}

/** An open connection on a torrent, as the client around it sees it. */
export interface ServedConnection {
  /** ip:port of the remote. */
  readonly address: string;
  /** The verified claims of the ticket the remote is served under, if it is. */
  readonly ticketClaims?: TicketClaims;
  /** Bytes of piece data received from the remote and sent to it on this connection. */
  readonly bytesReceived: number;
  readonly bytesServed: number;
  /** Its rates, sampled once a second. */
  readonly rates: TransferRates;
  close(reason: string): void;
  /** Hands the remote a fresher ticket of ours. */
  sendTicket(ticket: string): void;
}

/** One torrent this client holds. */
export interface HeldTorrent {
  readonly infoHash: Uint8Array;
  readonly infoHashHex: string;
  readonly info: TorrentInfo;
  file: PieceFile;
  readonly have: Bitfield;
  /** Groups it is shared in (or downloaded from); a ticket must name one. */
  readonly groups: Set<string>;
  /** Set while a download of it runs on this client. */
  sink?: PieceSink;
  /** Called with each newly verified piece, so connections can send `have`. */
  readonly haveListeners: Set<(index: number) => void>;
  /** Connections open on it, closed when it stops being served. */
  readonly connections: Set<ServedConnection>;
  /** Under an upload limit, which connection gets each piece's first copy (made on first use). */
  firstCopies?: FirstCopies;
  /** Bytes of piece data received and sent for it over all its connections, past and present. */
  bytesReceived: number;
  bytesServed: number;
  /** Its rates, sampled once a second. */
  readonly rates: TransferRates;
}

/** What a caller gives to `TorrentRegistry.add`; the registry adds the rest. */
export type NewTorrent = Omit<
  HeldTorrent,
  "haveListeners" | "connections" | "bytesReceived" | "bytesServed" | "rates"
>;

/** Every torrent this client holds, by info_hash (hex). */
export class TorrentRegistry {
  readonly #torrents = new Map<string, HeldTorrent>();

  get(infoHashHex: string): HeldTorrent | undefined {
    return this.#torrents.get(infoHashHex);
  }

  /** Adds a torrent, or the group to one already held. Returns the held entry. */
  add(torrent: NewTorrent): HeldTorrent {
    const existing = this.#torrents.get(torrent.infoHashHex);
    if (existing) {
      for (const group of torrent.groups) existing.groups.add(group);
      return existing;
    }
    const held: HeldTorrent = {
      ...torrent,
      haveListeners: new Set(),
      connections: new Set(),
      bytesReceived: 0,
      bytesServed: 0,
      rates: new TransferRates(),
    };
    this.#torrents.set(held.infoHashHex, held);
    return held;
  }

  /** Records a newly verified piece and tells the connections. */
  pieceAdded(torrent: HeldTorrent, index: number): void {
    if (!torrent.have.add(index)) return;
    for (const listener of torrent.haveListeners) listener(index);
  }

  /**
   * Stops serving a torrent in one group (or all): when no group is left it is dropped, its
   * connections closed and its file closed.
   */
  async remove(infoHashHex: string, group?: string): Promise<void> {
    const torrent = this.#torrents.get(infoHashHex);
    if (!torrent) return;
    if (group !== undefined) torrent.groups.delete(group);
    if (group !== undefined && torrent.groups.size > 0) return;
    this.#torrents.delete(infoHashHex);
    for (const connection of [...torrent.connections]) connection.close("no longer shared");
    if (!torrent.sink) await torrent.file.close();
  }

  /** Every torrent held, for listing and logout. */
  all(): HeldTorrent[] {
    return [...this.#torrents.values()];
  }

  /** How many torrents are held. */
  get size(): number {
    return this.#torrents.size;
  }
}
