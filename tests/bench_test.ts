/**
 * The benchmark keeps working and keeps its output contract (the numbers themselves are not
 * tested: tests never depend on timing). A 2 MiB run of S1 and U, each twice, as JSON; a
 * 1 MiB run of the capped swarms CL and C2S with two downloaders and caps too high to matter.
 */

import assert from "node:assert/strict";
import { exists } from "../peer/storage.ts";
import { LineQueue, processesIn, within } from "./harness.ts";

Deno.test("bench --json: one array of rows with the documented keys", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../scripts/bench.ts", import.meta.url).pathname,
      "--size",
      "2",
      "--scenarios",
      "S1,U",
      "--repeat",
      "2",
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(stderr);
  assert.equal(code, 0, log);
  const rows = JSON.parse(new TextDecoder().decode(stdout)) as Record<string, unknown>[];
  assert.deepEqual(
    rows.map((row) => [row.scenario, row.engine]),
    [
      ["SHA-1 512 KiB", "limit"],
      ["loopback TCP", "limit"],
      ["disk write+fsync", "limit"],
      ["SHA-1 beside U", "limit"],
      ["S1", "swarmshare"],
      ["U", "swarmshare"],
    ],
  );
  for (const row of rows) {
    assert.deepEqual(Object.keys(row), [
      "scenario",
      "engine",
      "seconds",
      "mb_s",
      "peak_rss_mib",
      "cpu_s",
    ]);
    assert.ok((row.seconds as number) > 0 && (row.mb_s as number) > 0, JSON.stringify(row));
    if (row.engine === "swarmshare") {
      assert.ok(
        (row.peak_rss_mib as number) > 0 && (row.cpu_s as number) >= 0,
        JSON.stringify(row),
      );
    }
  }
  assert.match(log, /bench: 2 MiB file/);
  // one row per scenario and engine, the median of its runs, whose times are all said
  assert.match(log, /bench: S1 swarmshare: median of 2 runs \([0-9.]+, [0-9.]+ s\)/);
  // U against the SHA-1 speed measured just before each of its runs
  assert.match(
    log,
    /bench: U swarmshare: median of 2 runs \([0-9.]+, [0-9.]+ s; [0-9.]+, [0-9.]+ of the limit beside each\)/,
  );
});

Deno.test("bench --json: capped swarms add their bound, efficiency and who sent what", async () => {
  const size = 1 << 20;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../scripts/bench.ts", import.meta.url).pathname,
      "--size",
      "1",
      "--scenarios",
      "CL,C2S",
      "--downloaders",
      "2",
      "--uplink",
      "64",
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(stderr);
  assert.equal(code, 0, log);
  const rows = JSON.parse(new TextDecoder().decode(stdout)) as Record<string, unknown>[];
  assert.deepEqual(
    rows.map((row) => [row.scenario, row.engine]),
    [
      ["SHA-1 512 KiB", "limit"],
      ["loopback TCP", "limit"],
      ["disk write+fsync", "limit"],
      ["CL", "swarmshare"],
      ["C2S", "swarmshare"],
    ],
  );
  for (const row of rows.slice(3)) {
    const said = JSON.stringify(row);
    // the keys every row has, then what a capped swarm adds
    assert.deepEqual(Object.keys(row), [
      "scenario",
      "engine",
      "seconds",
      "mb_s",
      "peak_rss_mib",
      "cpu_s",
      "bound_s",
      "efficiency",
      "sharer_copies",
      "downloader_seconds",
      "downloader_upload_bytes",
      "late_join_s",
      "bound",
    ]);
    const copies = row.sharer_copies as number[];
    const uploads = row.downloader_upload_bytes as number[];
    const times = row.downloader_seconds as number[];
    assert.equal(copies.length, row.scenario === "C2S" ? 2 : 1, said);
    assert.equal(uploads.length, 2, said);
    assert.equal(times.length, 2, said);
    // each downloader received the file once, from the sharers and the other downloader
    const delivered = copies.reduce((a, b) => a + b, 0) * size + uploads.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(delivered - 2 * size) <= size / 1000, said);
    assert.ok((row.bound_s as number) > 0 && (row.efficiency as number) > 0, said);
    assert.ok(
      Math.abs((row.efficiency as number) - (row.bound_s as number) / (row.seconds as number)) <
        0.01,
      said,
    );
    assert.ok(times.every((time) => time > 0 && time <= (row.seconds as number) + 0.001), said);
    // CL's late joiner started once the first downloader was half done, and its bound says so
    if (row.scenario === "CL") {
      assert.ok((row.late_join_s as number) > 0, said);
      assert.match(row.bound as string, /= [0-9.]+ s$/);
    } else {
      assert.equal(row.late_join_s, null, said);
    }
  }
  // each scenario's formula, once
  assert.match(log, /bench: CL bound: max\(S\/u_s, t1 \+ L·S\/\(u_s \+ N·u_d\)/);
  assert.match(log, /bench: C2S bound: max\(S\/\(u_s1 \+ u_s2\), N·S\/\(u_s1 \+ u_s2 \+ N·u_d\)\)/);
});

Deno.test("bench: bad arguments exit 2 with usage", async () => {
  for (
    const args of [
      ["--size", "none"],
      ["--scenarios", "S9"],
      ["--anchor", "transmission"],
      ["--repeat", "0"],
      ["--repeat", "1.5"],
      ["--uplink", "0"],
      ["--downlink", "fast"],
      ["--downloaders", "0"],
      ["--scenarios", "CL", "--downloaders", "1"],
    ]
  ) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../scripts/bench.ts", import.meta.url).pathname, ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(stderr), /^error: /);
  }
});

Deno.test("bench interrupted: its programs stop and its directory goes", async () => {
  // Ctrl-C in the middle of a swarm: the tracker and clients it started must not run on, nor
  // its files (the shared file, downloads, the programs' state) stay in /tmp. The sharer's
  // uplink at 50 KiB/s makes the download last 40 s, so the signal comes while it runs.
  const bench = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../scripts/bench.ts", import.meta.url).pathname,
      ...["--size", "2", "--scenarios", "CA", "--downloaders", "1", "--uplink", "0.05"],
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const progress = new LineQueue(bench.stdout);
  const errors = new LineQueue(bench.stderr);
  let signalled = false;
  try {
    const line = await progress.until((line) => / in \/\S+$/.test(line), "the bench's directory");
    const dir = line.match(/ in (\/\S+)$/)![1];
    await progress.until((line) => line.startsWith("bench: CA"), "the CA swarm");
    // the sharer and the downloader run in homes inside the directory
    await within(
      (async () => {
        // samples /proc until both are there; it waits for no event (none is printed)
        while (processesIn(dir).length < 2) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
      "the bench's clients to start",
    );
    bench.kill("SIGINT");
    signalled = true;
    const { code } = await bench.status;
    await Promise.all([progress.done, errors.done]);
    assert.equal(code, 130, errors.all.join("\n"));
    assert.ok(errors.all.some((line) => line.includes("interrupted; stopping its programs")));
    assert.equal(await exists(dir), false, `${dir} is still there`);
    assert.deepEqual(processesIn(dir), [], "programs of the bench still run");
  } finally {
    // a failed step must not leave the bench running either
    if (!signalled) bench.kill("SIGINT");
    await bench.status;
    await Promise.all([progress.done, errors.done]);
  }
});
