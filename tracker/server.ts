/**
 * The tracker's network side: accepts TCP connections, runs one session per connection
 * (hello first, then requests answered in order), and keeps every connection's faults to
 * itself. A silent connection is closed after `idleTimeoutMs`; clients ping well within it.
 * A connection not logged in is closed after `loginGraceMs` (like SSH's LoginGraceTime):
 * before a login it may only send small frames, and now only for so long, so strangers
 * cannot hold connections open for ever by pinging.
 *
 * Memory, worst case, of one connection (lib/transport.ts, lib/frame.ts, measured with Deno
 * 2.9.6 where the runtime holds it):
 *
 * - about 40 KiB as it stands: TLS state and the socket, the session's objects and timers
 *   (measured: 36 KiB per idle connection over 5,000);
 * - up to 240 KiB received and not yet read, while a request of it is answered or its
 *   large frame waits for the budget: 16 KiB read ahead and a chunk of up to 48 KiB in
 *   lib/transport.ts, and what the runtime's TLS socket has taken from the kernel and
 *   decrypted before it stopped (one 64 KiB read, and its plaintext);
 * - up to 112 KiB of frame being received: 64 KiB (16 KiB before a login), a chunk more;
 *   larger frames only with a share of `LARGE_FRAME_BUDGET_BYTES`, for all connections.
 *
 * So `WORST_BYTES_PER_CONNECTION`, 384 KiB (measured, 2,000 logged-in connections each
 * holding a partial 1 MiB frame: 212 KiB), outside what all connections share: large frames
 * (16 MiB, a few times that while decoded), the password hashes (two at once, 64 MiB), and
 * info dictionaries being shared in pages (`MAX_STAGED_INFO_BYTES`, 256 MiB, info_uploads.ts).
 * Not counted: a reply a client does not read stays with its connection until the kernel
 * takes it (most are small; a `locate_file` or `get_info` page is under 1 MiB).
 *
 * Connections: at most `MAX_STRANGERS` (1,024, and half the listener's cap) not logged in,
 * oldest closed first, whatever comes (384 MiB at worst); logged in, as many as the
 * listener's cap allows (half the descriptor limit less 64, at most 16,384): 448 at the
 * usual 1,024 descriptors (168 MiB at worst), 9,936 at 20,000 (3.6 GiB at worst). Size
 * `ulimit -n` by memory, one logged-in client per 384 KiB.
 *
 * @module
 */

import { errorMessage, listenErrorText, ProtocolError } from "../lib/errors.ts";
import { FrameBudget, MAX_FRAME_BYTES, readFrames } from "../lib/frame.ts";
import { closeQuietly, isDisconnect } from "../lib/io.ts";
import { limitedLog } from "../lib/log_limit.ts";
import { Logger } from "../lib/log.ts";
import { pemToDer } from "../lib/identity.ts";
import { certificatePublicKeyInfo } from "../lib/x509.ts";
import {
  type AcceptedConn,
  type ByteConn,
  chunksOf,
  connectionCap,
  type ConnListener,
  hostPort,
  listen,
  type Security,
  sha256Hex,
} from "../lib/transport.ts";
import {
  CONNECTION_NOTICE_ID,
  type ErrorCode,
  frameId,
  OPTIONAL_PUSHES,
  parseRequest,
  type PeerAddress,
  type PeerEndpoint,
  PROTOCOL_VERSION,
  type RequestFrame,
  type Response,
} from "../lib/protocol.ts";
import { type AddressCheck, AddressChecks } from "./address_checks.ts";
import { loadTicketSigner, makeDecoyHash, type TicketSigner } from "./auth.ts";
import { loadOperatorCertificate, loadTrackerIdentity } from "./identity.ts";
import { type ConnectionState, type HandlerContext, RequestError } from "./context.ts";
import { InfoUploads } from "./info_uploads.ts";
import { describeActivity } from "./activity_log.ts";
import { ClientEvents } from "./events.ts";
import { Deadline } from "./deadline.ts";
import { FrameWriter } from "./frame_writer.ts";
import { handleRequest, isHandledRequest } from "./handlers.ts";
import { PasswordWork } from "./password_work.ts";
import type { AttemptCounts } from "./attempt_counts.ts";
import { ReplyCache } from "./reply_cache.ts";
import { Presence, type PresenceBook } from "./presence.ts";
import { type EventBus, LocalBus, type TrackerEvent } from "./event_bus.ts";
import { Sessions } from "./sessions.ts";
import { DEFAULT_BUSY_AFTER_MS, Turns } from "./turns.ts";
import { openStore } from "./open_store.ts";
import type { SharedLiveState, TrackerStore } from "./store.ts";

