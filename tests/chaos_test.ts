/**
 * `deno task chaos` in short (issue 13, faults): four clients and the tracker SIGKILLed and
 * restarted at seeded moments while files move; nothing may be lost and nothing left running.
 * The same driver with `--sabotage` must report what it was made to lose, so the checks are
 * known to bite.
 */

import assert from "node:assert/strict";
import { type ChaosReport, killSchedule } from "../scripts/chaos.ts";
import { LineQueue, processesIn, within } from "./harness.ts";

const CHAOS = new URL("../scripts/chaos.ts", import.meta.url).pathname;
/** A small swarm: four clients, two files of 1 MiB served at 256 KiB/s by each client. */
const SHORT = [
  "--clients",
  "4",
  "--files",
  "2",
  "--size",
  "1",
  "--upload-limit-kib",
  "256",
  "--settle-seconds",
  "30",
];

/** Runs the chaos driver with `--json`; returns its exit code, report and progress lines. */
async function runChaos(
  args: string[],
): Promise<{ code: number; report?: ChaosReport; progress: string }> {
  const { code, stdout, stderr } = await within(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHAOS, "--json", ...args],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output(),
    "the chaos run to end",
    120_000,
  );
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  const last = lines.at(-1);
  return {
    code,
    report: last?.startsWith("{") ? JSON.parse(last) as ChaosReport : undefined,
    progress: new TextDecoder().decode(stderr),
  };
}

async function assertCleanedUp(progress: string): Promise<void> {
  const dir = progress.match(/directory (\S+)/)?.[1];
  assert.ok(dir, progress);
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound, "the run left its directory");
  assert.deepEqual(processesIn(dir), [], "processes of the run are still running");
}

Deno.test("chaos: clients and the tracker killed and restarted, nothing lost", async () => {
  const { code, report, progress } = await runChaos([
    ...SHORT,
    "--seed",
    "13",
    "--seconds",
    "10",
    "--kill-every",
    "1.5",
  ]);
  assert.ok(report, progress);
  assert.deepEqual(report.lost, [], progress);
  assert.equal(code, 0, progress);
  assert.ok(report.kills_tracker >= 1, "the tracker was killed");
  assert.ok(report.kills_clients >= 3, `clients were killed: ${report.kills_clients}`);
  assert.ok(report.downloads_started >= 3, "every downloader's first round was started");
  assert.equal(report.downloads_completed, report.downloads_started);
  assert.equal(report.files_checked, 2);
  assert.ok(report.processes_spawned >= 5 + report.kills_clients + report.kills_tracker);
  assert.equal(report.processes_left, 0);
  assert.match(progress, /^chaos: seed 13 \(replay: deno task chaos --seed 13 /);
  await assertCleanedUp(progress);
});

Deno.test("chaos: a lost share and a corrupt download are reported, exit 1", async () => {
  const { code, report, progress } = await runChaos([
    "--sabotage",
    "--seconds",
    "0",
    "--clients",
    "3",
    "--files",
    "2",
    "--size",
    "1",
    "--settle-seconds",
    "30",
  ]);
  assert.equal(code, 1, progress);
  assert.ok(report, progress);
  assert.equal(report.kills_clients + report.kills_tracker, 0);
  assert.equal(report.lost.length, 2, report.lost.join("\n"));
  assert.match(report.lost.join("\n"), /chaos-1\.bin in group "alpha" has 1 seeders online, not 2/);
  assert.match(report.lost.join("\n"), /reads back as [0-9a-f]{40}, not [0-9a-f]{40}/);
  await assertCleanedUp(progress);
});

Deno.test("chaos: a download that cannot finish in the settling time is lost, not waited for", async () => {
  const started = performance.now();
  const { code, report, progress } = await runChaos([
    "--seconds",
    "0",
    "--settle-seconds",
    "2",
    "--clients",
    "3",
    "--files",
    "1",
    "--size",
    "4",
    "--upload-limit-kib",
    "64", // 64 s for the file
  ]);
  assert.equal(code, 1, progress);
  assert.ok(report, progress);
  assert.match(report.lost.join("\n"), /chaos-1\.bin never completed/);
  assert.equal(report.processes_left, 0);
  assert.ok(performance.now() - started < 30_000, "the end waited past its bound");
  await assertCleanedUp(progress);
});

Deno.test("chaos: Ctrl-C mid-run stops every process and removes the directory", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHAOS, ...SHORT, "--seconds", "60", "--kill-every", "0.3"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new LineQueue(child.stderr);
  const stdout = new LineQueue(child.stdout);
  // interrupt once kills have begun: restarts are under way
  await stdout.until((line) => / killed /.test(line), "the first kill");
  child.kill("SIGINT");
  const { code } = await within(child.status, "the chaos run to stop");
  await Promise.all([stdout.done, stderr.done]);
  assert.equal(code, 130, stderr.all.join("\n"));
  assert.match(stderr.all.join("\n"), /interrupted; cleaning up/);
  await assertCleanedUp(stdout.all.join("\n"));
});

Deno.test("chaos: the kill schedule is the seed's alone", () => {
  const shape = { seconds: 60, clients: 8, killEverySeconds: 2 };
  const schedule = killSchedule(5, shape);
  assert.deepEqual(killSchedule(5, shape), schedule);
  assert.notDeepEqual(killSchedule(6, shape), schedule);
  assert.ok(schedule.length >= 15 && schedule.length <= 60, `${schedule.length} kills`);
  for (const [index, kill] of schedule.entries()) {
    assert.ok(kill.atMs < 60_000 && kill.atMs > (schedule[index - 1]?.atMs ?? 0));
    assert.ok(kill.downMs >= 200 && kill.downMs <= 2000);
    assert.ok(kill.target === "tracker" || (kill.target >= 0 && kill.target < 8));
  }
  // with two kills or more, one is the tracker's, whatever the seed
  for (let seed = 0; seed < 50; seed++) {
    const kills = killSchedule(seed, { seconds: 5, clients: 8, killEverySeconds: 2 });
    if (kills.length >= 2) assert.ok(kills.some((kill) => kill.target === "tracker"), `${seed}`);
  }
});
