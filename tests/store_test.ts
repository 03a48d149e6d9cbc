/**
 * The store's contract, run against every kind of store (tests/store_backends.ts): SQLite
 * always, PostgreSQL when it is installed. SQLite's own concerns (its file's modes, migrating
 * an old file) follow at the end.
 */

import { INFO_PAGE_BYTES } from "../lib/info_pages.ts";
import assert from "node:assert/strict";
import { SCHEMA_VERSION, SqliteStore } from "../tracker/sqlite_store.ts";
import { type SharedFile, StoreError, type TrackerStore } from "../tracker/store.ts";
import { loadTicketSigner } from "../tracker/auth.ts";
import { loadTrackerIdentity } from "../tracker/identity.ts";
import { TempDir } from "./harness.ts";
import { POSTGRES, type StoreBackend, storeKinds } from "./store_backends.ts";
import { PostgresServer } from "./postgres_server.ts";
import { PostgresStore } from "../tracker/postgres_store.ts";
import postgres from "postgres";

function plain<T>(rows: T[]): T[] {
  return rows.map((row) => ({ ...row }));
}

/** A store on a database of its own, closed when the case ends. */
async function fresh(
  backend: StoreBackend,
  options: { now?: () => number } = {},
): Promise<TrackerStore & AsyncDisposable> {
  const store = await backend.open(`t${crypto.randomUUID().slice(0, 8)}`, options);
  return Object.assign(store, { [Symbol.asyncDispose]: () => store.close() });
}

function fileOf(group: string, name: string, seed: number): SharedFile {
  return {
    group,
    name,
    infoHash: seed.toString(16).padStart(40, "0"),
    size: 2 ** 40 + seed,
    sha1: (seed + 1).toString(16).padStart(40, "0"),
    info: new Uint8Array([seed, 0, 255, seed]),
    infoLength: 4,
  };
}

/** Users "o" and "m", and group "g" that "o" owns and "m" joined. */
async function ownerAndMember(store: TrackerStore): Promise<void> {
  for (const user of ["o", "m"]) await store.createUser(user, "h");
  await store.createGroup("g", "o");
  await store.addJoinRequest("g", "m");
  await store.acceptJoinRequest("g", "m");
}

