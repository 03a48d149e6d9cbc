/**
 * One user on two devices: a device that cannot find a shared file stops holding it only
 * for itself. The other device, still online with the file, keeps seeding it; only when the
 * user's last holder of a file goes does the share end.
 *
 * The two devices run on one machine here, so the second cannot be given other disks: the
 * files are moved away after the first device shared them. The first keeps them open (it
 * serves from its open handles), as a device whose disk the other one cannot see.
 */

import assert from "node:assert/strict";
import { type JsonShell, sha1OfFile, startSwarm, writeRandomFile } from "./harness.ts";

async function seeders(shell: JsonShell, group: string): Promise<Record<string, number>> {
  const files = await shell.ok(`list_files ${group}`) as { name: string; seeders: number }[];
  return Object.fromEntries(files.map((file) => [file.name, file.seeders]));
}

Deno.test("a second device without the files leaves the first one's shares alone", async (t) => {
  await using swarm = await startSwarm(["bob", "carol"]);
  const group = swarm.group;
  const bob = swarm.shell("bob");
  const carol = swarm.shell("carol");
  const sha1 = await writeRandomFile(`${swarm.home("bob")}/a.bin`, 3 * (1 << 20));
  await writeRandomFile(`${swarm.home("bob")}/b.bin`, 1000);
  for (const name of ["a.bin", "b.bin"]) await bob.ok(`upload_file ${name} ${group}`);
  await Deno.mkdir(`${swarm.home("bob")}/elsewhere`);
  for (const name of ["a.bin", "b.bin"]) {
    await Deno.rename(`${swarm.home("bob")}/${name}`, `${swarm.home("bob")}/elsewhere/${name}`);
  }

  let laptop: JsonShell;
  await t.step("the second device says, one line each, what it does not serve", async () => {
    laptop = await swarm.addClient("bob");
    const notHere = [
      await laptop.event("share_not_restored"),
      await laptop.event("share_not_restored"),
    ].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    assert.deepEqual(notHere.map((event) => event.name), ["a.bin", "b.bin"]);
    for (const event of notHere) {
      assert.equal(event.group, group);
      assert.equal(event.path, `${swarm.home("bob")}/${event.name}`);
      assert.match(String(event.reason), /is no longer there/);
    }
    assert.deepEqual(laptop.events.filter((event) => event.event === "share_dropped"), []);
  });

  await t.step("the first device still seeds both, and a third user downloads", async () => {
    assert.deepEqual(await seeders(carol, group), { "a.bin": 1, "b.bin": 1 });
    await Deno.mkdir(`${swarm.home("carol")}/dl`);
    await carol.ok(`download_file ${group} a.bin ${swarm.home("carol")}/dl`);
    const done = await carol.event("download_complete");
    assert.equal(await sha1OfFile(String(done.path)), sha1);
    const from = (done.peers as { peer: string; bytes: number }[]).filter((p) => p.bytes > 0);
    assert.deepEqual(from.map((p) => p.peer), [`127.0.0.1:${bob.peerPort}`]);
  });

  await t.step("the tracker did not end bob's shares", () => {
    const log = swarm.tracker.stdout.all;
    assert.ok(!log.some((line) => /bob stopped sharing/.test(line)), log.join("\n"));
    assert.ok(
      log.some((line) => /bob's client .* cannot serve "a\.bin" in group/.test(line)),
      log.join("\n"),
    );
  });

  await t.step("once the last device holding them goes, the shares end", async () => {
    await bob.ok("logout");
    await laptop.ok("logout");
    await laptop.ok("login bob pw-bob");
    const dropped = [await laptop.event("share_dropped"), await laptop.event("share_dropped")];
    assert.deepEqual(dropped.map((event) => event.name).sort(), ["a.bin", "b.bin"]);
    // carol's finished download still shares a.bin; b.bin had nobody else
    assert.deepEqual(await seeders(carol, group), { "a.bin": 1 });
  });
});
