/**
 * Downloads that survive (issue 15): one waits while its only holder is away and goes on when
 * it is back; one whose client was killed is taken up at the next login; pause, resume and
 * cancel with their errors; remembered downloads that cannot be trusted are refused with a
 * warning. Real tracker and clients on 127.0.0.1; a holder held to 256 KiB/s keeps each
 * download unfinished until the test has done what it needs to mid-way.
 *
 * @module
 */

import assert from "node:assert/strict";
import { downloadLine } from "../peer/commands.ts";
import { WAITING_REFRESH_MAX_MS, waitingRefreshMs } from "../peer/download.ts";
import { describeEvent } from "../peer/shell.ts";
import { StateDir, trackerAddress } from "../peer/state_dir.ts";
import { partPathFor } from "../peer/storage.ts";
import { type JsonShell, sha1OfFile, startSwarm, writeRandomFile } from "./harness.ts";
import type { DownloadStatus } from "../peer/file_sharing.ts";
import type { SessionEvent } from "../peer/session.ts";

const MiB = 1024 * 1024;
/** 8 pieces, 16 s at the holder's 256 KiB/s: never finished before the test acts. */
const FILE_BYTES = 4 * MiB;
const SLOW_HOLDER = ["--upload-limit-kib", "256"];

/** Waits until at least `pieces` pieces of `name` are verified (and it is still unfinished). */
async function someVerified(shell: JsonShell, name: string, pieces = 1) {
  const line = await shell.downloadState(name, (line) => line.pieces_done >= pieces);
  assert.equal(line.state, "D", `${name} finished before the test could act mid-way`);
  return line;
}

