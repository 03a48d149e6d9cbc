/** The capped swarms' makeup and fluid lower bounds (scripts/bench_bounds.ts), worked by hand. */

import assert from "node:assert/strict";
import { boundFormula, cappedSwarm, fluidBound, mostSent } from "../scripts/bench_bounds.ts";

const MiB = 1 << 20;
const uplink = { uplinkBytesPerSecond: 8 * MiB };
const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`);

Deno.test("capped swarms: who takes part, with which caps", async (t) => {
  await t.step("C4, C8, C16: one sharer, equal uplinks", () => {
    for (const [name, downloaders] of [["C4", 4], ["C8", 8], ["C16", 16]] as const) {
      const swarm = cappedSwarm(name, uplink);
      assert.deepEqual(swarm.sharerUplinks, [8 * MiB]);
      assert.equal(swarm.downloaderUplink, 8 * MiB);
      assert.equal(swarm.downloaders, downloaders);
      assert.equal(swarm.lateJoiners, 0);
      assert.equal(swarm.downlink, undefined);
    }
  });
  await t.step("CA: downloaders at a quarter of the sharer's uplink, 8 unless told", () => {
    assert.equal(cappedSwarm("CA", uplink).downloaderUplink, 2 * MiB);
    assert.equal(cappedSwarm("CA", uplink).downloaders, 8);
    assert.equal(cappedSwarm("CA", { ...uplink, downloaders: 3 }).downloaders, 3);
  });
  await t.step("CL: the second half joins late", () => {
    assert.equal(cappedSwarm("CL", uplink).lateJoiners, 4);
    assert.equal(cappedSwarm("CL", { ...uplink, downloaders: 3 }).lateJoiners, 1);
    assert.throws(() => cappedSwarm("CL", { ...uplink, downloaders: 1 }), /at least 2/);
  });
  await t.step("C2S: two sharers, the second at a quarter", () => {
    assert.deepEqual(cappedSwarm("C2S", uplink).sharerUplinks, [8 * MiB, 2 * MiB]);
  });
  await t.step("caps are whole KiB/s, as the client takes them", () => {
    const swarm = cappedSwarm("CA", {
      uplinkBytesPerSecond: 1000.4 * 1024,
      downlinkBytesPerSecond: 100,
    });
    assert.deepEqual(swarm.sharerUplinks, [1000 * 1024]);
    assert.equal(swarm.downloaderUplink, 250 * 1024);
    assert.equal(swarm.downlink, 1024);
  });
});

Deno.test("fluid bounds, worked by hand (64 MiB, 8 MiB/s)", async (t) => {
  const size = 64 * MiB;
  await t.step("C4: the sharer's uplink binds, 64/8", () => {
    const bound = fluidBound(cappedSwarm("C4", uplink), size);
    close(bound.seconds, 8);
    assert.equal(bound.worked, "max(64/8, 4·64/(8 + 4·8)) = max(8.00, 6.40) = 8.00 s");
  });
  await t.step("C16: still the sharer (16·64/136 = 7.53 < 8)", () => {
    close(fluidBound(cappedSwarm("C16", uplink), size).seconds, 8);
  });
  await t.step("CA: the downloaders' uplinks bind, 8·64/(8 + 8·2)", () => {
    close(fluidBound(cappedSwarm("CA", uplink), size).seconds, (8 * 64) / 24);
  });
  await t.step("C2S: both sharers count, 8·64/(8 + 2 + 8·8)", () => {
    const bound = fluidBound(cappedSwarm("C2S", uplink), size);
    close(bound.seconds, (8 * 64) / 74);
    assert.match(bound.worked, /^max\(64\/\(8 \+ 2\), 8·64\/\(8 \+ 2 \+ 8·8\)\)/);
  });
  await t.step("a downlink binds when it is the narrowest: 64/4", () => {
    const swarm = cappedSwarm("C4", { ...uplink, downlinkBytesPerSecond: 4 * MiB });
    close(fluidBound(swarm, size).seconds, 16);
    assert.match(boundFormula(swarm), /^max\(S\/u_s, N·S\/\(u_s \+ N·u_d\), S\/d\)/);
  });
  await t.step("CL: after t1, what is left for every uplink together", () => {
    const swarm = cappedSwarm("CL", uplink);
    // t1 = 4 s: at most (8 + 4·8)·4 = 160 MiB sent before, 512 - 160 left for 72 MiB/s
    close(fluidBound(swarm, size, 4).seconds, 4 + (512 - 160) / 72);
    // t1 = 10 s: the first half could have finished; the late half alone needs 4·64/72
    close(fluidBound(swarm, size, 10).seconds, 10 + 256 / 72);
    // a join at once is C8
    close(fluidBound(swarm, size, 0).seconds, 8);
    assert.match(boundFormula(swarm), /t1 the moment they started/);
  });
});

Deno.test("mostSent: a cap's rate over the run plus the bucket's quarter second, with 5% to spare", () => {
  close(mostSent(MiB, 9), 9.25 * MiB * 1.05);
});
