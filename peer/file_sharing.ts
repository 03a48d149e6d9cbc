/**
 * The files of one logged-in user on this client: what it shares (and serves), what it
 * downloads, and keeping the tracker told. It owns the torrent registry the peer listener
 * serves from; the session creates it at login and stops it at logout.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { stat } from "node:fs/promises";
import { errorMessage, TrackerUnavailableError, UserError } from "../lib/errors.ts";
import { hashFile, type HelperThread } from "../lib/hash.ts";
import { encodeInfo, infoHash, parseInfo, type TorrentInfo } from "../lib/metainfo.ts";
import {
  fileNameProblem,
  type FileSummary,
  MAX_RESTORE_REQUEST_BYTES,
  MAX_SHARES_PER_RESTORE,
  Refusal,
  type RequestType,
  type ResponseData,
  type RevokePush,
  type ShareRecord,
} from "../lib/protocol.ts";
import { type TicketClaims, TicketError, verifyTicket } from "../lib/ticket.ts";
import type { Security } from "../lib/transport.ts";
import { Bitfield } from "../lib/bitfield.ts";
import { MAX_FILE_BYTES, pieceCount } from "../lib/pieces.ts";
import type { Request } from "../lib/protocol.ts";
import type { PeerContext } from "./connection.ts";
import {
  Download,
  type DownloadActivity,
  type DownloadOptions,
  type DownloadState,
  type PeerContribution,
} from "./download.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { RevocationList } from "./revocations.ts";
import type { ServingCaps } from "./serving_caps.ts";
import { allPages, pagesOf } from "./pages.ts";
import { fetchInfo, shareInfoFields } from "./info_transfer.ts";
import { isInlineInfo } from "../lib/info_pages.ts";
import {
  MAX_UNFINISHED_DOWNLOADS,
  type PendingShares,
  type UnfinishedDownload,
  type UnfinishedDownloads,
} from "./state_dir.ts";
import { exists, PieceFile } from "./storage.ts";
import type { HeldTorrent, TorrentRegistry } from "./torrents.ts";

/** Sends a request to the tracker. */
export type TrackerRequest = <T extends RequestType>(
  type: T,
  params: Omit<Extract<Request, { type: T }>, "type">,
) => Promise<ResponseData[T]>;

/** Announcements about files, outside any command. */
export type FileEvent =
  | {
    event: "download_complete";
    group: string;
    name: string;
    path: string;
    size: number;
    sha1: string;
    seconds: number;
    peers: PeerContribution[];
  }
  | { event: "download_failed"; group: string; name: string; path: string; reason: string }
  | { event: "share_dropped"; group: string; name: string; path: string; reason: string }
  /**
   * At login: a share this client cannot serve (its file is gone or changed here) while
   * another client of the user still holds the file: the share stays, served from there.
   */
  | { event: "share_not_restored"; group: string; name: string; path: string; reason: string }
  /**
   * At login: shares not served here beyond the `MAX_RESTORE_WARNINGS` said one by one;
   * `dropped` of them ended (as `share_dropped`), the others are served by another client.
   */
  | { event: "more_shares_not_restored"; count: number; dropped: number }
  /** We stopped serving a connection because its user left the group (a tracker push). */
  | { event: "peer_revoked"; group: string; user: string; peer: string; name: string }
  /** A peer the tracker named failed to prove it is that peer (a relay, an impostor). */
  | { event: "peer_refused"; group: string; name: string; peer: string; reason: string }
  /** At login: an unfinished download taken up again (or kept paused). */
  | {
    event: "download_resumed";
    group: string;
    name: string;
    path: string;
    pieces_done: number;
    pieces_total: number;
    paused: boolean;
  }
  /**
   * At login: a remembered download not taken up again and forgotten (`group` and `name`
   * null when its file in the state directory could not be read: `file` names it).
   */
  | {
    event: "download_not_resumed";
    group: string | null;
    name: string | null;
    file: string | null;
    reason: string;
  };

/** One line of `show_downloads`. */
export interface DownloadStatus {
  group: string;
  name: string;
  state: DownloadState;
  pieces_done: number;
  pieces_total: number;
  path: string;
  /** Why it failed, or what it waits for. */
  reason: string;
  peers: PeerContribution[];
  /** Finer than `state`: downloading, waiting (for a peer), paused, complete or failed. */
  activity: DownloadActivity;
  /** Bytes of verified pieces; `bytes_total` once complete. */
  bytes_done: number;
  bytes_total: number;
  /** Bytes per second received and sent for this file over the last seconds (rate_window.ts). */
  down_bps: number;
  up_bps: number;
  /** Seconds left at the current rate: 0 once complete, null when unknown (no rate, failed). */
  eta_s: number | null;
  /** Peers this download is connected to now. */
  peers_connected: number;
  /** Seconds since it started, until it ended. */
  seconds: number;
}

/** What `download_file` and `resume_download` started. */
export interface DownloadStarted {
  group: string;
  name: string;
  path: string;
  /** Pieces found verified in the part file of an earlier attempt (0 without one). */
  pieces_done: number;
  pieces_total: number;
  /** True when a part file of an earlier attempt was there: its verified pieces are kept. */
  resumed: boolean;
}

/** A download's part file and how much of it is verified. */
export interface DownloadPart {
  group: string;
  name: string;
  path: string;
  /** The part file beside `path`. */
  part_path: string;
  pieces_done: number;
  pieces_total: number;
}

/** What `cancel_download` did: the part file (`part_path`) kept or deleted. */
export interface DownloadCancelled extends DownloadPart {
  part_kept: boolean;
}

/** One peer a file is sent to, in `show_uploads`. */
export interface UploadPeer {
  /** The user its ticket names. */
  user: string;
  /** ip:port of its peer listener when known, else of its socket. */
  address: string;
  /** The group its ticket is for. */
  group: string;
  /** Bytes sent on this connection, and the rate over the last seconds. */
  bytes_sent: number;
  up_bps: number;
}

