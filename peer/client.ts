/**
 * The client program: binds the peer port and serves pieces on it, connects the session to
 * the tracker, and runs the shell until its input ends.
 *
 * @module
 */

import { errorMessage, listenErrorText } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import type { ResolveOptions } from "../lib/paths.ts";
import { formatFingerprint, type Identity, issueCertificate } from "../lib/identity.ts";
import type { PeerAddress } from "../lib/protocol.ts";
import { connectionCap, type ConnListener, hostPort, listen } from "../lib/transport.ts";
import { defaultStateDir, StateDir, trackerAddress as trackerAddressOf } from "./state_dir.ts";
import { seedTracker, type TrackerAddress } from "./tracker_addresses.ts";
import { trackerVerifier } from "./tracker_trust.ts";
import { acceptPeer } from "./connection.ts";
import { MAX_PEER_CONNECTIONS } from "./serving_caps.ts";
import { ClientSession, type SessionEvent } from "./session.ts";
import { Shell } from "./shell.ts";

/** Where the client listens and which tracker it uses. */
export interface ClientOptions {
  host: string;
  port: number;
  trackerHost: string;
  trackerPort: number;
  /**
   * Other instances of the tracker's deployment (`--tracker`), tried in turn when the one in
   * use fails; the seed's address still keys this client's state (shares, downloads).
   */
  alternateTrackers?: TrackerAddress[];
  json: boolean;
  /** How long a download waits for a missing piece before failing. Default: for ever. */
  stallTimeoutMs?: number;
  /** How long a peer may deliver nothing with requests of ours before it is dropped. */
  requestTimeoutMs?: number;
  /** How long past its expiry a peer's ticket is still honoured (clock skew). */
  ticketGraceMs?: number;
  /** Upload limit in KiB per second. */
  uploadLimitKib?: number;
  downloadLimitKib?: number;
  /** Where identity and known trackers live; default `defaultStateDir()`. */
  stateDir?: string;
  /** The tracker's certificate fingerprint (hex), instead of trust on first use. */
  trackerFingerprint?: string;
  /** Where other peers reach this client, when not `host:port` (a relay, port forwarding). */
  publicAddress?: PeerAddress;
  /** Plain TCP on every link, for measurements only. */
  insecurePlaintext?: boolean;
  /** How typed paths resolve: where the user started the client. Default: its working directory. */
  paths?: ResolveOptions;
  /** The client's log: transfers and the tracker's reachability (never the shell's stdout). */
  logger?: Logger;
}

