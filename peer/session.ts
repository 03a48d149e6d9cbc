/**
 * The user's side of the tracker conversation: who is logged in on this client, the session
 * token that lets the link resume after a tracker restart, one method per command, and the
 * user's files (shares and downloads) while logged in. The tracker decides every access
 * question; this class keeps state.
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import { HelperThread } from "../lib/hash.ts";
import type {
  AddressCheckPush,
  FileSummary,
  NoticeKind,
  NoticePush,
  Request,
  RequestType,
  ResponseData,
} from "../lib/protocol.ts";
import { hostPort } from "../lib/transport.ts";
import { importPublicKey } from "../lib/ticket.ts";
import { PeerConnection, type PeerContext } from "./connection.ts";
import {
  type DownloadCancelled,
  type DownloadPart,
  type DownloadStarted,
  type DownloadStatus,
  type FileEvent,
  FileSharing,
  type TrackerRequest,
  type UploadStatus,
} from "./file_sharing.ts";
import { NoticeLimit } from "./notice_limit.ts";
import { allPages, pagesOf } from "./pages.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { ServingCaps, type ServingObserver } from "./serving_caps.ts";
import type { PendingShares, UnfinishedDownloads } from "./state_dir.ts";
import { TorrentRegistry } from "./torrents.ts";
import { TrackerLink, type TrackerLinkOptions, TrackerRefusal } from "./tracker_link.ts";

/** Something the session announces on its own, outside any command. */
export type SessionEvent =
  /**
   * `address`: the tracker lost; `retry_max_ms`: the longest pause between tries; `trying`
   * (only with `--tracker`): every tracker tried in turn.
   */
  | {
    event: "tracker_disconnected";
    reason: string;
    address: string;
    retry_max_ms: number;
    trying?: string[];
  }
  | { event: "tracker_reconnected"; user: string | null }
  /**
   * The tracker in use (`from`) failed and another instance of the deployment (`to`) is used
   * now, the session resumed on it (`user`). Also ends an outage said before.
   */
  | { event: "tracker_switched"; from: string; to: string; reason: string; user: string | null }
  | { event: "session_expired"; user: string }
  /** The tracker is not who it must be; nothing was sent to it. */
  | { event: "tracker_refused"; reason: string }
  /** First contact with a tracker: its fingerprint is now pinned. */
  | {
    event: "tracker_trusted";
    address: string;
    fingerprint: string;
    file: string;
    /** Trusted as an instance of the same deployment as this (pinned) tracker, not on first use. */
    same_as?: string;
  }
  /**
   * The tracker could not verify that this client's serving address leads here, so it gives
   * it to no peer: nobody downloads from this client. Said again only when the reason changes.
   */
  | { event: "address_unverified"; address: string; reason: string }
  /** After `address_unverified`: the address passed a later check, peers are sent here. */
  | { event: "address_verified"; address: string }
  | NoticeEvent
  | FileEvent;

/**
 * What the tracker told this user without their asking (see `NoticePush`): a request to join
 * a group they own, the answer to theirs, a new file in one of their groups, or how many
 * more of a kind it held back (`group` null: from several groups).
 */
export type NoticeEvent =
  | { event: "join_requested"; group: string; user: string }
  | { event: "join_accepted"; group: string }
  | { event: "join_rejected"; group: string }
  | { event: "file_shared"; group: string; name: string; size: number; user: string }
  | { event: "more_notices"; notice: NoticeKind; group: string | null; count: number }
  /** Notices this client did not show: the tracker sent more than it ever should (notice_limit.ts). */
  | { event: "notices_held"; count: number };

/** The event a notice push is announced as: the same fields, named `event`. */
export function noticeEvent(push: NoticePush): Exclude<NoticeEvent, { event: "notices_held" }> {
  if (push.push === "more_notices") {
    return {
      event: "more_notices",
      notice: push.notice,
      group: push.group ?? null,
      count: push.count,
    };
  }
  const { push: kind, ...fields } = push;
  return { event: kind, ...fields } as Exclude<NoticeEvent, { event: "notices_held" }>;
}