/** How the tracker runs. */
export interface TrackerOptions {
  hostname: string;
  /** 0 picks a free port; `address` tells which. */
  port: number;
  /** SQLite file (created when missing), or a `postgres://` URL (tracker/open_store.ts). */
  dbPath: string;
  /** A connection that sends nothing for this long is closed. Default 45 s. */
  idleTimeoutMs?: number;
  /**
   * A session unused for this long is refused at resume and deleted (and dropped at start).
   * A use is a login, resume or any request on a connection acting under it, pings too;
   * each connection records it at most once a minute. Default 14 days.
   */
  sessionMaxIdleMs?: number;
  /** Where operational messages go (never secrets). Default: `logger` at warn, else stderr. */
  log?: (line: string) => void;
  /**
   * The tracker's log: connections, logins, group changes, shares and tickets issued (never
   * a secret). Default: none.
   */
  logger?: Logger;
  /** The operator's own certificate chain and key (PEM files), instead of the tracker's own. */
  tlsFiles?: { certPath: string; keyPath: string };
  /** Plain TCP on every link, for measurements only. */
  insecurePlaintext?: boolean;
  /** How long download tickets are valid, at most `TICKET_LIFETIME_MS` (the default). */
  ticketLifetimeMs?: number;
  /**
   * A connection not logged in (from its start, or since a logout) for this long is closed,
   * after a notice saying why (`CONNECTION_NOTICE_ID`). Default `DEFAULT_LOGIN_GRACE_MS`.
   */
  loginGraceMs?: number;
  /**
   * A request that waited longer than this for its turn is answered "the tracker is busy"
   * instead. Default `DEFAULT_BUSY_AFTER_MS`.
   */
  busyAfterMs?: number;
  /** The clock requests wait for their turn by (ms); tests may make time pass at will. */
  turnClock?: () => number;
  /**
   * Connections not logged in held at once. Default `MAX_STRANGERS`, or half the
   * connections the listener holds when that is fewer.
   */
  maxStrangers?: number;
}

/**
 * How long a connection may stay not logged in: SSH's LoginGraceTime default. Long enough
 * for a person to type a password at a prompt; clients that sit logged out longer are
 * closed and connect again when the user next logs in (peer/tracker_link.ts).
 */
export const DEFAULT_LOGIN_GRACE_MS = 60_000;

/** What one connection holds at most, outside what all share (see the module's notes). */
export const WORST_BYTES_PER_CONNECTION = 384 * 1024;

/**
 * Connections not logged in the tracker holds at once: strangers, who may come from
 * anywhere and cost nothing to open; never more than half the connections its listener
 * holds (224 of 448 at the usual 1,024 descriptors), or they could fill it before the
 * newest could close the oldest. One more closes the oldest of them not being answered,
 * as its login deadline would (notice included; a client takes it quietly and connects again
 * at its next command), so a flood of connections that never log in holds at most 1,024
 * (under 100 KiB each, measured: 100 MiB) however many come and whatever `ulimit -n` allows,
 * and keeps nobody out: an honest client logs in moments after it connects, and a
 * connection whose request is being answered (a login being hashed) is never the one closed.
 */
export const MAX_STRANGERS = 1024;

const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
/**
 * The largest frame a connection not logged in may send (16 KiB): enough for hello with a
 * serving certificate (at most 8 KiB), create_user, login and resume; a stranger cannot make
 * the tracker hold a megabyte per connection.
 */
export const MAX_UNAUTHENTICATED_FRAME_BYTES = 16 * 1024;
/**
 * Bytes of frames longer than 64 KiB (a `share_file` of a file over about 1.2 GiB, the
 * longest 1 MiB) all connections may be receiving at once: 16 maximal frames. A connection
 * whose next frame is longer waits for its share before it reads the body (lib/frame.ts).
 */