/** The JSON files of a user's remembered downloads. */
async function rememberedFiles(stateHome: string): Promise<string[]> {
  const dir = `${stateHome}/swarmshare/unfinished_downloads`;
  try {
    return (await Array.fromAsync(Deno.readDir(dir)))
      .filter((entry) => entry.name.endsWith(".json"))
      .map((entry) => `${dir}/${entry.name}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

Deno.test("a download waits while its only holder is away and goes on when it is back", async () => {
  await using swarm = await startSwarm(["s", "d"], { clientArgs: { s: SLOW_HOLDER } });
  const group = swarm.group;
  const d = swarm.shell("d");
  const sha1 = await writeRandomFile(`${swarm.home("s")}/f.bin`, FILE_BYTES);
  await swarm.shell("s").ok(`upload_file f.bin ${group}`);
  await d.ok(`download_file ${group} f.bin .`);
  const before = await someVerified(d, "f.bin");

  await swarm.shell("s").quit();
  const waiting = await d.downloadState("f.bin", (line) => line.activity === "waiting");
  assert.equal(waiting.state, "D");
  assert.equal(waiting.reason, "waiting for a peer");
  assert.ok(waiting.pieces_done >= before.pieces_done && waiting.pieces_done < 8);
  assert.match(
    downloadLine(waiting as DownloadStatus),
    /^\[D\] \[crew\] f\.bin \d+% \(\d\/8 pieces from 1 peer, waiting for a peer\); .*, ETA unknown, 0 peers connected$/,
  );

  // the holder logs in again (a new client, full speed): the waiting download finds it
  await swarm.addClient("s");
  const done = await d.event(["download_complete", "download_failed"]);
  assert.equal(done.event, "download_complete", JSON.stringify(done));
  assert.equal(await sha1OfFile(String(done.path)), sha1);
  assert.ok(!d.events.some((event) => event.event === "download_failed"));
});

Deno.test("a download whose client was killed is taken up at the next login", async () => {
  await using swarm = await startSwarm(["s", "d"], {
    clientArgs: { s: SLOW_HOLDER },
    persistentState: true,
  });
  const group = swarm.group;
  const s = swarm.shell("s");
  const d = swarm.shell("d");
  const sha1 = await writeRandomFile(`${swarm.home("s")}/f.bin`, FILE_BYTES);
  await s.ok(`upload_file f.bin ${group}`);
  await Deno.mkdir(`${swarm.home("d")}/dl`);
  await d.ok(`download_file ${group} f.bin dl`);
  const before = await someVerified(d, "f.bin");

  d.kill("SIGKILL");
  await d.exited();
  const [remembered] = await rememberedFiles(swarm.stateHome("d"));
  assert.ok(remembered, "the unfinished download is remembered");
  assert.equal((await Deno.stat(remembered)).mode! & 0o777, 0o600);

  await s.ok("set_limits none none");
  const again = await swarm.addClient("d");
  const resumed = await again.event("download_resumed");
  assert.equal(resumed.name, "f.bin");
  assert.equal(resumed.paused, false);
  assert.equal(resumed.pieces_total, 8);
  assert.ok(
    Number(resumed.pieces_done) >= before.pieces_done,
    `${resumed.pieces_done} pieces kept, ${before.pieces_done} were verified before the kill`,
  );
  assert.equal(
    describeEvent(resumed as SessionEvent),
    `resuming download of "f.bin" in group "crew": ${resumed.pieces_done} of 8 pieces ` +
      "already verified",
  );
  const done = await again.event(["download_complete", "download_failed"]);
  assert.equal(done.event, "download_complete", JSON.stringify(done));
  assert.equal(done.path, `${swarm.home("d")}/dl/f.bin`);
  assert.equal(await sha1OfFile(String(done.path)), sha1);

  // finished: nothing left to take up at the next login
  await again.quit();
  assert.deepEqual(await rememberedFiles(swarm.stateHome("d")), []);
});

Deno.test("pause, resume and cancel a download", async (t) => {
  await using swarm = await startSwarm(["s", "d"], {
    clientArgs: { s: SLOW_HOLDER },
    persistentState: true,
  });
  const group = swarm.group;
  const s = swarm.shell("s");
  let d = swarm.shell("d");
  const sha1 = await writeRandomFile(`${swarm.home("s")}/f.bin`, FILE_BYTES);
  await writeRandomFile(`${swarm.home("s")}/g.bin`, FILE_BYTES);
  await s.ok(`upload_file f.bin ${group}`);
  await s.ok(`upload_file g.bin ${group}`);

  await t.step("no such download", async () => {
    for (const command of ["pause_download", "resume_download", "cancel_download"]) {
      assert.equal(
        await d.fails(`${command} ${group} f.bin`),
        `no download of "f.bin" in group "${group}"`,
      );
    }
    assert.match(await d.fails(`pause_download ${group} a/b`), /cannot be a file name/);
  });

  await t.step("a paused download stays paused, also after a restart", async () => {
    await d.ok(`download_file ${group} f.bin .`);
    await someVerified(d, "f.bin");
    const paused = await d.ok(`pause_download ${group} f.bin`) as DownloadStatus;
    assert.equal(paused.activity, "paused");
    assert.equal(paused.state, "D");
    const [line] = await d.ok("show_downloads") as DownloadStatus[];
    assert.equal(line.activity, "paused");
    assert.match(
      downloadLine(line),
      /^\[D\] \[crew\] f\.bin \d+% \(.*, paused\); .*, down 0 B\/s, .*, ETA unknown, /,
    );
    assert.equal(
      await d.fails(`pause_download ${group} f.bin`),
      `the download of "f.bin" in group "${group}" is already paused`,
    );
    assert.equal(
      await d.fails(`download_file ${group} f.bin .`),
      `the download of "f.bin" in group "${group}" is paused; resume_download ${group} f.bin ` +
        "continues it",
    );

    await d.quit();
    d = await swarm.addClient("d");
    const kept = await d.event("download_resumed");
    assert.equal(kept.paused, true);
    assert.equal(kept.pieces_done, line.pieces_done);
    assert.match(describeEvent(kept as SessionEvent), /stays paused: \d of 8 pieces verified/);
    const [after] = await d.ok("show_downloads") as DownloadStatus[];
    assert.equal(after.activity, "paused");
    assert.equal(after.pieces_done, line.pieces_done);
  });

  await t.step("resume goes on from the verified pieces", async () => {
    const resumed = await d.ok(`resume_download ${group} f.bin`) as Record<string, unknown>;
    assert.equal(resumed.resumed, true);
    assert.ok(Number(resumed.pieces_done) >= 1);
    // the holder is still slow: unfinished for seconds
    assert.equal(
      await d.fails(`resume_download ${group} f.bin`),
      `the download of "f.bin" in group "${group}" is not paused`,
    );
    await s.ok("set_limits none none");
    const done = await d.event(["download_complete", "download_failed"]);
    assert.equal(done.event, "download_complete", JSON.stringify(done));
    assert.equal(await sha1OfFile(String(done.path)), sha1);
    for (const command of ["pause_download", "resume_download", "cancel_download"]) {
      assert.equal(
        await d.fails(`${command} ${group} f.bin`),
        `the download of "f.bin" in group "${group}" is complete`,
      );
    }
  });

  await t.step("cancel keeps the part file (and says so) or deletes it", async () => {
    await s.ok("set_limits 256 none");
    await d.ok(`download_file ${group} g.bin .`);
    await someVerified(d, "g.bin");
    const part = partPathFor(`${swarm.home("d")}/g.bin`);
    const kept = await d.ok(`cancel_download ${group} g.bin`) as Record<string, unknown>;
    assert.equal(kept.part_kept, true);
    assert.equal(kept.part_path, part);
    await Deno.stat(part);
    const rows = await d.ok("show_downloads") as DownloadStatus[];
    assert.deepEqual(rows.map((row) => row.name), ["f.bin"]);
    assert.equal(
      await d.fails(`cancel_download ${group} g.bin`),
      `no download of "g.bin" in group "${group}"`,
    );

    const again = await d.ok(`download_file ${group} g.bin .`) as Record<string, unknown>;
    assert.equal(again.resumed, true, "download_file takes up the kept part file");
    assert.ok(Number(again.pieces_done) >= 1);
    const deleted = await d.ok(`cancel_download ${group} g.bin --delete`) as Record<
      string,
      unknown
    >;
    assert.equal(deleted.part_kept, false);
    await assert.rejects(Deno.stat(part), Deno.errors.NotFound);
    // cancelled downloads are not taken up at the next login
    await d.quit();
    assert.deepEqual(await rememberedFiles(swarm.stateHome("d")), []);
  });
});

Deno.test("remembered downloads that cannot be trusted are refused with a warning", async () => {
  await using swarm = await startSwarm(["s", "d"], { persistentState: true });
  const group = swarm.group;
  await writeRandomFile(`${swarm.home("s")}/f.bin`, 1000);
  await swarm.shell("s").ok(`upload_file f.bin ${group}`);
  await swarm.shell("d").quit();

  const state = await StateDir.open(`${swarm.stateHome("d")}/swarmshare`);
  const remembered = state.unfinishedDownloads(
    trackerAddress("127.0.0.1", swarm.tracker.port),
    "d",
  );
  // well formed, but its directory is gone: said, then forgotten
  await remembered.put({
    group,
    name: "f.bin",
    path: `${swarm.home("d")}/gone/f.bin`,
    info_hash: "0".repeat(40),
    paused: false,
    pieces_done: 0,
  });
  const dir = `${swarm.stateHome("d")}/swarmshare/unfinished_downloads`;
  await Deno.writeTextFile(`${dir}/00garbage.json`, "{not json");
  await Deno.writeTextFile(
    `${dir}/01hostile.json`,
    JSON.stringify({
      tracker: `127.0.0.1:${swarm.tracker.port}`,
      user: "d",
      download: {
        group,
        name: "f.bin",
        path: "/etc/../etc/passwd",
        info_hash: "0".repeat(40),
        paused: false,
        pieces_done: 0,
      },
    }),
  );

  const d = await swarm.addClient("d");
  const warnings = d.events.filter((event) => event.event === "download_not_resumed");
  assert.equal(warnings.length, 3, JSON.stringify(d.events));
  const [garbage, hostile, gone] = warnings;
  assert.equal(garbage.file, `${dir}/00garbage.json`);
  assert.equal(hostile.file, `${dir}/01hostile.json`);
  assert.match(String(hostile.reason), /not an absolute path to the file/);
  assert.equal(
    describeEvent(hostile as SessionEvent),
    `warning: not resuming from ${dir}/01hostile.json: its path is not an absolute path ` +
      "to the file",
  );
  assert.equal(gone.name, "f.bin");
  assert.match(
    describeEvent(gone as SessionEvent),
    /^warning: not resuming the download of "f\.bin" in group "crew": .*gone is no longer a directory$/,
  );
  assert.deepEqual(await d.ok("show_downloads"), []);
  // the client goes on as usual
  await d.ok(`download_file ${group} f.bin .`);
  assert.equal((await d.event("download_complete")).name, "f.bin");
  await d.quit();
  // the bad files stay for the user to look at; the one that named a gone directory is forgotten
  assert.deepEqual((await rememberedFiles(swarm.stateHome("d"))).sort(), [
    `${dir}/00garbage.json`,
    `${dir}/01hostile.json`,
  ]);
});

Deno.test("a waiting download asks the tracker again with backoff, at most every 8 s", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 100, 10_000].map(waitingRefreshMs),
    [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000],
  );
  assert.equal(WAITING_REFRESH_MAX_MS, 8000);
});
