/**
 * Unit tests of revocation and expiry: the push parser, the bounded revocation list and the
 * serving check built on it, the tracker's bounded per-connection writer, and a serving
 * connection that closes when its ticket runs out unless a fresher one arrives.
 */

import assert from "node:assert/strict";
import { type BDict, encode } from "../lib/bencode.ts";
import { Bitfield } from "../lib/bitfield.ts";
import { ProtocolError } from "../lib/errors.ts";
import { isPushFrame, parsePush } from "../lib/protocol.ts";
import { type TicketClaims, TicketError } from "../lib/ticket.ts";
import { encodeExtended, encodeHandshake, WireReader } from "../lib/wire.ts";
import { acceptPeer, type PeerConnection, type PeerContext } from "../peer/connection.ts";
import { checkClaims } from "../peer/file_sharing.ts";
import { REVOCATION_TTL_MS, RevocationList } from "../peer/revocations.ts";
import type { HeldTorrent } from "../peer/torrents.ts";
import type { ByteConn } from "../lib/transport.ts";
import { FrameWriter } from "../tracker/frame_writer.ts";

Deno.test("parsePush: a revoke push, and every malformed one refused", async (t) => {
  const good = { push: "revoke", user: "bob", group: "films", at: 1_700_000_000_000 };
  await t.step("well-formed", () => {
    assert.ok(isPushFrame(good));
    assert.deepEqual(parsePush(good), good);
    assert.ok(!isPushFrame({ id: 3, ok: true, data: null }));
    assert.ok(!isPushFrame({ ...good, id: 1 }), "a frame with an id is a reply");
  });
  await t.step("malformed", () => {
    const bad: Record<string, unknown>[] = [
      {},
      { ...good, push: "kick" },
      { ...good, push: 7 },
      { ...good, id: 1 },
      { ...good, extra: true },
      { ...good, user: "" },
      { ...good, user: "a b" },
      { ...good, user: 5 },
      { ...good, group: "x".repeat(65) },
      { push: "revoke", user: "bob", at: 1 },
      { ...good, at: -1 },
      { ...good, at: 1.5 },
      { ...good, at: "1" },
      { ...good, at: Number.MAX_SAFE_INTEGER + 2 },
    ];
    for (const frame of bad) {
      assert.throws(() => parsePush(frame), ProtocolError, JSON.stringify(frame));
    }
  });
});

Deno.test("RevocationList and checkClaims", async (t) => {
  let now = 1_000_000;
  const torrent = { groups: new Set(["films"]) };
  const claims = (issuedAt?: number, user = "bob"): TicketClaims => ({
    user,
    group: "films",
    infoHash: "00".repeat(20),
    expiresAt: now + 60_000,
    ...issuedAt === undefined ? {} : { issuedAt },
  });

  await t.step("a ticket issued at or before the revocation is refused, a later one not", () => {
    const list = new RevocationList({ now: () => now });
    assert.deepEqual(checkClaims(claims(500), torrent, list), claims(500));
    list.add("bob", "films", 1_000);
    for (const issuedAt of [500, 1_000, undefined]) {
      assert.throws(() => checkClaims(claims(issuedAt), torrent, list), TicketError);
    }
    assert.equal(checkClaims(claims(1_001), torrent, list).issuedAt, 1_001, "rejoined");
    assert.doesNotThrow(() => checkClaims(claims(500, "carol"), torrent, list));
    assert.throws(
      () => checkClaims({ ...claims(2_000), group: "music" }, torrent, list),
      /not shared/,
    );
  });

  await t.step("a later revocation wins, an earlier one does not undo it", () => {
    const list = new RevocationList({ now: () => now });
    list.add("bob", "films", 2_000);
    list.add("bob", "films", 1_000);
    assert.equal(list.revokedAt("bob", "films"), 2_000);
  });

  await t.step("entries go once no older ticket can be honoured", () => {
    const list = new RevocationList({ now: () => now });
    list.add("bob", "films", now);
    now += REVOCATION_TTL_MS;
    list.prune();
    assert.equal(list.size, 1);
    now += 1;
    list.prune();
    assert.equal(list.size, 0);
  });

  await t.step("bounded: the oldest goes first", () => {
    const list = new RevocationList({ now: () => now, maxEntries: 3 });
    for (const user of ["a", "b", "c", "d"]) list.add(user, "films", now);
    assert.equal(list.size, 3);
    assert.equal(list.revokedAt("a", "films"), undefined);
    assert.equal(list.revokedAt("d", "films"), now);
  });
});