/** Cases every store must pass, each given a backend to open its stores on. */
const CASES: { name: string; fn: (backend: StoreBackend) => Promise<void> }[] = [
  {
    name: "users and sessions",
    async fn(backend) {
      let now = 1_000;
      await using store = await fresh(backend, { now: () => now });
      assert.ok(await store.createUser("alice", "hash-a"));
      assert.ok(!(await store.createUser("alice", "hash-b")));
      assert.equal(await store.passwordHash("alice"), "hash-a");
      assert.equal(await store.passwordHash("nobody"), undefined);

      assert.deepEqual(await store.createSession("digest-1", "alice", "fp-1", 10), []);
      assert.deepEqual({ ...await store.session("digest-1") }, {
        tokenDigest: "digest-1",
        user: "alice",
        createdAt: 1_000,
        lastSeenAt: 1_000,
        fingerprint: "fp-1",
      });
      assert.equal(await store.session("digest-2"), undefined);

      now += 10_000;
      await store.createSession("digest-2", "alice", null, 10);
      assert.equal((await store.session("digest-2"))?.fingerprint, null);
      now += 5_000;
      assert.equal(await store.pruneSessions(8_000), 1, "only the session idle for 15 s goes");
      assert.equal(await store.session("digest-1"), undefined);
      assert.equal((await store.session("digest-2"))?.user, "alice");
      await store.deleteSession("digest-2");
      assert.equal(await store.session("digest-2"), undefined);
    },
  },
  {
    name: "sessions are touched unless expired, listed newest first, bounded per user",
    async fn(backend) {
      let now = 1_000;
      await using store = await fresh(backend, { now: () => now });
      await store.createUser("alice", "h");
      await store.createUser("bob", "h");
      await store.createSession("a1", "alice", null, 3);
      now = 1_100;
      assert.ok(await store.touchSession("a1", now - 1_000), "used within the idle limit");
      assert.equal((await store.session("a1"))?.lastSeenAt, 1_100);
      now = 5_000;
      assert.ok(!(await store.touchSession("a1", now - 1_000)), "idle too long: not touched");
      assert.equal((await store.session("a1"))?.lastSeenAt, 1_100);
      assert.ok(!(await store.touchSession("nope", 0)), "an unknown session is not touched");
      now += 1;
      await store.createSession("b1", "bob", null, 3);
      now += 1;
      await store.createSession("a2", "alice", "fp", 3);
      // a3 is made in the same millisecond as a2: the later one still counts as newer
      assert.deepEqual(await store.createSession("a3", "alice", null, 3), []);
      const digests = async (user: string) =>
        (await store.userSessions(user)).map((s) => s.tokenDigest);
      assert.deepEqual(await digests("alice"), ["a3", "a2", "a1"]);
      now += 1;
      assert.deepEqual(await store.createSession("a4", "alice", null, 3), ["a1"], "oldest goes");
      assert.deepEqual(await digests("alice"), ["a4", "a3", "a2"]);
      assert.deepEqual(await digests("bob"), ["b1"], "per user");
    },
  },
  {
    name: "owner and membership answers follow every write (asked before and after)",
    async fn(backend) {
      await using store = await fresh(backend);
      for (const user of ["o", "b", "c"]) await store.createUser(user, "h");
      assert.equal(await store.groupOwner("g"), undefined);
      assert.ok(!(await store.isMember("g", "o")));
      await store.createGroup("g", "o");
      assert.equal(await store.groupOwner("g"), "o");
      assert.ok(await store.isMember("g", "o"));
      assert.ok(!(await store.isMember("g", "b")));
      await store.addJoinRequest("g", "b");
      assert.ok(!(await store.isMember("g", "b")), "a request is no membership");
      await store.acceptJoinRequest("g", "b");
      assert.ok(await store.isMember("g", "b"));
      await store.leaveGroup("g", "o");
      assert.equal(await store.groupOwner("g"), "b");
      assert.ok(!(await store.isMember("g", "o")));
      await store.leaveGroup("g", "b");
      assert.equal(await store.groupOwner("g"), undefined);
      assert.ok(!(await store.isMember("g", "b")));
      // a group made again under the same id has none of the old members
      await store.createGroup("g", "c");
      assert.equal(await store.groupOwner("g"), "c");
      assert.ok(!(await store.isMember("g", "b")));
      assert.ok(await store.isMember("g", "c"));
    },
  },
  {
    name: "groups owned and requests pending stop at their limits, however many at once",
    async fn(backend) {
      await using store = await fresh(backend);
      for (const user of ["o", "m"]) await store.createUser(user, "h");
      // connections opened beforehand (PostgreSQL), so that the writes below overlap
      await Promise.all([...Array(10).keys()].map(() => store.countsOf("o")));
      const made = await Promise.all(
        [...Array(8).keys()].map((i) => store.createGroup(`g${i}`, "o", 3)),
      );
      assert.equal(made.filter((outcome) => outcome === true).length, 3, `${made}`);
      assert.equal(made.filter((outcome) => outcome === "limit").length, 5);
      assert.equal((await store.countsOf("o")).groupsOwned, 3);
      const groups = (await store.listGroups()).map((group) => group.group);
      assert.equal(await store.createGroup(groups[0], "m", 3), false, "a taken id is no limit");
      const filed = await Promise.all(groups.map((group) => store.addJoinRequest(group, "m", 2)));
      assert.equal(filed.filter((outcome) => outcome === true).length, 2, `${filed}`);
      assert.equal(filed.filter((outcome) => outcome === "limit").length, 1);
      assert.equal((await store.countsOf("m")).pendingRequests, 2);
      // without a limit, as before
      assert.equal(await store.createGroup("free", "o"), true);
    },
  },
  {
    name: "a member's shares in a group stop at the limit, however many are asked at once",
    async fn(backend) {
      await using store = await fresh(backend);
      await ownerAndMember(store);
      const at = { user: "m", path: "/p", mtimeMs: 0, maxSharesInGroup: 3 };
      assert.equal(await store.shareFile(fileOf("g", "a", 1), at), "added");
      assert.equal(await store.shareFile(fileOf("g", "b", 2), at), "added");
      // eight new shares at once (on PostgreSQL, eight transactions on connections opened
      // beforehand, so that they overlap): one fits
      await Promise.all([...Array(10).keys()].map(() => store.countsOf("m", "g")));
      const outcomes = await Promise.all(
        [...Array(8).keys()].map((i) => store.shareFile(fileOf("g", `n${i}`, 10 + i), at)),
      );
      assert.equal(outcomes.filter((outcome) => outcome === "added").length, 1, `${outcomes}`);
      assert.equal(outcomes.filter((outcome) => outcome === "limit").length, 7);
      assert.equal((await store.countsOf("m", "g")).sharesInGroup, 3);
      // a share the member has already is refreshed, not counted; others' are their own
      assert.equal(await store.shareFile(fileOf("g", "a", 1), at), "same");
      assert.equal(
        await store.shareFile(fileOf("g", "o1", 30), { ...at, user: "o" }),
        "added",
      );
      // nothing was written for a share refused
      let files = 0;
      for (let i = 0; i < 8; i++) if (await store.file("g", `n${i}`)) files++;
      assert.equal(files, 1);
      assert.equal(
        (await store.countsOf("m", "g")).sharesInGroup +
          (await store.countsOf("o", "g")).sharesInGroup,
        4,
      );
      // one who left meanwhile shares nothing as a member
      await store.leaveGroup("g", "m");
      assert.equal(
        await store.shareFile(fileOf("g", "late", 40), { ...at, asMember: true }),
        "not_member",
      );
      assert.equal(await store.file("g", "late"), undefined);
      assert.equal((await store.countsOf("m", "g")).sharesInGroup, 0);
    },
  },
  {
    name: "file answers follow every write (asked before and after)",
    async fn(backend) {
      await using store = await fresh(backend);
      await ownerAndMember(store);
      await store.createGroup("h", "o");
      const at = (user: string) => ({ user, path: "/p", mtimeMs: 0 });
      const one = fileOf("g", "one", 1);
      assert.equal(await store.file("g", "one"), undefined);
      await store.shareFile(one, at("m"));
      assert.deepEqual({ ...await store.file("g", "one") }, one, "a file added is found");
      await store.shareFile(fileOf("h", "one", 2), at("o"));
      assert.deepEqual({ ...await store.file("g", "one") }, one, "another group's is another");
      assert.equal((await store.file("h", "one"))?.infoHash, fileOf("h", "one", 2).infoHash);
      await store.removeShare("g", "one", "m");
      assert.equal(await store.file("g", "one"), undefined, "its last share gone, it is gone");
      await store.shareFile(fileOf("g", "one", 3), at("m"));
      assert.equal((await store.file("g", "one"))?.infoHash, fileOf("g", "one", 3).infoHash);
      await store.leaveGroup("g", "m");
      assert.equal(await store.file("g", "one"), undefined, "its sharer left: it is gone");
      await store.shareFile(fileOf("g", "one", 4), at("o"));
      assert.equal((await store.file("g", "one"))?.infoHash, fileOf("g", "one", 4).infoHash);
      await store.leaveGroup("g", "o");
      assert.equal(await store.file("g", "one"), undefined, "the group gone, its files too");
      await store.createGroup("g", "o");
      assert.equal(await store.file("g", "one"), undefined, "a group made again has none");
      assert.equal((await store.file("h", "one"))?.infoHash, fileOf("h", "one", 2).infoHash);
    },
  },
  {
    name: "groups, requests, memberships and ownership passing in join order",
    async fn(backend) {
      await using store = await fresh(backend);
      for (const user of ["o", "b", "c", "d"]) await store.createUser(user, "h");
      assert.ok(await store.createGroup("g", "o"));
      assert.ok(!(await store.createGroup("g", "b")));
      assert.equal(await store.groupOwner("g"), "o");
      assert.ok(await store.isMember("g", "o"));
      assert.ok(!(await store.isMember("g", "b")));

      // c asks first but is accepted after b: standing counts from acceptance
      assert.ok(await store.addJoinRequest("g", "c"));
      assert.ok(await store.addJoinRequest("g", "b"));
      assert.ok(!(await store.addJoinRequest("g", "b")));
      assert.deepEqual(await store.joinRequests("g"), ["c", "b"]);
      assert.equal((await store.countsOf("b")).pendingRequests, 1);
      assert.ok(await store.acceptJoinRequest("g", "b"));
      assert.ok(await store.acceptJoinRequest("g", "c"));
      assert.ok(!(await store.acceptJoinRequest("g", "d")));
      assert.deepEqual(await store.joinRequests("g"), []);
      assert.deepEqual(await store.members("g"), ["o", "b", "c"]);
      assert.deepEqual(plain(await store.listGroups()), [{ group: "g", owner: "o", members: 3 }]);

      assert.ok(await store.addJoinRequest("g", "d"));
      assert.ok(await store.rejectJoinRequest("g", "d"));
      assert.ok(!(await store.rejectJoinRequest("g", "d")));
      assert.ok(!(await store.isMember("g", "d")));

      assert.deepEqual(await store.leaveGroup("g", "o"), { owner: "b", deleted: false });
      assert.deepEqual(plain(await store.listGroups()), [{ group: "g", owner: "b", members: 2 }]);
      assert.deepEqual(await store.leaveGroup("g", "c"), { owner: "b", deleted: false });
      assert.deepEqual(plain(await store.listGroups()), [{ group: "g", owner: "b", members: 1 }]);
      assert.ok(!(await store.isMember("g", "c")));
      await store.addJoinRequest("g", "d");
      assert.deepEqual(await store.leaveGroup("g", "b"), { owner: null, deleted: true });
      assert.equal(await store.groupOwner("g"), undefined);
      assert.deepEqual(await store.listGroups(), []);
      assert.ok(await store.createGroup("g", "d"));
      assert.deepEqual(await store.joinRequests("g"), [], "requests died with the old group");
    },
  },
  {
    name: "groups are listed in pages by id, byte order, with member counts",
    async fn(backend) {
      await using store = await fresh(backend);
      await store.createUser("u", "h");
      await store.createUser("v", "h");
      // byte order, as SQLite compares: upper case before lower case, "-" before letters
      for (const group of ["b", "a-z", "B", "aa", "a"]) await store.createGroup(group, "u");
      await store.addJoinRequest("aa", "v");
      await store.acceptJoinRequest("aa", "v");
      const ids = async (after?: string, limit?: number) =>
        (await store.listGroups(after, limit)).map((g) => `${g.group}:${g.members}`);
      assert.deepEqual(await ids(), ["B:1", "a:1", "a-z:1", "aa:2", "b:1"]);
      assert.deepEqual(await ids("", 2), ["B:1", "a:1"]);
      assert.deepEqual(await ids("a", 2), ["a-z:1", "aa:2"]);
      assert.deepEqual(await ids("aa", 10), ["b:1"]);
      assert.equal((await store.countsOf("u")).groupsOwned, 5);
    },
  },
  {
    name: "a large info dictionary: not loaded with its file, read back a page at a time",
    async fn(backend) {
      await using store = await fresh(backend);
      await store.createUser("o", "h");
      await store.createGroup("g", "o");
      const info = Uint8Array.from({ length: 2 * INFO_PAGE_BYTES + 10 }, (_, i) => i * 7);
      const big = { ...fileOf("g", "big.iso", 3), info };
      assert.equal(await store.shareFile(big, { user: "o", path: "/o/big", mtimeMs: 1 }), "added");
      for (
        const file of [await store.file("g", "big.iso"), await store.fileByHash("g", big.infoHash)]
      ) {
        assert.equal(file!.info.length, 0);
        assert.equal(file!.infoLength, info.length);
      }
      const [share] = await store.sharesOf("o");
      assert.equal(share.info.length, 0);
      assert.equal(share.infoLength, info.length);
      for (const offset of [0, INFO_PAGE_BYTES, 2 * INFO_PAGE_BYTES]) {
        const length = Math.min(INFO_PAGE_BYTES, info.length - offset);
        const page = await store.infoPage("g", big.infoHash, offset, length);
        assert.ok(page instanceof Uint8Array);
        assert.deepEqual(page, info.subarray(offset, offset + length));
      }
      assert.equal(await store.infoPage("g", "f".repeat(40), 0, 10), undefined);
      assert.equal(await store.infoPage("other", big.infoHash, 0, 10), undefined);
      // one page exactly still comes whole with its file
      const page = { ...fileOf("g", "page.iso", 4), info: info.subarray(0, INFO_PAGE_BYTES) };
      await store.shareFile(page, { user: "o", path: "/o/page", mtimeMs: 1 });
      assert.deepEqual((await store.file("g", "page.iso"))!.info, page.info);
    },
  },
  {
    name: "files and shares: added, same, conflicts, pages, removal with the last share",
    async fn(backend) {
      await using store = await fresh(backend);
      await ownerAndMember(store);
      const one = fileOf("g", "one.iso", 1);
      const at = (user: string, path: string) => ({ user, path, mtimeMs: 2 ** 41 });

      assert.equal(await store.shareFile(one, at("o", "/o/one.iso")), "added");
      assert.deepEqual({ ...await store.file("g", "one.iso") }, one);
      assert.deepEqual({ ...await store.fileByHash("g", one.infoHash) }, one);
      assert.ok((await store.file("g", "one.iso"))!.info instanceof Uint8Array);
      assert.equal(await store.fileByHash("g", "f".repeat(40)), undefined);
      assert.equal(await store.file("other", "one.iso"), undefined);
      assert.equal(await store.shareFile(one, at("m", "/m/one.iso")), "same");
      assert.equal(await store.shareFile(one, at("m", "/m/moved.iso")), "same", "a refresh");
      assert.equal(
        await store.shareFile(fileOf("g", "one.iso", 2), at("m", "/x")),
        "conflict",
        "the name holds other pieces",
      );
      assert.equal(
        await store.shareFile({ ...one, sha1: "e".repeat(40) }, at("m", "/x")),
        "sha1_differs",
      );
      assert.ok(await store.hasShare("g", "one.iso", "m"));
      assert.deepEqual(await store.sharesOf("m"), [{
        ...one,
        path: "/m/moved.iso",
        mtimeMs: 2 ** 41,
      }]);
      assert.equal((await store.countsOf("m", "g")).sharesInGroup, 1);
      assert.equal((await store.countsOf("m")).sharesInGroup, 0, "no group asked about");

      for (const [index, name] of ["b", "C", "a", "a b"].entries()) {
        await store.shareFile(fileOf("g", name, 10 + index), at("m", `/m/${name}`));
      }
      const names = async (after: string, limit: number) =>
        (await store.filesPage("g", after, limit)).map((f) => f.name);
      assert.deepEqual(await names("", 10), ["C", "a", "a b", "b", "one.iso"]);
      assert.deepEqual(await names("a", 2), ["a b", "b"]);
      assert.deepEqual((await store.filesPage("g", "b", 1))[0], {
        name: "one.iso",
        size: one.size,
        sha1: one.sha1,
        infoHash: one.infoHash,
      });
      const shares = async (after?: { group: string; name: string }, limit?: number) =>
        (await store.sharesOf("m", { after, limit })).map((s) => s.name);
      assert.deepEqual(await shares(), ["C", "a", "a b", "b", "one.iso"]);
      assert.deepEqual(await shares({ group: "g", name: "a" }, 2), ["a b", "b"]);

      assert.deepEqual(await store.removeShare("g", "one.iso", "m"), {
        removed: true,
        fileGone: false,
      });
      assert.deepEqual(await store.removeShare("g", "one.iso", "m"), {
        removed: false,
        fileGone: false,
      });
      assert.deepEqual(await store.removeShare("g", "one.iso", "o"), {
        removed: true,
        fileGone: true,
      });
      assert.equal(await store.file("g", "one.iso"), undefined);

      // leaving takes the member's shares, and the files only they shared
      await store.shareFile(one, at("o", "/o/one.iso"));
      await store.shareFile(one, at("m", "/m/one.iso"));
      assert.deepEqual(await store.leaveGroup("g", "m"), { owner: "o", deleted: false });
      assert.deepEqual(await names("", 10), ["one.iso"]);
      assert.deepEqual(await store.sharesOf("m"), []);
      assert.deepEqual(await store.leaveGroup("g", "o"), { owner: null, deleted: true });
      assert.deepEqual(await store.filesPage("g", "", 10), []);
      assert.deepEqual(await store.sharesOf("o"), []);
    },
  },
  {
    name: "shares are restored in a batch: the user's own, of the same file, moved ones noted",
    async fn(backend) {
      await using store = await fresh(backend);
      for (const user of ["alice", "bob"]) await store.createUser(user, "h");
      await store.createGroup("g", "alice");
      await store.addJoinRequest("g", "bob");
      await store.acceptJoinRequest("g", "bob");
      await store.shareFile(fileOf("g", "a", 1), { user: "alice", path: "/a", mtimeMs: 1 });
      await store.shareFile(fileOf("g", "b", 2), { user: "alice", path: "/b", mtimeMs: 2 });
      await store.shareFile(fileOf("g", "c", 3), { user: "bob", path: "/c", mtimeMs: 3 });
      const entry = (name: string, seed: number, path: string, mtimeMs: number) => ({
        group: "g",
        name,
        infoHash: fileOf("g", name, seed).infoHash,
        path,
        mtimeMs,
      });
      assert.deepEqual(
        await store.restoreShares("alice", [
          entry("a", 1, "/a", 1), // where it was
          entry("b", 2, "/moved/b", 20), // moved, or touched and hashed again
          entry("c", 3, "/c", 3), // bob's, not alice's
          entry("a", 9, "/a", 1), // another file under alice's name
          entry("gone", 4, "/gone", 4), // no such share
          { ...entry("a", 1, "/a", 1), group: "h" }, // no such group
        ]),
        [true, true, false, false, false, false],
      );
      assert.deepEqual(await store.restoreShares("alice", []), []);
      const shares = (await store.sharesOf("alice")).map((share) => ({
        name: share.name,
        path: share.path,
        mtimeMs: share.mtimeMs,
      }));
      assert.deepEqual(shares, [
        { name: "a", path: "/a", mtimeMs: 1 },
        { name: "b", path: "/moved/b", mtimeMs: 20 },
      ]);
      // nothing was added: the per-user counts are what they were
      assert.equal((await store.countsOf("alice", "g")).sharesInGroup, 2);
      assert.equal((await store.countsOf("bob", "g")).sharesInGroup, 1);
      assert.equal((await store.sharesOf("bob"))[0].path, "/c");
    },
  },
  {
    name: "settings",
    async fn(backend) {
      await using store = await fresh(backend);
      assert.equal(await store.setting("k"), undefined);
      await store.putSetting("k", new Uint8Array([1, 2, 0]));
      await store.putSetting("k", new Uint8Array([3, 0, 255]));
      const value = await store.setting("k");
      assert.ok(value instanceof Uint8Array);
      assert.deepEqual([...value!], [3, 0, 255]);
      // a claim keeps what is there, and says what that is
      assert.deepEqual([...await store.claimSetting("k", new Uint8Array([9]))], [3, 0, 255]);
      assert.deepEqual([...await store.claimSetting("new", new Uint8Array([7, 0]))], [7, 0]);
      assert.deepEqual([...(await store.setting("new"))!], [7, 0]);
    },
  },
  {
    name: "stores opened together on an empty database end up with one identity and ticket key",
    async fn(backend) {
      const name = `r${crypto.randomUUID().slice(0, 8)}`;
      await (await backend.open(name)).close();
      const stores = await Promise.all([1, 2, 3, 4].map(() => backend.open(name)));
      try {
        const loaded = await Promise.all(
          stores.map(async (store) => ({
            identity: (await loadTrackerIdentity(store, ["127.0.0.1"])).fingerprint,
            ticketKey: (await loadTicketSigner(store)).publicKey,
          })),
        );
        assert.equal(new Set(loaded.map((one) => one.identity)).size, 1);
        assert.equal(new Set(loaded.map((one) => one.ticketKey)).size, 1);
      } finally {
        for (const store of stores) await store.close();
      }
    },
  },
  {
    name: "the tracker's TLS identity and ticket key are made once and kept",
    async fn(backend) {
      const name = `k${crypto.randomUUID().slice(0, 8)}`;
      const first = await backend.open(name);
      const made = await loadTrackerIdentity(first, ["127.0.0.1"]);
      const signer = await loadTicketSigner(first);
      await first.close();
      const second = await backend.open(name);
      try {
        assert.equal(
          (await loadTrackerIdentity(second, ["10.0.0.1"])).fingerprint,
          made.fingerprint,
        );
        assert.equal((await loadTicketSigner(second)).publicKey, signer.publicKey);
      } finally {
        await second.close();
      }
    },
  },
  {
    name: "state persists across reopening; closing twice is harmless",
    async fn(backend) {
      const name = `p${crypto.randomUUID().slice(0, 8)}`;
      const first = await backend.open(name);
      await first.createUser("alice", "h");
      await first.createGroup("g", "alice");
      await first.close();
      await first.close();
      const second = await backend.open(name);
      try {
        assert.deepEqual(plain(await second.listGroups()), [
          { group: "g", owner: "alice", members: 1 },
        ]);
      } finally {
        await second.close();
      }
    },
  },
];

