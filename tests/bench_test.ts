/**
 * The benchmark keeps working and keeps its output contract (the numbers themselves are not
 * tested: tests never depend on timing). A 2 MiB run of S1 and U, each twice, as JSON.
 */

import assert from "node:assert/strict";

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

Deno.test("bench: bad arguments exit 2 with usage", async () => {
  for (
    const args of [
      ["--size", "none"],
      ["--scenarios", "S9"],
      ["--anchor", "transmission"],
      ["--repeat", "0"],
      ["--repeat", "1.5"],
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
