/**
 * The client's connection to the tracker: typed request/response over the framed link,
 * heartbeats, and reconnection with backoff. When the link comes back, `onConnected` runs
 * before any queued command, so the session is resumed before the user's next request.
 * Frames without an `id` are the tracker's pushes: checked strictly and handed to `onPush`;
 * a malformed one is ignored (and said once per link), never fatal.
 *
 * The tracker closes a connection that stays logged out past its grace period, saying so
 * first. That is no outage and is never announced: while its owner does not need the link
 * (`needsLink`: nobody is logged in) it stays closed until the next request, which connects
 * again first; otherwise it connects again at once (a session ended elsewhere then shows at
 * its resume). A request the close overtook was never read by the tracker, so it is sent
 * once more on the new connection.
 *
 * A client may know several instances of one deployment (the seed and `alternates`): when
 * the one in use fails, the others are tried at once in turn while requests wait, and the
 * first that answers is used from then on, with the session resumed on it (tracker_rotation.ts
 * decides which and when). Only when all failed is the outage said.
 *
 * A tracker that hangs (its process stopped, or its event loop stuck) keeps its connections
 * open and answers nothing; left to the request timeout (20 s) its clients would wait that
 * long. So when a request has waited `probeAfterMs` (1.5 s) with nothing heard from the
 * tracker meanwhile, the link probes it: a fresh connection to the same tracker, greeted with
 * a hello, must be answered within `probeTimeoutMs` (2.5 s). A tracker that answers is alive
 * and merely busy (requests on one connection are answered in turn, but a new connection's
 * hello waits for nobody's): the link waits on, probing again after twice as long each time
 * while nothing is heard. One that does not is taken for hung: the connection is closed and
 * the next instance dialled, as when a tracker dies, within 4.25 s of the request at most.
 * An answer counts only from the certificate the link's connection was accepted with: else
 * an attacker on the path could blackhole the connection and answer the probes itself,
 * keeping the client on a "busy" tracker. A probe met by another certificate closes the
 * connection too, and connecting again, the link's own check meets whoever presents it.
 *
 * @module
 */

import { errorMessage, TrackerUnavailableError, UserError } from "../lib/errors.ts";
import { encodeFrame, readFrames } from "../lib/frame.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import {
  type ByteConn,
  connectTracker,
  hostPort,
  IdentityError,
  readableOf,
  type Security,
} from "../lib/transport.ts";
import { TrackerRotation } from "./tracker_rotation.ts";
import {
  isLoginDeadlineNotice,
  isPushFrame,
  OPTIONAL_PUSHES,
  parsePush,
  type PeerAddress,
  PROTOCOL_VERSION,
  type Push,
  Refusal as TrackerRefusal,
  type Request,
  type RequestType,
  type ResponseData,
} from "../lib/protocol.ts";
import { parseRefusal, parseReply } from "../lib/replies.ts";

/** The tracker refused a request; `message` is meant for the user. */
export { TrackerRefusal };

/** The tracker answered with something other than the shape its request type promises. */
export class MalformedReplyError extends UserError {
  override name = "MalformedReplyError";
}

/** What the link tells its owner about its state. */
export type LinkStatus =
  /**
   * Said once per outage (every tracker failed); `address`: the tracker in use before it,
   * `trying`: every tracker tried in turn, `retryMaxMs`: the longest pause between attempts.
   */
  | { state: "down"; reason: string; address: string; trying: string[]; retryMaxMs: number }
  /** Connected to another instance than the one in use before, which failed for `reason`. */
  | { state: "switched"; from: string; to: string; reason: string }
  /** The tracker is not who it must be (fingerprint mismatch): nothing was sent to it. */
  | { state: "refused"; reason: string }
  | { state: "up"; reconnected: boolean };

/** A tracker to dial. */
export interface LinkTarget {
  hostname: string;
  port: number;
}

