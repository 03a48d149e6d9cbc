/**
 * The one module that knows TLS: listeners and connections for the tracker link and the peer
 * wire, all seen by the rest of the code as a `ByteConn` (read into a buffer, write, close).
 *
 * Which implementation serves which end was measured (Deno 2.9.6, 1 GiB over loopback, CPU
 * seconds per GiB): a `node:tls` receiver costs ~2.9 s and holds ~190 MiB, Deno's own TLS
 * receiver ~1.0 s and ~52 MiB; as senders both cost ~1.0-1.2 s. Deno's TLS cannot ask a client
 * for its certificate nor show the server's, so:
 *
 * - every listener is a `node:tls` server that requires a client certificate
 *   (`requestCert`), whose fingerprint the accepting side checks itself (tickets, sessions);
 *   the accepting side of the peer wire is the one that sends the pieces;
 * - the tracker link connects with `node:tls` and checks the tracker's fingerprint before a
 *   byte of ours is sent (pinning like SSH: the link is small, the certificate is needed);
 * - the peer wire connects with Deno's TLS (rustls), which receives the pieces: the serving
 *   peer's certificate, handed out by the tracker, is the only extra trust anchor and must
 *   name the address dialled, so a relay with a certificate of its own fails the handshake.
 *
 * `--insecure-plaintext` swaps all of it for plain TCP, for measurements only.
 *
 * @module
 */

import { createHash } from "node:crypto";
import * as net from "node:net";
import type { Socket } from "node:net";
import * as tls from "node:tls";
import { UserError } from "./errors.ts";
import type { ChunkSource } from "./frame.ts";

/** A connected byte stream, whichever transport carries it. */
export interface ByteConn {
  /** Reads into `into`; the count read, or null at the end of the stream. */
  read(into: Uint8Array): Promise<number | null>;
  /**
   * The next bytes received, as they came (no buffer of the caller's), or null at the end
   * of the stream. Where present, readers use it: an idle connection then holds no buffer.
   */
  readChunk?(): Promise<Uint8Array | null>;
  /** Writes some of `bytes` (all of them for TLS); resolves with the count written. */
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
  readonly remoteAddr: { hostname: string; port: number };
}

/** A connection a listener accepted, with the client's certificate when TLS carries it. */
export interface AcceptedConn extends ByteConn {
  /** Our end: the address the client reached us at. */
  readonly localAddr?: { hostname: string; port: number };
  /** SHA-256 (hex) of the certificate the client presented; undefined in plaintext. */
  readonly peerFingerprint?: string;
  /** That certificate (DER); undefined in plaintext. */
  readonly peerCertificate?: Uint8Array;
}

/** A listener's accepted connections, one after another, until `close`. */
export interface ConnListener extends AsyncIterable<AcceptedConn> {
  readonly addr: { hostname: string; port: number };
  close(): void;
}

/** What a program presents on its links: a certificate and key (PEM), or nothing. */
export type Security =
  | { mode: "tls"; certPem: string; keyPem: string }
  | { mode: "plaintext" };

/** The far end is not who it must be (fingerprint mismatch, or no TLS where TLS was due). */
export class IdentityError extends UserError {
  override name = "IdentityError";
}

/** A TLS handshake must be done within this, or the connection is dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Bytes a node:tls connection buffers ahead of its reader before it stops reading the
 * socket (TCP then holds the sender back): the bound on what one connection holds unread,
 * with one more chunk (up to 48 KiB with TLS, 64 KiB in clear) that came as it stopped.
 */
const READ_AHEAD_BYTES = 256 * 1024;
/**
 * What each chunk held unread counts against the read-ahead beyond its bytes: the objects
 * around it. Without it a sender of one-byte TLS records could make a connection hold
 * hundreds of thousands of chunks (some 200 bytes each) for 256 KiB of read-ahead.
 */
const CHUNK_OVERHEAD_BYTES = 512;
/** Accepted connections waiting for the accept loop to take them. */
const MAX_PENDING_ACCEPTS = 128;

/** Descriptors kept free of connections, for files, outgoing links and the runtime. */
const RESERVED_DESCRIPTORS = 64;
/**
 * Connections one remote address may hold open on a listener (a household or office behind
 * one address has a client or two per person; a flood from one address stops here).
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 128;
/** The most connections a listener takes at once, whatever the descriptor limit allows. */
const MAX_CONNECTIONS = 16_384;

/**
 * How many connections one listener may hold: below the process's descriptor limit (its
 * soft RLIMIT_NOFILE, from /proc/self/limits) less a reserve, so a flood of connections
 * cannot exhaust descriptors and stop the accept loop for good. Where the limit cannot be
 * read, 1,024 less the reserve.
 */