const LARGE_FRAME_BUDGET_BYTES = 16 * 1024 * 1024;
/**
 * Bytes a connection reads ahead of its request loop: requests are small and answered one
 * at a time, so the 256 KiB a peer link reads ahead for pieces would only be memory held
 * for a connection whose request waits its turn.
 */
const READ_AHEAD_BYTES = 16 * 1024;
const SERVER_NAME = "swarmshare-tracker";
/**
 * Log lines anyone can provoke without an account (connections opened and closed, accounts
 * made, failed logins) pass at most 50 per 10 s; members' activity (logins, groups, shares,
 * tickets) at most 100 per 10 s; warnings 20 per 10 s. Each line is at most about 540
 * characters (lib/log.ts), so a flood writes at most about 90 KiB per 10 s (under 800 MiB
 * a day) and says how many lines it held back.
 */
const STRANGER_LOG_LINES = 50;
const MEMBER_LOG_LINES = 100;
const LOG_WINDOW_MS = 10_000;

/** A running tracker. */
export class Tracker {
  readonly #listener: ConnListener;
  readonly #store: TrackerStore;
  readonly #connections = new Set<ByteConn>();
  readonly #idleTimeoutMs: number;
  readonly #loginGraceMs: number;
  readonly #log: (line: string) => void;
  /** What strangers can provoke: connections, new accounts, failed logins. */
  readonly #strangerLog: Logger;
  /** What members do. */
  readonly #memberLog: Logger;
  readonly #decoyHash: Promise<string>;
  readonly #infoUploads = new InfoUploads();
  readonly #passwords: PasswordWork;
  /** Where login attempts are counted, when shared with other instances (closed with us). */
  readonly #attempts?: AttemptCounts;
  readonly #tickets: TicketSigner;
  readonly #presence: PresenceBook;
  readonly #bus: EventBus;
  readonly #sessions: Sessions;
  readonly #events: ClientEvents;
  readonly #turns: Turns;
  readonly #replies: ReplyCache;
  readonly #addressChecks: AddressChecks;
  readonly #largeFrames = new FrameBudget(LARGE_FRAME_BUDGET_BYTES);
  readonly #strangers: Strangers;
  readonly #accepting: Promise<void>;
  #nextConnectionId = 1;
  #closing?: Promise<void>;

  /** SHA-256 of the certificate clients see (hex); undefined in plaintext. */
  readonly fingerprint?: string;