/** Runs the client until its shell ends; resolves with the exit code. */
export async function runClient(options: ClientOptions): Promise<number> {
  let identity: Identity;
  let stateDir: StateDir;
  try {
    stateDir = await StateDir.open(options.stateDir ?? defaultStateDir());
    identity = await stateDir.identity();
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
  const plaintext = options.insecurePlaintext === true;
  if (plaintext) console.error(PLAINTEXT_WARNING);
  const advertisedHost = options.publicAddress?.host ?? options.host;
  // peers dial `advertisedHost` and accept only this certificate there, which must name it
  const serving = await issueCertificate(identity, "swarmshare peer", [advertisedHost]);
  let listener: ConnListener;
  try {
    listener = await listen({
      hostname: options.host,
      port: options.port,
      security: plaintext
        ? { mode: "plaintext" }
        : { mode: "tls", certPem: serving.certPem, keyPem: identity.keyPem },
      // memory, not descriptors, bounds a serving peer: 256 connections of 1.75 MiB at most
      maxConnections: Math.min(connectionCap(), MAX_PEER_CONNECTIONS),
    });
  } catch (error) {
    console.error(
      `error: cannot serve peers on ${hostPort(options.host, options.port)}: ${
        listenErrorText(error)
      }`,
    );
    return 1;
  }
  const interactive = Deno.stdin.isTerminal();
  const logger = options.logger ?? new Logger();
  const trackerAddress = trackerAddressOf(options.trackerHost, options.trackerPort);
  const trackers = [
    seedTracker(options.trackerHost, options.trackerPort),
    ...options.alternateTrackers ?? [],
  ];
  // "tracker A" or "tracker A (else B, C)": where the client goes when A fails
  const trackersText = `tracker ${trackerAddress}` +
    (trackers.length > 1
      ? ` (else ${trackers.slice(1).map((tracker) => tracker.address).join(", ")})`
      : "");
  logger.info(
    `client serving peers on ${hostPort(options.host, listener.addr.port)}, ${trackersText}`,
  );
  // lines of attempts, which repeat for as long as every tracker is down; bounded per window
  const retryLog = logger.limited({ maxLines: RETRY_LOG_LINES, windowMs: RETRY_LOG_WINDOW_MS });
  const verify = trackerVerifier({
    addresses: trackers.map((tracker) => tracker.address),
    stateDir,
    expected: options.trackerFingerprint,
    onTrusted: ({ address, fingerprint, file, sameAs }) =>
      shell.announce({
        event: "tracker_trusted",
        address,
        fingerprint: formatFingerprint(fingerprint),
        file,
        ...sameAs ? { same_as: sameAs } : {},
      }),
  });
  // The session announces through the shell, and the shell runs the session's commands.
  let shellDone = false;
  const session = new ClientSession({
    hostname: options.trackerHost,
    port: options.trackerPort,
    alternates: (options.alternateTrackers ?? []).map((tracker) => ({
      hostname: tracker.host,
      port: tracker.port,
    })),
    peer: options.publicAddress ?? { host: options.host, port: listener.addr.port },
    peerCert: plaintext ? undefined : serving.certPem,
    security: plaintext
      ? { mode: "plaintext" }
      : { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
    verifyTracker: (fingerprint, verified, target) =>
      verify(fingerprint, verified, trackerAddressOf(target.hostname, target.port)),
    logger,
    onEvent: (event) => {
      logEvent(logger, event);
      // once the user has left (quit, Ctrl-D), the ending of the session is no news to them
      if (!shellDone) shell.announce(event);
    },
    onRetry: ({ reason, retryInMs, address, next }) =>
      retryLog.debug(
        `tracker ${address} unreachable (${reason}); next try ` +
          (next === address ? "" : `${next} `) + `in ${(retryInMs / 1000).toFixed(1)} s`,
      ),
    stallTimeoutMs: options.stallTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    ticketGraceMs: options.ticketGraceMs,
    uploadBytesPerSecond: options.uploadLimitKib ? options.uploadLimitKib * 1024 : undefined,
    downloadBytesPerSecond: options.downloadLimitKib ? options.downloadLimitKib * 1024 : undefined,
    pendingShares: (user) => stateDir.pendingShares(trackerAddress, user),
    unfinishedDownloads: (user) => stateDir.unfinishedDownloads(trackerAddress, user),
  });
  const servingPeers = servePeers(listener, session);
  const shell = new Shell({
    session,
    json: options.json,
    interactive,
    paths: options.paths,
    log: logger,
    history: (user) => stateDir.history(user),
  });
  if (interactive) {
    console.error(
      `swarmshare client: serving peers on ${options.host}:${listener.addr.port}, ` +
        `${trackersText}, ` +
        (plaintext
          ? "links in clear"
          : `links encrypted (TLS); this device is ${formatFingerprint(identity.fingerprint)}`) +
        "; type help for commands",
    );
  }

  // SIGTERM, and SIGINT (on a terminal Ctrl-C is a key the shell reads; a signal comes from
  // elsewhere, or from Ctrl-C with input on a pipe): log out and leave cleanly. A second
  // SIGINT while leaving does not wait for it.
  let stopping = false;
  const stop = () => {
    stopping = true;
    shell.stop();
  };
  const interrupt = () => {
    if (stopping) Deno.exit(130);
    stop();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", interrupt);
  session.start();
  try {
    await shell.run();
  } finally {
    shellDone = true;
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", interrupt);
    await session.close();
    listener.close();
    await servingPeers;
  }
  return 0;
}

/** Writes what the client's log says of an event: transfers and the tracker's comings and goings. */
function logEvent(logger: Logger, event: SessionEvent): void {
  switch (event.event) {
    case "download_complete": {
      const peers = event.peers.filter((peer) => peer.bytes > 0);
      logger.info(
        `download of "${event.name}" from group "${event.group}" complete: ${event.size} bytes ` +
          `in ${event.seconds.toFixed(1)} s to ${event.path}, from ${peers.length} peer` +
          `${peers.length === 1 ? "" : "s"}` +
          (peers.length === 0
            ? ""
            : ` (${peers.map((peer) => `${peer.peer}: ${peer.bytes} bytes`).join(", ")})`),
      );
      return;
    }
    case "download_failed":
      return logger.warn(
        `download of "${event.name}" from group "${event.group}" failed: ${event.reason}`,
      );
    case "share_dropped":
      return logger.warn(
        `no longer sharing "${event.name}" in group "${event.group}": ${event.reason}`,
      );
    case "peer_refused":
      return logger.warn(`peer ${event.peer} refused for "${event.name}": ${event.reason}`);
    case "peer_revoked":
      return logger.info(
        `stopped serving ${event.peer} (${event.user} left group "${event.group}")`,
      );
    case "tracker_disconnected":
      return logger.warn(
        `tracker ${event.address} unreachable (${event.reason}); trying again every ` +
          `${event.retry_max_ms / 1000} s at most`,
      );
    case "tracker_reconnected":
      return logger.info("reconnected to the tracker");
    case "tracker_switched":
      return logger.warn(
        `tracker ${event.from} unreachable (${event.reason}); now using ${event.to}`,
      );
    case "download_resumed":
      return logger.info(
        `download of "${event.name}" from group "${event.group}" taken up at login ` +
          `${event.paused ? "and kept paused" : "and resumed"}: ${event.pieces_done} of ` +
          `${event.pieces_total} pieces verified, to ${event.path}`,
      );
    case "download_not_resumed":
      return logger.warn(
        event.group === null
          ? `not resuming from ${event.file}: ${event.reason}`
          : `download of "${event.name}" from group "${event.group}" not resumed: ${event.reason}`,
      );
    case "session_expired":
      return logger.warn(`the tracker ended the session of ${event.user}`);
    case "tracker_refused":
      return logger.error(`tracker refused: ${event.reason}`);
    case "address_unverified":
      return logger.warn(`peers are not sent to ${event.address}: ${event.reason}`);
    case "address_verified":
      return logger.info(`the tracker verified ${event.address}`);
    case "notices_held":
      return logger.warn(`the tracker sent too many notices: ${event.count} not shown`);
    default:
      // notices and first-use trust: the shell says them; the log only notes them
      return logger.debug(`event ${event.event}`);
  }
}

/**
 * Lines saying where the next attempt to reach a tracker goes, per `RETRY_LOG_WINDOW_MS`:
 * a round over 17 trackers fits, and a long outage adds one line per attempt (one per 5 s
 * at most once the pause has grown) within this bound.
 */
const RETRY_LOG_LINES = 20;
const RETRY_LOG_WINDOW_MS = 10_000;

/** Said on every start of either program in plaintext mode. */
export const PLAINTEXT_WARNING =
  "warning: --insecure-plaintext: every link travels in clear (passwords, session tokens, " +
  "tickets, file contents) and no identity is checked; for measurements only";

/** Accepts peer connections, each served on its own. */
async function servePeers(listener: ConnListener, session: ClientSession): Promise<void> {
  const connections = new Set<Promise<void>>();
  try {
    for await (const conn of listener) {
      const served = acceptPeer(conn, session.registry, session.peerContext)
        .finally(() => connections.delete(served));
      connections.add(served);
    }
  } catch {
    // the listener was closed
  }
  await Promise.allSettled(connections);
}
