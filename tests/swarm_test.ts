/**
 * Files through real clients on loopback: many seeders to one downloader, seeders that die
 * or lie, files at the edges of the piece math, resuming, and a finished download serving
 * the next peer. Every file is checked by SHA-1.
 */

import assert from "node:assert/strict";
import { BLOCK_LENGTH, PIECE_LENGTH } from "../lib/pieces.ts";
import {
  type DownloadLine,
  type JsonReply,
  type JsonShell,
  sha1OfFile,
  startSwarm,
  writeRandomFile,
} from "./harness.ts";

const MiB = 1 << 20;

interface Completed extends JsonReply {
  path: string;
  sha1: string;
  size: number;
  peers: { peer: string; bytes: number; pieces: number }[];
}

/** Starts a download into `<home>/downloads` and waits for its completion event. */
async function download(shell: JsonShell, home: string, group: string, name: string) {
  await Deno.mkdir(`${home}/downloads`, { recursive: true });
  const started = await shell.ok(`download_file ${group} ${name} ${home}/downloads`) as {
    path: string;
  };
  assert.equal(started.path, `${home}/downloads/${name}`);
  const event = await shell.event("download_complete", (e) => e.name === name) as Completed;
  return event;
}

function bytesFrom(event: Completed, shell: JsonShell): number {
  return event.peers.find((peer) => peer.peer === `127.0.0.1:${shell.peerPort}`)?.bytes ?? 0;
}

Deno.test("three seeders, one downloader: every seeder contributes, the file is exact", async () => {
  await using swarm = await startSwarm(["s1", "s2", "s3", "d"]);
  const size = 24 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("s1")}/big.bin`, size);
  for (const seeder of ["s2", "s3"]) {
    await Deno.copyFile(`${swarm.home("s1")}/big.bin`, `${swarm.home(seeder)}/big.bin`);
  }
  for (const seeder of ["s1", "s2", "s3"]) {
    assert.deepEqual(await swarm.shell(seeder).ok(`upload_file big.bin ${swarm.group}`), {
      group: swarm.group,
      name: "big.bin",
      size,
      sha1,
    });
  }
  assert.deepEqual(await swarm.shell("d").ok(`list_files ${swarm.group}`), [
    { name: "big.bin", size, sha1, seeders: 3 },
  ]);

  const done = await download(swarm.shell("d"), swarm.home("d"), swarm.group, "big.bin");
  assert.equal(done.sha1, sha1);
  assert.equal(await sha1OfFile(done.path), sha1);
  for (const seeder of ["s1", "s2", "s3"]) {
    assert.ok(bytesFrom(done, swarm.shell(seeder)) > 0, `${seeder} contributed nothing`);
  }
  assert.equal(done.peers.reduce((sum, peer) => sum + peer.bytes, 0), size, "no byte twice");

  const [line] = await swarm.shell("d").ok("show_downloads") as DownloadLine[];
  assert.deepEqual(
    { ...line, peers: undefined, up_bps: undefined, seconds: undefined },
    {
      group: swarm.group,
      name: "big.bin",
      state: "C",
      pieces_done: 48,
      pieces_total: 48,
      path: done.path,
      reason: "",
      peers: undefined,
      activity: "complete",
      bytes_done: size,
      bytes_total: size,
      down_bps: 0,
      up_bps: undefined,
      eta_s: 0,
      peers_connected: 0,
      seconds: undefined,
    },
  );
  // the part file is gone and the downloader now seeds it
  assert.deepEqual([...Deno.readDirSync(`${swarm.home("d")}/downloads`)].map((e) => e.name), [
    "big.bin",
  ]);
  assert.equal(
    (await swarm.shell("s1").ok(`list_files ${swarm.group}`) as { seeders: number }[])[0].seeders,
    4,
  );
});

Deno.test("a seeder killed mid-download: the file completes from the others", async () => {
  // seeders limited to 2 MiB/s each, so the download is still running when one dies
  const limit = ["--upload-limit-kib", "2048"];
  await using swarm = await startSwarm(["s1", "s2", "s3", "d"], {
    clientArgs: { s1: limit, s2: limit, s3: limit },
  });
  const size = 12 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("s1")}/f.bin`, size);
  for (const seeder of ["s2", "s3"]) {
    await Deno.copyFile(`${swarm.home("s1")}/f.bin`, `${swarm.home(seeder)}/f.bin`);
  }
  for (const seeder of ["s1", "s2", "s3"]) {
    await swarm.shell(seeder).ok(`upload_file f.bin ${swarm.group}`);
  }
  const d = swarm.shell("d");
  await Deno.mkdir(`${swarm.home("d")}/downloads`);
  await d.ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}/downloads`);
  const midway = await d.downloadState("f.bin", (line) => line.pieces_done >= 2);
  assert.equal(midway.state, "D");
  swarm.shell("s2").kill("SIGKILL");
  const done = await d.event("download_complete") as Completed;
  assert.equal(await sha1OfFile(done.path), sha1);
});

Deno.test("a seeder serving corrupt pieces is dropped; the file still comes out right", async () => {
  // the good seeder is held to 2 MiB/s, so the download cannot be over before the corrupt
  // one is asked (unlimited, it once took every piece first and the test proved nothing)
  await using swarm = await startSwarm(["good", "bad", "d"], {
    clientArgs: { good: ["--upload-limit-kib", "2048"] },
  });
  const size = 8 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("good")}/f.bin`, size);
  await Deno.copyFile(`${swarm.home("good")}/f.bin`, `${swarm.home("bad")}/f.bin`);
  for (const seeder of ["good", "bad"]) {
    await swarm.shell(seeder).ok(`upload_file f.bin ${swarm.group}`);
  }
  // corrupt one byte of every block of bad's copy, keeping its size: any block from it spoils
  // its piece (one byte per piece let a piece whose corrupt block came from the good seeder
  // verify, and count as bad's); flip the byte that is there (a fixed value matched the
  // random byte in 1 piece of 256, and that piece then verified)
  {
    using file = await Deno.open(`${swarm.home("bad")}/f.bin`, { read: true, write: true });
    const byte = new Uint8Array(1);
    for (let offset = 1000; offset < size; offset += BLOCK_LENGTH) {
      await file.seek(offset, Deno.SeekMode.Start);
      await file.read(byte);
      byte[0] ^= 0xff;
      await file.seek(offset, Deno.SeekMode.Start);
      await file.write(byte);
    }
  }
  const done = await download(swarm.shell("d"), swarm.home("d"), swarm.group, "f.bin");
  assert.equal(await sha1OfFile(done.path), sha1);
  const fromBad = done.peers.find((peer) =>
    peer.peer === `127.0.0.1:${swarm.shell("bad").peerPort}`
  );
  assert.ok((fromBad?.bytes ?? 0) > 0, "the corrupt seeder was asked (else this proves nothing)");
  assert.equal(fromBad?.pieces, 0, "no piece from the corrupt seeder was kept");
});

