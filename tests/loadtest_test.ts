/**
 * `deno task loadtest` in small (issue 16): the tool as a user runs it, against real
 * trackers it starts itself, briefly and with few connections. It checks the `--json` rows'
 * shape and that requests of every type were answered, never timings; that both ways of
 * building the directory (protocol, store) give logged-in links; that nothing it started is
 * left running; and that bad arguments are one `error:` line and exit 2. The measured runs
 * are in docs/tracker_load.md.
 */

import assert from "node:assert/strict";
import { REQUEST_TYPES } from "../scripts/loadtest/load.ts";
import { postgresUnavailable } from "./postgres_server.ts";
import { LineQueue, within } from "./harness.ts";

const CLI = new URL("../scripts/loadtest/cli.ts", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function loadtest(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** Trackers of this checkout started by the load tool and still running. */
async function leftTrackers(): Promise<string[]> {
  const output = await new Deno.Command("pgrep", { args: ["-af", "main.ts server"] }).output();
  return new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => line.includes(MAIN) && line.includes("swarmshare-loadtest-"));
}

const SMALL = [
  "--seconds",
  "2",
  "--users",
  "10",
  "--groups",
  "5",
  "--members",
  "5",
  "--files",
  "3",
];

/** The fields, and the ones this tool adds that the docs rely on. */
const NUMERIC = [
  "connections",
  "trackers",
  "requests_per_s",
  "p50_ms",
  "p99_ms",
  "max_ms",
  "tracker_peak_rss_mib",
  "tracker_cpu_s",
  "idle_kib_per_connection",
  "idle_kib_per_added_connection",
  "requests",
];

function checkRow(
  row: Record<string, unknown>,
  connections: number,
  seeding: string,
  trackers = 1,
) {
  for (const key of NUMERIC) {
    assert.equal(typeof row[key], "number", `${key} in ${JSON.stringify(row)}`);
  }
  assert.equal(row.offered_rate === null || typeof row.offered_rate === "number", true);
  assert.equal(row.connections, connections);
  assert.equal(row.trackers, trackers);
  assert.equal(row.seeding, seeding);
  assert.ok((row.requests as number) > 0, "no request answered");
  assert.ok((row.requests_per_s as number) > 0);
  assert.ok((row.tracker_peak_rss_mib as number) > 0);
  assert.ok((row.tracker_cpu_s as number) > 0, "the tracker's CPU was not measured");
  assert.ok((row.max_ms as number) >= (row.p50_ms as number));
  const byType = row.by_type as Record<string, { requests: number }>;
  for (const type of REQUEST_TYPES) assert.ok(byType[type].requests > 0, `no ${type} answered`);
  assert.equal(row.starved_connections, 0);
  assert.equal(row.closed, 0);
  assert.deepEqual(row.errors, {});
  assert.ok(Array.isArray(row.limits) && row.limits.length > 0);
}

Deno.test("loadtest: rows of answered requests, through the protocol and seeded into the store", async (t) => {
  await t.step(
    "closed loop, one group in use a user, directory built through the protocol",
    async () => {
      const run = await loadtest([
        "--connections",
        "20",
        "--seed",
        "protocol",
        "--active-groups",
        "1",
        ...SMALL,
        "--json",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const rows = JSON.parse(run.stdout);
      assert.ok(Array.isArray(rows) && rows.length === 1, run.stdout);
      checkRow(rows[0], 20, "protocol");
      assert.equal(rows[0].offered_rate, null);
      assert.equal(rows[0].active_groups, 1);
      assert.match(run.stderr, /each user's links ask about its first 1 groups/);
      assert.match(run.stderr, /limit: connections per address/);
      assert.deepEqual(await leftTrackers(), []);
    },
  );

  await t.step(
    "two rows, an offered rate, pages of 2, directory seeded into the store",
    async () => {
      const run = await loadtest([
        "--connections",
        "10,20",
        "--rate",
        "200",
        "--seed",
        "store",
        "--page",
        "2",
        ...SMALL,
        "--json",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const rows = JSON.parse(run.stdout);
      assert.equal(rows.length, 2, run.stdout);
      // listings asked in pages of 2 (a limit the tracker refused would be errors in the rows)
      for (const row of rows) assert.equal(row.page_limit, 2);
      assert.match(run.stderr, /first page is asked for, of at most 2 entries/);
      checkRow(rows[0], 10, "store");
      checkRow(rows[1], 20, "store");
      for (const row of rows) assert.equal(row.offered_rate, 200);
      assert.match(run.stderr, /seeding .* straight into the store/);
      assert.deepEqual(await leftTrackers(), []);
    },
  );
});

Deno.test({
  name: "loadtest: two trackers on a PostgreSQL server of the load's own",
  ignore: await postgresUnavailable() !== undefined,
  async fn() {
    const run = await loadtest([
      "--connections",
      "20",
      "--trackers",
      "2",
      "--seed",
      "store",
      ...SMALL,
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout);
    checkRow(rows[0], 20, "store", 2);
    assert.match(run.stderr, /a PostgreSQL server of its own/);
    assert.deepEqual(await leftTrackers(), []);
  },
});

/** The load's temp directories in /tmp. */
async function loadDirs(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir("/tmp")) {
    if (entry.name.startsWith("swarmshare-loadtest-")) names.push(entry.name);
  }
  return names.sort();
}

Deno.test("loadtest: SIGTERM while seeding a large directory stops it at once, leaving nothing", async () => {
  // 100,000 groups take minutes to seed: the signal used to wait for the last of them
  const before = await loadDirs();
  const load = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--connections", "10", "--groups", "100000", "--seed", "store"]
      .concat(["--users", "10", "--members", "5", "--files", "1", "--json"]),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const out = new LineQueue(load.stdout);
  const errors = new LineQueue(load.stderr);
  let signalled = false;
  try {
    await errors.until((line) => line.startsWith("loadtest: seeding"), "the seeding to start");
    load.kill("SIGTERM");
    signalled = true;
    const { code } = await within(load.status, "the load to stop");
    await Promise.all([out.done, errors.done]);
    assert.equal(code, 130, errors.all.join("\n"));
    assert.deepEqual(out.all, ["[]"]);
    assert.ok(!errors.all.some((line) => line.startsWith("error:")), errors.all.join("\n"));
    assert.deepEqual(await loadDirs(), before);
    assert.deepEqual(await leftTrackers(), []);
  } finally {
    if (!signalled) load.kill("SIGTERM");
    await load.status;
    await Promise.all([out.done, errors.done]);
  }
});

Deno.test("loadtest: a bad argument is one error line and exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--connections", "abc"], /--connections takes a whole number of at least 1, not "abc"/],
    [["--connections", "0"], /--connections takes a whole number/],
    [["--connections", "5,"], /--connections has an empty item/],
    [["--connections", "5", "--rate", "-3"], /--rate takes a whole number/],
    [["--connections", "5", "--seconds", "1.5"], /--seconds takes a whole number/],
    [["--connections", "5", "--groups", "1e3"], /--groups takes a whole number/],
    [["--connections", "5", "--page", "0"], /--page takes a whole number of at least 1/],
    [["--connections", "5", "--active-groups", "x"], /--active-groups takes a whole number/],
    [["--connections", "5", "--seed", "disk"], /--seed is auto, protocol or store/],
    [
      ["--connections", "5", "--mix", "ping"],
      /--mix takes list_groups, list_files, locate_file, not "ping"/,
    ],
    [["--conections", "5"], /conections.*connections/],
    [
      ["--connections", "5", "--db-url", "/tmp/tracker.db"],
      /^error: --db-url takes a postgres:\/\/ URL, not "\/tmp\/tracker.db"$/,
    ],
    [["--connections", "5000", "--users", "10"], /more than 120 per address/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const run = await loadtest(args);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stdout, "");
      const lines = run.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], message);
    });
  }
});
