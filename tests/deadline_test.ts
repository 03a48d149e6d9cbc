/**
 * tracker/deadline.ts: a countdown restarted and stopped often, with at most one timer.
 */

import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { Deadline } from "../tracker/deadline.ts";

Deno.test("Deadline: runs out once, counted from the last start, never while stopped", async (t) => {
  await t.step("restarts push it back", async () => {
    let expired = 0;
    const deadline = new Deadline(60, () => expired++);
    const begun = performance.now();
    deadline.start();
    for (let i = 0; i < 5; i++) {
      await delay(20);
      deadline.start();
    }
    const lastStart = performance.now();
    while (expired === 0) await delay(5);
    assert.ok(performance.now() - lastStart >= 55, "not before 60 ms after the last start");
    assert.ok(performance.now() - begun >= 150);
    await delay(100);
    assert.equal(expired, 1, "once");
    assert.equal(deadline.running, false);
  });

  await t.step("stopped, it does not run out; started again, it does", async () => {
    let expired = 0;
    const deadline = new Deadline(30, () => expired++);
    deadline.start();
    deadline.stop();
    await delay(80);
    assert.equal(expired, 0);
    deadline.start();
    assert.equal(deadline.running, true);
    await delay(80);
    assert.equal(expired, 1);
  });

  await t.step("cleared, its timer is gone", async () => {
    let expired = 0;
    const deadline = new Deadline(20, () => expired++);
    deadline.start();
    deadline.clear();
    await delay(60);
    assert.equal(expired, 0);
  });
});