/** One file this client serves, in `show_uploads`. */
export interface UploadStatus {
  /** The groups it is shared in (or downloaded from). */
  groups: string[];
  name: string;
  /** False while it is still being downloaded here (its verified pieces are served). */
  complete: boolean;
  /** Bytes sent to anyone since it was first served here, and the rate over the last seconds. */
  bytes_sent: number;
  up_bps: number;
  /** Peers served now (connections whose ticket verified), most sent first. */
  peers: UploadPeer[];
}

/**
 * Shares not served at login that are said one line each (`share_dropped`,
 * `share_not_restored`); the rest are counted in one `more_shares_not_restored`, so a device
 * that sees none of a user's paths (up to 1000 shares per group) does not flood its shell.
 */
export const MAX_RESTORE_WARNINGS = 20;

/**
 * Shared files held open from the moment they are shared: 1,000 (a client has 20,000
 * descriptors here and also needs them for connections); past that a file is opened when a
 * peer first asks for it.
 */
export const MAX_OPEN_SHARED_FILES = 1_000;

/** How often the rates of torrents and connections are sampled (rate_window.ts). */
const RATE_SAMPLE_MS = 1_000;

/** A share's info dictionary could not be had from the tracker at login: says nothing of the file. */
class InfoNotFetched extends UserError {
  override name = "InfoNotFetched";
}

/** A share as this client keeps it, enough to tell the tracker again after a restart. */
interface LocalShare {
  group: string;
  name: string;
  path: string;
  size: number;
  sha1: string;
  infoHashHex: string;
  infoBytes: Uint8Array;
  mtimeMs: number;
}

/** A share the tracker remembers, checked here and about to be served again. */
interface RestoringShare {
  record: ShareRecord;
  share: LocalShare;
  info: TorrentInfo;
}

/**
 * A `restore_shares` the tracker answers "busy" is asked again after these waits (ms), then
 * given up for `share_file` one by one: 200 requests to a tracker that is shedding load were
 * the worst answer to its being busy, and a login's restore is not in a hurry.
 */
export const RESTORE_BUSY_WAITS_MS = [500, 1_000, 2_000, 4_000];

/** The most bytes a share adds to a `restore_shares` request (JSON escapes a character in 6). */
function restoreRequestBytes(share: LocalShare): number {
  return 6 * (share.group.length + share.name.length + share.path.length) + 160;
}

/** How the file side of a session is wired. */
export interface FileSharingOptions {
  request: TrackerRequest;
  registry: TorrentRegistry;
  peerId: Uint8Array;
  listenPort: number;
  /** The tracker's key for checking tickets, from login. */
  ticketKey: CryptoKey;
  /** What this client presents on peer links. */
  security: Security;
  onEvent: (event: FileEvent) => void;
  log: (line: string) => void;
  stallTimeoutMs?: number;
  /** How long a peer may deliver nothing with requests of ours before it is dropped. */
  requestTimeoutMs?: number;
  /** How long past its expiry a peer's ticket is still honoured. Default `CLOCK_SKEW_MS`. */
  ticketGraceMs?: number;
  uploadLimiter?: RateLimiter;
  downloadLimiter?: RateLimiter;
  /** The client's hash helper thread, for hashing files on two cores from the start. */
  hashHelper?: HelperThread;
  /** The client's count of connections served per user, capped. */
  servingCaps?: ServingCaps;
  /**
   * Where shares the tracker has not acknowledged are kept (a download that completed while
   * it was away), so that the next login shares them even after this client stopped.
   */
  pendingShares?: PendingShares;
  /** Where unfinished downloads are remembered, to resume them at the next login. */
  unfinishedDownloads?: UnfinishedDownloads;
}

function shareKey(group: string, name: string): string {
  return `${group}\n${name}`;
}

/** The shares and downloads of the logged-in user on this client. */
export class FileSharing {
  readonly #options: FileSharingOptions;
  readonly #shares = new Map<string, LocalShare>();
  /** Shares kept in `pendingShares` until the tracker acknowledges them. */
  readonly #pending = new Set<string>();
  readonly #downloads: Download[] = [];
  readonly #revocations = new RevocationList();
  /** False once the tracker said it does not know `restore_shares` (it predates it). */
  #restoresInBatches = true;
  /** Shares told to the tracker, one after the other (their info pages must not interleave). */
  #infoTurn: Promise<unknown> = Promise.resolve();
  /** Writes to the remembered downloads, in order: the last one of a download wins. */
  #stateWrites: Promise<void> = Promise.resolve();
  readonly context: PeerContext;
  /** Samples every rate once a second while something is shared or downloaded. */
  #sampler?: ReturnType<typeof setInterval>;

  constructor(options: FileSharingOptions) {
    this.#options = options;
    this.context = {
      peerId: options.peerId,
      listenPort: options.listenPort,
      checkTicket: (ticket, torrent, holder) => this.#checkTicket(ticket, torrent, holder),
      security: options.security,
      ticketFor: (torrent) => this.#activeDownload(torrent.infoHashHex)?.ticket,
      log: options.log,
      uploadLimiter: options.uploadLimiter,
      downloadLimiter: options.downloadLimiter,
      ticketGraceMs: options.ticketGraceMs,
      servingCaps: options.servingCaps,
    };
  }

