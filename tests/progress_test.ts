/**
 * Live progress through real clients: `show_downloads` numbers while a download runs and
 * once it is done, `show_uploads` on the seeder, peers connected dropping when a holder
 * quits, on a pipe and in `--json`. A download limit keeps a transfer running long enough to
 * look at it; every wait is on output, never on a sleep.
 */

import assert from "node:assert/strict";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import type { UploadStatus } from "../peer/file_sharing.ts";
import {
  type DownloadLine,
  type JsonShell,
  runScript,
  sha1OfFile,
  startSwarm,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./harness.ts";

const MiB = 1 << 20;

/** Runs `command` until its data satisfies `done`; returns that data. */
async function until<T>(shell: JsonShell, command: string, done: (data: T) => boolean) {
  return await within(
    (async () => {
      while (true) {
        const data = await shell.ok(command) as T;
        if (done(data)) return data;
        // paces the polling of a state; it never stands in for one
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })(),
    `"${command}" to reach the expected state`,
  );
}

Deno.test("--json progress: bytes, rates, ETA, peers connected now, and who a seeder serves", async () => {
  await using swarm = await startSwarm(["seed", "get"], {
    clientArgs: { get: ["--download-limit-kib", "512"] },
  });
  const [seed, get] = [swarm.shell("seed"), swarm.shell("get")];
  const size = 3 * MiB + 1000;
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, size);
  await seed.ok(`upload_file f.bin ${swarm.group}`);
  await Deno.mkdir(`${swarm.home("get")}/downloads`);
  await get.ok(`download_file ${swarm.group} f.bin ${swarm.home("get")}/downloads`);

  // running: verified bytes, a rate and a time left, one peer connected
  const running = await get.downloadState(
    "f.bin",
    (line) => line.bytes_done > 0 && line.down_bps > 0,
  );
  assert.equal(running.state, "D");
  assert.equal(running.bytes_total, size);
  // whole pieces, the last (1000 bytes) perhaps among them
  assert.ok(
    [0, PIECE_LENGTH - 1000].includes(running.pieces_done * PIECE_LENGTH - running.bytes_done),
    `${running.bytes_done} bytes in ${running.pieces_done} pieces`,
  );
  assert.ok(running.bytes_done < size);
  assert.equal(running.peers_connected, 1);
  assert.ok(typeof running.eta_s === "number" && running.eta_s > 0, `eta ${running.eta_s}`);

  // the seeder sees who fetches the file, over which address, and how much went there
  const [upload] = await until<UploadStatus[]>(
    seed,
    "show_uploads",
    (rows) => rows[0]?.peers[0]?.bytes_sent > 0,
  );
  assert.deepEqual(
    { ...upload, bytes_sent: undefined, up_bps: undefined, peers: undefined },
    {
      groups: [swarm.group],
      name: "f.bin",
      complete: true,
      bytes_sent: undefined,
      up_bps: undefined,
      peers: undefined,
    },
  );
  assert.equal(upload.peers.length, 1);
  assert.equal(upload.peers[0].user, "get");
  assert.equal(upload.peers[0].group, swarm.group);
  assert.match(upload.peers[0].address, /^127\.0\.0\.1:\d+$/);
  assert.ok(upload.bytes_sent >= upload.peers[0].bytes_sent);

  // the only holder quits: the download counts no peer connected (it used to say "from 1 peer")
  await seed.quit();
  const alone = await get.downloadState("f.bin", (line) => line.peers_connected === 0);
  assert.equal(alone.state, "D", alone.reason);
  assert.ok(alone.peers.some((peer) => peer.bytes > 0), "what it sent is still counted");

  // it comes back (its share restored at login) and the download completes
  await swarm.addClient("seed");
  const done = await get.event("download_complete", (event) => event.name === "f.bin");
  assert.equal(done.sha1, sha1);
  assert.equal(await sha1OfFile(`${swarm.home("get")}/downloads/f.bin`), sha1);
  const [line] = await get.ok("show_downloads") as DownloadLine[];
  assert.equal(line.state, "C");
  assert.equal(line.bytes_done, size);
  assert.equal(line.bytes_total, size);
  assert.equal(line.eta_s, 0);
  assert.equal(line.down_bps, 0);
  assert.equal(line.peers_connected, 0);
  assert.ok(line.seconds > 0);
});

Deno.test("on a pipe: show_uploads in words, no hashing line, and watch needs a terminal", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await writeRandomFile(dir.join("f.bin"), 2 * MiB);
  const { code, stdout } = await runScript(tracker.port, [
    "create_user pipe pw-pipe",
    "login pipe pw-pipe",
    "show_uploads",
    "create_group g",
    "upload_file f.bin g",
    "show_uploads",
    "watch",
  ], { cwd: dir.path });
  assert.equal(code, 0);
  assert.deepEqual(stdout.slice(2), [
    "not serving any file",
    'group "g" created; you are its owner',
    stdout[4],
    "[g] f.bin: sent 0 B, up 0 B/s, nobody fetches it now",
    "error: watch needs a terminal; use show_downloads",
  ]);
  assert.match(stdout[4], /^shared "f\.bin" in group "g" \(2\.0 MiB, sha1 [0-9a-f]{40}\)$/);
  assert.ok(!stdout.join("\n").includes("hashing"), "no progress line on a pipe");
});
