/**
 * One peer socket: the BitTorrent handshake, the BEP 10 extension handshake that carries the
 * download ticket, the message loop, and serving blocks from disk. It is the only place that
 * touches both a socket and torrent state; a running download sees it as a `PeerHandle`.
 *
 * Access: the side that accepted the connection serves nothing and closes unless the remote
 * presents a valid ticket for this torrent; the side that connected out accepts a remote
 * without a ticket (a seeder has none) but serves it nothing. A served remote keeps its
 * ticket fresh with later extension handshakes; when the ticket runs out (plus the clock
 * skew) without a fresher one, or a later one is bad, the connection is closed. A connection
 * we accepted takes a place among its user's (peer/serving_caps.ts) when its first ticket
 * verifies, and is refused (closed, with a log line) when that user has no place left; its
 * later tickets must name the same user. Every length, index and count a remote sends is
 * checked before use; a breach closes this connection only.
 *
 * @module
 */

import { type BDict, decode, encode } from "../lib/bencode.ts";
import { Bitfield } from "../lib/bitfield.ts";
import { errorMessage, ProtocolError } from "../lib/errors.ts";
import { closeQuietly, isDisconnect, writeAll } from "../lib/io.ts";
import {
  BLOCK_LENGTH,
  isServableRequest,
  isValidBlock,
  PIECE_LENGTH,
  pieceCount,
} from "../lib/pieces.ts";
import {
  decodeDonthave,
  encodeBitfield,
  encodeCancel,
  encodeDonthave,
  encodeExtended,
  encodeHandshake,
  encodeHave,
  encodeKeepAlive,
  encodeSimple,
  extensionIdOf,
  framePieceRun,
  PIECE_HEADER_LENGTH,
  REQUEST_MESSAGE_LENGTH,
  type WireMessage,
  WireReader,
  writeRequest,
} from "../lib/wire.ts";
import { pemToDer } from "../lib/identity.ts";
import type { PeerEndpoint } from "../lib/protocol.ts";
import { CLOCK_SKEW_MS, type TicketClaims } from "../lib/ticket.ts";
import {
  type AcceptedConn,
  type ByteConn,
  connectPeer as connectSecurely,
  IdentityError,
  type Security,
  sha256Hex,
} from "../lib/transport.ts";
import { FirstCopies, SHOW_AGAIN_MS } from "./first_copies.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { TransferRates } from "./rate_window.ts";
import type { ServingCaps } from "./serving_caps.ts";
import type { HeldTorrent, PeerHandle, TorrentRegistry } from "./torrents.ts";

/** What connections need from the client around them. */
export interface PeerContext {
  /** Our 20-byte peer id. */
  peerId: Uint8Array;
  /** The port our peer listener is on, told to remotes in the extension handshake. */
  listenPort: number;
  /**
   * Resolves with the ticket's claims when `ticket` lets its holder fetch `torrent`
   * (signature, expiry, group, not revoked) and was issued to the certificate the remote
   * presented (`holder`; undefined in plaintext); throws otherwise.
   */
  checkTicket(
    ticket: string,
    torrent: HeldTorrent,
    holder: string | undefined,
  ): Promise<TicketClaims>;
  /** How long past its expiry a ticket still serves (clock skew). Default `CLOCK_SKEW_MS`. */
  ticketGraceMs?: number;
  /** What we present on peer links (our certificate), or plaintext. */
  security: Security;
  /** Our own ticket for a torrent we are downloading, if any. */
  ticketFor(torrent: HeldTorrent): string | undefined;
  /** Operational messages (never secrets). */
  log(line: string): void;
  /** Shared upload limit (its rate may be none). */
  uploadLimiter?: RateLimiter;
  /**
   * Shared download limit: after a block arrives the connection reads nothing more until
   * the limit lets that block's bytes through, so TCP slows the sender down.
   */
  downloadLimiter?: RateLimiter;
  /**
   * Connections served per user and per (user, file), for the connections we accepted
   * (those we open are bounded by our own downloads); none: no caps.
   */
  servingCaps?: ServingCaps;
}

