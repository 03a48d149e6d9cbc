/**
 * Attackers on the path, for the security tests: a relay that forwards TCP and records every
 * byte it sees (an eavesdropper), and one that terminates TLS with a certificate of its own
 * and forwards over a TLS connection of its own (a man in the middle). Both listen on
 * 127.0.0.1 and are disposable with `await using`.
 *
 * @module
 */

import { concatBytes } from "../lib/bytes.ts";
import * as net from "node:net";
import type { Socket } from "node:net";
import * as tls from "node:tls";
import { generateIdentity, type Identity } from "../lib/identity.ts";

/** Where a relay forwards to. */
export interface RelayTarget {
  hostname: string;
  port: number;
}

/** Default bound on what a recording relay keeps: past it, it drops every connection. */
const DEFAULT_CAP_BYTES = 64 * 1024 * 1024;

/**
 * Forwards each accepted TCP connection to `target` and records both directions. Bounded: once
 * `capBytes` are recorded it closes every connection and records no more.
 */
export class RecordingRelay implements AsyncDisposable {
  readonly #listener: Deno.Listener;
  /** Where new connections go; may be changed (a port forward moved to another machine). */
  target: RelayTarget;
  readonly #capBytes: number;
  /** Per connection and direction, the chunks recorded in order. */
  readonly #streams: Uint8Array[][] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #recorded = 0;
  /** Connections accepted so far. */
  connections = 0;
  /** Connections ended so far (either side closed). */
  ended = 0;
  #onEnded?: () => void;
  /** True once the cap was reached. */
  overflowed = false;

  private constructor(listener: Deno.Listener, target: RelayTarget, capBytes: number) {
    this.#listener = listener;
    this.target = target;
    this.#capBytes = capBytes;
    this.#accepting = this.#accept();
  }

  /** Listens on 127.0.0.1:`port` (0: any free port). */
  static start(
    options: { target: RelayTarget; port?: number; capBytes?: number },
  ): RecordingRelay {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
    return new RecordingRelay(listener, options.target, options.capBytes ?? DEFAULT_CAP_BYTES);
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Resolves once `count` connections have ended. */
  async untilEnded(count: number): Promise<void> {
    while (this.ended < count) {
      await new Promise<void>((resolve) => this.#onEnded = resolve);
    }
  }

  /** Bytes recorded so far, both directions. */
  get recordedBytes(): number {
    return this.#recorded;
  }

  /**
   * Everything recorded so far: one byte stream per connection and direction (kept apart so
   * that a run of bytes one side sent is never cut by what the other side said meanwhile).
   */
  captured(): Uint8Array[] {
    return this.#streams.map(concat);
  }

  async #accept(): Promise<void> {
    try {
      for await (const inbound of this.#listener) {
        this.connections++;
        const handled = this.#relay(inbound).finally(() => this.#handlers.delete(handled));
        this.#handlers.add(handled);
      }
    } catch {
      // the listener was closed
    }
  }

  async #relay(inbound: Deno.Conn): Promise<void> {
    this.#conns.add(inbound);
    let outbound: Deno.Conn | undefined;
    try {
      outbound = await Deno.connect(this.target);
      this.#conns.add(outbound);
      // either direction ending ends the pair, as a cut cable would
      await Promise.race([
        this.#pump(inbound, outbound, this.#newStream()),
        this.#pump(outbound, inbound, this.#newStream()),
      ]);
    } catch {
      // a side went away
    } finally {
      for (const conn of [inbound, outbound]) {
        if (!conn) continue;
        this.#conns.delete(conn);
        closeQuietly(conn);
      }
      this.ended++;
      this.#onEnded?.();
    }
  }