Deno.test("files of 0 bytes, 1 byte and exactly two pieces", async () => {
  await using swarm = await startSwarm(["s", "d"]);
  for (
    const [name, size] of [["empty", 0], ["one", 1], ["two-pieces", 2 * PIECE_LENGTH]] as const
  ) {
    const sha1 = await writeRandomFile(`${swarm.home("s")}/${name}`, size);
    assert.deepEqual(await swarm.shell("s").ok(`upload_file ${name} ${swarm.group}`), {
      group: swarm.group,
      name,
      size,
      sha1,
    });
    const done = await download(swarm.shell("d"), swarm.home("d"), swarm.group, name);
    assert.equal(done.size, size);
    assert.equal(await sha1OfFile(done.path), sha1, name);
    assert.equal((await Deno.stat(done.path)).size, size);
  }
});

Deno.test("a downloaded file serves a fifth peer, with the first seeder gone", async () => {
  await using swarm = await startSwarm(["seed", "first", "second"]);
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, 3 * MiB + 123);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  await download(swarm.shell("first"), swarm.home("first"), swarm.group, "f.bin");
  await swarm.shell("seed").ok("logout");
  assert.deepEqual(
    (await swarm.shell("second").ok(`list_files ${swarm.group}`) as { seeders: number }[])
      .map((file) => file.seeders),
    [1],
  );
  const done = await download(swarm.shell("second"), swarm.home("second"), swarm.group, "f.bin");
  assert.equal(await sha1OfFile(done.path), sha1);
  assert.deepEqual(done.peers.map((peer) => peer.peer), [
    `127.0.0.1:${swarm.shell("first").peerPort}`,
  ]);
});

