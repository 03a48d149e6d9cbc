/**
 * One large file shared and downloaded end to end, measured: a sparse file of zeros (no disk
 * space on the sharer's side), a tracker and two clients on loopback with TLS, as the shells
 * drive them. Prints one JSON object: seconds to share (hashing and telling the tracker its
 * info dictionary in pages), seconds to download (fetching the info dictionary in pages, every
 * piece, the whole-file SHA-1), and the peak RSS (VmHWM) of each process. The downloader
 * writes no piece of zeros into its new part file (peer/piece_writer_worker.ts), so the copy
 * is sparse too and a 100 GiB run fits a disk with less free space than that.
 *
 * Usage: deno run -A scripts/bench_bigfile.ts [--gib N] [--dir PATH]
 *
 * @module
 */

import { join } from "node:path";
import { JsonShell, runInterruptible, TempDir, TrackerProcess } from "./processes.ts";

const args = Deno.args;
const flag = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const gib = Number(flag("--gib") ?? 100);
const base = flag("--dir") ?? Deno.cwd();
const HOURS = 3 * 3600_000;

async function peakRssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0) / 1024;
}

async function allocatedBytes(path: string): Promise<number> {
  const { stdout } = await new Deno.Command("du", { args: ["-B1", path] }).output();
  return Number(new TextDecoder().decode(stdout).split("\t")[0]);
}

async function main(): Promise<void> {
  // Ctrl-C or SIGTERM disposes of these too (runInterruptible): the programs stop, the files go
  await using temp = await TempDir.create("bigfile-", base);
  const dir = temp.path;
  await using tracker = await TrackerProcess.start(join(dir, "tracker.db"));
  await using alice = JsonShell.start(tracker.port, { waitLimitMs: HOURS });
  await using bob = JsonShell.start(tracker.port, { waitLimitMs: HOURS });
  await Deno.mkdir(join(dir, "seed"));
  await Deno.mkdir(join(dir, "got"));
  const path = join(dir, "seed", "big.bin");
  {
    using file = await Deno.open(path, { create: true, write: true });
    await file.truncate(gib * 1024 ** 3);
  }
  await alice.ok("create_user alice pw-alice");
  await alice.ok("login alice pw-alice");
  await alice.ok("create_group films");
  await bob.ok("create_user bob pw-bob");
  await bob.ok("login bob pw-bob");
  await bob.ok("join_group films");
  await alice.ok("accept_request films bob");

  const shareStart = performance.now();
  const shared = await alice.ok(`upload_file ${path} films`) as { info_hash: string };
  const shareSeconds = (performance.now() - shareStart) / 1000;

  const downloadStart = performance.now();
  await bob.ok(`download_file films big.bin ${join(dir, "got")}`);
  const done = await bob.event(["download_complete", "download_failed"]);
  if (done.event === "download_failed") throw new Error(`the download failed: ${done.reason}`);
  const downloadSeconds = (performance.now() - downloadStart) / 1000;
  const got = join(dir, "got", "big.bin");
  const result = {
    date: new Date().toISOString(),
    gib,
    info_hash: shared.info_hash,
    share_s: Number(shareSeconds.toFixed(1)),
    download_s: Number(downloadSeconds.toFixed(1)),
    download_mb_per_s: Number((gib * 1024 ** 3 / 1e6 / downloadSeconds).toFixed(0)),
    downloaded_bytes: (await Deno.stat(got)).size,
    downloaded_allocated_bytes: await allocatedBytes(got),
    sha1_checked: done.sha1 ?? null,
    sharer_peak_rss_mib: Math.round(await peakRssMiB(alice.pid)),
    downloader_peak_rss_mib: Math.round(await peakRssMiB(bob.pid)),
    tracker_peak_rss_mib: Math.round(await peakRssMiB(tracker.pid)),
  };
  console.log(JSON.stringify(result));
}

if (import.meta.main) await runInterruptible("bench_bigfile", main);