  #newStream(): Uint8Array[] {
    const stream: Uint8Array[] = [];
    this.#streams.push(stream);
    return stream;
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, recorded: Uint8Array[]): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const read = await from.read(buffer);
      if (read === null) return;
      if (this.#recorded + read > this.#capBytes) {
        this.overflowed = true;
        for (const conn of this.#conns) closeQuietly(conn);
        return;
      }
      const chunk = buffer.slice(0, read);
      recorded.push(chunk);
      this.#recorded += read;
      for (let at = 0; at < read;) at += await to.write(chunk.subarray(at));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.#listener);
    for (const conn of this.#conns) closeQuietly(conn);
    await this.#accepting;
    await Promise.allSettled(this.#handlers);
  }
}

/**
 * A man in the middle: a TLS server with its own certificate (naming 127.0.0.1) that asks for
 * a client certificate like the real programs do, and forwards what it decrypts to `target`
 * over a TLS connection of its own. It counts what it could read from its clients. While
 * `passThrough` is set it relays connections untouched instead (a man in the middle on some
 * paths only: the tracker's check of an address may pass, a downloader's dial be intercepted).
 */
export class TlsInterceptor implements AsyncDisposable {
  /** Takes the TCP connections on `port`: relays them, or hands them to `#server`. */
  readonly #front: net.Server;
  readonly #server: tls.Server;
  readonly #sockets = new Set<Socket>();
  readonly #fromClients: Uint8Array[] = [];
  /** The certificate it presents. */
  readonly identity: Identity;
  port = 0;
  #serverPort = 0;
  /** Relay connections untouched (no TLS of its own) while set. */
  passThrough: boolean;
  /** TCP connections accepted to intercept. */
  connections = 0;
  /** TCP connections relayed untouched. */
  passedThrough = 0;
  /** TLS handshakes completed with a client. */
  handshakes = 0;
  /** Application bytes decrypted from clients, over all connections. */
  bytesFromClients = 0;

  private constructor(
    identity: Identity,
    upstream: Identity,
    target: RelayTarget,
    passThrough: boolean,
  ) {
    this.identity = identity;
    this.passThrough = passThrough;
    this.#server = tls.createServer({
      cert: identity.certPem,
      key: identity.keyPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.3",
    }, (inbound) => this.#forward(inbound, upstream, target));
    this.#server.on("connection", (socket: Socket) => this.#track(socket));
    // a client that refuses our certificate fails its handshake: that is the point
    this.#server.on("tlsClientError", () => {});
    this.#front = net.createServer((socket) => {
      this.#track(socket);
      if (this.passThrough) {
        this.passedThrough++;
        this.#splice(socket, target);
      } else {
        this.connections++;
        this.#splice(socket, { hostname: "127.0.0.1", port: this.#serverPort });
      }
    });
  }

  /** Listens on 127.0.0.1:`port` (0: any free port). */
  static async start(
    options: { target: RelayTarget; port?: number; passThrough?: boolean },
  ): Promise<TlsInterceptor> {
    const interceptor = new TlsInterceptor(
      await generateIdentity("swarmshare interceptor", ["127.0.0.1"]),
      await generateIdentity("swarmshare interceptor client"),
      options.target,
      options.passThrough ?? false,
    );
    interceptor.#serverPort = await listenOn(interceptor.#server, 0);
    interceptor.port = await listenOn(interceptor.#front, options.port ?? 0).catch((error) => {
      interceptor.#server.close();
      throw error;
    });
    return interceptor;
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  /** Relays `socket` to `target` byte for byte, both ways. */
  #splice(socket: Socket, target: RelayTarget): void {
    const outbound = net.connect({ host: target.hostname, port: target.port });
    this.#track(outbound);
    socket.pipe(outbound);
    outbound.pipe(socket);
    for (const [one, other] of [[socket, outbound], [outbound, socket]]) {
      one.on("error", () => other.destroy());
      one.on("close", () => other.destroy());
    }
  }

  #forward(inbound: tls.TLSSocket, upstream: Identity, target: RelayTarget): void {
    this.handshakes++;
    this.#track(inbound);
    const outbound = tls.connect({
      host: target.hostname,
      port: target.port,
      cert: upstream.certPem,
      key: upstream.keyPem,
      rejectUnauthorized: false,
      minVersion: "TLSv1.3",
    });
    this.#track(outbound);
    inbound.on("data", (chunk: Uint8Array) => {
      this.bytesFromClients += chunk.length;
      this.#fromClients.push(new Uint8Array(chunk));
      outbound.write(chunk);
    });
    outbound.on("data", (chunk: Uint8Array) => inbound.write(chunk));
    for (const [one, other] of [[inbound, outbound], [outbound, inbound]]) {
      one.on("error", () => other.destroy());
      one.on("close", () => other.destroy());
    }
  }

  /** What clients sent it, decrypted, as text (for looking for secrets in it). */
  textFromClients(): string {
    return new TextDecoder().decode(concat(this.#fromClients));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const closed = [this.#front, this.#server].map((server) =>
      new Promise<void>((resolve) => server.close(() => resolve()))
    );
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(closed);
  }
}

/** Listens on 127.0.0.1:`port`; resolves with the port it got. */
function listenOn(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return concatBytes(...chunks);
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // already closed
  }
}

/**
 * Offsets of the file's 64-byte chunks (at multiples of 64) found anywhere in `capture`. Any
 * run of 127 or more consecutive bytes of the file contains one such chunk whole, so an empty
 * result means no run of 127 bytes of the file appears in the capture.
 */
export function fileChunksIn(file: Uint8Array, capture: Uint8Array): number[] {
  const CHUNK = 64;
  // index the chunks by their first 4 bytes, then slide over the capture once
  const byPrefix = new Map<number, number[]>();
  const fileView = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (let at = 0; at + CHUNK <= file.length; at += CHUNK) {
    const key = fileView.getUint32(at);
    const list = byPrefix.get(key);
    if (list) list.push(at);
    else byPrefix.set(key, [at]);
  }
  const found = new Set<number>();
  const view = new DataView(capture.buffer, capture.byteOffset, capture.byteLength);
  for (let at = 0; at + CHUNK <= capture.length; at++) {
    const candidates = byPrefix.get(view.getUint32(at));
    if (!candidates) continue;
    for (const offset of candidates) {
      if (found.has(offset)) continue;
      let same = true;
      for (let i = 4; i < CHUNK; i++) {
        if (capture[at + i] !== file[offset + i]) {
          same = false;
          break;
        }
      }
      if (same) found.add(offset);
    }
  }
  return [...found].sort((a, b) => a - b);
}
