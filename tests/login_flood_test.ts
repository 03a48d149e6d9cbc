/**
 * Password hashing under attack: a small fixed pool, sources taking turns, and throttles per
 * address and per account. Unit tests drive the pool with a fake clock and fake hashes; the
 * process test floods a real tracker with logins from 127.0.0.1 while an honest user logs in
 * from 127.0.0.2 (another source on loopback).
 */

import assert from "node:assert/strict";
import { generateIdentity, type Identity } from "../lib/identity.ts";
import { Refusal } from "../lib/protocol.ts";
import { PasswordWork } from "../tracker/password_work.ts";
import { JsonShell, TempDir, TrackerProcess, within } from "./harness.ts";
import { rawTrackerLink } from "./raw_tls.ts";

/** A hash that finishes when the test says so. */
function gatedHash() {
  const gate = Promise.withResolvers<void>();
  let started = false;
  return {
    get started() {
      return started;
    },
    release: () => gate.resolve(),
    run: async () => {
      started = true;
      await gate.promise;
      return true;
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("PasswordWork: bounded, fair between sources, throttled", async (t) => {
  await t.step("never more than `concurrency` hashes at once", async () => {
    const work = new PasswordWork({ concurrency: 2, maxWaitingPerSource: 10 });
    const hashes = Array.from({ length: 5 }, gatedHash);
    const done = hashes.map((hash) => work.run("a", undefined, hash.run));
    await settle();
    assert.equal(work.running, 2);
    assert.deepEqual(hashes.map((hash) => hash.started), [true, true, false, false, false]);
    for (const hash of hashes) hash.release();
    await Promise.all(done);
    assert.equal(work.running, 0);
  });

  await t.step(
    "sources take turns: a flood from one does not queue another behind it",
    async () => {
      const work = new PasswordWork({ concurrency: 1, maxWaitingPerSource: 10 });
      const order: string[] = [];
      const hashes = new Map<string, ReturnType<typeof gatedHash>>();
      const submit = (label: string, source: string) => {
        const hash = gatedHash();
        hashes.set(label, hash);
        return work.run(source, undefined, () => {
          order.push(label);
          return hash.run();
        });
      };
      const all = [
        submit("flood 1", "10.0.0.1"),
        submit("flood 2", "10.0.0.1"),
        submit("flood 3", "10.0.0.1"),
        submit("honest", "10.0.0.2"),
      ];
      for (const label of ["flood 1", "honest", "flood 2", "flood 3"]) {
        await settle();
        assert.equal(order.at(-1), label);
        hashes.get(label)!.release();
      }
      await Promise.all(all);
    },
  );

  await t.step("a source with too many attempts waiting is refused at once", async () => {
    const work = new PasswordWork({ concurrency: 1, maxWaitingPerSource: 2 });
    const hashes = [gatedHash(), gatedHash()];
    const running = hashes.map((hash) => work.run("a", undefined, hash.run));
    await assert.rejects(
      work.run("a", undefined, () => Promise.resolve(true)),
      (error: unknown) =>
        error instanceof Refusal && error.code === "rate_limited" &&
        /too many attempts; try again in \d+ s/.test(error.message),
    );
    const other = work.run("b", undefined, () => Promise.resolve("ran"));
    for (const hash of hashes) hash.release();
    await Promise.all(running);
    assert.equal(await other, "ran", "another source is not refused");
  });

  await t.step("per source and per account windows, with the time left said", async () => {
    let clock = 0;
    const work = new PasswordWork({
      attemptsPerSourcePerWindow: 3,
      failuresPerAccountPerWindow: 2,
      windowMs: 10_000,
      now: () => clock,
    });
    const quick = () => Promise.resolve(true);
    for (let i = 0; i < 3; i++) await work.run("a", undefined, quick);
    await assert.rejects(work.run("a", undefined, quick), /try again in 10 s/);
    clock = 7_500;
    await assert.rejects(work.run("a", undefined, quick), /try again in 3 s/);
    clock = 10_000;
    await work.run("a", undefined, quick);
    await work.recordFailure("alice");
    await work.recordFailure("alice");
    await assert.rejects(work.run("b", "alice", quick), /too many attempts/);
    await work.run("b", "bob", quick);
  });

  await t.step("counts are bounded: the oldest go first", async () => {
    const work = new PasswordWork({ attemptsPerSourcePerWindow: 1, maxTracked: 3 });
    const quick = () => Promise.resolve(true);
    for (const source of ["s1", "s2", "s3", "s4"]) await work.run(source, undefined, quick);
    await work.run("s1", undefined, quick); // forgotten: counted afresh
    await assert.rejects(work.run("s4", undefined, quick), /too many attempts/);
  });
});

/** A hand-spoken tracker link from `localAddress`: hello, then one request at a time. */
function rawLink(port: number, localAddress: string, identity: Identity) {
  return rawTrackerLink(port, identity, { localAddress });
}

Deno.test("a login flood from one address does not keep an honest user out", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  {
    await using shell = JsonShell.start(tracker.port);
    await shell.ok("create_user honest right-password");
  }
  const identity = await generateIdentity("login flood");
  const flood = await Promise.all(
    Array.from({ length: 100 }, () => rawLink(tracker.port, "127.0.0.1", identity)),
  );
  try {
    const attempts = flood.map((link) =>
      link.request({ type: "login", user: "honest", password: "guess" })
        .catch(() => ({ error: { code: "link closed" } }) as Record<string, unknown>)
    );
    const honest = await rawLink(tracker.port, "127.0.0.2", identity);
    const started = performance.now();
    const reply = await within(
      honest.request({ type: "login", user: "honest", password: "right-password" }),
      "the honest login",
    );
    const seconds = (performance.now() - started) / 1000;
    honest.close();
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.ok(seconds < 3, `the honest login took ${seconds.toFixed(2)} s`);
    const outcomes = new Set(
      (await Promise.all(attempts)).map((r) => (r.error as { code: string }).code),
    );
    assert.ok(outcomes.has("rate_limited"), `flood outcomes: ${[...outcomes]}`);
    for (const code of outcomes) assert.ok(["rate_limited", "unauthenticated"].includes(code));
    const status = await Deno.readTextFile(`/proc/${tracker.pid}/status`);
    const peakMiB = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
    assert.ok(peakMiB < 300, `tracker peak ${peakMiB.toFixed(0)} MiB`);
  } finally {
    for (const link of flood) link.close();
  }
});