for (const kind of storeKinds()) {
  Deno.test({
    name: `store on ${kind.name}`,
    ignore: kind.unavailable !== undefined,
    async fn(t) {
      await using backend = await kind.start();
      for (const { name, fn } of CASES) await t.step(name, () => fn(backend));
    },
  });
}

Deno.test("store on sqlite: migrating to bound sessions drops the sessions of before", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("old.db");
  const { DatabaseSync } = await import("node:sqlite");
  const old = new DatabaseSync(path);
  old.exec(`CREATE TABLE users (id TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
              created_at INTEGER NOT NULL) STRICT;
            CREATE TABLE sessions (token_digest TEXT PRIMARY KEY, user_id TEXT NOT NULL,
              created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL) STRICT;
            CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
            CREATE TABLE files (group_id TEXT NOT NULL, name TEXT NOT NULL,
              info_hash TEXT NOT NULL, info BLOB NOT NULL, PRIMARY KEY (group_id, name)) STRICT;
            CREATE TABLE groups (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL,
              created_at INTEGER NOT NULL) STRICT;
            CREATE TABLE memberships (seq INTEGER PRIMARY KEY AUTOINCREMENT,
              group_id TEXT NOT NULL, user_id TEXT NOT NULL, joined_at INTEGER NOT NULL,
              UNIQUE (group_id, user_id)) STRICT;
            CREATE TABLE join_requests (group_id TEXT NOT NULL, user_id TEXT NOT NULL,
              requested_at INTEGER NOT NULL, PRIMARY KEY (group_id, user_id)) STRICT;
            CREATE TABLE shares (group_id TEXT NOT NULL, name TEXT NOT NULL,
              user_id TEXT NOT NULL, PRIMARY KEY (group_id, name, user_id)) STRICT;
            CREATE INDEX shares_by_user ON shares(user_id);
            INSERT INTO users VALUES ('alice', 'h', 1);
            INSERT INTO sessions VALUES ('old-digest', 'alice', 1, 1);
            PRAGMA user_version = 2;`);
  old.close();
  const store = new SqliteStore(path);
  try {
    assert.equal(await store.session("old-digest"), undefined, "an unbound session cannot resume");
    assert.equal(await store.passwordHash("alice"), "h", "the user stays");
    await store.createSession("new", "alice", "fp", 100);
    assert.equal((await store.session("new"))?.fingerprint, "fp");
  } finally {
    await store.close();
  }
});

