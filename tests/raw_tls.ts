/**
 * A raw TLS connection for tests that speak the wire by hand, as a hostile or homemade client
 * would: it presents a certificate of its own (a fresh identity) and accepts whatever
 * certificate the far end shows; and a member's peer connection made with one, ticket in hand.
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { encodeFrame, FrameDecoder } from "../lib/frame.ts";
import assert from "node:assert/strict";
import { generateIdentity, type Identity, issueCertificate } from "../lib/identity.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import { type BDict, encode } from "../lib/bencode.ts";
import { type ByteConn, connectTracker } from "../lib/transport.ts";
import { encodeExtended, encodeHandshake, encodeSimple, WireReader } from "../lib/wire.ts";
import { within } from "../scripts/processes.ts";
import { encodeInfo } from "../lib/metainfo.ts";

/**
 * Connects to 127.0.0.1:`port` over TLS presenting `identity` (default: a new one); checks
 * nothing of the server.
 */
export async function connectRawTls(port: number, identity?: Identity): Promise<ByteConn> {
  identity ??= await generateIdentity("swarmshare test client");
  return await connectTracker({
    hostname: "127.0.0.1",
    port,
    security: { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
    verify: () => {},
  });
}

/** A TLS socket to 127.0.0.1:`port` from `localAddress` (another 127.x stands for another host). */
export async function dialTls(
  port: number,
  identity: Identity,
  localAddress = "127.0.0.1",
): Promise<tls.TLSSocket> {
  const socket = tls.connect({
    socket: net.connect({ host: "127.0.0.1", port, localAddress }),
    cert: identity.certPem,
    key: identity.keyPem,
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

/**
 * A tracker link spoken by hand from `localAddress` with `identity`: `hello` (with `hello`'s
 * extra fields), then requests one at a time; `request` resolves with the whole reply frame.
 * `frames` is every frame received, in order; `closed` settles when the tracker closed it;
 * `pushes` holds every push received so far, in order.
 */
export async function rawTrackerLink(
  port: number,
  identity: Identity,
  options: { localAddress?: string; hello?: Record<string, unknown> } = {},
) {
  const socket = await dialTls(port, identity, options.localAddress);
  const decoder = new FrameDecoder();
  const replies: Record<string, unknown>[] = [];
  let wake = () => {};
  socket.on("data", (chunk: Uint8Array) => {
    decoder.push(chunk);
    for (let frame = decoder.next(); frame; frame = decoder.next()) replies.push(frame);
    wake();
  });
  socket.on("error", () => {});
  const closed = Promise.withResolvers<void>();
  socket.on("close", () => {
    closed.resolve();
    wake();
  });
  let nextId = 1;
  const request = async (message: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const id = nextId++;
    socket.write(encodeFrame({ ...message, id }));
    while (true) {
      const reply = replies.find((frame) => frame.id === id);
      if (reply) return reply;
      if (socket.destroyed) throw new Error("the tracker closed the link");
      await new Promise<void>((resolve) => wake = resolve);
    }
  };
  const hello = await request({ type: "hello", version: PROTOCOL_VERSION, ...options.hello });
  if (hello.ok !== true) throw new Error(`hello refused: ${JSON.stringify(hello.error)}`);
  return {
    request,
    get pushes() {
      return replies.filter((frame) => frame.id === undefined);
    },
    close: () => socket.destroy(),
    frames: replies as readonly Record<string, unknown>[],
    closed: closed.promise,
  };
}

/** One of the member's raw connections to the seeder, and whether it was served. */
export interface RawPeer {
  conn: ByteConn;
  reader: WireReader;
  served: boolean;
}

/**
 * Connects to the seeder as `identity`, presents `ticket` for `infoHash`, and waits for the
 * seeder's answer: an unchoke (served) or the connection closed (refused). `extensions` is
 * the extension handshake's "m" (BEP 10), the extensions this client takes.
 */
export async function connectAsMember(
  port: number,
  identity: Identity,
  file: { infoHash: Uint8Array; ticket: string },
  extensions: BDict = new Map(),
): Promise<RawPeer> {
  const conn = await connectRawTls(port, identity);
  const reader = new WireReader(conn);
  await conn.write(encodeHandshake(file.infoHash, crypto.getRandomValues(new Uint8Array(20))));
  await reader.readHandshake();
  const handshake = new Map<string, unknown>([
    ["m", extensions],
    ["ticket", new TextEncoder().encode(file.ticket)],
  ]) as BDict;
  await conn.write(encodeExtended(0, encode(handshake)));
  await conn.write(encodeSimple("interested"));
  const served = await within(
    (async () => {
      try {
        for (let message = await reader.next(); message; message = await reader.next()) {
          if (message.type === "unchoke") return true;
        }
      } catch {
        // reset: refused all the same
      }
      return false;
    })(),
    "the seeder to serve or refuse a connection",
  );
  return { conn, reader, served };
}

/**
 * A raw tracker link logged in as a new user `user`, serving (as far as the tracker knows)
 * pieces at 127.0.0.1:9; `ok` sends a request and returns its data, failing the test on a
 * refusal.
 */
export async function rawMember(port: number, user: string) {
  const identity = await generateIdentity(user);
  const serving = await issueCertificate(identity, user, ["127.0.0.1"]);
  const link = await rawTrackerLink(port, identity, {
    hello: { peer: { host: "127.0.0.1", port: 9 }, peer_cert: serving.certPem },
  });
  const ok = async (message: Record<string, unknown>) => {
    const reply = await link.request(message);
    assert.equal(reply.ok, true, `${message.type}: ${JSON.stringify(reply.error)}`);
    return reply.data as unknown;
  };
  await ok({ type: "create_user", user, password: `pw-${user}` });
  await ok({ type: "login", user, password: `pw-${user}` });
  return { ok, link };
}

/**
 * A raw tracker link logged in as the existing user `user` (password `pw-<user>`, as
 * `rawMember` made it), serving (it says) at 127.0.0.1:9: a client of the user's coming
 * back, with a certificate of its own.
 */
export async function rawLogin(port: number, user: string) {
  const identity = await generateIdentity(user);
  const serving = await issueCertificate(identity, user, ["127.0.0.1"]);
  const link = await rawTrackerLink(port, identity, {
    hello: { peer: { host: "127.0.0.1", port: 9 }, peer_cert: serving.certPem },
  });
  const login = await link.request({ type: "login", user, password: `pw-${user}` });
  assert.equal(login.ok, true, JSON.stringify(login.error));
  return link;
}

/**
 * A `share_file` request for a small made-up file `name` in `group` (1000 bytes, one piece):
 * the info dictionary differs by name, so each name has its own info hash.
 */
export function shareFileRequest(group: string, name: string) {
  return {
    type: "share_file",
    group,
    name,
    size: 1000,
    sha1: "ab".repeat(20),
    info: encodeInfo({ name, length: 1000, pieceHashes: new Uint8Array(20).fill(7) }).toBase64(),
    path: `/shared/${name}`,
    mtime_ms: 0,
  };
}
