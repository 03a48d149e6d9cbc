/**
 * Downloads into a directory others can write to: a link or another file waiting at the part
 * file's name never receives the download, and names that could be part files, or whose
 * part files could not exist, are refused when shared.
 */

import assert from "node:assert/strict";
import { startSwarm, writeRandomFile } from "./harness.ts";

const MiB = 1 << 20;

Deno.test("a symlink planted at the part file's name is refused; its target untouched", async () => {
  await using swarm = await startSwarm(["seed", "leech"]);
  await writeRandomFile(`${swarm.home("seed")}/report.pdf`, MiB);
  await swarm.shell("seed").ok(`upload_file report.pdf ${swarm.group}`);
  const shared = `${swarm.home("leech")}/shared`;
  await Deno.mkdir(shared);
  const victim = `${swarm.home("leech")}/.bashrc`;
  await Deno.writeTextFile(victim, "alias ls='ls --color'\n");
  await Deno.symlink(victim, `${shared}/.report.pdf.swarmshare-part`);
  const error = await swarm.shell("leech").fails(
    `download_file ${swarm.group} report.pdf ${shared}`,
  );
  assert.match(error, /symbolic link; not writing through it/);
  assert.equal(await Deno.readTextFile(victim), "alias ls='ls --color'\n");
  assert.equal((await Deno.lstat(`${shared}/.report.pdf.swarmshare-part`)).isSymlink, true);
});

Deno.test("names a part file could take, or too long for one, are refused at upload", async () => {
  await using swarm = await startSwarm(["seed"]);
  const seed = swarm.shell("seed");
  for (
    const [name, reason] of [
      [".report.pdf.swarmshare-part", /part files/],
      ["n".repeat(239), /at most 238/],
    ] as const
  ) {
    await writeRandomFile(`${swarm.home("seed")}/${name}`, 1000);
    assert.match(await seed.fails(`upload_file '${name}' ${swarm.group}`), reason);
  }
  await writeRandomFile(`${swarm.home("seed")}/${"n".repeat(238)}`, 1000);
  await seed.ok(`upload_file ${"n".repeat(238)} ${swarm.group}`);
});