Deno.test("store on sqlite: migrating to kept member counts counts the members there", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("v4.db");
  const store = new SqliteStore(path);
  for (const user of ["a", "b", "c"]) await store.createUser(user, "h");
  await store.createGroup("g", "a");
  await store.createGroup("h", "b");
  for (const user of ["b", "c"]) {
    await store.addJoinRequest("g", user);
    await store.acceptJoinRequest("g", user);
  }
  await store.close();
  // back to version 4, as a tracker of before left it
  const { DatabaseSync } = await import("node:sqlite");
  const old = new DatabaseSync(path);
  old.exec(`DROP TABLE info_pages; ALTER TABLE files DROP COLUMN info_length;
            DROP TRIGGER memberships_counted; DROP TRIGGER memberships_uncounted;
            DROP INDEX groups_by_owner; DROP INDEX join_requests_by_user;
            DROP INDEX sessions_by_last_seen; DROP INDEX shares_by_user;
            CREATE INDEX shares_by_user ON shares(user_id);
            ALTER TABLE groups DROP COLUMN member_count;
            PRAGMA user_version = 4;`);
  old.close();
  const migrated = new SqliteStore(path);
  try {
    assert.deepEqual(plain(await migrated.listGroups()), [
      { group: "g", owner: "a", members: 3 },
      { group: "h", owner: "b", members: 1 },
    ]);
  } finally {
    await migrated.close();
  }
});

