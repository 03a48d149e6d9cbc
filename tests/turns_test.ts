/**
 * Turns: first come, first served across connections, a bounded batch per pass of the event
 * loop, and "busy" for a request that waited too long; then the same through a real tracker
 * and a client's shell.
 */

import assert from "node:assert/strict";
import { Turns } from "../tracker/turns.ts";
import { Tracker } from "../tracker/server.ts";
import { generateIdentity } from "../lib/identity.ts";
import { rawTrackerLink } from "./raw_tls.ts";
import { runScript, TempDir } from "./harness.ts";
import { setImmediate } from "node:timers";

/** Resolves after every callback the event loop has queued so far. */
const nextPass = () => new Promise<void>((resolve) => setImmediate(resolve));

Deno.test("turns are granted in the order asked, a bounded batch per pass", async () => {
  const turns = new Turns({ now: () => 0 });
  const granted: number[] = [];
  const all = Array.from({ length: 100 }, (_, i) =>
    turns.next().then((turn) => {
      assert.deepEqual(turn, "go");
      granted.push(i);
    }));
  assert.deepEqual(turns.waiting, 100);
  await nextPass();
  // one pass grants 32, and the sockets get their turn before the next batch
  assert.deepEqual(granted, [...Array(32).keys()]);
  await Promise.all(all);
  assert.deepEqual(granted, [...Array(100).keys()]);
  assert.deepEqual(turns.waiting, 0);
});

Deno.test("a request that waited longer than the limit is answered busy, a newer one is not", async () => {
  let now = 0;
  const turns = new Turns({ busyAfterMs: 5_000, now: () => now });
  const old = turns.next();
  now = 4_000;
  const recent = turns.next();
  now = 5_001;
  assert.deepEqual(await Promise.all([old, recent]), ["busy", "go"]);
  // the line is empty again: a request asking now goes at once
  assert.deepEqual(await turns.next(), "go");
});

Deno.test("a tracker whose requests waited too long says it is busy, and the shell shows it", async () => {
  await using temp = await TempDir.create();
  // every reading of this clock is 10 s after the last: each request has waited 10 s
  let now = 0;
  const tracker = await Tracker.start({
    hostname: "127.0.0.1",
    port: 0,
    dbPath: temp.join("tracker.db"),
    log: () => {},
    busyAfterMs: 5_000,
    turnClock: () => now += 10_000,
  });
  try {
    const link = await rawTrackerLink(tracker.address.port, await generateIdentity("test"));
    try {
      // pings keep links alive: they never wait in line
      assert.deepEqual((await link.request({ type: "ping" })).ok, true);
      const reply = await link.request({ type: "create_user", user: "alice", password: "pw" });
      assert.deepEqual(reply.ok, false);
      assert.deepEqual(reply.error, {
        code: "busy",
        message: "the tracker is busy; try again in a moment",
      });
    } finally {
      link.close();
    }
    const { stdout, stderr } = await runScript(tracker.address.port, [
      "create_user alice secret-pw",
    ]);
    const said = [...stdout, ...stderr].join("\n");
    assert.ok(said.includes("error: the tracker is busy; try again in a moment"), said);
  } finally {
    await tracker.close();
  }
});
