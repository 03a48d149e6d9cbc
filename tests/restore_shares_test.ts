/**
 * `restore_shares` on a real tracker, on each kind of store: a login serves the user's shares
 * again in batches (each handed out to members at once), a batch refuses exactly the shares
 * `share_file` would not take back as they are (another user's, a group the user is not in,
 * a malformed one, one the tracker no longer has), names at most `MAX_SHARES_PER_RESTORE`,
 * and adds no share: a user at the per-member limit still cannot pass it.
 */

import assert from "node:assert/strict";
import { encodeInfo, infoHashHex } from "../lib/metainfo.ts";
import { MAX_SHARES_PER_RESTORE } from "../lib/protocol.ts";
import { hashPassword } from "../tracker/auth.ts";
import { MAX_SHARES_PER_MEMBER } from "../tracker/file_handlers.ts";
import { openStore } from "../tracker/open_store.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { hashFile } from "../lib/hash.ts";
import { RESTORE_BUSY_WAITS_MS } from "../peer/file_sharing.ts";
import { startFakeTracker } from "./fake_tracker.ts";
import { Program } from "../scripts/processes.ts";
import { JsonShell, TempDir, TrackerProcess } from "./harness.ts";
import { PostgresServer, postgresUnavailable } from "./postgres_server.ts";
import { rawLogin } from "./raw_tls.ts";

const SIZE = 1000;

/** A file's fields as the store takes them, its info dictionary made from its name. */
async function fileOf(group: string, name: string) {
  const info = encodeInfo({ name, length: SIZE, pieceHashes: new Uint8Array(20) });
  return {
    group,
    name,
    infoHash: await infoHashHex(info),
    size: SIZE,
    sha1: "ab".repeat(20),
    info,
  };
}

/**
 * alice owns "films" (bob is a member) and shares `count` files there from `path`; bob
 * shares "bob.bin"; carol owns "music", where alice is not a member, and shares "c.bin".
 */
async function seed(store: TrackerStore, path: string, mtimeMs: number, count: number) {
  for (const user of ["alice", "bob", "carol"]) {
    await store.createUser(user, await hashPassword(`pw-${user}`));
  }
  await store.createGroup("films", "alice");
  await store.addJoinRequest("films", "bob");
  await store.acceptJoinRequest("films", "bob");
  await store.createGroup("music", "carol");
  for (let i = 0; i < count; i++) {
    await store.shareFile(await fileOf("films", `a${i}.bin`), { user: "alice", path, mtimeMs });
  }
  await store.shareFile(await fileOf("films", "bob.bin"), { user: "bob", path, mtimeMs });
  await store.shareFile(await fileOf("music", "c.bin"), { user: "carol", path, mtimeMs });
}

/** The tracker's database for one case: a SQLite file, or a database on a PostgreSQL server. */
interface Db extends AsyncDisposable {
  url: string;
}