/** Shares each of `infos` as file `f<i>` of group "g", by user "a". */
async function shareInfos(store: TrackerStore, infos: Uint8Array[]): Promise<void> {
  for (const [i, info] of infos.entries()) {
    await store.shareFile({ ...fileOf("g", `f${i}`, i + 1), info }, {
      user: "a",
      path: `/f${i}`,
      mtimeMs: 1,
    });
  }
}

/** Every page of each of `infos`, shared by `shareInfos`, reads back as it was. */
async function assertPagesReadBack(store: TrackerStore, infos: Uint8Array[]): Promise<void> {
  for (const [i, info] of infos.entries()) {
    const file = fileOf("g", `f${i}`, i + 1);
    assert.equal((await store.file("g", `f${i}`))?.infoLength, info.length);
    for (let offset = 0; offset < info.length; offset += INFO_PAGE_BYTES) {
      const length = Math.min(INFO_PAGE_BYTES, info.length - offset);
      const page = await store.infoPage("g", file.infoHash, offset, length);
      assert.deepEqual(page, info.subarray(offset, offset + length), `f${i} at ${offset}`);
    }
  }
}

Deno.test("store on sqlite: migrating to info pages cuts the dictionaries there into pages", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("v5.db");
  const store = new SqliteStore(path);
  await store.createUser("a", "h");
  await store.createGroup("g", "a");
  // two and a half pages, one page, and a small one
  const infos = [
    new Uint8Array(2.5 * INFO_PAGE_BYTES).map((_, i) => i * 7),
    new Uint8Array(INFO_PAGE_BYTES).fill(3),
    new Uint8Array([1, 2, 3]),
  ];
  await shareInfos(store, infos);
  await store.close();
  // back to version 5, as a tracker of before left it: each dictionary whole in files.info
  const { DatabaseSync } = await import("node:sqlite");
  const old = new DatabaseSync(path);
  for (const [i, info] of infos.entries()) {
    old.prepare("UPDATE files SET info = ? WHERE name = ?").run(info, `f${i}`);
  }
  old.exec(`DROP TABLE info_pages; ALTER TABLE files DROP COLUMN info_length;
            PRAGMA user_version = 5;`);
  old.close();
  const migrated = new SqliteStore(path);
  try {
    await assertPagesReadBack(migrated, infos);
    for (const [i, info] of infos.entries()) {
      const found = await migrated.file("g", `f${i}`);
      assert.equal(found?.info.length, info.length <= INFO_PAGE_BYTES ? info.length : 0);
    }
  } finally {
    await migrated.close();
  }
  const db = new DatabaseSync(path);
  try {
    assert.deepEqual({ ...db.prepare("SELECT count(*) AS n FROM info_pages").get() }, { n: 3 });
    assert.deepEqual({ ...db.prepare("SELECT max(length(info)) AS n FROM files").get() }, {
      n: INFO_PAGE_BYTES,
    });
  } finally {
    db.close();
  }
});

