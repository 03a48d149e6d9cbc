import assert from "node:assert/strict";
import { type Holder, Presence } from "../tracker/presence.ts";

function holder(connectionId: number, user: string, complete = true): Holder {
  return {
    connectionId,
    user,
    address: { host: "127.0.0.1", port: 1000 + connectionId },
    complete,
  };
}

Deno.test("presence: holders per group and file, seeders counted", () => {
  const presence = new Presence();
  presence.hold("g", "h1", holder(1, "a"));
  presence.hold("g", "h1", holder(2, "b", false));
  presence.hold("other", "h1", holder(3, "c"));
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId), [1, 2]);
  assert.equal(presence.seeders("g", "h1"), 1);
  assert.equal(presence.seeders("other", "h1"), 1);
  assert.deepEqual(presence.holders("g", "h2"), []);
  // a downloader that completes is re-held as complete
  presence.hold("g", "h1", holder(2, "b", true));
  assert.equal(presence.seeders("g", "h1"), 2);
});

Deno.test("presence: releasing by connection, by file and by user", () => {
  const presence = new Presence();
  presence.hold("g", "h1", holder(1, "a"));
  presence.hold("g", "h2", holder(1, "a"));
  presence.hold("g", "h1", holder(2, "a"));
  presence.hold("g", "h1", holder(3, "b"));
  presence.hold("k", "h1", holder(2, "a"));

  presence.release("g", "h2", 1);
  assert.deepEqual(presence.holders("g", "h2"), []);

  presence.releaseUser("a", "g", "h1");
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.user), ["b"]);
  assert.equal(presence.seeders("k", "h1"), 1, "other groups untouched");

  presence.hold("g", "h3", holder(2, "a"));
  presence.releaseUser("a", "g");
  assert.deepEqual(presence.holders("g", "h3"), []);
  assert.equal(presence.seeders("k", "h1"), 1);

  presence.releaseConnection(2);
  assert.deepEqual(presence.holders("k", "h1"), []);
  assert.equal(presence.seeders("g", "h1"), 1);
  presence.releaseConnection(3);
  assert.deepEqual(presence.holders("g", "h1"), []);
});