/** How the session reaches the tracker. */
export type SessionOptions = Omit<TrackerLinkOptions, "onConnected" | "onStatus" | "needsLink"> & {
  onEvent: (event: SessionEvent) => void;
  /**
   * The client's log: operational warnings about peers and the tracker link (never secrets)
   * and which peer is served which file, each kind bounded (`PEER_LOG_LINES`). Default: none.
   */
  logger?: Logger;
  /** How long a download may wait for a missing piece before it fails. Default: for ever. */
  stallTimeoutMs?: number;
  /** How long a peer may deliver nothing with requests of ours before it is dropped. */
  requestTimeoutMs?: number;
  /** How long past its expiry a peer's ticket is still honoured. Default `CLOCK_SKEW_MS`. */
  ticketGraceMs?: number;
  /** Upload limit in bytes per second, shared by all connections. */
  uploadBytesPerSecond?: number;
  /** Download limit in bytes per second, shared by all connections. */
  downloadBytesPerSecond?: number;
  /** Where a user's shares the tracker has not acknowledged yet are kept across restarts. */
  pendingShares?: (user: string) => PendingShares;
  /** Where a user's unfinished downloads are remembered, to resume them at the next login. */
  unfinishedDownloads?: (user: string) => UnfinishedDownloads;
};

const NOT_LOGGED_IN = "not logged in: use login <user_id> <passwd>";

/**
 * Lines of one kind (peer warnings; peers starting and stopping to be served) the log takes
 * per `PEER_LOG_WINDOW_MS`: others can provoke a line each, by connecting. Past the bound,
 * lines are counted and the count is said once the next window opens.
 */
export const PEER_LOG_LINES = 20;
/** The window `PEER_LOG_LINES` is counted in. */
export const PEER_LOG_WINDOW_MS = 10_000;

/**
 * Says in `log` (at info) when a peer starts being served a file and when that ends: who,
 * from where, which file, how much was sent and why it ended.
 */
function servingLog(
  log: Logger,
  nameOf: (infoHashHex: string) => string | undefined,
): ServingObserver {
  // said as at the start: by the end the file may no longer be shared, so have no name here
  const described = new WeakMap<object, string>();
  return {
    served: (connection, user, infoHashHex) => {
      const address = connection instanceof PeerConnection ? ` at ${connection.address}` : "";
      const what = `"${nameOf(infoHashHex) ?? infoHashHex}" to ${user}${address}`;
      described.set(connection, what);
      log.info(`serving ${what}`);
    },
    released: (connection, user, infoHashHex) => {
      const what = described.get(connection) ?? `"${infoHashHex}" to ${user}`;
      const how = connection instanceof PeerConnection
        ? `: ${connection.bytesServed} bytes sent (${connection.closeReason})`
        : "";
      log.info(`stopped serving ${what}${how}`);
    },
  };
}

/** A new peer id: client tag and version, then 12 random bytes (BEP 20 style). */
function newPeerId(): Uint8Array {
  const id = new Uint8Array(20);
  id.set(new TextEncoder().encode("-SW0100-"));
  crypto.getRandomValues(id.subarray(8));
  return id;
}

/** The logged-in state of one client, surviving tracker restarts. */
export class ClientSession {
  readonly #link: TrackerLink;
  readonly #onEvent: (event: SessionEvent) => void;
  readonly #options: SessionOptions;
  readonly #registry = new TorrentRegistry();
  readonly #peerId = newPeerId();
  /** Started with the client, so that upload_file hashes on two cores from its first moment. */
  readonly #hashHelper = new HelperThread();
  /** Connections served per user, over every login on this client (like the registry). */
  readonly #servingCaps: ServingCaps;
  #login?: { user: string; token: string };
  #files?: FileSharing;
  /** The last reason announced for an unverified address, until one is verified again. */
  #addressProblem?: string;
  /** Settles when the login under way (if any) has finished, either way. */
  #loggingIn?: Promise<void>;
  readonly #uploadLimiter: RateLimiter;
  readonly #downloadLimiter: RateLimiter;