Deno.test({
  name: "store on postgres: migrating to info pages cuts the dictionaries there into pages",
  ignore: POSTGRES.unavailable !== undefined,
  async fn() {
    await using server = await PostgresServer.start();
    await server.createDatabase("v6");
    const store = await PostgresStore.open(server.url("v6"));
    await store.createUser("a", "h");
    await store.createGroup("g", "a");
    const infos = [
      new Uint8Array(2.5 * INFO_PAGE_BYTES).map((_, i) => i * 7),
      new Uint8Array(INFO_PAGE_BYTES).fill(3),
    ];
    await shareInfos(store, infos);
    await store.close();
    // back to version 6, as a tracker of before left it: each dictionary whole in files.info
    const sql = postgres(server.url("v6"), { max: 1, onnotice: () => {} });
    try {
      for (const [i, info] of infos.entries()) {
        await sql`UPDATE files SET info = ${info} WHERE name = ${`f${i}`}`;
      }
      await sql.unsafe(`DROP TABLE info_pages; ALTER TABLE files DROP COLUMN info_length;
                        UPDATE swarmshare_schema SET version = 6;`);
    } finally {
      await sql.end();
    }
    const migrated = await PostgresStore.open(server.url("v6"));
    try {
      await assertPagesReadBack(migrated, infos);
    } finally {
      await migrated.close();
    }
  },
});

