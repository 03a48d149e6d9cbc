/**
 * A group with 100,000 files (issue 16), on a real tracker whose store was seeded through its
 * own methods (as scripts/loadtest/directory.ts does: the tracker lets a member share 1,000
 * files in a group, so one user's 100,000 shares exist only this way): `list_files` pages
 * through all of them in frames well under the limit, `locate_file`, `find_peers` and
 * `announce` answer, the shell shows the list page by page, and a login restores a user's
 * 100,000 shares.
 */

import assert from "node:assert/strict";
import { generateIdentity, issueCertificate } from "../lib/identity.ts";
import { encodeInfo, infoHashHex } from "../lib/metainfo.ts";
import { hashPassword } from "../tracker/auth.ts";
import { SqliteStore } from "../tracker/sqlite_store.ts";
import { rawTrackerLink } from "./raw_tls.ts";
import { JsonShell, TempDir, TrackerProcess } from "./harness.ts";

/**
 * 100,000 with SWARMSHARE_GROUP_FILES=100000 (seeding takes minutes here); by default 3,000,
 * six pages, so the suite stays quick and every path still spans several pages.
 */
const FILES = Number(Deno.env.get("SWARMSHARE_GROUP_FILES") ?? 3_000);
const SIZE = 1000;
const nameOf = (i: number) => `f${String(i).padStart(6, "0")}.bin`;

/** alice shares FILES files in group "big" (all from one real file: restored unhashed); bob is a member. */
async function seed(dbPath: string, sharedPath: string): Promise<string[]> {
  await Deno.writeFile(sharedPath, new Uint8Array(SIZE).fill(1));
  const mtimeMs = Math.trunc((await Deno.stat(sharedPath)).mtime!.getTime());
  const store = new SqliteStore(dbPath);
  const hashes: string[] = [];
  try {
    await store.createUser("alice", await hashPassword("pw-alice"));
    await store.createUser("bob", await hashPassword("pw-bob"));
    await store.createGroup("big", "alice");
    await store.addJoinRequest("big", "bob");
    await store.acceptJoinRequest("big", "bob");
    const pieceHashes = new Uint8Array(20);
    const view = new DataView(pieceHashes.buffer);
    for (let i = 0; i < FILES; i++) {
      view.setUint32(0, i);
      const info = encodeInfo({ name: nameOf(i), length: SIZE, pieceHashes });
      const infoHash = await infoHashHex(info);
      hashes.push(infoHash);
      await store.shareFile(
        { group: "big", name: nameOf(i), infoHash, size: SIZE, sha1: "ab".repeat(20), info },
        { user: "alice", path: sharedPath, mtimeMs },
      );
    }
  } finally {
    await store.close();
  }
  return hashes;
}

Deno.test({
  name: `a group with ${FILES} files: listed in pages, located, announced, restored at login`,
  async fn() {
    await using dir = await TempDir.create();
    const dbPath = dir.join("tracker.db");
    let started = performance.now();
    const lap = (what: string) => {
      console.log(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      started = performance.now();
    };
    const hashes = await seed(dbPath, dir.join("shared.bin"));
    lap("seeded");
    await using tracker = await TrackerProcess.start(dbPath);
    const identity = await generateIdentity("bob");
    const serving = await issueCertificate(identity, "bob", ["127.0.0.1"]);
    const bob = await rawTrackerLink(tracker.port, identity, {
      hello: { peer: { host: "127.0.0.1", port: 9 }, peer_cert: serving.certPem },
    });
    try {
      const ok = async (message: Record<string, unknown>) => {
        const reply = await bob.request(message);
        assert.equal(reply.ok, true, `${message.type}: ${JSON.stringify(reply.error)}`);
        return reply;
      };
      await ok({ type: "login", user: "bob", password: "pw-bob" });

      // every file, page by page, each reply far under the 1 MiB frame
      let listed = 0;
      let largest = 0;
      let after: string | undefined;
      for (let pages = 0;; pages++) {
        assert.ok(pages <= Math.ceil(FILES / 500), "more pages than files");
        const reply = await ok({ type: "list_files", group: "big", ...(after ? { after } : {}) });
        const page = reply.data as { name: string }[];
        if (page.length === 0) break;
        largest = Math.max(largest, JSON.stringify(reply).length);
        for (const file of page) assert.equal(file.name, nameOf(listed++));
        after = page.at(-1)!.name;
      }
      assert.equal(listed, FILES);
      assert.ok(largest < 256 * 1024, `a page of ${largest} bytes`);
      lap("listed");

      // the last file and one in the middle: located, its holders asked, announced
      for (const i of [FILES - 1, Math.floor(FILES / 2)]) {
        const location = (await ok({ type: "locate_file", group: "big", name: nameOf(i) }))
          .data as { info_hash: string; info: string; size: number };
        assert.equal(location.info_hash, hashes[i]);
        assert.equal(location.size, SIZE);
        const found = (await ok({ type: "find_peers", group: "big", info_hash: hashes[i] }))
          .data as { peers: unknown[]; ticket: string };
        assert.ok(found.ticket.length > 0);
        await ok({ type: "announce", group: "big", info_hash: hashes[i], state: "downloading" });
        await ok({ type: "announce", group: "big", info_hash: hashes[i], state: "stopped" });
      }
      lap("located");

      // the shell shows the list page by page: no line of its output holds the whole list
      {
        await using shell = JsonShell.start(tracker.port, { waitLimitMs: 120_000 });
        await shell.ok("login bob pw-bob");
        const files = await shell.ok("list_files big") as { name: string }[];
        assert.equal(files.length, FILES);
        assert.equal(files.at(-1)!.name, nameOf(FILES - 1));
        const longest = Math.max(...shell.stdout.all.map((line) => line.length));
        assert.ok(longest < 1024 * 1024, `a line of ${longest} bytes`);
      }
      lap("shell listed");

      // alice logs in: all her shares are served again (the file is there, unchanged)
      {
        await using shell = JsonShell.start(tracker.port, { waitLimitMs: 1_800_000 });
        const login = await shell.ok("login alice pw-alice") as { shares_restored: number };
        assert.equal(login.shares_restored, FILES);
        lap("restored");
        // on a link of its own: bob's first one sends no pings, and 100,000 shares take longer
        // than the tracker's idle timeout
        const asker = await rawTrackerLink(tracker.port, identity, {
          hello: { peer: { host: "127.0.0.1", port: 9 }, peer_cert: serving.certPem },
        });
        try {
          assert.equal(
            (await asker.request({ type: "login", user: "bob", password: "pw-bob" })).ok,
            true,
          );
          const located = await asker.request({
            type: "locate_file",
            group: "big",
            name: nameOf(FILES - 7),
          });
          assert.equal(located.ok, true, JSON.stringify(located.error));
          assert.equal((located.data as { peers: unknown[] }).peers.length, 1);
        } finally {
          asker.close();
        }
      }
    } finally {
      bob.close();
    }
  },
});