/** How the link connects and behaves. */
export interface TrackerLinkOptions {
  /** The tracker tried first (the seed). */
  hostname: string;
  port: number;
  /**
   * More instances of the same deployment, tried in this order after the seed when the
   * tracker in use fails (at most `MAX_EXTRA_TRACKERS` from the command line). Default none.
   */
  alternates?: LinkTarget[];
  /** Where this client serves pieces; sent in the hello. */
  peer: PeerAddress;
  /** The certificate (PEM) this client serves peers with; sent in the hello. */
  peerCert?: string;
  /** Our certificate on the link, or plaintext. */
  security: Security;
  /**
   * Checks the certificate fingerprint of the tracker at `target` before anything is sent;
   * throws to refuse.
   */
  verifyTracker: (
    fingerprint: string,
    verified: { byAuthority: boolean },
    target: LinkTarget,
  ) => void | Promise<void>;
  /** Runs on every new connection, before queued requests go out (e.g. session resume). */
  onConnected?: (link: TrackerLink) => Promise<void>;
  /** Told each push the tracker sends on its own (a revocation, an address check). */
  onPush?: (push: Push) => void;
  /** Operational messages (a malformed push). Default: stderr. */
  log?: (line: string) => void;
  /** Told once when the tracker goes away and once when it is back. */
  onStatus?: (status: LinkStatus) => void;
  /**
   * Told after every failed attempt to reach a tracker: which (`address`) and why, and where
   * (`next`) and when the next attempt is.
   */
  onRetry?: (retry: { reason: string; retryInMs: number; address: string; next: string }) => void;
  /**
   * Whether the owner needs the link kept open (someone is logged in). When not, a link the
   * tracker closed for its login grace period waits for the next request. Default: not.
   */
  needsLink?: () => boolean;
  /** Longest interval between pings; shorter when the tracker's idle timeout asks. Default 10 s. */
  heartbeatMs?: number;
  /** A request unanswered this long fails and the connection is recycled. Default 20 s. */
  requestTimeoutMs?: number;
  /**
   * A request unanswered this long, with nothing heard from the tracker meanwhile, has the
   * tracker probed on a fresh connection. Default `PROBE_AFTER_MS`.
   */
  probeAfterMs?: number;
  /** A probe not answered within this takes the tracker for hung. Default `PROBE_TIMEOUT_MS`. */
  probeTimeoutMs?: number;
  /** Connecting (TCP and TLS handshake) gives up after this. Default `CONNECT_TIMEOUT_MS`. */
  connectTimeoutMs?: number;
  /**
   * First and longest pause between reconnection attempts once every tracker failed.
   * Default 100 ms and 5 s.
   */
  backoffMs?: { initial: number; max: number };
}

/** A request waiting this long, with nothing heard meanwhile, has the tracker probed. */
export const PROBE_AFTER_MS = 1_500;
/** A hello on a fresh connection unanswered this long: the tracker is hung. */
export const PROBE_TIMEOUT_MS = 2_500;
/**
 * Connecting to a tracker gives up after this: a hung one accepts TCP (the kernel does) and
 * never finishes the TLS handshake.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How often the link looks for a request waiting too long. */
const WATCH_INTERVAL_MS = 250;

/**
 * What a probe found: the tracker answered (`alive`), did not in time (`hung`), or presented
 * another certificate than the link's connection was accepted with (`impostor`).
 */
type ProbeOutcome = "alive" | "hung" | "impostor";

type Params<T extends RequestType> = Omit<Extract<Request, { type: T }>, "type">;

interface Pending {
  /** What was asked: the reply is checked against that type's shape. */
  type: RequestType;
  resolve(data: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** When it was sent (performance.now()). */
  sentAt: number;
}

/** `dormant`: closed by the tracker for its login grace period, until the next request. */
type State = "connecting" | "up" | "down" | "dormant" | "closed";

/** What ended a connection. */
interface LinkEnd {
  reason: string;
  /** The tracker closed it for not logging in within its grace period. */
  loginDeadline: boolean;
}

/** A request overtaken by the tracker's login-deadline close: never read, safe to send again. */
class LoginDeadlineClose extends TrackerUnavailableError {
  override name = "LoginDeadlineClose";
}

/** The connection ended with the request unanswered: it may or may not have been carried out. */
class ConnectionLost extends TrackerUnavailableError {
  override name = "ConnectionLost";
}

/**
 * Requests that change nothing on the tracker (`find_peers` issues a ticket, which is kept
 * nowhere): when the instance in use goes away with one unanswered, it is asked again of the
 * next instance, as if it had been sent then. Any other could have been carried out before
 * the instance went: its caller is told the link was lost.
 */
const REPEATABLE_ON_ANOTHER: ReadonlySet<RequestType> = new Set<RequestType>([
  "ping",
  "list_sessions",
  "list_requests",
  "list_groups",
  "list_files",
  "check_member",
  "locate_file",
  "find_peers",
  "my_shares",
]);

/** A self-healing link to the tracker. */
export class TrackerLink {
  readonly #options: TrackerLinkOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #stop = new AbortController();
  #conn?: ByteConn;
  /** Why the tracker was refused, while it is: what every command then says. */
  #refusal?: string;
  #nextId = 1;
  #writing: Promise<void> = Promise.resolve();
  #state: State = "connecting";
  #stateChanged = Promise.withResolvers<void>();
  #running?: Promise<void>;
  #saidBadPush = false;
  /** Resolved by the next request while the link is dormant. */
  #wanted = Promise.withResolvers<void>();
  /** Counts the connections that came up: which one a request was sent on. */
  #connections = 0;
  /** When the current connection last brought a frame (performance.now()). */
  #heardAt = 0;
  /** Why the link closed a connection itself (a hung tracker), said as the reason it ended. */
  readonly #closedBecause = new WeakMap<ByteConn, string>();

