/**
 * A serving client caps the connections one user may have served (issue 13): at most
 * `MAX_SERVED_PER_USER_FILE` per file and `MAX_SERVED_PER_USER` over all files. A member
 * opens raw TLS connections with good tickets beyond both caps: the extra ones are refused,
 * said in the seeder's log, the others keep being served, and another member's download
 * completes meanwhile.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../lib/identity.ts";
import { encodeRequest } from "../lib/wire.ts";
import { MAX_SERVED_PER_USER, MAX_SERVED_PER_USER_FILE } from "../peer/serving_caps.ts";
import { type JsonReply, sha1OfFile, startSwarm, within, writeRandomFile } from "./harness.ts";
import { connectAsMember, type RawPeer, rawTrackerLink } from "./raw_tls.ts";

const KiB = 1024;

/** Asks for the first block on a served connection; resolves when the piece arrives. */
async function firstBlock(peer: RawPeer): Promise<Uint8Array> {
  await peer.conn.write(encodeRequest(0, 0, 16 * KiB));
  return await within(
    (async () => {
      for (let message = await peer.reader.next(); message; message = await peer.reader.next()) {
        if (message.type === "piece") return message.block.slice();
      }
      throw new Error("the seeder closed a served connection");
    })(),
    "a block on a served connection",
  );
}

Deno.test("a member's connections past the per-user caps are refused; others are served", async (t) => {
  // --verbose: the seeder's peer warnings on stderr, where the test reads its refusals
  await using swarm = await startSwarm(["seed", "member", "honest"], {
    clientArgs: { seed: ["--verbose"] },
  });
  const seed = swarm.shell("seed");
  // enough files to reach the cap over all files with each file at its own cap
  const fileCount = Math.ceil(MAX_SERVED_PER_USER / MAX_SERVED_PER_USER_FILE) + 1;
  const names = Array.from({ length: fileCount }, (_, i) => `f${i}.bin`);
  const sha1 = await writeRandomFile(`${swarm.home("seed")}/${names[0]}`, 1024 * KiB);
  for (const name of names.slice(1)) {
    await writeRandomFile(`${swarm.home("seed")}/${name}`, 16 * KiB);
  }
  for (const name of names) await seed.ok(`upload_file ${name} ${swarm.group}`);

  // the member's own device speaks the wire by hand, with tickets the tracker issued to it
  const device = await generateIdentity("member's device");
  const link = await rawTrackerLink(swarm.tracker.port, device);
  const files: { infoHash: Uint8Array; ticket: string }[] = [];
  try {
    const login = await link.request({ type: "login", user: "member", password: "pw-member" });
    assert.equal(login.ok, true, JSON.stringify(login.error));
    for (const name of names) {
      const reply = await link.request({ type: "locate_file", group: swarm.group, name });
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      const located = reply.data as { info_hash: string; ticket: string };
      files.push({ infoHash: Uint8Array.fromHex(located.info_hash), ticket: located.ticket });
    }
  } finally {
    link.close();
  }

  const port = seed.peerPort;
  const open: RawPeer[] = [];
  const connect = async (file: number) => {
    const peer = await connectAsMember(port, device, files[file]);
    open.push(peer);
    return peer;
  };
  try {
    await t.step(`one file: ${MAX_SERVED_PER_USER_FILE} served, the next refused`, async () => {
      for (let i = 0; i < MAX_SERVED_PER_USER_FILE; i++) {
        assert.equal((await connect(0)).served, true, `connection ${i + 1} was refused`);
      }
      assert.equal((await connect(0)).served, false, "a connection past the cap was served");
      await seed.stderr.until(
        (line) =>
          line.includes(
            `refused: member already has ${MAX_SERVED_PER_USER_FILE} connections for this file here`,
          ),
        "the seeder's log line for the refusal",
      );
    });

    await t.step(`all files: ${MAX_SERVED_PER_USER} served, the next refused`, async () => {
      for (let file = 1; open.filter((peer) => peer.served).length < MAX_SERVED_PER_USER; file++) {
        for (let i = 0; i < MAX_SERVED_PER_USER_FILE; i++) {
          if (open.filter((peer) => peer.served).length === MAX_SERVED_PER_USER) break;
          assert.equal((await connect(file)).served, true, `file ${file}: connection ${i + 1}`);
        }
      }
      const last = files.length - 1;
      assert.equal((await connect(last)).served, false, "a connection past the cap was served");
      await seed.stderr.until(
        (line) =>
          line.includes(`refused: member already has ${MAX_SERVED_PER_USER} connections here`),
        "the seeder's log line for the refusal",
      );
    });

    await t.step("the member's served connections are still served", async () => {
      const served = open.filter((peer) => peer.served);
      assert.equal(served.length, MAX_SERVED_PER_USER);
      for (const peer of [served[0], served.at(-1)!]) {
        assert.equal((await firstBlock(peer)).length, 16 * KiB);
      }
    });

    await t.step("another member downloads the file the member is capped on", async () => {
      const honest = swarm.shell("honest");
      await honest.ok(`download_file ${swarm.group} ${names[0]} ${swarm.home("honest")}`);
      const done = await honest.event(
        ["download_complete", "download_failed"],
        (event: JsonReply) => event.name === names[0],
      );
      assert.equal(done.event, "download_complete", JSON.stringify(done));
      assert.equal(await sha1OfFile(String(done.path)), sha1);
    });

    await t.step("a connection that ends gives its place back", async () => {
      open.find((peer) => peer.served)!.conn.close();
      // the seeder learns of the close a moment later: until then the cap still holds
      let again: RawPeer;
      let tries = 0;
      do again = await connect(0); while (!again.served && ++tries < 50);
      assert.equal(again.served, true);
    });
  } finally {
    for (const peer of open) {
      try {
        peer.conn.close();
      } catch {
        // closed by the seeder
      }
    }
  }
});

Deno.test("a member fetching more files one after another than the cap is never refused", async () => {
  await using swarm = await startSwarm(["seed", "fetcher"], {
    clientArgs: { fetcher: ["--stall-timeout-ms", "5000"], seed: ["--verbose"] },
  });
  const seed = swarm.shell("seed");
  const fetcher = swarm.shell("fetcher");
  // a finished download lets go of the seeder, so its connection no longer counts there
  const names = Array.from({ length: MAX_SERVED_PER_USER + 1 }, (_, i) => `s${i}.bin`);
  for (const name of names) {
    await writeRandomFile(`${swarm.home("seed")}/${name}`, 4 * KiB);
    await seed.ok(`upload_file ${name} ${swarm.group}`);
  }
  for (const name of names) {
    await fetcher.ok(`download_file ${swarm.group} ${name} ${swarm.home("fetcher")}`);
    const done = await fetcher.event(
      ["download_complete", "download_failed"],
      (event: JsonReply) => event.name === name,
    );
    assert.equal(done.event, "download_complete", JSON.stringify(done));
  }
  assert.deepEqual(seed.stderr.all.filter((line) => line.includes("refused")), []);
});