/** Our extended message id for BEP 54 `lt_donthave` (a piece no longer offered). */
const LT_DONTHAVE_ID = 1;

/** The most blocks served with one read and one write (a whole piece). */
const MAX_RUN_BLOCKS = 32;
/** Messages up to this long are joined with their neighbours into one write; longer ones go alone. */
const MAX_JOINED_MESSAGE_BYTES = 4096;
/** The most bytes joined into one write. */
const MAX_JOINED_BYTES = 64 * 1024;
/** Extension handshakes with a ticket a remote may have waiting for their check. */
const MAX_PENDING_TICKET_CHECKS = 4;
/** Requests a remote may have queued with us before it is in breach. */
const MAX_QUEUED_REQUESTS = 512;
/** A remote must complete both handshakes within this. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_MS = 60_000;
/** Nothing at all from a remote for this long closes the connection (checked every 15 s). */
const READ_IDLE_TIMEOUT_MS = 180_000;
const IDLE_CHECK_MS = 15_000;
const CLIENT_VERSION = "Swarmshare 0.1";
const encoder = new TextEncoder();

/** Accepts an incoming connection: its handshake names a torrent we hold, or it is closed. */
export async function acceptPeer(
  conn: AcceptedConn,
  registry: TorrentRegistry,
  context: PeerContext,
): Promise<void> {
  const reader = new WireReader(conn, {}, 1 << 16);
  const timer = setTimeout(() => closeQuietly(conn), HANDSHAKE_TIMEOUT_MS);
  let torrent: HeldTorrent | undefined;
  try {
    const handshake = await reader.readHandshake();
    torrent = registry.get(handshake.infoHash.toHex());
    if (!torrent) throw new ProtocolError("handshake names a torrent we do not hold");
    reader.limit(limitsFor(torrent));
    await writeAll(conn, encodeHandshake(torrent.infoHash, context.peerId));
  } catch (error) {
    clearTimeout(timer);
    closeQuietly(conn);
    if (!isDisconnect(error)) context.log(`peer ${describe(conn)}: ${errorMessage(error)}`);
    return;
  }
  clearTimeout(timer);
  const peer = new PeerConnection(conn, reader, torrent, context, false, undefined, {
    fingerprint: conn.peerFingerprint,
  });
  await peer.run();
}