  private constructor(
    listener: ConnListener,
    store: TrackerStore,
    tickets: TicketSigner,
    presence: PresenceBook,
    bus: EventBus,
    sessions: Sessions,
    attempts: AttemptCounts | undefined,
    options: TrackerOptions,
    fingerprint: string | undefined,
    listenerCap: number,
  ) {
    this.#listener = listener;
    this.fingerprint = fingerprint;
    this.#store = store;
    this.#presence = presence;
    this.#bus = bus;
    this.#sessions = sessions;
    this.#attempts = attempts;
    // several instances count logins in the database they share: guesses spread over them
    // are throttled as one
    this.#passwords = new PasswordWork({ counts: attempts });
    this.#tickets = tickets;
    this.#events = new ClientEvents({ presence, bus });
    const replies: ReplyCache = new ReplyCache({
      enabled: store.watch((change) => replies.changed(change)),
    });
    this.#replies = replies;
    this.#addressChecks = new AddressChecks({
      trackerAddress: listener.addr,
      plaintext: fingerprint === undefined,
    });
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#loginGraceMs = options.loginGraceMs ?? DEFAULT_LOGIN_GRACE_MS;
    this.#strangers = new Strangers(
      options.maxStrangers ?? Math.max(1, Math.min(MAX_STRANGERS, Math.floor(listenerCap / 2))),
    );
    // hostile connections can provoke a line each: at most 20 lines per 10 s
    const logger = options.logger;
    this.#log = limitedLog(
      options.log ?? (logger ? (line) => logger.warn(line) : (line) => console.error(line)),
      { windowMs: LOG_WINDOW_MS },
    );
    const activity = logger ?? new Logger();
    this.#strangerLog = activity.limited({ maxLines: STRANGER_LOG_LINES, windowMs: LOG_WINDOW_MS });
    this.#memberLog = activity.limited({ maxLines: MEMBER_LOG_LINES, windowMs: LOG_WINDOW_MS });
    this.#decoyHash = makeDecoyHash();
    this.#turns = new Turns({
      busyAfterMs: options.busyAfterMs ?? DEFAULT_BUSY_AFTER_MS,
      now: options.turnClock,
    });
    this.#accepting = this.#acceptLoop();
    bus.subscribe((event) => this.#fromElsewhere(event));
  }

  /** Opens the database and starts listening. Throws when either fails. */
  static async start(options: TrackerOptions): Promise<Tracker> {
    const store = await openStore(options.dbPath);
    let shared: SharedLiveState | undefined;
    try {
      // several instances on one database share presence and events through it; a tracker
      // alone keeps them in memory
      const logger = options.logger;
      shared = await store.openLiveState?.({
        log: limitedLog(
          options.log ?? (logger ? (line) => logger.warn(line) : (line) => console.error(line)),
          { windowMs: LOG_WINDOW_MS },
        ),
      });
      const presence = shared?.presence ?? new Presence();
      const bus = shared?.bus ?? new LocalBus();
      const sessions = new Sessions({
        store,
        presence,
        bus,
        maxIdleMs: options.sessionMaxIdleMs,
      });
      await sessions.prune();
      const tickets = await loadTicketSigner(store, {
        lifetimeMs: options.ticketLifetimeMs,
        // a tracker alone on its store sees every leave as it happens; with other instances a
        // leave there reaches this one later, as an event: every ticket is signed afresh
        reuseMs: shared === undefined ? undefined : 0,
      });
      let security: Security = { mode: "plaintext" };
      let fingerprint: string | undefined;
      if (!options.insecurePlaintext) {
        const identity = options.tlsFiles
          ? await loadOperatorCertificate(options.tlsFiles.certPath, options.tlsFiles.keyPath)
          : await loadTrackerIdentity(store, [options.hostname]);
        security = { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem };
        fingerprint = identity.fingerprint;
      }
      const listenerCap = connectionCap();
      const listener = await listen({
        hostname: options.hostname,
        port: options.port,
        security,
        maxConnections: listenerCap,
        // a connection silent from its first byte is idle too (but a handshake may take a
        // moment on a busy machine: never less than 2 s)
        handshakeTimeoutMs: Math.min(
          10_000,
          Math.max(2_000, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
        ),
        readAheadBytes: READ_AHEAD_BYTES,
      }).catch((error) => {
        throw new Error(
          `cannot listen on ${hostPort(options.hostname, options.port)}: ${listenErrorText(error)}`,
        );
      });
      return new Tracker(
        listener,
        store,
        tickets,
        presence,
        bus,
        sessions,
        shared?.attempts,
        options,
        fingerprint,
        listenerCap,
      );
    } catch (error) {
      await shared?.attempts.close?.();
      await shared?.presence.close?.();
      await shared?.bus.close();
      await store.close();
      throw error;
    }
  }

  /** The address the tracker accepts connections on. */
  get address(): { hostname: string; port: number } {
    return this.#listener.addr;
  }

  /** Stops accepting, closes every connection, and closes the database cleanly. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#listener.close();
      for (const conn of this.#connections) closeQuietly(conn);
      await this.#accepting;
      await this.#addressChecks.close();
      await this.#decoyHash.catch(() => {});
      await this.#attempts?.close?.();
      await this.#presence.close?.();
      await this.#bus.close();
      await this.#store.close();
    })();
    return this.#closing;
  }

  async #acceptLoop(): Promise<void> {
    const sessions = new Set<Promise<void>>();
    try {
      for await (const conn of this.#listener) {
        const session = this.#serve(conn).finally(() => sessions.delete(session));
        sessions.add(session);
      }
    } catch (error) {
      if (!this.#closing) this.#log(`tracker: accept failed: ${errorMessage(error)}`);
    }
    await Promise.all(sessions);
  }

  async #serve(conn: AcceptedConn): Promise<void> {
    this.#connections.add(conn);
    const remote = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    const connection: ConnectionState = {
      id: this.#nextConnectionId++,
      address: conn.remoteAddr.hostname,
      localAddress: conn.localAddr?.hostname,
      fingerprint: conn.peerFingerprint,
    };
    const context: HandlerContext = {
      store: this.#store,
      connection,
      decoyHash: this.#decoyHash,
      passwords: this.#passwords,
      presence: this.#presence,
      tickets: this.#tickets,
      sessions: this.#sessions,
      events: this.#events,
      replies: this.#replies,
      infoUploads: this.#infoUploads,
      addressCheck: () => this.#addressCheck(connection),
    };
    this.#strangerLog.info(`connection ${connection.id} from ${remote}`);
    const writer = new FrameWriter(conn);
    const idle = new Deadline(this.#idleTimeoutMs, () => closeQuietly(conn));
    idle.start();
    const login = new LoginDeadline(this.#loginGraceMs, this.#strangers, async (reason) => {
      const seconds = Math.round(this.#loginGraceMs / 100) / 10;
      const message = reason === "deadline"
        ? `not logged in within ${seconds} s: closing the connection`
        : "too many connections not logged in: closing the oldest";
      await writer.reply(failure(CONNECTION_NOTICE_ID, "unauthenticated", message))
        .catch(() => {});
      closeQuietly(conn);
    });
    login.watch(connection.user !== undefined);
    let greeted = false;
    try {
      // before a login only small requests make sense: a stranger's frame is capped small
      const frameLimit = () =>
        connection.user === undefined ? MAX_UNAUTHENTICATED_FRAME_BYTES : MAX_FRAME_BYTES;
      const frames = readFrames(chunksOf(conn), frameLimit, { budget: this.#largeFrames })
        [Symbol.asyncIterator]();
      const link = { remote, certificate: conn.peerCertificate };
      const accept = () => {
        // closed for its login deadline: what came meanwhile is not read (nor answered)
        if (login.expired) return false;
        // idle is silence on both sides: the time the tracker takes to answer (a turn in
        // line, a password hash) is not the client's silence
        idle.stop();
        login.busy = true;
        return true;
      };
      try {
        while (true) {
          const outcome = await this.#answerNext(frames, accept, writer, context, greeted, link);
          if (outcome === "ended") break;
          login.busy = false;
          idle.start();
          if (outcome === "stop") break;
          if (outcome === "greeted") {
            greeted = true;
            this.#events.register(connection, writer);
          }
          // a login or logout takes effect here, and the deadline if it passed meanwhile
          if (login.watch(connection.user !== undefined)) break;
        }
      } finally {
        await frames.return?.(undefined);
      }
      // the notice of a login deadline goes out before the connection is closed below
      await login.closing;
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.#log(`tracker: ${remote}: ${error.message}; closing the connection`);
        await writer.reply(failure(CONNECTION_NOTICE_ID, "bad_request", error.message))
          .catch(() => {});
      } else if (!isDisconnect(error) && !this.#closing) {
        this.#log(`tracker: ${remote}: ${errorMessage(error)}`);
      }
    } finally {
      this.#strangerLog.info(
        `connection ${connection.id} from ${remote} closed` +
          (connection.user === undefined ? "" : ` (${connection.user})`),
      );
      connection.closed = true;
      idle.clear();
      writer.close();
      login.stop();
      this.#events.unregister(connection);
      this.#sessions.disconnected(connection);
      this.#presence.releaseConnection(connection.id);
      this.#infoUploads.drop(connection.id);
      this.#connections.delete(conn);
      closeQuietly(conn);
    }
  }

  /**
   * Waits for the connection's next frame and, if `accept` takes it, answers it: "ended"
   * when the stream ended or `accept` refused the frame, else as `#handleFrame`. The frame
   * lives in this call only: a for-await loop keeps its last value alive while it waits for
   * the next (V8), which held a frame (up to 1 MiB) per idle connection; 300 connections
   * that each sent one maximal frame kept 315 MiB of heap.
   */
  async #answerNext(
    frames: AsyncIterator<Record<string, unknown>>,
    accept: () => boolean,
    writer: FrameWriter,
    context: HandlerContext,
    greeted: boolean,
    link: { remote: string; certificate: Uint8Array | undefined },
  ): Promise<"ended" | "stop" | "greeted" | "answered"> {
    const next = await frames.next();
    if (next.done || !accept()) return "ended";
    return await this.#handleFrame(next.value, writer, context, greeted, link);
  }

  /**
   * Answers one frame: "stop" when the connection must be closed (a bad first request),
   * "greeted" when it was an accepted hello, "answered" otherwise.
   */
  async #handleFrame(
    frame: Record<string, unknown>,
    writer: FrameWriter,
    context: HandlerContext,
    greeted: boolean,
    link: { remote: string; certificate: Uint8Array | undefined },
  ): Promise<"stop" | "greeted" | "answered"> {
    let request: RequestFrame;
    try {
      request = parseRequest(frame);
    } catch (error) {
      await writer.reply(failure(frameId(frame) ?? 0, "bad_request", errorMessage(error)));
      return greeted ? "answered" : "stop";
    }
    if (!greeted) {
      const accepted = await this.#greet(writer, request, context.connection, link.certificate);
      return accepted ? "greeted" : "stop";
    }
    // pings keep links alive and cost nothing: they never wait in line
    const turn = request.type === "ping" ? "go" : await this.#turns.next();
    const response = turn === "go"
      ? await this.#answer(context, request, link.remote)
      : failure(request.id, "busy", "the tracker is busy; try again in a moment");
    await writer.reply(response, response.ok ? this.#replies.jsonOf(response.data) : undefined);
    // a logged-in client's address is checked from the start, before it shares anything
    // (and after the reply: what the check says comes after "logged in")
    if (response.ok && (request.type === "login" || request.type === "resume")) {
      context.addressCheck?.();
    }
    return "answered";
  }

  /** Answers the first request, which must be a hello of our version. */
  async #greet(
    writer: FrameWriter,
    request: RequestFrame,
    connection: ConnectionState,
    linkCertificate: Uint8Array | undefined,
  ): Promise<boolean> {
    if (request.type !== "hello") {
      await writer.reply(failure(request.id, "bad_request", "the first request must be hello"));
      return false;
    }
    if (request.peer) {
      let endpoint: PeerEndpoint = { host: request.peer.host, port: request.peer.port };
      if (this.fingerprint !== undefined) {
        // downloaders dial this peer trusting only this certificate, which must be made with
        // the key this client proved it holds on this link
        const checked = checkServingCertificate(request.peer_cert, linkCertificate);
        if (typeof checked === "string") {
          await writer.reply(failure(request.id, "bad_request", checked));
          return false;
        }
        endpoint = {
          ...endpoint,
          fingerprint: sha256Hex(checked),
          cert: request.peer_cert,
          device: connection.fingerprint,
        };
      }
      connection.peer = endpoint;
    }
    connection.pushes = new Set(
      (request.pushes ?? []).filter((kind) => (OPTIONAL_PUSHES as string[]).includes(kind)),
    );
    if (request.version !== PROTOCOL_VERSION) {
      await writer.reply(
        failure(
          request.id,
          "unsupported_version",
          `protocol version ${request.version} is not supported (this tracker speaks ${PROTOCOL_VERSION})`,
        ),
      );
      return false;
    }
    await writer.reply({
      id: request.id,
      ok: true,
      data: {
        version: PROTOCOL_VERSION,
        server: SERVER_NAME,
        idle_timeout_ms: this.#idleTimeoutMs,
      },
    });
    return true;
  }

  /**
   * The check of the connection's serving address: started at its first login (charged to
   * that user), once per connection; once verified, registered for whoever is logged in.
   */
  #addressCheck(connection: ConnectionState): AddressCheck | undefined {
    const { peer, user } = connection;
    if (!peer || user === undefined) return connection.addressCheck;
    if (!connection.addressCheck) {
      const check = this.#addressChecks.start({
        endpoint: peer,
        user,
        seenHost: connection.address ?? "?",
        localHost: connection.localAddress,
      });
      connection.addressCheck = check;
      check.settled.then(() => this.#addressSettled(connection, check));
    } else if (connection.addressCheck.state === "verified") {
      void this.#registerAddress(connection);
    }
    return connection.addressCheck;
  }

  #addressSettled(connection: ConnectionState, check: AddressCheck): void {
    if (connection.closed) return;
    this.#events.pushTo(connection.id, {
      push: "address_check",
      host: check.endpoint.host,
      port: check.endpoint.port,
      verified: check.state === "verified",
      ...check.reason === undefined ? {} : { reason: check.reason.slice(0, 1000) },
    });
    if (check.state === "verified") void this.#registerAddress(connection);
  }

  /** Hands out the connection's holders; another client of the user at its address stops. */
  async #registerAddress(connection: ConnectionState): Promise<void> {
    const { peer, user } = connection;
    if (!peer || user === undefined || connection.closed) return;
    let replaced: number | undefined;
    try {
      replaced = await this.#presence.register(connection.id, user, peer);
    } catch (error) {
      this.#log(`tracker: cannot register the address of ${user}: ${errorMessage(error)}`);
      return;
    }
    if (replaced !== undefined) this.#superseded(replaced, user, peer);
  }

  /** Tells connection `replaced` that another client of `user` now serves at `peer`. */
  #superseded(replaced: number, user: string, peer: PeerAddress): void {
    const other = this.#events.stateOf(replaced);
    if (!other?.addressCheck) return;
    const reason = `another client of ${user} now serves at ${hostPort(peer.host, peer.port)}; ` +
      `peers are sent there, not here`;
    other.addressCheck.supersede(reason);
    this.#events.pushTo(replaced, {
      push: "address_check",
      host: peer.host,
      port: peer.port,
      verified: false,
      reason,
    });
  }

  /** An event another instance sent, for the connections of this one. */
  #fromElsewhere(event: TrackerEvent): void {
    switch (event.kind) {
      case "notice":
        this.#events.deliver(event);
        break;
      case "revoke":
        this.#tickets.revoked(event.user, event.group);
        this.#events.deliver(event);
        // the instance that made it released the user's holdings everywhere; this one's own
        // record of its connections follows
        if ((event.part ?? 0) === 0) void this.#presence.releaseUser(event.user, event.group);
        break;
      case "session_ended":
        this.#sessions.endedElsewhere(event.digest);
        break;
      case "superseded":
        if (event.instance !== this.#bus.instance) break;
        void this.#presence.releaseConnection(event.connection);
        this.#superseded(event.connection, event.user, { host: event.host, port: event.port });
        break;
    }
  }

  async #answer(context: HandlerContext, request: RequestFrame, remote: string): Promise<Response> {
    // every request, pings too, is a use of the connection's session; one whose session has
    // expired or was ended elsewhere is logged out here and refused below as unauthenticated
    const touching = this.#sessions.touch(context.connection);
    if (touching) await touching;
    if (request.type === "ping") return { id: request.id, ok: true, data: null };
    if (!isHandledRequest(request.type)) {
      return failure(request.id, "bad_request", `"${request.type}" is not allowed here`);
    }
    const userBefore = context.connection.user;
    let response: Response;
    try {
      const data = await handleRequest(context, request as Parameters<typeof handleRequest>[1]);
      response = { id: request.id, ok: true, data };
    } catch (error) {
      if (error instanceof RequestError) {
        response = failure(request.id, error.code, error.message);
      } else {
        this.#log(`tracker: ${remote}: ${request.type} failed: ${errorMessage(error)}`);
        response = failure(
          request.id,
          "internal",
          `the tracker could not complete ${request.type}`,
        );
      }
    }
    this.#logActivity(
      context.connection.user ?? userBefore,
      context.connection,
      request,
      response,
      remote,
    );
    return response;
  }

  /** Says what a request did (or why it was refused), never what secret it carried. */
  #logActivity(
    user: string | undefined,
    connection: ConnectionState,
    request: RequestFrame,
    response: Response,
    remote: string,
  ): void {
    // every entry is at info or debug: with neither written, no line is made per request
    if (!this.#memberLog.enabled("info") && !this.#strangerLog.enabled("info")) return;
    const entry = describeActivity(
      request,
      { user, connection: connection.id, remote },
      response.ok ? { ok: true, data: response.data } : { ok: false, ...response.error },
    );
    if (!entry) return;
    (entry.byStranger ? this.#strangerLog : this.#memberLog).log(entry.level, entry.message);
  }
}

/** A hello's serving certificate (DER) when acceptable, else why it is not. */
function checkServingCertificate(
  pem: string | undefined,
  linkCertificate: Uint8Array | undefined,
): Uint8Array | string {
  if (pem === undefined) return "a serving peer must present its certificate";
  let der: Uint8Array;
  let spki: Uint8Array;
  try {
    der = pemToDer(pem, "CERTIFICATE");
    spki = certificatePublicKeyInfo(der);
  } catch (error) {
    return `a serving peer must present its certificate: ${errorMessage(error)}`;
  }
  const linkKey = linkCertificate && (() => {
    try {
      return certificatePublicKeyInfo(linkCertificate);
    } catch {
      return undefined;
    }
  })();
  if (!linkKey || linkKey.length !== spki.length || !linkKey.every((byte, i) => byte === spki[i])) {
    return "the serving certificate is not made with the key of this connection's certificate";
  }
  return der;
}

function failure(id: number, code: ErrorCode, message: string): Response {
  return { id, ok: false, error: { code, message } };
}

/**
 * The login grace period of one connection. It runs while the connection is not logged in
 * (from the start, and again from a logout or its session's end) and closes it when it runs
 * out, but only between requests: a request being answered is never cut off, so a request a
 * client sent just as the deadline passed is either answered (a login: the deadline is off)
 * or never read, and the client may safely send it again on a new connection.
 */
class LoginDeadline {
  readonly #graceMs: number;
  readonly #strangers: Strangers;
  readonly #expire: (reason: "deadline" | "crowded") => Promise<void>;
  #timer?: ReturnType<typeof setTimeout>;
  #passed = false;
  #closing?: Promise<void>;
  /** True while a request is being answered. */
  busy = false;

  /** True once the connection is being closed for it. */
  get expired(): boolean {
    return this.#closing !== undefined;
  }

  /** Settles once the notice was written and the connection closed (at once if never). */
  get closing(): Promise<void> {
    return this.#closing ?? Promise.resolve();
  }

  constructor(
    graceMs: number,
    strangers: Strangers,
    expire: (reason: "deadline" | "crowded") => Promise<void>,
  ) {
    this.#graceMs = graceMs;
    this.#strangers = strangers;
    this.#expire = expire;
  }

  /**
   * Starts the grace period when the connection is not logged in (and it is not running),
   * taking a place among the strangers; stops it when it is logged in. Returns true when the
   * connection has been closed for it.
   */
  watch(loggedIn: boolean): boolean {
    if (this.expired) return true;
    if (loggedIn) {
      this.stop();
      return false;
    }
    if (this.#passed) {
      this.#close("deadline");
      return true;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#passed = true;
        if (!this.busy) this.#close("deadline");
      }, this.#graceMs);
      if (!this.#strangers.admit(this)) {
        this.#close("crowded");
        return true;
      }
    }
    return false;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#passed = false;
    this.#strangers.leave(this);
  }

  /** Closes the connection to make room for a newer stranger. */
  evict(): void {
    this.#close("crowded");
  }

  #close(reason: "deadline" | "crowded"): void {
    this.#strangers.leave(this);
    this.#closing ??= this.#expire(reason);
  }
}

/**
 * The connections not logged in, oldest first, at most `max` (`MAX_STRANGERS`): a newcomer
 * closes the oldest one that is not being answered.
 */
class Strangers {
  readonly #waiting = new Set<LoginDeadline>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place for `deadline`'s connection: false when none could be made. */
  admit(deadline: LoginDeadline): boolean {
    if (this.#waiting.size >= this.#max) {
      let oldest: LoginDeadline | undefined;
      for (const waiting of this.#waiting) {
        if (!waiting.busy) {
          oldest = waiting;
          break;
        }
      }
      if (!oldest) return false;
      oldest.evict();
    }
    this.#waiting.add(deadline);
    return true;
  }

  leave(deadline: LoginDeadline): void {
    this.#waiting.delete(deadline);
  }
}
