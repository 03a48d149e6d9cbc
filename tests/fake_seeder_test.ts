/**
 * A member who claims to hold a file, unchokes, and then never sends a block (issue 13, part
 * 8): downloads used to wait on it for ever, with no reason shown, because it "had" every
 * piece. Now a peer that delivers nothing while it has requests outstanding is dropped, and
 * the download says so and falls to the stall rule.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { encode } from "../lib/bencode.ts";
import { generateIdentity, type Identity, issueCertificate } from "../lib/identity.ts";
import {
  encodeBitfield,
  encodeExtended,
  encodeHandshake,
  encodeKeepAlive,
  encodeSimple,
} from "../lib/wire.ts";
import { type DownloadLine, startSwarm, writeRandomFile } from "./harness.ts";
import { rawTrackerLink } from "./raw_tls.ts";

const MiB = 1 << 20;

/** The hostile member's peer: handshakes, claims every piece, unchokes, then keeps silent. */
async function silentSeeder(certPem: string, keyPem: string, pieces: number) {
  const sockets = new Set<tls.TLSSocket>();
  let connections = 0;
  const server = tls.createServer({
    cert: certPem,
    key: keyPem,
    requestCert: true,
    rejectUnauthorized: false,
  }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let handshaken = false;
    socket.on("data", (chunk: Uint8Array) => {
      if (handshaken || chunk.length < 68) return;
      handshaken = true;
      const infoHash = chunk.subarray(28, 48);
      socket.write(encodeHandshake(infoHash, new Uint8Array(20).fill(6)));
      socket.write(encodeExtended(0, encode(new Map([["m", new Map()]]))));
      const bits = new Uint8Array(Math.ceil(pieces / 8)).fill(0xff);
      if (pieces % 8) bits[bits.length - 1] = (0xff << (8 - pieces % 8)) & 0xff;
      socket.write(encodeBitfield(bits));
      socket.write(encodeSimple("unchoke"));
    });
    const alive = setInterval(() => socket.write(encodeKeepAlive()), 200);
    socket.on("close", () => clearInterval(alive));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** A tracker link spoken by hand, announcing `peer`; `request` asserts each reply is ok. */
async function rawTracker(
  port: number,
  identity: Identity,
  peer: { host: string; port: number },
  peerCert: string,
) {
  const link = await rawTrackerLink(port, identity, { hello: { peer, peer_cert: peerCert } });
  const request = async (message: Record<string, unknown>) => {
    const reply = await link.request(message);
    assert.equal(reply.ok, true, `${message.type}: ${JSON.stringify(reply.error)}`);
    return reply.data as Record<string, unknown>;
  };
  return { request, close: link.close };
}

Deno.test("a member that claims every piece and sends nothing is dropped; the download says why", async () => {
  await using swarm = await startSwarm(["owner", "seed", "leech"], {
    clientArgs: { leech: ["--request-timeout-ms", "1500", "--stall-timeout-ms", "2500"] },
  });
  await writeRandomFile(`${swarm.home("seed")}/f.bin`, MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  await swarm.shell("seed").quit(); // the only honest holder goes away

  const identity = await generateIdentity("silent member");
  const serving = await issueCertificate(identity, "silent member", ["127.0.0.1"]);
  const fake = await silentSeeder(serving.certPem, identity.keyPem, 2);
  const link = await rawTracker(swarm.tracker.port, identity, {
    host: "127.0.0.1",
    port: fake.port,
  }, serving.certPem);
  try {
    await link.request({ type: "create_user", user: "silent", password: "pw" });
    await link.request({ type: "login", user: "silent", password: "pw" });
    await link.request({ type: "join_group", group: swarm.group });
    await swarm.shell("owner").ok(`accept_request ${swarm.group} silent`);
    const located = await link.request({ type: "locate_file", group: swarm.group, name: "f.bin" });
    await link.request({
      type: "announce",
      group: swarm.group,
      info_hash: located.info_hash,
      state: "downloading",
    });

    const leech = swarm.shell("leech");
    await Deno.mkdir(`${swarm.home("leech")}/dl`);
    await leech.ok(`download_file ${swarm.group} f.bin ${swarm.home("leech")}/dl`);
    const failed = await leech.event(["download_failed", "download_complete"]);
    assert.equal(failed.event, "download_failed", JSON.stringify(failed));
    assert.match(String(failed.reason), /no connected peer has 2 missing pieces/);
    assert.match(String(failed.reason), /dropped 127\.0\.0\.1:\d+: it sent nothing for 1\.5 s/);
    assert.ok(fake.connections >= 1, "the downloader did dial the silent member");
    const [line] = await leech.ok("show_downloads") as DownloadLine[];
    assert.equal(line.state, "F");
  } finally {
    link.close();
    fake.close();
  }
});