Deno.test("store on sqlite: the schema version is recorded", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("t.db");
  await new SqliteStore(path).close();
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  try {
    assert.ok(SCHEMA_VERSION >= 1);
    assert.deepEqual({ ...db.prepare("PRAGMA user_version").get() }, {
      user_version: SCHEMA_VERSION,
    });
  } finally {
    db.close();
  }
});

Deno.test({
  name: "store on sqlite: the database and its -wal and -shm files are private (0600)",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using dir = await TempDir.create();
    const path = dir.join("t.db");
    const modes = async () => {
      const result: Record<string, number> = {};
      for (const suffix of ["", "-wal", "-shm"]) {
        result[`t.db${suffix}`] = (await Deno.stat(`${path}${suffix}`)).mode! & 0o777;
      }
      return result;
    };
    const store = new SqliteStore(path);
    try {
      await store.putSetting("k", new Uint8Array([1]));
      assert.deepEqual(await modes(), { "t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600 });
    } finally {
      await store.close();
    }
    // a database made before it held keys is tightened when opened
    await Deno.chmod(path, 0o644);
    const reopened = new SqliteStore(path);
    try {
      await reopened.putSetting("k", new Uint8Array([2]));
      assert.deepEqual(await modes(), { "t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600 });
    } finally {
      await reopened.close();
    }
  },
});

Deno.test("store on sqlite: a file that is not a database is a StoreError", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("junk.db");
  await Deno.writeTextFile(path, "junk ".repeat(1000));
  assert.throws(() => new SqliteStore(path), StoreError);
});

Deno.test("store on sqlite: no statement scans a table (each costs its own rows)", async () => {
  await using dir = await TempDir.create();
  const store = new SqliteStore(dir.join("t.db"));
  try {
    // every method once, so that every statement the store has is prepared
    await store.createUser("alice", "h");
    await store.createUser("bob", "h");
    await store.createUser("carol", "h");
    await store.passwordHash("alice");
    await store.createSession("d1", "alice", "fp", 10);
    await store.session("d1");
    await store.userSessions("alice");
    await store.touchSession("d1", 0);
    await store.createGroup("g", "alice");
    await store.groupOwner("g");
    await store.members("g");
    await store.isMember("g", "bob");
    await store.countsOf("bob", "g");
    await store.addJoinRequest("g", "bob");
    await store.joinRequests("g");
    await store.acceptJoinRequest("g", "bob");
    await store.addJoinRequest("g", "carol");
    await store.rejectJoinRequest("g", "carol");
    await store.listGroups("", 500);
    await store.shareFile(fileOf("g", "a", 1), { user: "bob", path: "/a", mtimeMs: 1 });
    await store.hasShare("g", "a", "bob");
    await store.file("g", "a");
    await store.fileByHash("g", fileOf("g", "a", 1).infoHash);
    await store.filesPage("g", "", 500);
    await store.sharesOf("bob", { limit: 10 });
    await store.sharesOf("bob", { after: { group: "g", name: "" }, limit: 10 });
    await store.restoreShares("bob", [
      { group: "g", name: "a", infoHash: fileOf("g", "a", 1).infoHash, path: "/b", mtimeMs: 2 },
    ]);
    await store.removeShare("g", "a", "bob");
    await store.shareFile(fileOf("g", "b", 2), { user: "alice", path: "/b", mtimeMs: 1 });
    await store.leaveGroup("g", "alice");
    await store.leaveGroup("g", "bob");
    await store.deleteSession("d1");
    await store.pruneSessions(1000);
    await store.putSetting("k", new Uint8Array([1]));
    await store.setting("k");
    const plans = store.queryPlans();
    assert.ok(plans.size >= 25, `only ${plans.size} statements prepared`);
    // a page of a user's shares is a range of an index, not a sort of all the later ones
    const sharePages = [...plans].filter(([text]) => /FROM shares s JOIN files f/.test(text));
    assert.ok(sharePages.length > 0);
    for (const [text, steps] of sharePages) {
      assert.ok(!steps.some((step) => /TEMP B-TREE/.test(step)), `${text}: ${steps.join("; ")}`);
    }
    const scans = [...plans].filter(([, steps]) => steps.some((step) => /^SCAN /.test(step)));
    assert.deepEqual(
      scans.map(([text, steps]) => `${text.replace(/\s+/g, " ")}: ${steps.join("; ")}`),
      [],
    );
  } finally {
    await store.close();
  }
});