/** Connects to a peer for a torrent we are downloading; resolves when the connection ends. */
export async function connectPeer(
  address: PeerEndpoint,
  torrent: HeldTorrent,
  context: PeerContext,
  onOpen?: (peer: PeerConnection) => void,
): Promise<void> {
  if (context.security.mode === "tls" && address.cert !== undefined) {
    // the certificate and the fingerprint travel together from the tracker: they must agree
    let der: Uint8Array | undefined;
    try {
      der = pemToDer(address.cert, "CERTIFICATE");
    } catch {
      der = undefined;
    }
    if (!der || sha256Hex(der) !== address.fingerprint) {
      throw new IdentityError(
        `the tracker's certificate for peer ${address.host}:${address.port} does not match its fingerprint`,
      );
    }
  }
  // TLS over TCP_NODELAY: request batches must not wait for the previous ones to be acked
  const conn = await connectSecurely({
    hostname: address.host,
    port: address.port,
    security: context.security,
    peerCertPem: address.cert,
    peerFingerprint: address.fingerprint,
  });
  const reader = new WireReader(conn, limitsFor(torrent));
  const timer = setTimeout(() => closeQuietly(conn), HANDSHAKE_TIMEOUT_MS);
  try {
    await writeAll(conn, encodeHandshake(torrent.infoHash, context.peerId));
    const handshake = await reader.readHandshake();
    if (handshake.infoHash.toHex() !== torrent.infoHashHex) {
      throw new ProtocolError("the peer answered for another torrent");
    }
  } catch (error) {
    closeQuietly(conn);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const peer = new PeerConnection(
    conn,
    reader,
    torrent,
    context,
    true,
    `${address.host}:${address.port}`,
    // its tickets name the device the tracker saw; we checked its serving certificate
    { fingerprint: address.device },
  );
  onOpen?.(peer);
  await peer.run();
}

/** A bitfield may be no longer than the torrent's pieces need. */
function limitsFor(torrent: HeldTorrent): { maxBitfieldBytes: number } {
  return { maxBitfieldBytes: Math.ceil(pieceCount(torrent.info.length) / 8) };
}

function describe(conn: ByteConn): string {
  return `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
}

interface QueuedRequest {
  index: number;
  begin: number;
  length: number;
}

/** A connection past the BitTorrent handshake. */
export class PeerConnection implements PeerHandle {
  readonly #conn: ByteConn;
  /** The remote's certificate fingerprint, when it presented one (TLS, accepting side). */
  readonly #remoteFingerprint?: string;
  readonly #reader: WireReader;
  readonly #torrent: HeldTorrent;
  readonly #context: PeerContext;
  readonly #outgoing: boolean;
  readonly #pieceCount: number;
  #address: string;
  #pieces: Bitfield;
  #isChokingUs = true;
  #amInterested = false;
  #canServe = false;
  #sawExtensionHandshake = false;
  #ready = false;
  #closed = false;
  #closeReason = "";
  /** Messages not yet handed to the socket, in order, and the write that drains them. */
  readonly #outbox: Uint8Array[] = [];
  #draining?: Promise<void>;
  /** The claims of the ticket we serve the remote under, once one verified. */
  #claims?: TicketClaims;
  #expiryTimer?: ReturnType<typeof setTimeout>;
  /** Tickets are checked one after another, in the order they came. */
  #ticketChecks: Promise<void> = Promise.resolve();
  #pendingTicketChecks = 0;
  readonly #serveQueue: QueuedRequest[] = [];
  #runBuffer?: Uint8Array;
  /** The piece this connection last served, and since when: its runs' rank at the limit. */
  #servingPiece = -1;
  #servingSince = 0;
  #serving = false;
  /**
   * Tells the remote of a piece we now have, unless it has the piece itself: it would never
   * ask us for it (BEP 3 leaves such haves to the sender; libtorrent calls them redundant).
   * Among downloaders trading a file, most pieces reach each of them after some of the others.
   */
  readonly #onHave = (index: number) => {
    if (!this.#pieces.has(index)) this.#send(encodeHave(index));
  };
  /** The remote's extended message id for `lt_donthave`, when it takes them. */
  #remoteDonthaveId?: number;
  /**
   * Pieces this client, a capped sharer, told the remote it no longer has because another
   * connection claimed their first copy (peer/first_copies.ts), with when; and those shown
   * again after that, served from then on. At most one entry per piece each.
   */
  readonly #hidden = new Map<number, number>();
  readonly #shownAgain = new Set<number>();
  #showAgainTimer?: ReturnType<typeof setInterval>;
  /** Bytes of piece data received and served on this connection. */
  bytesReceived = 0;
  bytesServed = 0;
  /** Sampled once a second by the client (peer/file_sharing.ts), never per block. */
  readonly rates = new TransferRates();

  constructor(
    conn: ByteConn,
    reader: WireReader,
    torrent: HeldTorrent,
    context: PeerContext,
    outgoing: boolean,
    address?: string,
    remote: { fingerprint?: string } = {},
  ) {
    this.#conn = conn;
    this.#remoteFingerprint = remote.fingerprint;
    this.#reader = reader;
    this.#torrent = torrent;
    this.#context = context;
    this.#outgoing = outgoing;
    this.#pieceCount = pieceCount(torrent.info.length);
    this.#pieces = new Bitfield(this.#pieceCount);
    this.#address = address ?? describe(conn);
  }

  get address(): string {
    return this.#address;
  }

  get isOutgoing(): boolean {
    return this.#outgoing;
  }

  get pieces(): Bitfield {
    return this.#pieces;
  }

  get isChokingUs(): boolean {
    return this.#isChokingUs;
  }

  /** The verified claims of the ticket the remote is served under, if it is. */
  get ticketClaims(): TicketClaims | undefined {
    return this.#claims;
  }

  /** Why the connection ended, once it has. */
  get closeReason(): string {
    return this.#closeReason;
  }

  /** Runs the connection until it ends; never throws. */
  async run(): Promise<void> {
    this.#torrent.connections.add(this);
    const handshakeTimer = setTimeout(() => {
      if (!this.#sawExtensionHandshake) this.close("no extension handshake");
    }, HANDSHAKE_TIMEOUT_MS);
    const keepAlive = setInterval(() => this.#send(encodeKeepAlive()), KEEP_ALIVE_MS);
    // one coarse check rather than a timer re-armed for every message
    let lastHeardAt = Date.now();
    const idleCheck = setInterval(() => {
      if (Date.now() - lastHeardAt > READ_IDLE_TIMEOUT_MS) this.close("silent for too long");
    }, IDLE_CHECK_MS);
    try {
      this.#sendExtensionHandshake();
      while (!this.#closed) {
        // a batch already buffered is handled without a promise per message
        const message = this.#reader.nextBuffered() ?? await this.#reader.next();
        if (message === null) break;
        lastHeardAt = Date.now();
        this.#handle(message);
        if (message.type === "piece" && this.#context.downloadLimiter) {
          await this.#context.downloadLimiter.take(message.block.length);
        }
        // requests come in batches: serve once the batch is parsed, so runs are long
        if (!this.#serving && this.#serveQueue.length > 0 && !this.#reader.hasBufferedMessage) {
          this.#serve();
        }
      }
      this.close("the peer closed the connection");
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.#context.log(`peer ${this.#address}: ${error.message}; disconnecting`);
        this.close(error.message);
      } else {
        this.close(isDisconnect(error) ? "connection lost" : errorMessage(error));
      }
    } finally {
      clearTimeout(handshakeTimer);
      clearInterval(idleCheck);
      clearInterval(keepAlive);
      this.close("done");
    }
  }

  /** Ends the connection; idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    clearTimeout(this.#expiryTimer);
    closeQuietly(this.#conn);
    this.#context.servingCaps?.release(this);
    this.#torrent.connections.delete(this);
    this.#torrent.haveListeners.delete(this.#onHave);
    this.#serveQueue.length = 0;
    clearInterval(this.#showAgainTimer);
    this.#torrent.firstCopies?.release(this);
    if (this.#ready) this.#torrent.sink?.peerLeft(this);
  }

  // Sending

  /**
   * Queues a message; resolves once it and everything queued before it are written (never
   * rejects: a failed write closes the connection). What one task sends to a peer (a have,
   * a change of interest and requests after a piece is verified; cancels and requests after
   * a batch of blocks) goes out in one write rather than one each.
   */
  #send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#outbox.push(bytes);
    this.#draining ??= this.#drain();
    return this.#draining;
  }

  async #drain(): Promise<void> {
    try {
      // the rest of the current task queues its messages first
      await Promise.resolve();
      while (!this.#closed && this.#outbox.length > 0) {
        await writeAll(this.#conn, this.#takeWrite());
      }
    } catch (error) {
      this.close(isDisconnect(error) ? "connection lost" : errorMessage(error));
    } finally {
      this.#draining = undefined;
      this.#outbox.length = 0;
    }
  }

  /**
   * The next write: a run of piece messages as it is (not copied), or the small messages at
   * the head of the outbox joined in one buffer.
   */
  #takeWrite(): Uint8Array {
    const outbox = this.#outbox;
    let count = 0;
    let bytes = 0;
    while (
      count < outbox.length && outbox[count].length <= MAX_JOINED_MESSAGE_BYTES &&
      bytes + outbox[count].length <= MAX_JOINED_BYTES
    ) {
      bytes += outbox[count++].length;
    }
    if (count <= 1) return outbox.shift()!;
    const joined = new Uint8Array(bytes);
    let at = 0;
    for (const message of outbox.splice(0, count)) {
      joined.set(message, at);
      at += message.length;
    }
    return joined;
  }

  /** Hands the remote a fresher ticket of ours (a later extension handshake carrying it). */
  sendTicket(ticket: string): void {
    this.#sendExtensionHandshake(ticket);
  }

  #sendExtensionHandshake(ticket = this.#context.ticketFor(this.#torrent)): void {
    const handshake: BDict = new Map();
    handshake.set("m", new Map([["lt_donthave", LT_DONTHAVE_ID]]));
    handshake.set("p", this.#context.listenPort);
    handshake.set("reqq", MAX_QUEUED_REQUESTS);
    handshake.set("v", encoder.encode(CLIENT_VERSION));
    if (ticket) handshake.set("ticket", encoder.encode(ticket));
    this.#send(encodeExtended(0, encode(handshake)));
  }

  sendInterested(interested: boolean): void {
    if (interested === this.#amInterested) return;
    this.#amInterested = interested;
    this.#send(encodeSimple(interested ? "interested" : "not_interested"));
  }

  sendRequests(requests: readonly QueuedRequest[]): void {
    if (requests.length === 0) return;
    // one write for the whole batch
    const bytes = new Uint8Array(requests.length * REQUEST_MESSAGE_LENGTH);
    requests.forEach((request, i) =>
      writeRequest(bytes, i * REQUEST_MESSAGE_LENGTH, request.index, request.begin, request.length)
    );
    this.#send(bytes);
  }

  sendCancel(index: number, begin: number, length: number): void {
    this.#send(encodeCancel(index, begin, length));
  }

  // Receiving

  #handle(message: WireMessage): void {
    switch (message.type) {
      case "extended":
        if (message.extId === 0) this.#onExtensionHandshake(message.payload);
        else if (message.extId === LT_DONTHAVE_ID) this.#onDonthave(message.payload);
        return;
      case "choke":
        this.#isChokingUs = true;
        if (this.#ready) this.#torrent.sink?.peerChoked(this);
        return;
      case "unchoke":
        this.#isChokingUs = false;
        this.#becomeReady();
        this.#torrent.sink?.peerUnchoked(this);
        return;
      case "have":
        if (message.index >= this.#pieceCount) {
          throw new ProtocolError(`have ${message.index} out of range`);
        }
        if (this.#pieces.add(message.index) && this.#ready) {
          this.#torrent.sink?.peerHas(this, message.index);
        }
        this.#becomeReady();
        return;
      case "bitfield":
        if (this.#ready || this.#pieces.count > 0) throw new ProtocolError("bitfield out of order");
        this.#pieces = Bitfield.fromWire(this.#pieceCount, message.bits);
        this.#becomeReady();
        return;
      case "request":
        return this.#onRequest(message);
      case "cancel": {
        const at = this.#serveQueue.findIndex((queued) =>
          queued.index === message.index && queued.begin === message.begin
        );
        if (at >= 0) this.#serveQueue.splice(at, 1);
        return;
      }
      case "piece":
        if (
          !isValidBlock(
            this.#torrent.info.length,
            message.index,
            message.begin,
            message.block.length,
          )
        ) {
          throw new ProtocolError(
            `piece ${message.index}+${message.begin} is not a block we ask for`,
          );
        }
        this.bytesReceived += message.block.length;
        this.#torrent.bytesReceived += message.block.length;
        this.#torrent.sink?.blockArrived(this, message.index, message.begin, message.block);
        return;
      default:
        // keep-alive, interest, port and unknown extensions need nothing from us
        return;
    }
  }

  #becomeReady(): void {
    if (this.#ready || this.#closed) return;
    this.#ready = true;
    this.#torrent.sink?.peerReady(this);
  }

  #onExtensionHandshake(payload: Uint8Array): void {
    const first = !this.#sawExtensionHandshake;
    this.#sawExtensionHandshake = true;
    const dict = decode(payload);
    if (!(dict instanceof Map)) throw new ProtocolError("extension handshake is not a dictionary");
    const donthave = extensionIdOf(dict, "lt_donthave");
    if (donthave !== undefined) this.#remoteDonthaveId = donthave || undefined; // 0: off
    const port = dict.get("p");
    if (typeof port === "number" && port > 0 && port < 65536) {
      this.#address = `${this.#conn.remoteAddr.hostname}:${port}`;
    }
    const ticket = dict.get("ticket");
    if (!(ticket instanceof Uint8Array)) {
      // later handshakes without one only update settings we ignore
      if (first && !this.#outgoing) this.close("no ticket: not serving");
      return;
    }
    const text = new TextDecoder().decode(ticket);
    const holder = this.#remoteFingerprint;
    // each check costs a signature verification: a remote may not queue them up
    if (this.#pendingTicketChecks >= MAX_PENDING_TICKET_CHECKS) {
      throw new ProtocolError(`more than ${MAX_PENDING_TICKET_CHECKS} tickets awaiting a check`);
    }
    this.#pendingTicketChecks++;
    this.#ticketChecks = this.#ticketChecks.then(() =>
      this.#context.checkTicket(text, this.#torrent, holder).then(
        (claims) => this.#acceptTicket(claims),
        (error) => {
          this.#context.log(`peer ${this.#address}: ${errorMessage(error)}; disconnecting`);
          this.close(`bad ticket: ${errorMessage(error)}`);
        },
      )
    ).finally(() => this.#pendingTicketChecks--);
  }

  /** A ticket verified: serve under it until it runs out, unless a fresher one comes. */
  #acceptTicket(claims: TicketClaims): void {
    if (this.#closed) return;
    if (this.#claims && claims.user !== this.#claims.user) {
      // a connection is one user's: its place among that user's connections was taken once
      return this.#refuse(`a ticket of ${claims.user} on a connection of ${this.#claims.user}`);
    }
    // an older ticket arriving late does not shorten the one we have
    if (this.#claims && claims.expiresAt < this.#claims.expiresAt) return;
    if (!this.#outgoing && !this.#claims) {
      const refusal = this.#context.servingCaps?.admit(
        this,
        claims.user,
        this.#torrent.infoHashHex,
      );
      if (refusal) return this.#refuse(refusal);
    }
    this.#claims = claims;
    clearTimeout(this.#expiryTimer);
    const graceMs = this.#context.ticketGraceMs ?? CLOCK_SKEW_MS;
    const delayMs = claims.expiresAt + graceMs - Date.now();
    if (delayMs <= 0) return this.close("ticket expired");
    this.#expiryTimer = setTimeout(() => {
      this.#context.log(`peer ${this.#address}: ticket expired; disconnecting`);
      this.close("ticket expired");
    }, delayMs);
    this.#startServing();
  }

  /** Closes the connection for a reason the remote's user should hear of, and logs it. */
  #refuse(reason: string): void {
    this.#context.log(`peer ${this.#address}: refused: ${reason}; disconnecting`);
    this.close(`refused: ${reason}`);
  }

  /** The remote proved membership: tell it what we have and let it ask. */
  #startServing(): void {
    if (this.#closed || this.#canServe) return;
    this.#canServe = true;
    if (this.#torrent.have.count > 0) this.#send(encodeBitfield(this.#torrent.have.bytes));
    this.#torrent.haveListeners.add(this.#onHave);
    this.#send(encodeSimple("unchoke"));
  }

  /**
   * A sharer whose uplink is capped sends each piece's first copy to one downloader only,
   * when the downloader understands `lt_donthave` (peer/first_copies.ts).
   */
  get #hidesCopies(): boolean {
    const torrent = this.#torrent;
    return this.#remoteDonthaveId !== undefined && torrent.have.isComplete && !torrent.sink &&
      this.#context.uploadLimiter?.rate !== undefined;
  }

  /** Tells the remote we no longer have a piece another connection claimed, for a while. */
  #hide(index: number): void {
    this.#hidden.set(index, Date.now());
    this.#send(encodeDonthave(this.#remoteDonthaveId!, index));
    this.#showAgainTimer ??= setInterval(() => this.#showAgain(), SHOW_AGAIN_MS / 4);
  }

  /** Offers again the pieces hidden for `SHOW_AGAIN_MS`: the remote found nobody else. */
  #showAgain(): void {
    const now = Date.now();
    for (const [index, since] of this.#hidden) {
      if (now - since < SHOW_AGAIN_MS) continue;
      this.#hidden.delete(index);
      this.#shownAgain.add(index);
      this.#send(encodeHave(index));
    }
    if (this.#hidden.size === 0) {
      clearInterval(this.#showAgainTimer);
      this.#showAgainTimer = undefined;
    }
  }

  /** BEP 54: the remote no longer offers a piece. */
  #onDonthave(payload: Uint8Array): void {
    const index = decodeDonthave(payload, this.#pieceCount);
    if (!this.#pieces.has(index)) return;
    this.#pieces.delete(index);
    if (this.#ready) this.#torrent.sink?.peerLost(this, index);
  }

  /** Takes the head request and those that directly follow it in the same piece. */
  #takeRun(): QueuedRequest[] {
    const run = [this.#serveQueue.shift()!];
    // under an upload limit a run is at most a tenth of a second's worth (one block at
    // least), so the limit paces blocks rather than letting a long run burst through
    const rate = this.#context.uploadLimiter?.rate;
    const most = rate === undefined
      ? MAX_RUN_BLOCKS
      : Math.max(1, Math.min(MAX_RUN_BLOCKS, Math.floor(rate / 10 / BLOCK_LENGTH)));
    while (run.length < most && this.#serveQueue.length > 0) {
      const last = run[run.length - 1];
      const next = this.#serveQueue[0];
      if (next.index !== last.index || next.begin !== last.begin + last.length) break;
      run.push(this.#serveQueue.shift()!);
    }
    return run;
  }

  #onRequest(request: QueuedRequest): void {
    if (!this.#canServe) throw new ProtocolError("request before a valid ticket");
    if (
      !isServableRequest(this.#torrent.info.length, request.index, request.begin, request.length)
    ) {
      throw new ProtocolError(
        `request ${request.index}+${request.begin}/${request.length} is invalid`,
      );
    }
    if (!this.#torrent.have.has(request.index)) return; // it will learn from our haves
    if (this.#hidden.has(request.index)) return; // asked before it heard our donthave
    if (this.#hidesCopies && !this.#shownAgain.has(request.index)) {
      this.#torrent.firstCopies ??= new FirstCopies(this.#torrent.info.length);
      if (!this.#torrent.firstCopies.mayFetch(request.index, this)) {
        return this.#hide(request.index);
      }
    }
    if (this.#serveQueue.length >= MAX_QUEUED_REQUESTS) {
      throw new ProtocolError(`more than ${MAX_QUEUED_REQUESTS} requests queued`);
    }
    this.#serveQueue.push(request);
  }

  /**
   * Serves queued requests in runs: the requests at the head of the queue that continue one
   * another in the same piece are read with one read into one buffer, framed there as piece
   * messages (lib/wire.ts framePieceRun), and sent with one write.
   */
  async #serve(): Promise<void> {
    this.#serving = true;
    try {
      while (!this.#closed && this.#serveQueue.length > 0) {
        const run = this.#takeRun();
        const bytes = run.reduce((sum, request) => sum + request.length, 0);
        // a capped uplink finishes the pieces it started first (rate_limiter.ts)
        if (run[0].index !== this.#servingPiece) {
          this.#servingPiece = run[0].index;
          this.#servingSince = performance.now();
        }
        await this.#context.uploadLimiter?.take(bytes, this.#servingSince);
        if (this.#closed) break;
        // one buffer per connection, reused: the previous run was fully written before this
        this.#runBuffer ??= new Uint8Array(MAX_RUN_BLOCKS * (PIECE_HEADER_LENGTH + BLOCK_LENGTH));
        const headers = run.length * PIECE_HEADER_LENGTH;
        const messages = this.#runBuffer.subarray(0, headers + bytes);
        const { index, begin } = run[0];
        await this.#torrent.file.read(
          index * PIECE_LENGTH + begin,
          bytes,
          messages.subarray(headers),
        );
        framePieceRun(messages, index, begin, run.map((request) => request.length));
        this.bytesServed += bytes;
        this.#torrent.bytesServed += bytes;
        await this.#send(messages);
      }
    } catch (error) {
      this.close(`serving failed: ${errorMessage(error)}`);
    } finally {
      this.#serving = false;
    }
  }
}