export function connectionCap(limitsText?: string): number {
  let soft = 1024;
  try {
    const text = limitsText ?? Deno.readTextFileSync("/proc/self/limits");
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (match) soft = match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    // not Linux, or not readable: the conservative default
  }
  return Math.max(1, Math.min(MAX_CONNECTIONS, Math.floor(soft / 2) - RESERVED_DESCRIPTORS));
}

/** SHA-256 of DER bytes, lowercase hex. */
export function sha256Hex(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/**
 * Listens on `hostname:port`. With TLS every client must present a certificate (any
 * certificate: who it is, the caller decides from `peerFingerprint`).
 */
export async function listen(
  options: {
    hostname: string;
    port: number;
    security: Security;
    /** A client must finish its TLS handshake within this. Default 10 s. */
    handshakeTimeoutMs?: number;
    /** Connections open at once; more are closed as they come. Default `connectionCap()`. */
    maxConnections?: number;
    /** Connections open at once from one address. Default `MAX_CONNECTIONS_PER_ADDRESS`. */
    maxConnectionsPerAddress?: number;
    /**
     * Bytes each connection reads ahead of its reader (the most it holds unread, with one
     * more chunk). Default 256 KiB: a peer link carries pieces.
     */
    readAheadBytes?: number;
  },
): Promise<ConnListener> {
  const readAhead = options.readAheadBytes ?? READ_AHEAD_BYTES;
  const queue = new AcceptQueue();
  let server: net.Server;
  if (options.security.mode === "plaintext") {
    // in clear the connection is ready as accepted (after the per-address count below)
    server = net.createServer();
  } else {
    const { certPem, keyPem } = options.security;
    server = tls.createServer({
      cert: certPem,
      key: keyPem,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      minVersion: "TLSv1.3",
    }, (socket) => {
      const der = socket.getPeerCertificate()?.raw;
      if (!der || der.length === 0) {
        socket.destroy(); // no client certificate: nobody to serve
        return;
      }
      queue.push(new NodeConn(socket, new Uint8Array(der), readAhead));
    });
    // a client that fails its handshake costs only itself
    server.on("tlsClientError", () => {});
  }
  const plaintext = options.security.mode === "plaintext";
  server.maxConnections = options.maxConnections ?? connectionCap();
  // one address may hold only so many of them, counted from the TCP accept, before TLS
  const perAddress = new Map<string, number>();
  const maxPerAddress = options.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS;
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "?";
    const count = perAddress.get(address) ?? 0;
    if (count >= maxPerAddress) {
      socket.destroy();
      return;
    }
    perAddress.set(address, count + 1);
    socket.once("close", () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
    if (plaintext) queue.push(new NodeConn(socket, undefined, readAhead));
  });
  const failed = Promise.withResolvers<void>();
  server.once("error", failed.reject);
  await Promise.race([
    new Promise<void>((resolve) => server.listen(options.port, options.hostname, resolve)),
    failed.promise,
  ]);
  server.off("error", failed.reject);
  server.on("error", (error) => queue.fail(error));
  const address = server.address();
  const addr = typeof address === "object" && address
    ? { hostname: address.address, port: address.port }
    : { hostname: options.hostname, port: options.port };
  return {
    addr,
    close() {
      server.close();
      queue.end();
    },
    [Symbol.asyncIterator]: () => queue.iterate(),
  };
}

/**
 * Connects to a tracker. With TLS the tracker's certificate fingerprint goes to `verify`
 * before anything is sent; `verify` throws (an `IdentityError`) to refuse it. `verified`
 * tells whether the certificate chain is also valid for `hostname` by the trusted
 * certificate authorities (only ever for a host name, never an IP address).
 */
