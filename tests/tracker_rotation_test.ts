/**
 * Which tracker the link tries next and when (peer/tracker_rotation.ts), as tables of
 * failures and connections: the others at once after the one in use fails, an outage only
 * when all failed, then one attempt per pause doubling to the longest, and a switch named.
 */

import assert from "node:assert/strict";
import { type NextAttempt, TrackerRotation } from "../peer/tracker_rotation.ts";

const BACKOFF = { initial: 100, max: 800 };

/** `count` failures in a row, as [index, delayMs, outage] rows. */
function failures(rotation: TrackerRotation, count: number): [number, number, boolean][] {
  const rows: [number, number, boolean][] = [];
  for (let i = 0; i < count; i++) {
    const next: NextAttempt = rotation.failed();
    rows.push([next.index, next.delayMs, next.outage]);
  }
  return rows;
}

Deno.test("tracker rotation", async (t) => {
  await t.step("one tracker: every failure is the outage, the pause doubles to the most", () => {
    const rotation = new TrackerRotation(1, BACKOFF);
    assert.deepEqual(failures(rotation, 6), [
      [0, 100, true],
      [0, 200, true],
      [0, 400, true],
      [0, 800, true],
      [0, 800, true],
      [0, 800, true],
    ]);
    assert.equal(rotation.connected(), undefined, "the same tracker again is no switch");
    assert.deepEqual(failures(rotation, 1), [[0, 100, true]], "the pause starts over");
  });

  await t.step("three trackers: the others at once, then one per pause, in turn", () => {
    const rotation = new TrackerRotation(3, BACKOFF);
    assert.equal(rotation.current, 0, "the seed first");
    assert.deepEqual(failures(rotation, 8), [
      [1, 0, false],
      [2, 0, false],
      [0, 100, true],
      [1, 200, true],
      [2, 400, true],
      [0, 800, true],
      [1, 800, true],
      [2, 800, true],
    ]);
  });

  await t.step("the one in use dies: the next is tried at once and is a switch", () => {
    const rotation = new TrackerRotation(2, BACKOFF);
    assert.equal(rotation.connected(), undefined, "the seed at first: no switch");
    assert.deepEqual(failures(rotation, 1), [[1, 0, false]]);
    assert.equal(rotation.connected(), 0, "left the seed");
    assert.equal(rotation.inUse, 1);
    // the second dies in turn: the first (restarted meanwhile) is a candidate again
    assert.deepEqual(failures(rotation, 1), [[0, 0, false]]);
    assert.equal(rotation.connected(), 1);
    assert.equal(rotation.inUse, 0);
  });

  await t.step("the seed unreachable at start: the first connection is a switch from it", () => {
    const rotation = new TrackerRotation(3, BACKOFF);
    assert.deepEqual(failures(rotation, 2), [[1, 0, false], [2, 0, false]]);
    assert.equal(rotation.connected(), 0);
    assert.equal(rotation.current, 2);
  });

  await t.step("after an outage, a connection starts the next round afresh", () => {
    const rotation = new TrackerRotation(2, BACKOFF);
    assert.deepEqual(failures(rotation, 4), [
      [1, 0, false],
      [0, 100, true],
      [1, 200, true],
      [0, 400, true],
    ]);
    assert.equal(rotation.connected(), undefined, "back on the seed");
    assert.deepEqual(failures(rotation, 2), [[1, 0, false], [0, 100, true]]);
  });

  await t.step("the attempts over a long outage are bounded: one per longest pause", () => {
    const trackers = 17;
    const rotation = new TrackerRotation(trackers, { initial: 100, max: 5_000 });
    let elapsedMs = 0;
    let attempts = 0;
    const visits = new Array(trackers).fill(0);
    while (elapsedMs < 600_000) {
      const next = rotation.failed();
      elapsedMs += next.delayMs;
      attempts++;
      visits[next.index]++;
    }
    // a first round at once, a few while the pause grows, then one per 5 s
    assert.ok(attempts <= trackers + 6 + 600_000 / 5_000, `${attempts} attempts`);
    // and every tracker keeps its turn
    assert.ok(Math.min(...visits) >= 7, JSON.stringify(visits));
  });

  await t.step("no trackers is a mistake", () => {
    assert.throws(() => new TrackerRotation(0, BACKOFF), RangeError);
  });
});