const KINDS: { name: string; unavailable?: string; start: (dir: TempDir) => Promise<Db> }[] = [
  {
    name: "sqlite",
    start: (dir) =>
      Promise.resolve({ url: dir.join("tracker.db"), [Symbol.asyncDispose]: async () => {} }),
  },
  {
    name: "postgres",
    unavailable: await postgresUnavailable(),
    async start() {
      const server = await PostgresServer.start();
      await server.createDatabase("restore");
      return {
        url: server.url("restore"),
        [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
      };
    },
  },
];

for (const kind of KINDS) {
  Deno.test({
    name: `restore_shares on ${kind.name}: a login's shares in batches, refusals one by one`,
    ignore: kind.unavailable !== undefined,
    async fn(t) {
      await using dir = await TempDir.create();
      await using db = await kind.start(dir);
      const path = dir.join("shared.bin");
      await Deno.writeFile(path, new Uint8Array(SIZE).fill(1));
      const mtimeMs = Math.trunc((await Deno.stat(path)).mtime!.getTime());
      // more than two batches, so that a login sends several
      const count = 2 * MAX_SHARES_PER_RESTORE + 3;
      const store = await openStore(db.url);
      try {
        await seed(store, path, mtimeMs, count);
      } finally {
        await store.close();
      }
      await using tracker = await TrackerProcess.start(db.url);
      const bob = await rawLogin(tracker.port, "bob");
      const alice = await rawLogin(tracker.port, "alice");
      try {
        await t.step(
          "a client logging in serves every share again, handed out at once",
          async () => {
            await using shell = JsonShell.start(tracker.port);
            const login = await shell.ok("login alice pw-alice") as { shares_restored: number };
            assert.equal(login.shares_restored, count);
            for (const name of ["a0.bin", `a${count - 1}.bin`]) {
              const located = await bob.request({ type: "locate_file", group: "films", name });
              assert.equal((located.data as { peers: unknown[] }).peers.length, 1, name);
            }
          },
        );

        await t.step("each share is refused alone, with share_file's reason", async () => {
          const own = await fileOf("films", "a1.bin");
          const entry = (group: string, name: string, infoHash: string) => ({
            group,
            name,
            info_hash: infoHash,
            path: "/moved/a1.bin",
            mtime_ms: 5,
          });
          const reply = await alice.request({
            type: "restore_shares",
            shares: [
              entry("films", "a1.bin", own.infoHash), // hers: served, moved
              entry("films", "bob.bin", (await fileOf("films", "bob.bin")).infoHash), // bob's
              entry("films", "a2.bin", own.infoHash), // hers, but another file than named
              entry("music", "c.bin", (await fileOf("music", "c.bin")).infoHash), // not a member
              entry("films", "a3.bin", "not-a-hash"),
              entry("no-such", "x.bin", own.infoHash),
              entry("bad group", "x.bin", own.infoHash),
            ],
          });
          assert.equal(reply.ok, true, JSON.stringify(reply.error));
          const refused = (reply.data as { refused: { name: string; code: string }[] }).refused;
          // in the order they were named
          assert.deepEqual(refused.map((one) => [one.name, one.code]), [
            ["bob.bin", "not_found"],
            ["a2.bin", "not_found"],
            ["c.bin", "forbidden"],
            ["a3.bin", "bad_request"],
            ["x.bin", "not_found"],
            ["x.bin", "bad_request"],
          ]);
          const page = await alice.request({
            type: "my_shares",
            after_group: "films",
            after_name: "a0.bin",
          });
          const first = (page.data as { name: string; path: string; mtime_ms: number }[])[0];
          assert.deepEqual([first.name, first.path, first.mtime_ms], [
            "a1.bin",
            "/moved/a1.bin",
            5,
          ]);
        });

        await t.step(`at most ${MAX_SHARES_PER_RESTORE} shares a request`, async () => {
          const own = await fileOf("films", "a1.bin");
          const share = {
            group: "films",
            name: "a1.bin",
            info_hash: own.infoHash,
            path: "/p",
            mtime_ms: 1,
          };
          const over = await alice.request({
            type: "restore_shares",
            shares: Array(MAX_SHARES_PER_RESTORE + 1).fill(share),
          });
          assert.equal(over.ok, false);
          assert.equal((over.error as { code: string }).code, "bad_request");
          const most = await alice.request({
            type: "restore_shares",
            shares: Array(MAX_SHARES_PER_RESTORE).fill(share),
          });
          assert.deepEqual(most.data, { refused: [] });
        });
      } finally {
        alice.close();
        bob.close();
      }
    },
  });
}

Deno.test({
  name: "restore_shares adds no share: a member at the limit stays there",
  async fn() {
    await using dir = await TempDir.create();
    const db = dir.join("tracker.db");
    const store = await openStore(db);
    try {
      await seed(store, "/data/a.bin", 1, MAX_SHARES_PER_MEMBER);
    } finally {
      await store.close();
    }
    await using tracker = await TrackerProcess.start(db);
    const alice = await rawLogin(tracker.port, "alice");
    try {
      const extra = await fileOf("films", "extra.bin");
      const restore = await alice.request({
        type: "restore_shares",
        shares: [{
          group: "films",
          name: "extra.bin",
          info_hash: extra.infoHash,
          path: "/x",
          mtime_ms: 1,
        }],
      });
      assert.deepEqual(
        (restore.data as { refused: { code: string }[] }).refused.map((one) => one.code),
        ["not_found"],
      );
      // and share_file, which the client sends for it next, keeps the limit
      const shared = await alice.request({
        type: "share_file",
        group: "films",
        name: "extra.bin",
        size: SIZE,
        sha1: extra.sha1,
        info: extra.info.toBase64(),
        path: "/x",
        mtime_ms: 1,
      });
      assert.equal(shared.ok, false);
      assert.equal((shared.error as { code: string }).code, "forbidden");
      const again = await alice.request({
        type: "my_shares",
        after_group: "films",
        after_name: "a9.bin",
      });
      assert.ok(!(again.data as { name: string }[]).some((share) => share.name === "extra.bin"));
    } finally {
      alice.close();
    }
  },
});

Deno.test("a restore_shares answered busy is asked again, not replaced by share_file", async () => {
  // the tracker sheds load: one share_file per share would be the worst answer to that
  await using dir = await TempDir.create();
  const path = dir.join("a.bin");
  await Deno.writeFile(path, new Uint8Array(SIZE).fill(7));
  const hashes = await hashFile(path);
  const info = encodeInfo({ name: "a.bin", length: SIZE, pieceHashes: hashes.pieceHashes });
  const record = {
    group: "g",
    name: "a.bin",
    size: SIZE,
    sha1: hashes.sha1,
    info_hash: await infoHashHex(info),
    info: info.toBase64(),
    path,
    mtime_ms: Math.trunc((await Deno.stat(path)).mtime!.getTime()),
  };
  const busyAnswers = RESTORE_BUSY_WAITS_MS.length - 1;
  let restores = 0;
  await using tracker = await startFakeTracker({
    my_shares: (request) => ({ data: request.after_group === undefined ? [record] : [] }),
    restore_shares: (request) =>
      ++restores <= busyAnswers
        ? { frame: { id: request.id, ok: false, error: { code: "busy", message: "busy" } } }
        : { data: { refused: [] } },
  });
  await using client = new Program(
    ["client", "127.0.0.1", "0", "127.0.0.1", String(tracker.port), "--insecure-plaintext"],
    { stdin: true, cwd: dir.path },
  );
  await client.write("login eve pw-eve\n");
  await client.stdout.until(
    (line) => line === "logged in as eve; serving 1 shared file again",
    "the login with its share restored",
  );
  const asked = tracker.received.filter((type) =>
    type === "restore_shares" || type === "share_file"
  );
  assert.deepEqual(asked, Array(busyAnswers + 1).fill("restore_shares"));
});
