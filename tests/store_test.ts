import assert from "node:assert/strict";
import { SCHEMA_VERSION, StoreError, TrackerStore } from "../tracker/sqlite_store.ts";
import { TempDir } from "./harness.ts";

function plain<T>(rows: T[]): T[] {
  return rows.map((row) => ({ ...row }));
}

Deno.test("store: users and sessions", () => {
  let now = 1_000;
  const store = new TrackerStore(":memory:", { now: () => now });
  try {
    assert.ok(store.createUser("alice", "hash-a"));
    assert.ok(!store.createUser("alice", "hash-b"));
    assert.equal(store.passwordHash("alice"), "hash-a");
    assert.equal(store.passwordHash("nobody"), undefined);

    assert.deepEqual(store.createSession("digest-1", "alice", "fp-1", 10), []);
    assert.deepEqual({ ...store.session("digest-1") }, {
      tokenDigest: "digest-1",
      user: "alice",
      createdAt: 1_000,
      lastSeenAt: 1_000,
      fingerprint: "fp-1",
    });
    assert.equal(store.session("digest-2"), undefined);

    now += 10_000;
    store.createSession("digest-2", "alice", null, 10);
    assert.equal(store.session("digest-2")?.fingerprint, null);
    now += 5_000;
    assert.equal(store.pruneSessions(8_000), 1, "only the session idle for 15 s goes");
    assert.equal(store.session("digest-1"), undefined);
    assert.equal(store.session("digest-2")?.user, "alice");
    store.deleteSession("digest-2");
    assert.equal(store.session("digest-2"), undefined);
  } finally {
    store.close();
  }
});

Deno.test("store: sessions are touched unless expired, listed newest first, bounded per user", () => {
  let now = 1_000;
  const store = new TrackerStore(":memory:", { now: () => now });
  try {
    store.createUser("alice", "h");
    store.createUser("bob", "h");
    store.createSession("a1", "alice", null, 3);
    now += 100;
    assert.ok(store.touchSession("a1", now - 1_000), "used within the idle limit");
    assert.equal(store.session("a1")?.lastSeenAt, 1_100);
    now += 5_000;
    assert.ok(!store.touchSession("a1", now - 1_000), "idle too long: not touched");
    assert.equal(store.session("a1")?.lastSeenAt, 1_100);
    assert.ok(!store.touchSession("nope", 0), "an unknown session is not touched");

    store.createSession("b1", "bob", null, 3);
    now += 1;
    store.createSession("a2", "alice", "fp", 3);
    now += 1;
    assert.deepEqual(store.createSession("a3", "alice", null, 3), []);
    assert.deepEqual(store.userSessions("alice").map((s) => s.tokenDigest), ["a3", "a2", "a1"]);
    now += 1;
    assert.deepEqual(store.createSession("a4", "alice", null, 3), ["a1"], "the oldest goes");
    assert.deepEqual(store.userSessions("alice").map((s) => s.tokenDigest), ["a4", "a3", "a2"]);
    assert.deepEqual(store.userSessions("bob").map((s) => s.tokenDigest), ["b1"], "per user");
  } finally {
    store.close();
  }
});

Deno.test("store: migrating to bound sessions drops the sessions of before", async () => {
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
              info_hash TEXT NOT NULL, PRIMARY KEY (group_id, name)) STRICT;
            INSERT INTO users VALUES ('alice', 'h', 1);
            INSERT INTO sessions VALUES ('old-digest', 'alice', 1, 1);
            PRAGMA user_version = 2;`);
  old.close();
  const store = new TrackerStore(path);
  try {
    assert.equal(store.session("old-digest"), undefined, "an unbound session cannot resume");
    assert.equal(store.passwordHash("alice"), "h", "the user stays");
    store.createSession("new", "alice", "fp", 100);
    assert.equal(store.session("new")?.fingerprint, "fp");
  } finally {
    store.close();
  }
});

Deno.test("store: groups, requests, memberships and ownership passing in join order", () => {
  const store = new TrackerStore(":memory:");
  try {
    for (const user of ["o", "b", "c", "d"]) store.createUser(user, "h");
    assert.ok(store.createGroup("g", "o"));
    assert.ok(!store.createGroup("g", "b"));
    assert.equal(store.groupOwner("g"), "o");
    assert.ok(store.isMember("g", "o"));

    // c asks first but is accepted after b: standing counts from acceptance
    assert.ok(store.addJoinRequest("g", "c"));
    assert.ok(store.addJoinRequest("g", "b"));
    assert.ok(!store.addJoinRequest("g", "b"));
    assert.deepEqual(store.joinRequests("g"), ["c", "b"]);
    assert.ok(store.acceptJoinRequest("g", "b"));
    assert.ok(store.acceptJoinRequest("g", "c"));
    assert.ok(!store.acceptJoinRequest("g", "d"));
    assert.deepEqual(store.joinRequests("g"), []);
    assert.deepEqual(plain(store.listGroups()), [{ group: "g", owner: "o", members: 3 }]);

    assert.deepEqual(store.leaveGroup("g", "o"), { owner: "b", deleted: false });
    assert.deepEqual(store.leaveGroup("g", "c"), { owner: "b", deleted: false });
    assert.ok(!store.isMember("g", "c"));
    store.addJoinRequest("g", "d");
    assert.deepEqual(store.leaveGroup("g", "b"), { owner: null, deleted: true });
    assert.equal(store.groupOwner("g"), undefined);
    assert.deepEqual(store.listGroups(), []);
    assert.ok(store.createGroup("g", "d"));
    assert.deepEqual(store.joinRequests("g"), [], "requests died with the old group");
  } finally {
    store.close();
  }
});

Deno.test("store: state persists across reopening; the schema version is recorded", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("t.db");
  const first = new TrackerStore(path);
  first.createUser("alice", "h");
  first.createGroup("g", "alice");
  first.close();
  const second = new TrackerStore(path);
  try {
    assert.deepEqual(plain(second.listGroups()), [{ group: "g", owner: "alice", members: 1 }]);
  } finally {
    second.close();
  }
  assert.ok(SCHEMA_VERSION >= 1);
});

Deno.test({
  name: "store: the database and its -wal and -shm files are private (0600)",
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
    const store = new TrackerStore(path);
    try {
      store.putSetting("k", new Uint8Array([1]));
      assert.deepEqual(await modes(), { "t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600 });
    } finally {
      store.close();
    }
    // a database made before it held keys is tightened when opened
    await Deno.chmod(path, 0o644);
    const reopened = new TrackerStore(path);
    try {
      reopened.putSetting("k", new Uint8Array([2]));
      assert.deepEqual(await modes(), { "t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600 });
    } finally {
      reopened.close();
    }
  },
});

Deno.test("store: a file that is not a database is a StoreError", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("junk.db");
  await Deno.writeTextFile(path, "junk ".repeat(1000));
  assert.throws(() => new TrackerStore(path), StoreError);
});
