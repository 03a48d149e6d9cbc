/**
 * A sharer whose uplink is capped sends each piece's first copy to one downloader
 * (peer/first_copies.ts, issue 14): the unit, then a seeder spoken to by hand over raw TLS
 * with a member's real tickets. A second connection asking for a claimed piece is told
 * `lt_donthave` with its own extension id, is offered the piece again later and then served;
 * a connection that does not take `lt_donthave`, or turns it off, is served at once.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../lib/identity.ts";
import { BLOCK_LENGTH } from "../lib/pieces.ts";
import { decodeDonthave, encodeExtended, encodeRequest, type WireMessage } from "../lib/wire.ts";
import { encode } from "../lib/bencode.ts";
import { FirstCopies } from "../peer/first_copies.ts";
import { startSwarm, within, writeRandomFile } from "./harness.ts";
import { connectAsMember, type RawPeer, rawTrackerLink } from "./raw_tls.ts";

const MiB = 1 << 20;

Deno.test("FirstCopies: the first to ask claims a piece until it goes away", () => {
  const copies = new FirstCopies(3 * 512 * 1024);
  const [a, b, c] = [{}, {}, {}];
  assert.equal(copies.mayFetch(0, a), true, "the first asker claims piece 0");
  assert.equal(copies.mayFetch(0, a), true, "and may ask again");
  assert.equal(copies.mayFetch(0, b), false, "another may not");
  assert.equal(copies.mayFetch(1, b), true, "each piece has its own claimant");
  assert.equal(copies.mayFetch(1, a), false);
  copies.release(a);
  assert.equal(copies.mayFetch(0, c), true, "a claimant that left frees its pieces");
  assert.equal(copies.mayFetch(0, b), false, "to the next asker only");
  assert.equal(copies.mayFetch(1, c), false, "pieces of others stay claimed");
});

/** The next message on `peer` that `wanted` accepts; the ones skipped go to `skipped`. */
async function nextMessage(
  peer: RawPeer,
  wanted: (message: WireMessage) => boolean,
  what: string,
  skipped: WireMessage[] = [],
): Promise<WireMessage> {
  return await within(
    (async () => {
      for (let message = await peer.reader.next(); message; message = await peer.reader.next()) {
        if (wanted(message)) return message;
        skipped.push(message);
      }
      throw new Error(`the seeder closed the connection before ${what}`);
    })(),
    what,
  );
}

const pieceMessage = (index: number) => (message: WireMessage) =>
  message.type === "piece" && message.index === index;

Deno.test("a capped seeder sends a piece's first copy to one connection; others hear lt_donthave", async (t) => {
  await using swarm = await startSwarm(["seed", "member"], {
    clientArgs: { seed: ["--upload-limit-kib", "4096"] },
  });
  const seed = swarm.shell("seed");
  await writeRandomFile(`${swarm.home("seed")}/film.bin`, 2 * MiB);
  await seed.ok(`upload_file film.bin ${swarm.group}`);

  const device = await generateIdentity("member's device");
  const link = await rawTrackerLink(swarm.tracker.port, device);
  let file: { infoHash: Uint8Array; ticket: string };
  try {
    const login = await link.request({ type: "login", user: "member", password: "pw-member" });
    assert.equal(login.ok, true, JSON.stringify(login.error));
    const reply = await link.request({ type: "locate_file", group: swarm.group, name: "film.bin" });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const located = reply.data as { info_hash: string; ticket: string };
    file = { infoHash: Uint8Array.fromHex(located.info_hash), ticket: located.ticket };
  } finally {
    link.close();
  }

  // ids of our own choosing: the seeder must use each remote's, not its own
  const first = await connectAsMember(seed.peerPort, device, file, new Map([["lt_donthave", 7]]));
  const second = await connectAsMember(seed.peerPort, device, file, new Map([["lt_donthave", 9]]));
  const plain = await connectAsMember(seed.peerPort, device, file);
  const open = [first, second, plain];
  try {
    for (const peer of open) assert.equal(peer.served, true);

    await t.step("the first connection to ask for piece 0 gets it", async () => {
      await first.conn.write(encodeRequest(0, 0, BLOCK_LENGTH));
      await nextMessage(first, pieceMessage(0), "piece 0 on the first connection");
    });

    await t.step("the second asking is told lt_donthave, then offered it again", async () => {
      await second.conn.write(encodeRequest(0, 0, BLOCK_LENGTH));
      const skipped: WireMessage[] = [];
      const donthave = await nextMessage(
        second,
        (message) => message.type === "extended" && message.extId !== 0,
        "lt_donthave on the second connection",
        skipped,
      );
      assert.ok(donthave.type === "extended");
      assert.equal(donthave.extId, 9, "sent with the remote's id for lt_donthave");
      assert.equal(decodeDonthave(donthave.payload, 4), 0);
      assert.ok(!skipped.some((message) => message.type === "piece"), "served all the same");
      // nobody else gave it the piece: the seeder shows it again, and then serves it
      await nextMessage(
        second,
        (message) => message.type === "have" && message.index === 0,
        "piece 0 offered again",
      );
      await second.conn.write(encodeRequest(0, 0, BLOCK_LENGTH));
      await nextMessage(second, pieceMessage(0), "piece 0 on the second connection");
    });

    await t.step("a connection that does not take lt_donthave is served at once", async () => {
      await plain.conn.write(encodeRequest(0, BLOCK_LENGTH, BLOCK_LENGTH));
      await nextMessage(plain, pieceMessage(0), "piece 0 on the plain connection");
    });

    await t.step("a connection that turns lt_donthave off is served at once", async () => {
      await first.conn.write(encodeRequest(1, 0, BLOCK_LENGTH));
      await nextMessage(first, pieceMessage(1), "piece 1 on the first connection");
      // BEP 10: a later handshake naming an extension with 0 turns it off
      const off = new Map([["m", new Map([["lt_donthave", 0]])]]);
      await second.conn.write(encodeExtended(0, encode(off)));
      await second.conn.write(encodeRequest(1, 0, BLOCK_LENGTH));
      const skipped: WireMessage[] = [];
      await nextMessage(second, pieceMessage(1), "piece 1 on the second connection", skipped);
      assert.ok(
        !skipped.some((message) => message.type === "extended" && message.extId !== 0),
        "told lt_donthave after turning it off",
      );
    });
  } finally {
    for (const peer of open) {
      try {
        peer.conn.close();
      } catch {
        // closed by the seeder
      }
    }
  }
});
