/**
 * How often a download asks the tracker for peers (each ask is a signed ticket, which the
 * tracker logs as "ticket issued"): once to start, then only when it needs to: no holder
 * connected, its ticket near expiry, or a slow look for new peers (`PEER_DISCOVERY_MS`).
 * Downloaders that start together meet through the reply to their announce, not by asking
 * again and again; the first to announce asks once more, to dial back the others, which
 * dialled it (peer/download.ts `DIAL_BACK_ASK_MS`).
 */

import assert from "node:assert/strict";
import { PEER_DISCOVERY_MS } from "../peer/download.ts";
import { type JsonShell, sha1OfFile, startSwarm, type Swarm, writeRandomFile } from "./harness.ts";

const MiB = 1 << 20;

/**
 * Downloads `name` to `<home>/dl` and waits until the tracker logged the share of the
 * finished file: the tracker answers a connection's requests in order and logs each as it
 * answers, so every ask the download made is in its log by then. Returns the event.
 */
async function downloadLogged(swarm: Swarm, user: string, name: string, sha1: string) {
  const shell = swarm.shell(user);
  await Deno.mkdir(`${swarm.home(user)}/dl`);
  await shell.ok(`download_file ${swarm.group} ${name} ${swarm.home(user)}/dl`);
  const done = await shell.event("download_complete");
  assert.equal(await sha1OfFile(String(done.path)), sha1);
  return done;
}

async function waitForShareLogged(swarm: Swarm, user: string, name: string): Promise<void> {
  const logged = (line: string) =>
    line.includes(`${user} shares "${name}" in group "${swarm.group}"`);
  // an earlier wait may have taken the line already (it stays in `all`)
  if (swarm.tracker.stdout.all.some(logged)) return;
  await swarm.tracker.stdout.until(logged, `the tracker to log ${user}'s share of ${name}`);
}

/** Tickets the tracker issued to `user` (locate_file and find_peers alike). */
function ticketsIssuedTo(swarm: Swarm, user: string): string[] {
  return swarm.tracker.stdout.all.filter((line) => line.includes(`ticket issued to ${user} `));
}

/** The most asks a download of `seconds` may make: its start, and one per discovery period. */
function mostAsks(seconds: number): number {
  return 1 + Math.floor((seconds * 1000) / PEER_DISCOVERY_MS);
}

Deno.test("a download fed by a connected seeder asks the tracker once", async () => {
  // the downloader's own limit makes the download last seconds: the old schedule asked again
  // after 0.25, 0.5, 1 and 2 s and then every 3 s
  await using swarm = await startSwarm(["seed", "d"], {
    clientArgs: { d: ["--download-limit-kib", "4096"] },
  });
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, 10 * MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const done = await downloadLogged(swarm, "d", "f.bin", sha1);
  await waitForShareLogged(swarm, "d", "f.bin");
  const tickets = ticketsIssuedTo(swarm, "d");
  assert.ok(
    tickets.length >= 1 && tickets.length <= mostAsks(Number(done.seconds)),
    tickets.join("\n"),
  );
  assert.match(tickets[0], /ticket issued to d for "f\.bin"/, "the first is the locate");
});

Deno.test("downloaders that start together meet, asking again only to dial back", async () => {
  // the seeder is not capped (no piece is held back from anyone), so nothing makes either
  // downloader wait: they find each other through the announce each makes as it starts
  const limit = ["--download-limit-kib", "2048"];
  await using swarm = await startSwarm(["seed", "d1", "d2"], {
    clientArgs: { d1: limit, d2: limit },
  });
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, 8 * MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const shells: JsonShell[] = [swarm.shell("d1"), swarm.shell("d2")];
  await Promise.all(["d1", "d2"].map((user) => Deno.mkdir(`${swarm.home(user)}/dl`)));
  await Promise.all(
    ["d1", "d2"].map((user) =>
      swarm.shell(user).ok(`download_file ${swarm.group} f.bin ${swarm.home(user)}/dl`)
    ),
  );
  for (const shell of shells) {
    const line = await shell.downloadState(
      "f.bin",
      (download) => download.peers_connected >= 2 || download.state !== "D",
    );
    assert.equal(line.peers_connected, 2, JSON.stringify(line));
  }
  for (const [i, shell] of shells.entries()) {
    const user = `d${i + 1}`;
    const done = await shell.event("download_complete");
    assert.equal(await sha1OfFile(String(done.path)), sha1);
    await waitForShareLogged(swarm, user, "f.bin");
    const tickets = ticketsIssuedTo(swarm, user);
    // one more for the dial-back, by whichever announced first
    assert.ok(tickets.length <= mostAsks(Number(done.seconds)) + 1, tickets.join("\n"));
  }
});