  async #checkTicket(
    ticket: string,
    torrent: HeldTorrent,
    holder: string | undefined,
  ): Promise<TicketClaims> {
    const claims: TicketClaims = await verifyTicket(ticket, this.#options.ticketKey, {
      infoHash: torrent.infoHashHex,
      holder: this.#options.security.mode === "tls" ? holder ?? "" : undefined,
      skewMs: this.#options.ticketGraceMs,
    });
    return checkClaims(claims, torrent, this.#revocations);
  }

  /**
   * The tracker says `user` is out of `group`: refuse their older tickets from now on and
   * close at once every connection served under one. Returns how many were closed.
   */
  revoked(push: RevokePush): number {
    this.#revocations.add(push.user, push.group, push.at);
    let closed = 0;
    for (const torrent of this.#options.registry.all()) {
      for (const connection of [...torrent.connections]) {
        const claims = connection.ticketClaims;
        if (!claims || !this.#revocations.refuses(claims)) continue;
        connection.close(`ticket revoked: ${push.user} left group "${push.group}"`);
        closed++;
        this.#options.onEvent({
          event: "peer_revoked",
          group: push.group,
          user: push.user,
          peer: connection.address,
          name: torrent.info.name,
        });
      }
    }
    return closed;
  }

  #activeDownload(infoHashHex: string): Download | undefined {
    return this.#downloads.find((download) =>
      download.state === "D" && !download.paused && download.infoHashHex === infoHashHex
    );
  }

  // Rates

  #startSampling(): void {
    this.#sampler ??= setInterval(() => this.#sampleRates(Date.now()), RATE_SAMPLE_MS);
  }

  /** One sample of every counter: a few numbers per torrent and connection, once a second. */
  #sampleRates(now: number): void {
    for (const torrent of this.#options.registry.all()) {
      torrent.rates.record(torrent, now);
      for (const connection of torrent.connections) connection.rates.record(connection, now);
    }
  }

  // Sharing

  /**
   * Hashes a file as a stream, shares it in `group`, and serves it. `onHashProgress` is told
   * the bytes hashed now and then while the hashing runs.
   */
  async upload(
    pathArgument: string,
    group: string,
    options: { onHashProgress?: (bytesHashed: number, bytesTotal: number) => void } = {},
  ): Promise<ResponseData["share_file"]> {
    const path = resolve(pathArgument);
    const before = await stat(path).catch(() => undefined);
    if (!before) throw new UserError(`cannot read "${pathArgument}": no such file`);
    if (!before.isFile()) throw new UserError(`"${pathArgument}" is not a regular file`);
    if (before.size > MAX_FILE_BYTES) {
      throw new UserError(
        `"${pathArgument}" is ${(before.size / 1024 ** 4).toFixed(2)} TiB: files of up to ` +
          `${MAX_FILE_BYTES / 1024 ** 4} TiB can be shared`,
      );
    }
    const name = basename(path);
    const problem = fileNameProblem(name);
    if (problem) throw new UserError(problem);
    // membership is checked while the (possibly long) hashing starts, which stops if it fails
    const membership = this.#options.request("check_member", { group });
    const hashing = new AbortController();
    membership.catch((error) => hashing.abort(error));
    let hashes;
    try {
      hashes = await hashFile(path, {
        helperThread: this.#options.hashHelper,
        signal: hashing.signal,
        onProgress: options.onHashProgress,
      });
    } catch (error) {
      await membership; // not being a member is what the user needs to hear first
      throw new UserError(`cannot read "${pathArgument}": ${errorMessage(error)}`);
    }
    await membership;
    const after = await stat(path);
    if (after.size !== hashes.length || after.mtimeMs !== before.mtimeMs) {
      throw new UserError(`"${pathArgument}" changed while it was being hashed; try again`);
    }
    const info: TorrentInfo = { name, length: hashes.length, pieceHashes: hashes.pieceHashes };
    const infoBytes = encodeInfo(info);
    const share: LocalShare = {
      group,
      name,
      path,
      size: hashes.length,
      sha1: hashes.sha1,
      infoHashHex: (await infoHash(infoBytes)).toHex(),
      infoBytes,
      mtimeMs: Math.trunc(after.mtimeMs),
    };
    return await this.#serveShare(share, info);
  }

  /** Serves a complete file locally, then tells the tracker; undoes the first if the second fails. */
  async #serveShare(share: LocalShare, info: TorrentInfo): Promise<ResponseData["share_file"]> {
    const added = await this.#serveLocally(share, info);
    try {
      const result = await this.#tellTracker(share, this.#options.request);
      this.#shares.set(shareKey(share.group, share.name), share);
      return result;
    } catch (error) {
      if (added) await this.#options.registry.remove(share.infoHashHex, share.group);
      throw error;
    }
  }

  /**
   * Serves a complete file here (before the tracker hands this client out for it). True when
   * it was not served in this group before: undone with `registry.remove` if the tracker
   * refuses it.
   */
  async #serveLocally(share: LocalShare, info: TorrentInfo): Promise<boolean> {
    const existing = this.#options.registry.get(share.infoHashHex);
    if (existing && !existing.have.isComplete) {
      throw new UserError(`"${share.name}" is still being downloaded on this client`);
    }
    const added = !existing || !existing.groups.has(share.group);
    this.#startSampling();
    if (!existing) {
      this.#options.registry.add({
        infoHash: Uint8Array.fromHex(share.infoHashHex),
        infoHashHex: share.infoHashHex,
        info,
        // the first files are opened now and served from their handles, even renamed; past
        // MAX_OPEN_SHARED_FILES each is opened at its first read (100,000 shares would pass
        // the process's descriptor limit)
        file: this.#options.registry.size < MAX_OPEN_SHARED_FILES
          ? await PieceFile.openForReading(share.path, share.size)
          : PieceFile.forReading(share.path, share.size),
        have: Bitfield.full(pieceCount(share.size)),
        groups: new Set([share.group]),
      });
    } else {
      existing.groups.add(share.group);
    }
    return added;
  }

  async #tellTracker(
    share: LocalShare,
    request: TrackerRequest,
  ): Promise<ResponseData["share_file"]> {
    const tell = async () =>
      await request("share_file", {
        group: share.group,
        name: share.name,
        size: share.size,
        sha1: share.sha1,
        ...await shareInfoFields(request, share.infoHashHex, share.infoBytes),
        path: share.path,
        mtime_ms: share.mtimeMs,
      });
    let result: ResponseData["share_file"];
    if (isInlineInfo(share.infoBytes.length)) {
      result = await tell();
    } else {
      // the tracker holds one paged dictionary per connection: one at a time sends its pages
      const turn = this.#infoTurn.then(tell);
      this.#infoTurn = turn.catch(() => {});
      result = await turn;
    }
    await this.#forgetPending(share.group, share.name);
    return result;
  }

  /**
   * Keeps a share the tracker could not be told of (it is away) until it is: the link tells
   * it when it is back, and a client stopped before then tells it at its next login.
   */
  async #keepPending(share: LocalShare): Promise<void> {
    this.#pending.add(shareKey(share.group, share.name));
    await this.#options.pendingShares?.add({
      group: share.group,
      name: share.name,
      size: share.size,
      sha1: share.sha1,
      info_hash: share.infoHashHex,
      info: share.infoBytes.toBase64(),
      path: share.path,
      mtime_ms: share.mtimeMs,
    }).catch((error) =>
      this.#options.log(`cannot keep the share of ${share.path}: ${errorMessage(error)}`)
    );
  }

  async #forgetPending(group: string, name: string): Promise<void> {
    if (!this.#pending.delete(shareKey(group, name))) return;
    await this.#options.pendingShares?.remove(group, name).catch(() => {});
  }

  /** The files of a group. */
  listFiles(group: string): Promise<FileSummary[]> {
    return allPages(
      (after) =>
        this.#options.request("list_files", after === undefined ? { group } : { group, after }),
      (file) => file.name,
      `list of files in group "${group}"`,
    );
  }

  /** The files of a group, a page at a time as the tracker sends them. */
  filePages(group: string): AsyncGenerator<FileSummary[]> {
    return pagesOf(
      (after) =>
        this.#options.request("list_files", after === undefined ? { group } : { group, after }),
      (file) => file.name,
      `list of files in group "${group}"`,
    );
  }

  /** Stops sharing a file in a group, here and on the tracker. */
  async stopShare(group: string, name: string): Promise<ResponseData["stop_share"]> {
    const result = await this.#options.request("stop_share", { group, name });
    await this.#forget(group, name);
    return result;
  }

  async #forget(group: string, name: string): Promise<void> {
    const share = this.#shares.get(shareKey(group, name));
    if (!share) return;
    this.#shares.delete(shareKey(group, name));
    await this.#forgetPending(group, name);
    await this.#options.registry.remove(share.infoHashHex, group);
  }

  /** The user left a group: stop everything of theirs there. */
  async leftGroup(group: string): Promise<void> {
    for (const share of [...this.#shares.values()]) {
      if (share.group === group) await this.#forget(group, share.name);
    }
    for (const download of this.#downloads) {
      if (download.group !== group || download.state !== "D") continue;
      await download.cancel(`left group "${group}"`);
      await this.#forgetUnfinished(download);
    }
  }

  /**
   * Serves again every share the tracker remembers for this user (and those it has not
   * acknowledged yet): a file whose size and mtime are unchanged is trusted; another is
   * hashed again. One whose content is not what was shared, or that is gone, is not served
   * here (with a warning); the share itself ends only when no other client of the user
   * holds the file (another device keeps seeding it). Returns how many are served; throws
   * `TrackerUnavailableError`, dropping nothing, when the tracker goes away meanwhile.
   */
  async restore(): Promise<number> {
    // page after page: all of a user's shares with their piece hashes may not fit one frame
    const records: ShareRecord[] = [];
    for (let page = await this.#options.request("my_shares", {}); page.length > 0;) {
      records.push(...page);
      const last = page.at(-1)!;
      page = await this.#options.request("my_shares", {
        after_group: last.group,
        after_name: last.name,
      });
    }
    // and those the tracker never heard of: shared with it afterwards, like an upload
    const known = new Set(records.map((record) => shareKey(record.group, record.name)));
    const unknown: ShareRecord[] = [];
    const pending = await this.#options.pendingShares?.list().catch((error) => {
      this.#options.log(`cannot read the shares kept for the tracker: ${errorMessage(error)}`);
      return [];
    }) ?? [];
    for (const record of pending) {
      const key = shareKey(record.group, record.name);
      this.#pending.add(key);
      if (known.has(key)) await this.#forgetPending(record.group, record.name);
      else unknown.push(record);
    }
    let restored = 0;
    let warned = 0;
    const unsaid = { count: 0, dropped: 0 };
    const failed = async (record: ShareRecord, error: unknown): Promise<void> => {
      // a tracker that went away says nothing about the file: it is restored next time
      if (error instanceof TrackerUnavailableError) throw error;
      // nor does a dictionary the tracker could not hand out whole (busy, or garbled): the
      // share stays, served again at the next login
      const kept = error instanceof InfoNotFetched || await this.#letGo(record);
      if (warned >= MAX_RESTORE_WARNINGS) {
        unsaid.count++;
        if (!kept) unsaid.dropped++;
        return;
      }
      warned++;
      this.#options.onEvent({
        event: kept ? "share_not_restored" : "share_dropped",
        group: record.group,
        name: record.name,
        path: record.path,
        reason: errorMessage(error),
      });
    };
    // the tracker is told in batches (restore_shares): one request per share made a login
    // with 100,000 shares wait minutes
    let batch: RestoringShare[] = [];
    let batchBytes = 0;
    for (const record of records) {
      let restoring: RestoringShare;
      try {
        restoring = await this.#checkRestored(record);
      } catch (error) {
        await failed(record, error);
        continue;
      }
      const bytes = restoreRequestBytes(restoring.share);
      if (
        batch.length === MAX_SHARES_PER_RESTORE ||
        (batch.length > 0 && batchBytes + bytes > MAX_RESTORE_REQUEST_BYTES)
      ) {
        restored += await this.#restoreBatch(batch, failed);
        batch = [];
        batchBytes = 0;
      }
      batch.push(restoring);
      batchBytes += bytes;
    }
    if (batch.length > 0) restored += await this.#restoreBatch(batch, failed);
    for (const record of unknown) {
      try {
        const restoring = await this.#checkRestored(record);
        await this.#serveShare(restoring.share, restoring.info);
        restored++;
      } catch (error) {
        await failed(record, error);
      }
    }
    if (unsaid.count > 0) this.#options.onEvent({ event: "more_shares_not_restored", ...unsaid });
    return restored;
  }

  /**
   * Serves a batch of the tracker's shares here and tells the tracker in one
   * `restore_shares`; a share it refuses (gone meanwhile, no longer a member) is told with
   * `share_file`, as every share is to a tracker that predates `restore_shares`. Returns how
   * many are served; `failed` hears of the others.
   */
  async #restoreBatch(
    batch: RestoringShare[],
    failed: (record: ShareRecord, error: unknown) => Promise<void>,
  ): Promise<number> {
    const added = new Set<RestoringShare>();
    const undo = async (restoring: RestoringShare) => {
      if (added.delete(restoring)) {
        await this.#options.registry.remove(restoring.share.infoHashHex, restoring.share.group);
      }
    };
    let restored = 0;
    try {
      const served: RestoringShare[] = [];
      for (const restoring of batch) {
        try {
          if (await this.#serveLocally(restoring.share, restoring.info)) added.add(restoring);
          served.push(restoring);
        } catch (error) {
          await failed(restoring.record, error);
        }
      }
      let refused: Set<string> | undefined;
      if (this.#restoresInBatches && served.length > 0) {
        const shares = served.map(({ share }) => ({
          group: share.group,
          name: share.name,
          info_hash: share.infoHashHex,
          path: share.path,
          mtime_ms: share.mtimeMs,
        }));
        for (let attempt = 0;; attempt++) {
          try {
            const reply = await this.#options.request("restore_shares", { shares });
            refused = new Set(reply.refused.map((share) => shareKey(share.group, share.name)));
            break;
          } catch (error) {
            if (error instanceof TrackerUnavailableError) throw error;
            const busy = error instanceof Refusal && error.code === "busy";
            if (busy && attempt < RESTORE_BUSY_WAITS_MS.length) {
              await new Promise((resolve) => setTimeout(resolve, RESTORE_BUSY_WAITS_MS[attempt]));
              continue;
            }
            // a tracker from before restore_shares does not know it: one share_file each
            if (error instanceof Refusal && error.code === "bad_request") {
              this.#restoresInBatches = false;
            }
            break;
          }
        }
      }
      for (const restoring of served) {
        const { share } = restoring;
        const key = shareKey(share.group, share.name);
        if (refused && !refused.has(key)) {
          added.delete(restoring);
          this.#shares.set(key, share);
          await this.#forgetPending(share.group, share.name);
          restored++;
          continue;
        }
        // share_file decides, as for a new share: the per-user limits, membership, conflicts
        try {
          await this.#tellTracker(share, this.#options.request);
          added.delete(restoring);
          this.#shares.set(key, share);
          restored++;
        } catch (error) {
          await undo(restoring);
          await failed(restoring.record, error);
        }
      }
    } finally {
      // a tracker gone away midway: what it was not told of is not served here
      for (const restoring of [...added]) await undo(restoring);
    }
    return restored;
  }

  /**
   * This client cannot serve a share: it stops holding it here, and the share ends unless
   * another client of the user holds the file. True when the tracker says it kept the share.
   */
  async #letGo(record: ShareRecord): Promise<boolean> {
    await this.#forgetPending(record.group, record.name);
    const outcome = await this.#options.request("stop_share", {
      group: record.group,
      name: record.name,
      keep_if_held: true,
    }).catch(() => undefined);
    return outcome?.kept === true;
  }

  /**
   * Reads a share's info dictionary from the tracker and checks the file is still what was
   * shared: unchanged in size and mtime (trusted), or hashed again to the same content.
   */
  async #checkRestored(record: ShareRecord): Promise<RestoringShare> {
    const infoBytes = await fetchInfo(this.#options.request, record).catch((error) => {
      if (error instanceof TrackerUnavailableError) throw error;
      throw new InfoNotFetched(errorMessage(error));
    });
    const info = parseInfo(infoBytes);
    const found = await stat(record.path).catch(() => undefined);
    if (!found?.isFile()) throw new UserError(`${record.path} is no longer there`);
    let mtimeMs = record.mtime_ms;
    if (found.size !== record.size || Math.trunc(found.mtimeMs) !== record.mtime_ms) {
      const hashes = await hashFile(record.path, { helperThread: this.#options.hashHelper });
      const rehashed = encodeInfo({
        ...info,
        length: hashes.length,
        pieceHashes: hashes.pieceHashes,
      });
      if ((await infoHash(rehashed)).toHex() !== record.info_hash || hashes.sha1 !== record.sha1) {
        throw new UserError(`${record.path} has changed since it was shared`);
      }
      mtimeMs = Math.trunc(found.mtimeMs);
    }
    return {
      record,
      info,
      share: {
        group: record.group,
        name: record.name,
        path: record.path,
        size: record.size,
        sha1: record.sha1,
        infoHashHex: record.info_hash,
        infoBytes,
        mtimeMs,
      },
    };
  }

  /** After a tracker restart: tell it again what this client holds. */
  async reannounce(request: TrackerRequest): Promise<void> {
    for (const share of this.#shares.values()) {
      await this.#tellTracker(share, request).catch(() => {});
    }
    for (const download of this.#downloads) {
      if (download.state !== "D" || download.paused) continue;
      await request("announce", {
        group: download.group,
        info_hash: download.infoHashHex,
        state: "downloading",
      })
        .catch(() => {});
    }
  }

  // Downloading

  /**
   * Starts a download in the background; resolves once it is running. A part file of an
   * earlier attempt keeps its verified pieces (`resumed`, `pieces_done`).
   */
  async download(group: string, name: string, destination: string): Promise<DownloadStarted> {
    const problem = fileNameProblem(name);
    if (problem) throw new UserError(problem);
    const directory = resolve(destination);
    const found = await stat(directory).catch(() => undefined);
    if (!found?.isDirectory()) {
      throw new UserError(`destination "${destination}" is not an existing directory`);
    }
    const path = join(directory, name);
    if (await exists(path)) throw new UserError(`"${path}" already exists; not overwriting it`);
    const paused = this.#downloads.find((download) =>
      download.paused && download.group === group && download.name === name
    );
    if (paused) {
      throw new UserError(
        `the download of "${name}" in group "${group}" is paused; ` +
          `resume_download ${group} ${name} continues it`,
      );
    }
    if (this.#downloads.some((download) => download.state === "D" && download.path === path)) {
      throw new UserError(`"${path}" is already being downloaded`);
    }
    const unfinished = this.#downloads.filter((download) => download.state === "D").length;
    if (unfinished >= MAX_UNFINISHED_DOWNLOADS) {
      throw new UserError(
        `${unfinished} downloads are unfinished on this client, the most it keeps; ` +
          `let one finish or cancel_download it first`,
      );
    }
    const download = await this.#startDownload(group, name, path, {
      shownDestination: destination,
    });
    return started(download);
  }

  /**
   * Asks the tracker where the file is and starts downloading it to `path` (or, `paused`,
   * only shows it as paused), in place of `replacing` or as a new entry, and remembers it.
   */
  async #startDownload(
    group: string,
    name: string,
    path: string,
    how: {
      shownDestination?: string;
      /** The file remembered: another under the same name now is not taken up. */
      infoHash?: string;
      paused?: boolean;
      piecesDoneHint?: number;
      replacing?: Download;
    } = {},
  ): Promise<Download> {
    const location = await this.#options.request("locate_file", { group, name });
    if (location.name !== name) {
      throw new UserError("the tracker's description of the file is inconsistent");
    }
    const infoBytes = await fetchInfo(this.#options.request, location);
    let info: TorrentInfo;
    try {
      info = parseInfo(infoBytes);
    } catch (error) {
      throw new UserError(`the tracker's info dictionary is not valid: ${errorMessage(error)}`);
    }
    const hash = await infoHash(infoBytes);
    if (info.length !== location.size || info.name !== name) {
      throw new UserError("the tracker's description of the file is inconsistent");
    }
    if (how.infoHash !== undefined && how.infoHash !== location.info_hash) {
      throw new UserError(
        `"${name}" in group "${group}" is another file now; download_file starts it again`,
      );
    }
    if (this.#options.registry.get(location.info_hash)) {
      throw new UserError(`this client already holds "${name}"`);
    }
    const options: DownloadOptions = {
      group,
      name,
      path,
      info,
      infoHash: hash,
      sha1: location.sha1,
      ticket: location.ticket,
      peers: location.peers,
      registry: this.#options.registry,
      context: this.context,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      throttled: () => this.#options.downloadLimiter?.saturated ?? false,
      piecesDoneHint: how.piecesDoneHint,
      onPeerRefused: (refused, peer, reason) =>
        this.#options.onEvent({
          event: "peer_refused",
          group: refused.group,
          name: refused.name,
          peer,
          reason,
        }),
      tracker: {
        findPeers: async (group, infoHashHex) => {
          const { peers, ticket } = await this.#options.request("find_peers", {
            group,
            info_hash: infoHashHex,
          });
          return { peers, ticket };
        },
        announce: async (group, infoHashHex, state) => {
          const reply = await this.#options.request("announce", {
            group,
            info_hash: infoHashHex,
            state,
          });
          return reply?.peers ?? [];
        },
        shareCompleted: async (done, mtimeMs) => {
          const share: LocalShare = {
            group: done.group,
            name: done.name,
            path: done.path,
            size: done.info.length,
            sha1: done.sha1,
            infoHashHex: done.infoHashHex,
            infoBytes,
            mtimeMs: Math.trunc(mtimeMs),
          };
          this.#shares.set(shareKey(share.group, share.name), share);
          try {
            await this.#tellTracker(share, this.#options.request);
          } catch (error) {
            if (error instanceof TrackerUnavailableError) await this.#keepPending(share);
            throw error;
          }
        },
      },
      onFinish: (done) => this.#announceFinish(done),
    };
    let download: Download;
    this.#startSampling();
    if (how.paused) {
      download = Download.paused(options);
    } else {
      download = new Download(options);
      try {
        await download.start();
      } catch (error) {
        const where = how.shownDestination ?? dirname(path);
        throw new UserError(`cannot write into "${where}": ${errorMessage(error)}`);
      }
    }
    // queued before anything the download can finish with (its end waits on its writer)
    this.#rememberUnfinished(download);
    const at = how.replacing ? this.#downloads.indexOf(how.replacing) : -1;
    if (at >= 0) this.#downloads[at] = download;
    else this.#downloads.push(download);
    return download;
  }

  /**
   * Takes up again, at login, the downloads this user left unfinished on this client (the
   * last run stopped, was killed, or logged out): each goes on from its part file's verified
   * pieces, or stays paused if it was. A download that cannot go on (its file is gone from
   * the group, its directory is gone) is said and forgotten; so is a remembered file that
   * cannot be trusted. Returns how many were taken up; throws `TrackerUnavailableError`,
   * forgetting nothing, when the tracker goes away meanwhile.
   */
  async resumeUnfinished(): Promise<number> {
    const remembered = this.#options.unfinishedDownloads;
    if (!remembered) return 0;
    const { downloads, problems } = await remembered.list().catch((error) => {
      this.#options.log(`cannot read the unfinished downloads: ${errorMessage(error)}`);
      return { downloads: [], problems: [] };
    });
    for (const { file, reason } of problems) {
      this.#options.onEvent({
        event: "download_not_resumed",
        group: null,
        name: null,
        file,
        reason,
      });
    }
    let resumed = 0;
    for (const saved of downloads) {
      try {
        const download = await this.#resumeOne(saved);
        resumed++;
        this.#options.onEvent({
          event: "download_resumed",
          group: download.group,
          name: download.name,
          path: download.path,
          pieces_done: download.piecesDone,
          pieces_total: download.piecesTotal,
          paused: download.paused,
        });
      } catch (error) {
        if (error instanceof TrackerUnavailableError) throw error;
        // the file or the membership is gone, or the disk says no: forgotten; a tracker that
        // is busy or ending the session says nothing about it: tried again next login
        const definite = !(error instanceof Refusal) || error.code === "not_found" ||
          error.code === "forbidden";
        if (definite) await this.#forgetUnfinished(saved);
        this.#options.onEvent({
          event: "download_not_resumed",
          group: saved.group,
          name: saved.name,
          file: null,
          reason: errorMessage(error),
        });
      }
    }
    return resumed;
  }

  async #resumeOne(saved: UnfinishedDownload): Promise<Download> {
    const directory = dirname(saved.path);
    const found = await stat(directory).catch(() => undefined);
    if (!found?.isDirectory()) throw new UserError(`${directory} is no longer a directory`);
    if (await exists(saved.path)) throw new UserError(`"${saved.path}" already exists`);
    if (
      this.#downloads.some((download) => download.state === "D" && download.path === saved.path)
    ) {
      throw new UserError(`"${saved.path}" is already being downloaded`);
    }
    return await this.#startDownload(saved.group, saved.name, saved.path, {
      infoHash: saved.info_hash,
      paused: saved.paused,
      piecesDoneHint: saved.pieces_done,
    });
  }

  /** The download of `name` in `group` to act on: an unfinished one first, the newest. */
  #findDownload(group: string, name: string): Download {
    const matching = this.#downloads.filter((download) =>
      download.group === group && download.name === name
    );
    const found = matching.findLast((download) => download.state === "D") ?? matching.at(-1);
    if (!found) throw new UserError(`no download of "${name}" in group "${group}"`);
    return found;
  }

  /** Says why a download that is over cannot be paused or resumed. */
  #overError(download: Download): UserError {
    const what = `the download of "${download.name}" in group "${download.group}"`;
    return download.state === "C" ? new UserError(`${what} is complete`) : new UserError(
      `${what} failed (${download.reason}); download_file ${download.group} ` +
        `${download.name} <destination_path> starts it again`,
    );
  }

  /** Pauses a running download: it keeps its verified pieces and stays paused after a restart. */
  async pauseDownload(group: string, name: string): Promise<DownloadStatus> {
    const download = this.#findDownload(group, name);
    if (download.state !== "D") throw this.#overError(download);
    if (download.paused) {
      throw new UserError(`the download of "${name}" in group "${group}" is already paused`);
    }
    if (!await download.pause()) {
      throw new UserError(
        `the download of "${name}" in group "${group}" is finishing; it cannot be paused`,
      );
    }
    await this.#rememberUnfinished(download);
    return statusOf(download);
  }

  /** Resumes a paused download from its part file's verified pieces. */
  async resumeDownload(group: string, name: string): Promise<DownloadStarted> {
    const download = this.#findDownload(group, name);
    if (download.state !== "D") throw this.#overError(download);
    if (!download.paused) {
      throw new UserError(`the download of "${name}" in group "${group}" is not paused`);
    }
    const resumed = await this.#startDownload(group, name, download.path, {
      infoHash: download.infoHashHex,
      replacing: download,
    });
    return started(resumed);
  }

  /**
   * The part file a `cancelDownload` of the same download would keep or delete, and how much
   * of it is verified now: what a person is asked about before it is cancelled. Throws as
   * `cancelDownload` would (no such download, or a complete one).
   */
  partToCancel(group: string, name: string): DownloadPart {
    const download = this.#findDownload(group, name);
    if (download.state === "C") throw this.#overError(download);
    return {
      group,
      name,
      path: download.path,
      part_path: download.partPath,
      pieces_done: download.piecesDone,
      pieces_total: download.piecesTotal,
    };
  }

  /**
   * Stops a download (running, paused or failed) and forgets it; its part file is kept for a
   * later `download_file`, or deleted.
   */
  async cancelDownload(group: string, name: string, keepPart: boolean): Promise<DownloadCancelled> {
    const download = this.#findDownload(group, name);
    if (download.state === "C") throw this.#overError(download);
    await download.cancel("cancelled");
    const at = this.#downloads.indexOf(download);
    if (at >= 0) this.#downloads.splice(at, 1);
    await this.#forgetUnfinished(download);
    if (!keepPart) {
      await Deno.remove(download.partPath).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return;
        throw new UserError(`cannot delete ${download.partPath}: ${errorMessage(error)}`);
      });
    }
    return {
      group,
      name,
      path: download.path,
      part_path: download.partPath,
      part_kept: keepPart,
      pieces_done: download.piecesDone,
      pieces_total: download.piecesTotal,
    };
  }

  /** Remembers an unfinished download as it is now (paused or not); a failure is logged. */
  #rememberUnfinished(download: Download): Promise<void> {
    const remembered = this.#options.unfinishedDownloads;
    if (!remembered) return Promise.resolve();
    const record: UnfinishedDownload = {
      group: download.group,
      name: download.name,
      path: download.path,
      info_hash: download.infoHashHex,
      paused: download.paused,
      pieces_done: download.piecesDone,
    };
    return this.#queueStateWrite(() => remembered.put(record), download);
  }

  /** Forgets a download: finished, failed or cancelled, it is not resumed at the next login. */
  #forgetUnfinished(download: { group: string; name: string }): Promise<void> {
    const remembered = this.#options.unfinishedDownloads;
    if (!remembered) return Promise.resolve();
    return this.#queueStateWrite(() => remembered.remove(download.group, download.name), download);
  }

  #queueStateWrite(
    write: () => Promise<void>,
    download: { group: string; name: string },
  ): Promise<void> {
    this.#stateWrites = this.#stateWrites.then(write).catch((error) =>
      this.#options.log(
        `cannot remember the download of "${download.name}" in group "${download.group}": ` +
          errorMessage(error),
      )
    );
    return this.#stateWrites;
  }

  #announceFinish(download: Download): void {
    // complete or failed: nothing to take up at the next login
    this.#forgetUnfinished(download);
    if (download.state === "C") {
      this.#options.onEvent({
        event: "download_complete",
        group: download.group,
        name: download.name,
        path: download.path,
        size: download.info.length,
        sha1: download.sha1,
        seconds: ((download.finishedAt ?? Date.now()) - download.startedAt) / 1000,
        peers: download.contributions(),
      });
    } else {
      this.#options.onEvent({
        event: "download_failed",
        group: download.group,
        name: download.name,
        path: download.path,
        reason: download.reason,
      });
    }
  }

  /** Every download of this session, oldest first. */
  downloads(): DownloadStatus[] {
    const now = Date.now();
    return this.#downloads.map((download) => statusOf(download, now));
  }

  /** Every file this client serves and who it is sent to now, files by name. */
  uploads(): UploadStatus[] {
    const now = Date.now();
    return this.#options.registry.all().map((torrent) => {
      const peers: UploadPeer[] = [];
      for (const connection of torrent.connections) {
        const claims = connection.ticketClaims;
        if (!claims) continue; // not served: a holder we download from
        peers.push({
          user: claims.user,
          address: connection.address,
          group: claims.group,
          bytes_sent: connection.bytesServed,
          up_bps: Math.round(connection.rates.up.bytesPerSecond(connection.bytesServed, now)),
        });
      }
      peers.sort((a, b) => b.bytes_sent - a.bytes_sent || a.address.localeCompare(b.address));
      return {
        groups: [...torrent.groups].sort(),
        name: torrent.info.name,
        complete: torrent.have.isComplete,
        bytes_sent: torrent.bytesServed,
        up_bps: Math.round(torrent.rates.up.bytesPerSecond(torrent.bytesServed, now)),
        peers,
      };
    }).sort((a, b) =>
      a.name.localeCompare(b.name) || a.groups.join().localeCompare(b.groups.join())
    );
  }

  /**
   * Logout: cancel downloads (keeping their verified pieces, and remembered, so the next
   * login takes them up again) and stop serving everything.
   */
  async stop(): Promise<void> {
    clearInterval(this.#sampler);
    this.#sampler = undefined;
    for (const download of this.#downloads) await download.cancel("cancelled by logout");
    for (const torrent of this.#options.registry.all()) {
      await this.#options.registry.remove(torrent.infoHashHex);
    }
    this.#shares.clear();
    await this.#stateWrites;
  }
}

/** A download as `show_downloads` lists it. */
function statusOf(download: Download, now = Date.now()): DownloadStatus {
  const torrent = download.torrent;
  // a failed download's torrent is no longer sampled nor served: it moves nothing
  const rates = torrent && download.state !== "F"
    ? torrent.rates.read(torrent, now)
    : { down: 0, up: 0 };
  // paused or waiting for a peer, nothing comes in, whatever the last seconds saw
  const down = download.activity === "downloading" ? Math.round(rates.down) : 0;
  const bytesTotal = download.info.length;
  const bytesDone = download.state === "C" ? bytesTotal : download.bytesDone;
  return {
    group: download.group,
    name: download.name,
    state: download.state,
    pieces_done: download.piecesDone,
    pieces_total: download.piecesTotal,
    path: download.path,
    reason: download.reason,
    peers: download.contributions(),
    activity: download.activity,
    bytes_done: bytesDone,
    bytes_total: bytesTotal,
    down_bps: down,
    up_bps: Math.round(rates.up),
    eta_s: download.state === "C"
      ? 0
      : download.state === "D" && down > 0
      ? Math.ceil((bytesTotal - bytesDone) / down)
      : null,
    peers_connected: download.peersConnected,
    seconds: ((download.finishedAt ?? now) - download.startedAt) / 1000,
  };
}

function started(download: Download): DownloadStarted {
  return {
    group: download.group,
    name: download.name,
    path: download.path,
    pieces_done: download.piecesDone,
    pieces_total: download.piecesTotal,
    resumed: download.partFound,
  };
}

/**
 * What a verified ticket must also satisfy here: the file is shared in its group, and its
 * (user, group) has not been revoked since it was issued. Returns the claims; throws
 * `TicketError` naming the problem.
 */
export function checkClaims(
  claims: TicketClaims,
  torrent: Pick<HeldTorrent, "groups">,
  revocations: RevocationList,
): TicketClaims {
  if (!torrent.groups.has(claims.group)) {
    throw new TicketError(`ticket is for group "${claims.group}", where this file is not shared`);
  }
  if (revocations.refuses(claims)) {
    throw new TicketError(
      `ticket of ${claims.user} was revoked: they left group "${claims.group}"`,
    );
  }
  return claims;
}