  constructor(options: SessionOptions) {
    const {
      onEvent,
      logger: _logger,
      stallTimeoutMs: _stall,
      requestTimeoutMs: _request,
      ticketGraceMs: _grace,
      uploadBytesPerSecond,
      downloadBytesPerSecond,
      pendingShares: _pending,
      unfinishedDownloads: _unfinished,
      ...linkOptions
    } = options;
    this.#options = options;
    const logger = options.logger ?? new Logger();
    // peers can provoke a line each: a bounded number reach the log, and the rest are counted
    const warnings = logger.limited({ maxLines: PEER_LOG_LINES, windowMs: PEER_LOG_WINDOW_MS });
    this.#log = (line) => warnings.warn(line);
    this.#servingCaps = new ServingCaps({
      observer: servingLog(
        logger.limited({ maxLines: PEER_LOG_LINES, windowMs: PEER_LOG_WINDOW_MS }),
        (infoHashHex) => this.#registry.get(infoHashHex)?.info.name,
      ),
    });
    this.#notices = new NoticeLimit<SessionEvent>(
      (notice) => this.#onEvent(notice),
      (count) => this.#onEvent({ event: "notices_held", count }),
    );
    this.#uploadLimiter = new RateLimiter(uploadBytesPerSecond);
    this.#downloadLimiter = new RateLimiter(downloadBytesPerSecond);
    this.#onEvent = onEvent;
    this.#link = new TrackerLink({
      ...linkOptions,
      log: (line) => this.#log(line),
      onPush: (push) => {
        if (push.push === "revoke") this.#files?.revoked(push);
        else if (push.push === "address_check") this.#addressChecked(push);
        // a notice for a login that has meanwhile ended here is not this shell's news
        else if (this.#login) this.#notices.offer(noticeEvent(push));
      },
      onConnected: (link) => this.#resume(link),
      // logged out, the link may stay closed until the next command (the tracker closes
      // connections that do not log in within its grace period)
      needsLink: () => this.#login !== undefined,
      onStatus: (status) => {
        if (status.state === "down") {
          this.#onEvent({
            event: "tracker_disconnected",
            reason: status.reason,
            address: status.address,
            retry_max_ms: status.retryMaxMs,
            ...status.trying.length > 1 ? { trying: status.trying } : {},
          });
        } else if (status.state === "switched") {
          this.#onEvent({
            event: "tracker_switched",
            from: status.from,
            to: status.to,
            reason: status.reason,
            user: this.user ?? null,
          });
        } else if (status.state === "refused") {
          this.#onEvent({ event: "tracker_refused", reason: status.reason });
        } else if (status.reconnected) {
          this.#onEvent({ event: "tracker_reconnected", user: this.user ?? null });
        }
      },
    });
  }

  /** Starts connecting to the tracker in the background. */
  start(): void {
    this.#link.start();
  }

  /** The logged-in user, if any. */
  get user(): string | undefined {
    return this.#login?.user;
  }

  /** The torrents this client serves, for the peer listener. */
  get registry(): TorrentRegistry {
    return this.#registry;
  }

  /** What incoming peer connections need; refuses every ticket while logged out. */
  get peerContext(): PeerContext {
    return this.#files?.context ?? {
      peerId: this.#peerId,
      listenPort: this.#options.peer.port,
      checkTicket: () => Promise.reject(new UserError("not logged in: serving nothing")),
      security: this.#options.security,
      ticketFor: () => undefined,
      log: this.#log,
    };
  }

  /** Says when the tracker will not hand out this client's address, and when it does again. */
  #addressChecked(push: AddressCheckPush): void {
    // the check starts at login: what it found is said after "logged in", not amid it
    if (this.#loggingIn) {
      this.#loggingIn.finally(() => setTimeout(() => this.#addressChecked(push), 0));
      return;
    }
    const address = hostPort(push.host, push.port);
    if (push.verified) {
      if (this.#addressProblem === undefined) return;
      this.#addressProblem = undefined;
      this.#notices.offer({ event: "address_verified", address });
      return;
    }
    const reason = push.reason ?? "no reason given";
    if (reason === this.#addressProblem) return;
    this.#addressProblem = reason;
    // a tracker that changes its reason at every push is bounded like its notices
    this.#notices.offer({ event: "address_unverified", address, reason });
  }

  /** Operational warnings (peers, the tracker link), at most `PEER_LOG_LINES` per window. */
  readonly #log: (line: string) => void;
  /**
   * What the tracker says unasked (notices, address checks): at most `NOTICE_LINES` shown per
   * window whatever it sends.
   */
  readonly #notices: NoticeLimit<SessionEvent>;

  /** Ends the session on the tracker (best effort), stops serving, and closes the link. */
  async close(): Promise<void> {
    try {
      if (this.#login && this.#link.isUp) await this.logout().catch(() => {});
      await this.#files?.stop();
    } finally {
      this.#notices.close();
      // an idle helper thread would keep the process alive
      this.#hashHelper[Symbol.dispose]();
      await this.#link.close();
    }
  }

  async #resume(link: TrackerLink): Promise<void> {
    const login = this.#login;
    if (!login) return;
    try {
      await link.sendDuringSetup("resume", { token: login.token });
    } catch (error) {
      if (!(error instanceof TrackerRefusal)) throw error;
      await this.#endLogin(login);
      return;
    }
    // the tracker's live view started empty: say again what this client holds
    await this.#files?.reannounce((type, params) => link.sendDuringSetup(type, params));
  }

  /** Ends `login` here (when it is still the current one) and says the tracker ended it. */
  async #endLogin(login: { user: string; token: string }): Promise<void> {
    if (this.#login !== login) return;
    this.#login = undefined;
    const files = this.#files;
    this.#files = undefined;
    await files?.stop();
    this.#onEvent({ event: "session_expired", user: login.user });
  }

  /**
   * Sends a request; a refusal as unauthenticated while logged in means the tracker ended the
   * session (on another device, by expiry, or by the session bound): the login ends here too.
   */
  async #request<T extends RequestType>(
    type: T,
    params: Omit<Extract<Request, { type: T }>, "type">,
  ): Promise<ResponseData[T]> {
    const login = this.#login;
    try {
      return await this.#link.request(type, params);
    } catch (error) {
      if (login && error instanceof TrackerRefusal && error.code === "unauthenticated") {
        await this.#endLogin(login);
      }
      throw error;
    }
  }

  #requireFiles(): FileSharing {
    if (!this.#files) throw new UserError(NOT_LOGGED_IN);
    return this.#files;
  }

  /** The rate limits in bytes per second (`null`: none). */
  get limits(): { upload: number | null; download: number | null } {
    return {
      upload: this.#uploadLimiter.rate ?? null,
      download: this.#downloadLimiter.rate ?? null,
    };
  }

  /** Changes the rate limits for every connection at once (`undefined`: no limit). */
  setLimits(upload: number | undefined, download: number | undefined): void {
    this.#uploadLimiter.rate = upload;
    this.#downloadLimiter.rate = download;
  }

  createUser(user: string, password: string): Promise<ResponseData["create_user"]> {
    return this.#request("create_user", { user, password });
  }

  /**
   * Logs in, then serves again every file this user shared before and takes up the downloads
   * left unfinished on this client.
   */
  login(user: string, password: string): Promise<{ user: string; shares_restored: number }> {
    if (this.#login) {
      return Promise.reject(
        new UserError(`already logged in as ${this.#login.user}; logout first`),
      );
    }
    const loggingIn = this.#logIn(user, password);
    this.#loggingIn = loggingIn.then(() => {}, () => {});
    return loggingIn.finally(() => this.#loggingIn = undefined);
  }

  async #logIn(user: string, password: string): Promise<{ user: string; shares_restored: number }> {
    const { token, ticket_key } = await this.#request("login", { user, password });
    const login = { user, token };
    this.#login = login;
    const request: TrackerRequest = (type, params) => this.#request(type, params);
    const files = new FileSharing({
      request,
      registry: this.#registry,
      peerId: this.#peerId,
      listenPort: this.#options.peer.port,
      ticketKey: await importPublicKey(ticket_key),
      security: this.#options.security,
      onEvent: this.#onEvent,
      log: this.#log,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      ticketGraceMs: this.#options.ticketGraceMs,
      uploadLimiter: this.#uploadLimiter,
      downloadLimiter: this.#downloadLimiter,
      hashHelper: this.#hashHelper,
      servingCaps: this.#servingCaps,
      pendingShares: this.#options.pendingShares?.(user),
      unfinishedDownloads: this.#options.unfinishedDownloads?.(user),
    });
    this.#files = files;
    try {
      const restored = await files.restore();
      // said line by line as each is taken up (download_resumed), not in the reply
      await files.resumeUnfinished();
      return { user, shares_restored: restored };
    } catch (error) {
      // the tracker went away before every share was served again: no login half made, which
      // a new login would refuse ("already logged in") and would leave shares unserved
      if (this.#login === login) {
        this.#login = undefined;
        this.#files = undefined;
      }
      await files.stop();
      throw error;
    }
  }

  /** Logs out: stops serving and cancels downloads (the tracker keeps the shares on record). */
  async logout(): Promise<null> {
    await this.#request("logout", {});
    this.#login = undefined;
    await this.#files?.stop();
    this.#files = undefined;
    return null;
  }

  /** The user's sessions on the tracker, newest first. */
  listSessions(): Promise<ResponseData["list_sessions"]> {
    return this.#request("list_sessions", {});
  }

  /** Ends every session of the user, this one too, then logs out here like `logout`. */
  async logoutEverywhere(): Promise<{ user: string; sessions: number }> {
    const login = this.#login;
    if (!login) throw new UserError(NOT_LOGGED_IN);
    const { ended } = await this.#request("end_sessions", { scope: "all" });
    if (this.#login === login) {
      this.#login = undefined;
      await this.#files?.stop();
      this.#files = undefined;
    }
    return { user: login.user, sessions: ended };
  }

  /** Ends one other session of the user, by its public id. */
  async endSession(id: string): Promise<{ id: string }> {
    await this.#request("end_sessions", { scope: id });
    return { id };
  }

  createGroup(group: string): Promise<ResponseData["create_group"]> {
    return this.#request("create_group", { group });
  }

  joinGroup(group: string): Promise<ResponseData["join_group"]> {
    return this.#request("join_group", { group });
  }

  async leaveGroup(group: string): Promise<ResponseData["leave_group"]> {
    const result = await this.#request("leave_group", { group });
    await this.#files?.leftGroup(group);
    return result;
  }

  listRequests(group: string): Promise<ResponseData["list_requests"]> {
    return this.#request("list_requests", { group });
  }

  acceptRequest(group: string, user: string): Promise<ResponseData["accept_request"]> {
    return this.#request("accept_request", { group, user });
  }

  rejectRequest(group: string, user: string): Promise<ResponseData["reject_request"]> {
    return this.#request("reject_request", { group, user });
  }

  listGroups(): Promise<ResponseData["list_groups"]> {
    return allPages(
      (after) => this.#request("list_groups", after === undefined ? {} : { after }),
      (group) => group.group,
      "list of groups",
    );
  }

  /** The groups, a page at a time as the tracker sends them. */
  groupPages(): AsyncGenerator<ResponseData["list_groups"]> {
    return pagesOf(
      (after) => this.#request("list_groups", after === undefined ? {} : { after }),
      (group) => group.group,
      "list of groups",
    );
  }

  uploadFile(
    path: string,
    group: string,
    options: { onHashProgress?: (bytesHashed: number, bytesTotal: number) => void } = {},
  ): Promise<ResponseData["share_file"]> {
    return this.#requireFiles().upload(path, group, options);
  }

  listFiles(group: string): Promise<FileSummary[]> {
    return this.#requireFiles().listFiles(group);
  }

  /** The files of a group, a page at a time. */
  filePages(group: string): AsyncGenerator<FileSummary[]> {
    return this.#requireFiles().filePages(group);
  }

  downloadFile(group: string, name: string, destination: string): Promise<DownloadStarted> {
    return this.#requireFiles().download(group, name, destination);
  }

  pauseDownload(group: string, name: string): Promise<DownloadStatus> {
    return this.#requireFiles().pauseDownload(group, name);
  }

  resumeDownload(group: string, name: string): Promise<DownloadStarted> {
    return this.#requireFiles().resumeDownload(group, name);
  }

  /** The part file cancelling this download would keep or delete (see `FileSharing`). */
  partToCancel(group: string, name: string): DownloadPart {
    return this.#requireFiles().partToCancel(group, name);
  }

  cancelDownload(group: string, name: string, keepPart: boolean): Promise<DownloadCancelled> {
    return this.#requireFiles().cancelDownload(group, name, keepPart);
  }

  /** What would stop if this client quit now: downloads under way, connections served. */
  runningTransfers(): { downloads: number; uploads: number } {
    const downloads = this.#files?.downloads().filter((download) =>
      download.state === "D" && download.activity !== "paused"
    );
    return { downloads: downloads?.length ?? 0, uploads: this.#servingCaps.served };
  }

  showDownloads(): DownloadStatus[] {
    return this.#requireFiles().downloads();
  }

  showUploads(): UploadStatus[] {
    return this.#requireFiles().uploads();
  }

  /** Downloads and uploads now, for a live view; nothing when no one is logged in. */
  transfers(): { downloads: DownloadStatus[]; uploads: UploadStatus[] } {
    const files = this.#files;
    return files
      ? { downloads: files.downloads(), uploads: files.uploads() }
      : { downloads: [], uploads: [] };
  }

  stopShare(group: string, name: string): Promise<ResponseData["stop_share"]> {
    return this.#requireFiles().stopShare(group, name);
  }
}
