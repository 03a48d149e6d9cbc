/**
 * Tickets bound and revocable, through real processes: a member who leaves is cut off by the
 * seeder within a second, a rejoined member is served again, and a download outlives its
 * short-lived tickets by renewing them.
 */

import assert from "node:assert/strict";
import { type JsonReply, startSwarm, within, writeRandomFile } from "./harness.ts";

const KiB = 1024;
const MiB = 1 << 20;

Deno.test("a member who leaves the group is cut off by the seeder at once", async (t) => {
  await using swarm = await startSwarm(["owner", "bob"], {
    group: "films",
    clientArgs: { owner: ["--upload-limit-kib", "64"] },
  });
  const owner = swarm.shell("owner");
  const bob = swarm.shell("bob");
  await writeRandomFile(`${swarm.home("owner")}/movie.bin`, 4 * MiB);
  await owner.ok("upload_file movie.bin films");
  // bob leaves from a second client of his: the downloading one does not cancel on its own,
  // like a downloader that would rather keep fetching
  const bobElsewhere = await swarm.addClient("bob");

  await t.step("the seeder closes the leaver's connection within a second", async () => {
    await bob.ok(`download_file films movie.bin ${swarm.home("bob")}`);
    const flowing = await bob.downloadState(
      "movie.bin",
      (line) => line.peers.some((peer) => peer.bytes > 0),
    );
    assert.equal(flowing.state, "D");
    const revoked = owner.event("peer_revoked").then((event: JsonReply) => ({
      event,
      at: performance.now(),
    }));
    const leftAt = performance.now();
    await bobElsewhere.ok("leave_group films");
    const { event, at } = await within(revoked, "the seeder to drop bob");
    assert.equal(event.user, "bob");
    assert.equal(event.group, "films");
    assert.equal(event.name, "movie.bin");
    const delayMs = at - leftAt;
    assert.ok(delayMs < 1000, `the seeder took ${delayMs.toFixed(0)} ms to drop bob`);
  });

  await t.step("the leaver's download gets nothing more and fails", async () => {
    // reconnecting with the old ticket is refused; the tracker gives no new one, and says
    // why: the download stops at once instead of waiting for a holder
    const failed = await bob.downloadState("movie.bin", (line) => line.state !== "D");
    assert.equal(failed.state, "F");
    assert.ok(failed.pieces_done < failed.pieces_total);
    assert.equal(
      failed.reason,
      'the tracker no longer offers it: you are not a member of group "films"',
    );
  });

  await t.step("after rejoining, the member is served again", async () => {
    await bobElsewhere.ok("join_group films");
    await owner.ok("accept_request films bob");
    await writeRandomFile(`${swarm.home("owner")}/short.bin`, 64 * KiB);
    await owner.ok("upload_file short.bin films");
    await bob.ok(`download_file films short.bin ${swarm.home("bob")}`);
    const done = await bob.downloadState("short.bin", (line) => line.state !== "D");
    assert.equal(done.state, "C", done.reason);
  });
});

Deno.test("a download outlives its 3 s tickets by renewing them", async () => {
  await using swarm = await startSwarm(["owner", "bob"], {
    trackerArgs: ["--ticket-lifetime-ms", "3000"],
    // the seeder honours a ticket not a moment past its expiry
    // --verbose: its peer warnings on stderr, where the test looks for an expired ticket
    clientArgs: { owner: ["--upload-limit-kib", "64", "--ticket-grace-ms", "0", "--verbose"] },
  });
  const owner = swarm.shell("owner");
  const bob = swarm.shell("bob");
  await writeRandomFile(`${swarm.home("owner")}/slow.bin`, 512 * KiB); // 8 s at 64 KiB/s
  await owner.ok(`upload_file slow.bin ${swarm.group}`);
  const started = performance.now();
  await bob.ok(`download_file ${swarm.group} slow.bin ${swarm.home("bob")}`);
  const done = await bob.downloadState("slow.bin", (line) => line.state !== "D");
  const seconds = (performance.now() - started) / 1000;
  assert.equal(done.state, "C", done.reason);
  assert.ok(seconds > 3, `the download took ${seconds.toFixed(1)} s, not longer than a ticket`);
  // the seeder never closed the connection for want of a fresh ticket
  const expired = owner.stderr.all.filter((line) => line.includes("ticket expired"));
  assert.deepEqual(expired, []);
});
