/**
 * A download dials each holder once, however the holder is named (issue 13): a seeder that
 * advertises a host name (`--public-addr localhost:PORT`) is handed out by that name, and
 * its connection ends up at the name's IP; the download must still know it is connected
 * there across its peer refreshes, rather than open one more connection to the same holder
 * on every refresh (up to 50, until the seeder's per-file cap refused them). And a holder that
 * dialled a download first is dialled back, so the download fetches over its own connection.
 */

import assert from "node:assert/strict";
import {
  freePort,
  type JsonReply,
  sha1OfFile,
  startSwarm,
  within,
  writeRandomFile,
} from "./harness.ts";

const MiB = 1 << 20;

/** Established TCP connections whose local end is `port` (a listener's accepted ones). */
async function acceptedAt(port: number): Promise<number> {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const lines = (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1);
  return lines.filter((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1]?.endsWith(local) && fields[3] === "01";
  }).length;
}

Deno.test("a holder advertised by host name is dialled once across the download's refreshes", async () => {
  const seedPort = freePort();
  await using swarm = await startSwarm(["seed", "fetcher"], {
    peerPorts: { seed: seedPort },
    // slow enough (about 5 s for 2 MiB), with tickets short enough (renewed after 1 s), that
    // the download asks the tracker again and again; each answer names the seeder again
    trackerArgs: ["--ticket-lifetime-ms", "1500"],
    clientArgs: {
      // --verbose: its peer warnings on stderr, where the test looks for refusals
      seed: ["--public-addr", `localhost:${seedPort}`, "--upload-limit-kib", "384", "--verbose"],
    },
  });
  const seed = swarm.shell("seed");
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, 2 * MiB);
  await seed.ok(`upload_file f.bin ${swarm.group}`);
  const fetcher = swarm.shell("fetcher");
  const [listed] = await fetcher.ok(`list_files ${swarm.group}`) as { seeders: number }[];
  assert.equal(listed.seeders, 1, "the tracker verified and hands out localhost:PORT");

  await fetcher.ok(`download_file ${swarm.group} f.bin ${swarm.home("fetcher")}`);
  let finished = false;
  const done = fetcher.event(
    ["download_complete", "download_failed"],
    (event: JsonReply) => event.name === "f.bin",
  ).finally(() => finished = true);
  // how many connections the seeder holds at once while the download runs
  let most = 0;
  let samples = 0;
  await within(
    (async () => {
      while (!finished) {
        most = Math.max(most, await acceptedAt(seedPort));
        samples++;
        // paces the sampling of a state the download moves through; it waits for no event
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(),
    "the download to end",
  );
  const outcome = await done;
  assert.equal(outcome.event, "download_complete", JSON.stringify(outcome));
  assert.equal(await sha1OfFile(String(outcome.path)), sha1);
  assert.ok(samples > 10, `only ${samples} samples: the download ended too soon to tell`);
  const asks = swarm.tracker.stdout.all.filter((line) => line.includes("ticket issued to fetcher"));
  assert.ok(asks.length >= 3, `the download asked the tracker only ${asks.length} times`);
  assert.equal(most, 1, `the downloader held ${most} connections to the seeder at once`);
  assert.deepEqual(seed.stderr.all.filter((line) => line.includes("refused")), []);
});

Deno.test("a downloader dials back a fellow that dialled it, to fetch over its own connection", async () => {
  // the first of two downloaders to announce learns of no other: the second dials it, and
  // it must dial the second back (after one ask of the tracker), so that what the second
  // sends it comes over a connection it opened (Deno's TLS), not the one the second opened
  // (node:tls on its side). The seeder never dials: connections accepted at a downloader's
  // port are the other downloader's. Limited, the downloads last about 4 s.
  const ports = { d1: freePort(), d2: freePort() };
  const limit = ["--download-limit-kib", "2048"];
  await using swarm = await startSwarm(["seed", "d1", "d2"], {
    peerPorts: ports,
    clientArgs: { d1: limit, d2: limit },
  });
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/f.bin`, 8 * MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const events = [];
  for (const user of ["d1", "d2"]) {
    const shell = swarm.shell(user);
    await shell.ok(`download_file ${swarm.group} f.bin ${swarm.home(user)}`);
    events.push(
      shell.event(
        ["download_complete", "download_failed"],
        (event: JsonReply) => event.name === "f.bin",
      ),
    );
  }
  let finished = false;
  const done = Promise.all(events).finally(() => finished = true);
  // whether each has accepted a connection from the other while both still download
  const dialledBy = { d1: false, d2: false };
  await within(
    (async () => {
      while (!finished && !(dialledBy.d1 && dialledBy.d2)) {
        dialledBy.d1 ||= await acceptedAt(ports.d1) > 0;
        dialledBy.d2 ||= await acceptedAt(ports.d2) > 0;
        // paces the sampling of a state the downloads move through; it waits for no event
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(),
    "both downloaders to be dialled, or the downloads to end",
  );
  for (const outcome of await done) {
    assert.equal(outcome.event, "download_complete", JSON.stringify(outcome));
    assert.equal(await sha1OfFile(String(outcome.path)), sha1);
  }
  assert.deepEqual(dialledBy, { d1: true, d2: true }, "each downloader dialled the other");
});