export async function connectTracker(
  options: {
    hostname: string;
    port: number;
    security: Security;
    verify: (fingerprint: string, verified: { byAuthority: boolean }) => void | Promise<void>;
    /** Gives up at once (connect or handshake under way), rejecting with the signal's reason. */
    signal?: AbortSignal;
  },
): Promise<ByteConn> {
  const { signal } = options;
  signal?.throwIfAborted();
  if (options.security.mode === "plaintext") {
    const conn = await Deno.connect({ hostname: options.hostname, port: options.port, signal });
    conn.setNoDelay(true);
    return conn;
  }
  const socket = tls.connect({
    host: options.hostname,
    port: options.port,
    cert: options.security.certPem,
    key: options.security.keyPem,
    // the certificate is checked by its fingerprint below, as SSH checks host keys
    rejectUnauthorized: false,
    minVersion: "TLSv1.3",
    ...isIpLiteral(options.hostname) ? {} : { servername: options.hostname },
  });
  socket.setNoDelay(true);
  try {
    await handshake(socket, `the tracker at ${hostPort(options.hostname, options.port)}`, signal);
    const der = socket.getPeerCertificate()?.raw;
    if (!der || der.length === 0) {
      throw new IdentityError("the tracker presented no certificate");
    }
    const byAuthority = !isIpLiteral(options.hostname) && socket.authorized === true;
    await options.verify(sha256Hex(der), { byAuthority });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return new NodeConn(socket);
}

/**
 * Connects to a serving peer whose certificate (PEM, from the tracker) is the only one
 * accepted, presenting ours. The handshake is finished here, so a peer that is not who the
 * tracker said fails now, before anything of ours is sent.
 */
export async function connectPeer(
  options: {
    hostname: string;
    port: number;
    security: Security;
    /** The serving peer's certificate; must name `hostname`. Unused in plaintext. */
    peerCertPem?: string;
    /** For the error message: the fingerprint the tracker gave. */
    peerFingerprint?: string;
  },
): Promise<ByteConn> {
  const { hostname, port, security } = options;
  if (security.mode === "plaintext") {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return conn;
  }
  if (!options.peerCertPem) {
    throw new IdentityError(`the tracker gave no certificate for peer ${hostPort(hostname, port)}`);
  }
  const conn = await Deno.connectTls({
    hostname,
    port,
    caCerts: [options.peerCertPem],
    cert: security.certPem,
    key: security.keyPem,
  });
  const timer = setTimeout(() => conn.close(), HANDSHAKE_TIMEOUT_MS);
  try {
    await conn.handshake();
  } catch (error) {
    try {
      conn.close();
    } catch {
      // already closed by the timer
    }
    const text = error instanceof Error ? error.message : String(error);
    if (/certificate|UnknownIssuer|NotValidForName|BadSignature/i.test(text)) {
      throw new IdentityError(
        `peer ${hostPort(hostname, port)} is not who the tracker said: its certificate does not ` +
          `match fingerprint ${
            options.peerFingerprint ? `SHA256:${options.peerFingerprint}` : "given"
          } (${text})`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // Deno's TLS connections have no setNoDelay; requests still flow, as the pieces coming
  // back acknowledge them at once
  return conn;
}

/** Why `fetchPeerCertificate` got no certificate. */
export class CertificateFetchError extends Error {
  override name = "CertificateFetchError";
  constructor(
    /**
     * `refused`: nothing accepts connections there; `timeout`: no handshake within the time;
     * `unreachable`: no route; `handshake`: something answered but no TLS handshake completed.
     */
    readonly kind: "refused" | "timeout" | "unreachable" | "handshake",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Completes a TLS handshake with `hostname:port` (an IP address) and returns the certificate
 * presented there (DER). It presents no certificate of its own and sends not one byte of
 * application data: the socket is destroyed as soon as the handshake is done, or when
 * `timeoutMs` (connecting included) passes, or when `signal` aborts. This is how the tracker
 * checks that a serving address leads to the peer that claimed it.
 */
export function fetchPeerCertificate(
  options: {
    hostname: string;
    port: number;
    /** The name the address was resolved from, sent as SNI. */
    servername?: string;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<Uint8Array> {
  const { hostname, port, timeoutMs, signal } = options;
  const where = hostPort(hostname, port);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      return reject(new CertificateFetchError("timeout", `the check of ${where} was cancelled`));
    }
    const socket = tls.connect({
      host: hostname,
      port,
      rejectUnauthorized: false,
      minVersion: "TLSv1.3",
      ...options.servername && !isIpLiteral(options.servername)
        ? { servername: options.servername }
        : {},
    });
    let finished = false;
    const finish = (outcome: Uint8Array | CertificateFetchError) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("secureConnect", onSecure);
      socket.off("close", onClose);
      // errors after the outcome (a reset as we leave) are nobody's concern
      socket.on("error", () => {});
      socket.off("error", onError);
      socket.destroy();
      if (outcome instanceof CertificateFetchError) reject(outcome);
      else resolve(outcome);
    };
    const onSecure = () => {
      const der = socket.getPeerCertificate()?.raw;
      finish(
        der && der.length > 0
          ? new Uint8Array(der)
          : new CertificateFetchError("handshake", `${where} presented no certificate`),
      );
    };
    const onError = (error: Error & { code?: string }) => {
      const code = error.code ?? "";
      if (code === "ECONNREFUSED") {
        finish(new CertificateFetchError("refused", `connection refused by ${where}`));
      } else if (/^(EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|ENETDOWN|EHOSTDOWN)$/.test(code)) {
        finish(new CertificateFetchError("unreachable", `${where} cannot be reached (${code})`));
      } else {
        finish(new CertificateFetchError("handshake", `${where}: ${error.message}`));
      }
    };
    const onClose = () =>
      finish(
        new CertificateFetchError(
          "handshake",
          `${where} closed the connection during the handshake`,
        ),
      );
    const onAbort = () =>
      finish(new CertificateFetchError("timeout", `the check of ${where} was cancelled`));
    const timer = setTimeout(
      () =>
        finish(
          new CertificateFetchError(
            "timeout",
            `no TLS handshake with ${where} within ${timeoutMs / 1000} s`,
          ),
        ),
      timeoutMs,
    );
    socket.once("secureConnect", onSecure);
    socket.once("error", onError);
    socket.once("close", onClose);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function handshake(socket: tls.TLSSocket, who: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new IdentityError(`${who} did not complete a TLS handshake in time`));
    }, HANDSHAKE_TIMEOUT_MS);
    const onError = (error: Error) => {
      cleanup();
      reject(
        /wrong version|packet length|record|alert|handshake|corrupt/i.test(error.message)
          ? new IdentityError(
            `${who} does not speak TLS (${error.message}); is it running with --insecure-plaintext?`,
          )
          : error,
      );
    };
    const onClose = () => {
      cleanup();
      reject(new Deno.errors.ConnectionReset(`${who} closed the connection during the handshake`));
    };
    const onSecure = () => {
      cleanup();
      resolve();
    };
    const onAbort = () => {
      cleanup();
      reject(signal!.reason);
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.off("secureConnect", onSecure);
      signal?.removeEventListener("abort", onAbort);
    }
    socket.once("error", onError);
    socket.once("close", onClose);
    socket.once("secureConnect", onSecure);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A `node:tls` (or, in clear, `node:net`) socket seen as a `ByteConn`, reading with bounded read-ahead. */
class NodeConn implements AcceptedConn {
  readonly #socket: Socket;
  readonly #chunks: Uint8Array[] = [];
  /** Bytes held unread, and each chunk's overhead. */
  #buffered = 0;
  readonly #readAhead: number;
  #reading = true;
  #ended = false;
  #failure?: Error;
  readonly #arrived = new Wakeup();
  readonly peerFingerprint?: string;
  readonly peerCertificate?: Uint8Array;
  readonly remoteAddr: { hostname: string; port: number };
  readonly localAddr: { hostname: string; port: number };

  constructor(socket: Socket, peerCertificate?: Uint8Array, readAhead = READ_AHEAD_BYTES) {
    this.#socket = socket;
    this.#readAhead = readAhead;
    this.peerCertificate = peerCertificate;
    this.peerFingerprint = peerCertificate ? sha256Hex(peerCertificate) : undefined;
    this.remoteAddr = {
      hostname: (socket as Socket).remoteAddress ?? "?",
      port: (socket as Socket).remotePort ?? 0,
    };
    this.localAddr = {
      hostname: (socket as Socket).localAddress ?? "?",
      port: (socket as Socket).localPort ?? 0,
    };
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length + CHUNK_OVERHEAD_BYTES;
      if (this.#buffered >= this.#readAhead && this.#reading) {
        this.#reading = false;
        stopReading(socket);
      }
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (error: Error) => {
      this.#failure = new Deno.errors.ConnectionReset(error.message);
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    this.#arrived.wake();
  }

  async read(into: Uint8Array): Promise<number | null> {
    if (!await this.#someArrived()) return null;
    let copied = 0;
    while (copied < into.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, into.length - copied);
      into.set(chunk.subarray(0, take), copied);
      copied += take;
      this.#buffered -= take;
      if (take === chunk.length) {
        this.#chunks.shift();
        this.#buffered -= CHUNK_OVERHEAD_BYTES;
      } else this.#chunks[0] = chunk.subarray(take);
    }
    this.#readMore();
    return copied;
  }

  async readChunk(): Promise<Uint8Array | null> {
    if (!await this.#someArrived()) return null;
    const chunk = this.#chunks.shift()!;
    this.#buffered -= chunk.length + CHUNK_OVERHEAD_BYTES;
    this.#readMore();
    return chunk;
  }

  /** Waits for bytes: false at the end of the stream; throws what broke it. */
  async #someArrived(): Promise<boolean> {
    while (this.#chunks.length === 0) {
      if (this.#failure) throw this.#failure;
      if (this.#ended) return false;
      await this.#arrived.next();
    }
    return true;
  }

  #readMore(): void {
    if (this.#buffered < this.#readAhead && !this.#reading) {
      this.#reading = true;
      readAgain(this.#socket);
    }
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#socket.destroyed || this.#socket.writableEnded) {
      return Promise.reject(new Deno.errors.BrokenPipe("the connection is closed"));
    }
    return new Promise((resolve, reject) => {
      // the callback comes once the bytes are taken (encrypted): the caller may reuse them
      this.#socket.write(bytes, (error) => {
        if (error) reject(new Deno.errors.BrokenPipe(error.message));
        else resolve(bytes.length);
      });
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wake();
  }
}

/**
 * Stops taking a socket's bytes from the kernel, so that TCP holds its sender back. Deno's
 * node:tls (2.9) reads on from the TCP socket under a paused TLS socket, decrypting and
 * keeping everything sent (measured: 5 paused connections took 100 MiB, where their TCP
 * sockets stopped took none): that socket's reads are stopped too.
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  try {
    tcpHandleUnder(socket)?.readStop();
  } catch {
    // closed meanwhile
  }
}

/** Undoes `stopReading`. */
export function readAgain(socket: Socket): void {
  try {
    tcpHandleUnder(socket)?.readStart();
  } catch {
    // closed meanwhile
  }
  socket.resume();
}

/** The handle of the TCP socket a node:tls socket runs over, if it has one of its own. */
function tcpHandleUnder(socket: Socket): { readStart(): void; readStop(): void } | undefined {
  const parent = (socket as unknown as { _parent?: { _handle?: unknown } })._parent;
  const handle = parent?._handle as { readStart?: unknown; readStop?: unknown } | undefined;
  return typeof handle?.readStart === "function" && typeof handle?.readStop === "function"
    ? handle as { readStart(): void; readStop(): void }
    : undefined;
}

/** One waiter at a time, woken when something arrived (bytes, a connection, an end). */
class Wakeup {
  #waiting?: { resolve(): void };

  /** Resolves at the next `wake`. */
  next(): Promise<void> {
    const wait = Promise.withResolvers<void>();
    this.#waiting = wait;
    return wait.promise;
  }

  wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve();
  }
}

/** Connections handed from the server's callback to the accept loop; bounded. */
class AcceptQueue {
  readonly #queue: AcceptedConn[] = [];
  readonly #arrived = new Wakeup();
  #ended = false;
  #failure?: Error;

  push(conn: AcceptedConn): void {
    if (this.#ended || this.#queue.length >= MAX_PENDING_ACCEPTS) {
      conn.close();
      return;
    }
    this.#queue.push(conn);
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    for (const conn of this.#queue.splice(0)) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    this.#wake();
  }

  fail(error: Error): void {
    this.#failure = error;
    this.#wake();
  }

  #wake(): void {
    this.#arrived.wake();
  }

  async *iterate(): AsyncGenerator<AcceptedConn> {
    while (true) {
      const conn = this.#queue.shift();
      if (conn) {
        yield conn;
        continue;
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended) return;
      await this.#arrived.next();
    }
  }
}

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

function isIpLiteral(hostname: string): boolean {
  return /^[0-9.]+$/.test(hostname) || hostname.includes(":");
}

/**
 * The chunks of a `ByteConn` for a frame reader (lib/frame.ts `readFrames`), without a web
 * stream between where the connection hands out its chunks itself; else read through a
 * buffer of `chunkBytes`, made at the first read.
 */
export function chunksOf(conn: ByteConn, chunkBytes = 16 * 1024): ChunkSource {
  if (conn.readChunk) return conn as ChunkSource;
  let buffer: Uint8Array | undefined;
  return {
    async readChunk() {
      buffer ??= new Uint8Array(chunkBytes);
      const read = await conn.read(buffer);
      return read === null ? null : buffer.slice(0, read);
    },
  };
}

/**
 * A readable stream over a `ByteConn`, for frame readers: the chunks as they came where the
 * connection hands them out (no buffer per connection while it is idle), else read through
 * a buffer of `chunkBytes`, made at the first read.
 */
export function readableOf(conn: ByteConn, chunkBytes = 16 * 1024): ReadableStream<Uint8Array> {
  let buffer: Uint8Array | undefined;
  return new ReadableStream({
    async pull(controller) {
      if (conn.readChunk) {
        const chunk = await conn.readChunk();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
        return;
      }
      buffer ??= new Uint8Array(chunkBytes);
      const read = await conn.read(buffer);
      if (read === null) controller.close();
      else controller.enqueue(buffer.slice(0, read));
    },
  }, { highWaterMark: 0 });
}
