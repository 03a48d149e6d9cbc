/**
 * Rate limits (issue 14): `--download-limit-kib` and `set_limits` on a running client, and
 * the shared limiter under them. No test here waits on a clock to pass: a limit is shown by
 * what it makes impossible (a download faster than the limit allows), never by how fast.
 */

import assert from "node:assert/strict";
import { RateLimiter } from "../peer/rate_limiter.ts";
import { sha1OfFile, startSwarm, within, writeRandomFile } from "./harness.ts";

const MiB = 1 << 20;

Deno.test("RateLimiter: no limit passes at once; lifting a limit releases whoever waits", async () => {
  const open = new RateLimiter();
  assert.equal(open.rate, undefined);
  await open.take(1 << 30);
  assert.equal(open.saturated, false);

  const limited = new RateLimiter(1024);
  // the bucket starts with a quarter second's worth; this take leaves a debt of about 11 days
  await limited.take(1e9);
  const waiting = limited.take(1);
  assert.equal(limited.saturated, true);
  limited.rate = undefined;
  await within(waiting, "the waiter to be released when the limit is lifted", 5_000);
  assert.equal(limited.saturated, false);
  assert.throws(() => limited.rate = 0, RangeError);
  assert.throws(() => limited.rate = Infinity, RangeError);
});

Deno.test("RateLimiter: waiters go lowest rank first, in arrival order among equal ranks", async () => {
  const limiter = new RateLimiter(1024);
  await limiter.take(1e9); // in debt: every later take waits
  const order: string[] = [];
  const waiters = [
    limiter.take(1, 30).then(() => order.push("piece started at 30")),
    limiter.take(1, 10).then(() => order.push("piece started at 10, first run")),
    limiter.take(1).then(() => order.push("no rank: now")),
    limiter.take(1, 10).then(() => order.push("piece started at 10, second run")),
    limiter.take(1, 20).then(() => order.push("piece started at 20")),
  ];
  // a new, generous rate lets everyone through at once, in the limiter's order
  limiter.rate = 1e12;
  await within(Promise.all(waiters), "every waiter to pass", 5_000);
  assert.deepEqual(order, [
    "piece started at 10, first run",
    "piece started at 10, second run",
    "piece started at 20",
    "piece started at 30",
    "no rank: now",
  ]);
  assert.equal(limiter.saturated, false);
});

Deno.test("set_limits changes a running client's limits, and refuses what is not one", async () => {
  await using swarm = await startSwarm(["a"]);
  const a = swarm.shell("a");
  assert.deepEqual(await a.ok("set_limits 8192 none"), { upload_kib: 8192, download_kib: null });
  assert.deepEqual(await a.ok("set_limits none 64"), { upload_kib: null, download_kib: 64 });
  assert.equal(
    await a.fails("set_limits fast none"),
    "the upload limit must be a whole number of KiB/s from 1 to 16777216, or none",
  );
  assert.equal(
    await a.fails("set_limits none 0"),
    "the download limit must be a whole number of KiB/s from 1 to 16777216, or none",
  );
  assert.match(await a.fails("set_limits 5"), /usage: set_limits/);
});

Deno.test("a download limit holds a download back, and the file comes out right", async () => {
  await using swarm = await startSwarm(["seed", "d"], {
    clientArgs: { d: ["--download-limit-kib", "1024"] },
  });
  const size = 4 * MiB;
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, size);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const d = swarm.shell("d");
  await Deno.mkdir(`${swarm.home("d")}/in`);
  const started = performance.now();
  await d.ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}/in`);
  const done = await d.event("download_complete") as { path: string };
  const seconds = (performance.now() - started) / 1000;
  assert.equal(await sha1OfFile(done.path), sha1);
  // 1 MiB/s with a bucket of one second: 4 MiB cannot arrive in less than 3 s
  assert.ok(seconds >= 3, `4 MiB at a 1 MiB/s limit took only ${seconds.toFixed(2)} s`);
});

Deno.test("behind our own download limit no peer counts as silent", async () => {
  // three seeders sharing a 32 KiB/s limit: each one's next block waits 1.5 s behind it, past
  // the 1 s request timeout; without the pause all would be dropped as silent and the
  // download would fail its stall
  await using swarm = await startSwarm(["s1", "s2", "s3", "d"], {
    clientArgs: {
      d: [
        "--download-limit-kib",
        "32",
        "--request-timeout-ms",
        "1000",
        "--stall-timeout-ms",
        "3000",
      ],
    },
  });
  const size = MiB / 4;
  const sha1 = await writeRandomFile(`${swarm.home("s1")}/f.bin`, size);
  for (const seeder of ["s2", "s3"]) {
    await Deno.copyFile(`${swarm.home("s1")}/f.bin`, `${swarm.home(seeder)}/f.bin`);
  }
  for (const seeder of ["s1", "s2", "s3"]) {
    await swarm.shell(seeder).ok(`upload_file f.bin ${swarm.group}`);
  }
  const d = swarm.shell("d");
  await Deno.mkdir(`${swarm.home("d")}/in`);
  await d.ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}/in`);
  const ended = await d.event(["download_complete", "download_failed"]);
  assert.equal(ended.event, "download_complete", JSON.stringify(ended));
  assert.equal(await sha1OfFile((ended as unknown as { path: string }).path), sha1);
});