Deno.test("FrameWriter: replies and pushes never interleave; a stuck reader is dropped", async () => {
  const written: string[] = [];
  let release!: () => void;
  let gate = new Promise<void>((resolve) => release = resolve);
  let closed = false;
  const conn: ByteConn = {
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    read: () => Promise.resolve(null),
    async write(bytes) {
      await gate;
      written.push(new TextDecoder().decode(bytes.subarray(4)));
      return bytes.length;
    },
    close() {
      closed = true;
    },
  };
  const writer = new FrameWriter(conn, { maxQueuedPushes: 2 });
  const push = { push: "revoke" as const, user: "bob", group: "films", at: 1 };
  const reply = writer.reply({ id: 1, ok: true, data: null });
  assert.ok(writer.push(push));
  assert.ok(writer.push(push));
  assert.equal(writer.queuedPushes, 2);
  assert.equal(writer.push(push), false, "a third waiting push is one too many");
  assert.ok(closed);
  release();
  await reply;
  gate = Promise.resolve();
  assert.equal(written[0], '{"id":1,"ok":true,"data":null}', "whole frames in order");
});

/** A served connection over loopback TCP, with a fake ticket check that grants `claims`. */
async function servedConnection(checks: (TicketClaims | Error | "never")[]) {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const infoHash = new Uint8Array(20).fill(9);
  const torrent = {
    infoHash,
    infoHashHex: infoHash.toHex(),
    info: { name: "f", length: 1, pieceHashes: new Uint8Array(20) },
    have: new Bitfield(1),
    groups: new Set(["films"]),
    haveListeners: new Set(),
    connections: new Set(),
  } as unknown as HeldTorrent;
  const context: PeerContext = {
    peerId: new Uint8Array(20),
    listenPort: 1,
    checkTicket: () => {
      const next = checks.shift() ?? new Error("no more tickets");
      if (next === "never") return new Promise<TicketClaims>(() => {}); // a check that hangs
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    security: { mode: "plaintext" },
    ticketFor: () => undefined,
    log: () => {},
    ticketGraceMs: 0,
  };
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const accepted = await listener.accept();
  const running = acceptPeer(accepted, { get: () => torrent } as never, context);
  await client.write(encodeHandshake(infoHash, new Uint8Array(20).fill(1)));
  const reader = new WireReader(client);
  await reader.readHandshake();
  const sendTicket = async (ticket: string) => {
    const dict: BDict = new Map([["ticket", new TextEncoder().encode(ticket)]]);
    await client.write(encodeExtended(0, encode(dict)));
  };
  const peer = async () => {
    while (torrent.connections.size === 0) await new Promise((r) => setTimeout(r, 5));
    return [...torrent.connections][0] as PeerConnection;
  };
  return { client, running, sendTicket, peer };
}

function claimsExpiringIn(ms: number): TicketClaims {
  const now = Date.now();
  return { user: "bob", group: "films", infoHash: "", issuedAt: now, expiresAt: now + ms };
}

Deno.test("a served connection closes at its ticket's expiry unless a fresher one comes", async (t) => {
  await t.step("not refreshed: closed, reason ticket expired", async () => {
    const served = await servedConnection([claimsExpiringIn(150)]);
    await served.sendTicket("first");
    const peer = await served.peer();
    await served.running;
    assert.equal(peer.closeReason, "ticket expired");
    served.client.close();
  });

  await t.step("refreshed: the new ticket replaces the old and re-arms the timer", async () => {
    const served = await servedConnection([claimsExpiringIn(150), claimsExpiringIn(60_000)]);
    await served.sendTicket("first");
    const peer = await served.peer();
    await served.sendTicket("fresher");
    // wait until the fresher claims are in force, then past the first expiry
    while ((peer.ticketClaims?.expiresAt ?? 0) - Date.now() < 1_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300)); // past the first ticket's expiry
    assert.equal(peer.closeReason, "", "still open");
    peer.close("test over");
    await served.running;
    served.client.close();
  });

  await t.step("tickets piling up unchecked are a breach: closed", async () => {
    const served = await servedConnection(["never", "never", "never", "never", "never"]);
    await served.sendTicket("t0");
    const peer = await served.peer();
    for (let i = 1; i < 5; i++) await served.sendTicket(`t${i}`);
    await served.running;
    assert.match(peer.closeReason, /more than 4 tickets awaiting a check/);
    served.client.close();
  });

  await t.step("a bad later ticket closes the connection", async () => {
    const served = await servedConnection([claimsExpiringIn(60_000), new TicketError("forged")]);
    await served.sendTicket("first");
    const peer = await served.peer();
    await served.sendTicket("forged");
    await served.running;
    assert.match(peer.closeReason, /^bad ticket: forged/);
    served.client.close();
  });
});