Deno.test("an interrupted download resumes without fetching verified pieces again", async () => {
  await using swarm = await startSwarm(["seed", "d"], {
    clientArgs: { seed: ["--upload-limit-kib", "4096"] },
  });
  const size = 10 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, size);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const target = `${swarm.home("d")}/downloads`;
  await Deno.mkdir(target);
  const d = swarm.shell("d");
  await d.ok(`download_file ${swarm.group} f.bin ${target}`);
  const before = await d.downloadState("f.bin", (line) => line.pieces_done >= 5);
  d.kill("SIGKILL"); // a crash: nothing is cleaned up
  await d.exited();

  const again = await swarm.addClient("d");
  await again.ok(`download_file ${swarm.group} f.bin ${target}`);
  const done = await again.event("download_complete") as Completed;
  assert.equal(await sha1OfFile(done.path), sha1);
  const fetched = done.peers.reduce((sum, peer) => sum + peer.bytes, 0);
  assert.ok(
    fetched <= size - before.pieces_done * PIECE_LENGTH,
    `fetched ${fetched} bytes though ${before.pieces_done} pieces were verified before`,
  );
});

Deno.test("downloaders serve each other the pieces they have verified so far", async () => {
  // a slow seeder: the two downloaders finish sooner by trading than by waiting for it
  await using swarm = await startSwarm(["seed", "d1", "d2"], {
    clientArgs: { seed: ["--upload-limit-kib", "1024"] },
  });
  const size = 5 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, size);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const started = ["d1", "d2"].map(async (name) => {
    await Deno.mkdir(`${swarm.home(name)}/dl`);
    await swarm.shell(name).ok(`download_file ${swarm.group} f.bin ${swarm.home(name)}/dl`);
  });
  await Promise.all(started);
  const [one, two] = await Promise.all(
    ["d1", "d2"].map((name) => swarm.shell(name).event("download_complete") as Promise<Completed>),
  );
  for (const done of [one, two]) assert.equal(await sha1OfFile(done.path), sha1);
  const traded = bytesFrom(one, swarm.shell("d2")) + bytesFrom(two, swarm.shell("d1"));
  assert.ok(traded > 0, "neither downloader got a byte from the other");
});

Deno.test("a slow seeder does not hold the tail back: others take over its blocks", async () => {
  await using swarm = await startSwarm(["fast", "slow", "d"], {
    clientArgs: { slow: ["--upload-limit-kib", "16"] },
  });
  const size = 4 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("fast")}/f.bin`, size);
  await Deno.copyFile(`${swarm.home("fast")}/f.bin`, `${swarm.home("slow")}/f.bin`);
  for (const seeder of ["fast", "slow"]) {
    await swarm.shell(seeder).ok(`upload_file f.bin ${swarm.group}`);
  }
  const done = await download(swarm.shell("d"), swarm.home("d"), swarm.group, "f.bin");
  assert.equal(await sha1OfFile(done.path), sha1);
  // The slow seeder starts a piece and holds 16 block requests. Left to itself it would deliver
  // them all (256 KiB at 16 KiB/s); the fast seeder takes over the piece's other blocks and
  // duplicates the slow one's in endgame, so only the first block or two come from it.
  assert.ok(bytesFrom(done, swarm.shell("slow")) < 8 * 16_384, JSON.stringify(done.peers));
});

Deno.test("a capped flash crowd: every downloader is served by another downloader", async () => {
  // issue 14's flash crowd in small: every uplink capped, the sharer's the narrowest, four
  // downloaders starting together; what multiplies the sharer's uplink is their trading
  const downloaders = ["d1", "d2", "d3", "d4"];
  const capped = ["--upload-limit-kib", "2048"];
  await using swarm = await startSwarm(["seed", ...downloaders], {
    clientArgs: {
      seed: ["--upload-limit-kib", "1024"],
      ...Object.fromEntries(downloaders.map((name) => [name, capped])),
    },
  });
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/crowd.bin`, 6 * MiB);
  await swarm.shell("seed").ok(`upload_file crowd.bin ${swarm.group}`);
  const done = await Promise.all(
    downloaders.map((name) =>
      download(swarm.shell(name), swarm.home(name), swarm.group, "crowd.bin")
    ),
  );
  const seedAddress = `127.0.0.1:${swarm.shell("seed").peerPort}`;
  for (const [i, event] of done.entries()) {
    assert.equal(await sha1OfFile(event.path), sha1, `${downloaders[i]}'s copy`);
    const fromOthers = event.peers
      .filter((peer) => peer.peer !== seedAddress)
      .reduce((sum, peer) => sum + peer.bytes, 0);
    assert.ok(fromOthers > 0, `${downloaders[i]} got nothing from another downloader`);
  }
});