  constructor(options: TrackerLinkOptions) {
    this.#options = options;
  }

  /** Starts connecting in the background; reconnects until `close`. */
  start(): void {
    this.#running ??= this.#run();
  }

  /** True while connected and greeted (and resumed, when there was a session). */
  get isUp(): boolean {
    return this.#state === "up";
  }

  /**
   * Sends a request and resolves with the tracker's data. Throws `TrackerRefusal` when the
   * tracker says no, `TrackerUnavailableError` when it cannot be reached. While the first
   * connection (or a resume) is still being made, the request waits for its outcome.
   */
  async request<T extends RequestType>(type: T, params: Params<T>): Promise<ResponseData[T]> {
    for (let attempt = 1;; attempt++) {
      await this.#connected();
      if (this.#state !== "up") {
        throw this.#refusal ? new IdentityError(this.#refusal) : new TrackerUnavailableError();
      }
      const connection = this.#connections;
      try {
        return await this.#send(type, params);
      } catch (error) {
        if (attempt > 1) throw error;
        // the tracker never read it (it closes only between requests): send it again, once
        if (error instanceof LoginDeadlineClose) continue;
        // the instance went away with it unanswered: another is dialled at once (when there
        // is one), and a request that changes nothing is asked of it, once
        const another = (this.#options.alternates?.length ?? 0) > 0;
        if (!(error instanceof ConnectionLost && another && REPEATABLE_ON_ANOTHER.has(type))) {
          throw error;
        }
        // the lost connection may still be "up" here: wait until the link has left it
        while (this.#state === "up" && this.#connections === connection) {
          await this.#stateChanged.promise;
        }
      }
    }
  }

  /** Waits while a connection is being made; a dormant link is woken to make one. */
  async #connected(): Promise<void> {
    while (true) {
      if (this.#state === "dormant") {
        this.#setState("connecting");
        this.#wanted.resolve();
      }
      if (this.#state !== "connecting") return;
      await this.#stateChanged.promise;
    }
  }

  /** Stops reconnecting and closes the connection; pending requests fail. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#setState("closed");
    if (this.#conn) closeQuietly(this.#conn);
    await this.#running;
  }

  #setState(state: State): void {
    if (this.#state === "closed") return;
    this.#state = state;
    this.#stateChanged.resolve();
    this.#stateChanged = Promise.withResolvers<void>();
  }

  /** Sends on the current connection, whatever the state; for hello and `onConnected`. */
  #send<T extends RequestType>(type: T, params: Params<T>): Promise<ResponseData[T]> {
    const conn = this.#conn;
    if (!conn) return Promise.reject(new TrackerUnavailableError());
    const id = this.#nextId++;
    const frame = encodeFrame({ id, type, ...params });
    const timeoutMs = this.#options.requestTimeoutMs ?? 20_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TrackerUnavailableError(`the tracker did not answer ${type} in time`));
        closeQuietly(conn); // a link that drops answers is broken: reconnect
      }, timeoutMs);
      this.#pending.set(id, {
        type,
        resolve: resolve as (data: unknown) => void,
        reject,
        timer,
        sentAt: performance.now(),
      });
      this.#writing = this.#writing
        .then(() => writeAll(conn, frame))
        .catch(() => closeQuietly(conn));
    });
  }

  /** Requests sent on the connection being set up (hello, resume) bypass the state gate. */
  sendDuringSetup<T extends RequestType>(type: T, params: Params<T>): Promise<ResponseData[T]> {
    return this.#send(type, params);
  }

  async #run(): Promise<void> {
    const backoff = this.#options.backoffMs ?? { initial: 100, max: 5_000 };
    const targets: LinkTarget[] = [
      { hostname: this.#options.hostname, port: this.#options.port },
      ...this.#options.alternates ?? [],
    ];
    const addresses = targets.map((target) => hostPort(target.hostname, target.port));
    const rotation = new TrackerRotation(targets.length, backoff);
    // the pause of the login-deadline reconnection, which stays with its tracker
    let delayMs = backoff.initial;
    let announcedDown = false;
    // with several trackers, a refused one does not say the others are unreachable: the
    // outage is said once all failed, refused or not (one tracker: its refusal says it all)
    let saidOutage = false;
    /** Why the tracker in use was left, for the line that says where the client went. */
    let leftBecause = "";
    while (!this.#stop.signal.aborted) {
      let lost: LinkEnd = { reason: "", loginDeadline: false };
      const target = targets[rotation.current];
      let watch: ReturnType<typeof setInterval> | undefined;
      /** The certificate this connection was accepted with (none in plaintext). */
      let accepted: string | undefined;
      try {
        const connectTimeoutMs = this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
        this.#conn = await connectTracker({
          hostname: target.hostname,
          port: target.port,
          security: this.#options.security,
          verify: async (fingerprint, verified) => {
            await this.#options.verifyTracker(fingerprint, verified, target);
            accepted = fingerprint;
          },
          // a tracker that accepts and never answers held `close` for the whole handshake,
          // and a hung one would hold the link
          signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(connectTimeoutMs)]),
        }).catch((error) => {
          if (this.#stop.signal.aborted || !(error instanceof DOMException)) throw error;
          if (error.name !== "TimeoutError") throw error;
          throw new Error(`no answer within ${connectTimeoutMs / 1000} s (the tracker is hung?)`);
        });
        // closed while the handshake ran: `close` found no connection to close, so close it here
        if (this.#stop.signal.aborted) {
          closeQuietly(this.#conn);
          this.#conn = undefined;
          break;
        }
        this.#refusal = undefined;
        this.#heardAt = performance.now();
        const reading = this.#readResponses(this.#conn);
        // from the hello on: a tracker that hangs is left in seconds, not at the timeout
        watch = this.#watch(this.#conn, target, accepted);
        const hello = await this.#send("hello", {
          version: PROTOCOL_VERSION,
          peer: this.#options.peer,
          ...this.#options.peerCert ? { peer_cert: this.#options.peerCert } : {},
          pushes: [...OPTIONAL_PUSHES],
        });
        await this.#options.onConnected?.(this);
        delayMs = backoff.initial;
        const left = rotation.connected();
        this.#connections++;
        this.#setState("up");
        if (left !== undefined) {
          // another instance: said whether or not the outage was, as it ends one too
          this.#options.onStatus?.({
            state: "switched",
            from: addresses[left],
            to: addresses[rotation.current],
            reason: leftBecause,
          });
        } else {
          // back from an outage said before; a quiet reconnection says nothing
          this.#options.onStatus?.({ state: "up", reconnected: announcedDown });
        }
        announcedDown = false;
        saidOutage = false;
        // three pings per idle timeout: one lost or late ping does not cost the link
        const heartbeatMs = Math.max(
          50,
          Math.min(this.#options.heartbeatMs ?? 10_000, hello.idle_timeout_ms / 3),
        );
        const heartbeat = setInterval(() => this.#ping(), heartbeatMs);
        try {
          lost = await reading;
        } finally {
          clearInterval(heartbeat);
        }
      } catch (error) {
        if (this.#conn && this.#closedBecause.has(this.#conn)) {
          lost = { reason: this.#closedBecause.get(this.#conn)!, loginDeadline: false };
        } else {
          // closed for the login deadline while still setting up (a very short grace period)
          lost = {
            reason: errorMessage(error),
            loginDeadline: error instanceof LoginDeadlineClose,
          };
        }
        // stopped mid-connect: nothing went wrong, nothing to say
        if (error instanceof IdentityError && !this.#stop.signal.aborted) {
          // said loudly every time it changes; never trusted silently, retried with backoff
          if (this.#refusal !== lost.reason) {
            this.#options.onStatus?.({ state: "refused", reason: lost.reason });
          }
          this.#refusal = lost.reason;
          announcedDown = true;
        }
      }
      clearInterval(watch);
      if (this.#conn) closeQuietly(this.#conn);
      this.#conn = undefined;
      this.#failPending();
      if (this.#stop.signal.aborted) break;
      if (rotation.current === rotation.inUse) leftBecause = lost.reason;
      if (lost.loginDeadline && !announcedDown) {
        // not an outage: nothing to say; connect again when (or as soon as) it is needed
        if (!(this.#options.needsLink?.() ?? false)) {
          await this.#sleepUntilWanted();
        } else {
          await abortableDelay(delayMs, this.#stop.signal);
          delayMs = Math.min(delayMs * 2, backoff.max);
        }
        this.#setState("connecting");
        continue;
      }
      const failed = addresses[rotation.current];
      const next = rotation.failed();
      if (next.outage) {
        this.#setState("down");
        if (!saidOutage && (!announcedDown || targets.length > 1)) {
          announcedDown = true;
          saidOutage = true;
          this.#options.onStatus?.({
            state: "down",
            reason: lost.reason,
            address: addresses[rotation.inUse],
            trying: addresses,
            retryMaxMs: backoff.max,
          });
        }
      } else {
        // another instance is tried at once: requests wait for it rather than fail
        this.#setState("connecting");
      }
      this.#options.onRetry?.({
        reason: lost.reason,
        retryInMs: next.delayMs,
        address: failed,
        next: addresses[next.index],
      });
      if (next.delayMs > 0) await abortableDelay(next.delayMs, this.#stop.signal);
    }
  }

  /** Stays dormant (no connection, nothing said) until a request comes or the link closes. */
  async #sleepUntilWanted(): Promise<void> {
    this.#wanted = Promise.withResolvers<void>();
    this.#setState("dormant");
    const stopped = Promise.withResolvers<void>();
    const onAbort = () => stopped.resolve();
    this.#stop.signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([this.#wanted.promise, stopped.promise]);
    } finally {
      this.#stop.signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Watches the requests on `conn` (see the module's notes): a request waiting with nothing
   * heard for `probeAfterMs` (doubled after each probe answered) has `target` probed, where
   * it must present `accepted` (what `conn` was accepted with); no answer, or one from
   * another certificate, closes `conn`, saying why. Returns the timer to clear when `conn`
   * ends.
   */
  #watch(
    conn: ByteConn,
    target: LinkTarget,
    accepted: string | undefined,
  ): ReturnType<typeof setInterval> {
    const probeAfterMs = this.#options.probeAfterMs ?? PROBE_AFTER_MS;
    const timeoutMs = this.#options.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
    const longestQuietMs = this.#options.requestTimeoutMs ?? 20_000;
    let quietMs = probeAfterMs;
    let probing = false;
    return setInterval(() => {
      if (probing || this.#conn !== conn) return;
      let oldest = Infinity;
      for (const pending of this.#pending.values()) oldest = Math.min(oldest, pending.sentAt);
      if (oldest === Infinity) {
        quietMs = probeAfterMs;
        return;
      }
      if (performance.now() - Math.max(oldest, this.#heardAt) < quietMs) return;
      probing = true;
      this.#probe(target, timeoutMs, accepted).then((outcome) => {
        if (this.#conn !== conn || this.#stop.signal.aborted) return;
        if (outcome === "alive") {
          // busy, not hung: wait on, and probe less often while it stays busy
          this.#heardAt = performance.now();
          quietMs = Math.min(quietMs * 2, longestQuietMs);
          return;
        }
        const found = outcome === "hung"
          ? `a new connection got no answer in ${timeoutMs / 1000} s`
          : "a new connection met another certificate: someone may be intercepting it";
        this.#closedBecause.set(conn, `the tracker stopped answering (${found})`);
        closeQuietly(conn);
      }).finally(() => probing = false);
    }, Math.min(WATCH_INTERVAL_MS, probeAfterMs));
  }

  /**
   * Whether the tracker at `target` greets a fresh connection within `timeoutMs` (any frame
   * back says its event loop runs), presenting `accepted`: the certificate the link's
   * connection was accepted with (in plaintext there is none to check). One presenting
   * another is an `impostor`, sent nothing: an attacker on the path could otherwise answer
   * the probes while blackholing the connection.
   *
   * Compared here rather than asked of `verifyTracker`, which may act: the client's pins a
   * tracker it has no pin for and announces it, and one accepted on a certificate authority's
   * word has no pin, so a probe met by an impostor would pin the impostor. A probe decides
   * only whether to keep this connection; a certificate renewed meanwhile costs one
   * reconnection, where `verifyTracker` decides. Instances of one tracker share its
   * identity, so a probe reaching another instance passes; instances behind one name with
   * certificates of their own (vouched for by an authority) would cost a reconnection when a
   * probe reaches another one.
   */
  async #probe(
    target: LinkTarget,
    timeoutMs: number,
    accepted: string | undefined,
  ): Promise<ProbeOutcome> {
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(timeoutMs)]);
    const given = Promise.withResolvers<false>();
    const giveUp = () => given.resolve(false);
    signal.addEventListener("abort", giveUp, { once: true });
    let conn: ByteConn | undefined;
    let presentedOther = false;
    try {
      conn = await connectTracker({
        hostname: target.hostname,
        port: target.port,
        security: this.#options.security,
        verify: (fingerprint) => {
          if (fingerprint === accepted) return;
          presentedOther = true;
          throw new IdentityError("the tracker presented another certificate than before");
        },
        signal,
      });
      await writeAll(conn, encodeFrame({ id: 1, type: "hello", version: PROTOCOL_VERSION }));
      const frames = readFrames(readableOf(conn))[Symbol.asyncIterator]();
      const first = await Promise.race([frames.next(), given.promise]);
      return first !== false && !first.done ? "alive" : "hung";
    } catch {
      return presentedOther ? "impostor" : "hung";
    } finally {
      signal.removeEventListener("abort", giveUp);
      if (conn) closeQuietly(conn);
    }
  }

  /** Dispatches replies until the connection ends; resolves with why it ended. */
  async #readResponses(conn: ByteConn): Promise<LinkEnd> {
    try {
      for await (const frame of readFrames(readableOf(conn))) {
        this.#heardAt = performance.now();
        if (isPushFrame(frame)) {
          this.#dispatchPush(frame);
          continue;
        }
        if (isLoginDeadlineNotice(frame)) {
          // new requests wait for the next connection; those sent were never read
          if (this.#state === "up") this.#setState("connecting");
          const reason = typeof (frame.error as { message?: unknown }).message === "string"
            ? `the tracker closed the connection: ${(frame.error as { message: string }).message}`
            : "the tracker closed the connection: not logged in in time";
          this.#failPending(new LoginDeadlineClose(reason));
          return { reason, loginDeadline: true };
        }
        const pending = this.#pending.get(frame.id as number);
        if (!pending) continue;
        this.#pending.delete(frame.id as number);
        clearTimeout(pending.timer);
        if (frame.ok === true) {
          this.#settle(pending, frame.data ?? null);
        } else {
          const { code, message } = parseRefusal(frame.error);
          pending.reject(new TrackerRefusal(code, message));
        }
      }
      return {
        reason: this.#closedBecause.get(conn) ?? "the tracker closed the connection",
        loginDeadline: false,
      };
    } catch (error) {
      return { reason: this.#closedBecause.get(conn) ?? errorMessage(error), loginDeadline: false };
    } finally {
      // Wakes a setup step waiting on a reply that will never come.
      this.#failPending();
      closeQuietly(conn);
    }
  }

  /**
   * Hands a reply to its request once it has the shape its type promises; a malformed one
   * fails that request alone (the link goes on) and is logged.
   */
  #settle(pending: Pending, data: unknown): void {
    let reply: unknown;
    try {
      reply = parseReply(pending.type, data);
    } catch (error) {
      const message = errorMessage(error);
      (this.#options.log ?? console.error)(message);
      pending.reject(new MalformedReplyError(message));
      return;
    }
    pending.resolve(reply);
  }

  #dispatchPush(frame: Record<string, unknown>): void {
    let push: Push;
    try {
      push = parsePush(frame);
    } catch (error) {
      if (!this.#saidBadPush) {
        this.#saidBadPush = true;
        (this.#options.log ?? console.error)(
          `tracker sent a malformed push (${errorMessage(error)}); ignoring it and any more`,
        );
      }
      return;
    }
    try {
      this.#options.onPush?.(push);
    } catch (error) {
      (this.#options.log ?? console.error)(
        `handling a tracker push failed: ${errorMessage(error)}`,
      );
    }
  }

  #ping(): void {
    if (this.#state === "up") this.#send("ping", {}).catch(() => {});
  }

  #failPending(
    error: Error = new ConnectionLost("the connection to the tracker was lost"),
  ): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.#pending.delete(id);
    }
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
