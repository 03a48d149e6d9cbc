import assert from "node:assert/strict";
import { type Holder, Presence, randomSample } from "../tracker/presence.ts";
import { seededRandom } from "./harness.ts";

function holder(connectionId: number, user: string, complete = true): Holder {
  return {
    connectionId,
    user,
    address: { host: "127.0.0.1", port: 1000 + connectionId },
    complete,
  };
}

/** A presence whose holders are at verified addresses: every `hold` registers it first. */
function verifiedPresence(options: { random?: () => number } = {}): Presence {
  const presence = new Presence(options);
  const hold = presence.hold.bind(presence);
  presence.hold = (group, infoHash, h) => {
    presence.register(h.connectionId, h.user, h.address);
    hold(group, infoHash, h);
  };
  return presence;
}

Deno.test("presence: holders per group and file, seeders counted", () => {
  const presence = verifiedPresence();
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
  const presence = verifiedPresence();
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

Deno.test("presence: only holders at a registered (verified) address are handed out", () => {
  const presence = new Presence();
  presence.hold("g", "h1", holder(1, "a"));
  assert.deepEqual(presence.holders("g", "h1"), [], "not verified yet: not handed out");
  assert.equal(presence.seeders("g", "h1"), 0, "nor counted");
  assert.deepEqual(presence.connectionsIn("g"), new Set([1]), "but told of revocations");
  assert.equal(presence.register(1, "a", holder(1, "a").address), undefined);
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId), [1]);
  assert.equal(presence.seeders("g", "h1"), 1);
  // the connection logs in as someone else: what it held as "a" is not handed out as theirs
  presence.register(1, "b", holder(1, "b").address);
  assert.deepEqual(presence.holders("g", "h1"), []);
  presence.releaseConnection(1);
  assert.equal(presence.isRegistered(1, "b"), false, "a connection gone is unregistered");
});

Deno.test("presence: one presence per user and address; other devices stay apart", () => {
  const presence = new Presence();
  const x = { host: "203.0.113.7", port: 6881 };
  const y = { host: "198.51.100.2", port: 6881 };
  const at = (connectionId: number, user: string, address: typeof x): Holder => ({
    connectionId,
    user,
    address,
    complete: true,
  });
  presence.register(1, "a", x);
  presence.hold("g", "h1", at(1, "a", x));
  presence.hold("g", "h2", at(1, "a", x));
  // a second client of "a" registers the same address: the first one's presence is gone
  assert.equal(presence.register(2, "a", x), 1, "the replaced connection is named");
  assert.deepEqual(presence.holders("g", "h1"), []);
  assert.deepEqual(presence.holders("g", "h2"), []);
  presence.hold("g", "h1", at(2, "a", x));
  // the replaced one (stale) announces again: still not handed out, not twice
  presence.hold("g", "h1", at(1, "a", x));
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId), [2]);
  assert.equal(presence.seeders("g", "h1"), 1);
  // another device of "a" elsewhere, and another user at the same address, stay apart
  presence.register(3, "a", y);
  presence.hold("g", "h1", at(3, "a", y));
  presence.register(4, "b", x);
  presence.hold("g", "h1", at(4, "b", x));
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId).sort(), [2, 3, 4]);
  // the stale one going away takes nothing of the one that replaced it
  presence.releaseConnection(1);
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId).sort(), [2, 3, 4]);
  // registering again where it is already registered replaces nobody
  assert.equal(presence.register(2, "a", x), undefined);
  assert.deepEqual(presence.holders("g", "h1").map((h) => h.connectionId).sort(), [2, 3, 4]);
  // a host name is the same whatever its case
  presence.register(5, "a", { host: "Peer.Example", port: 1 });
  assert.equal(presence.register(6, "a", { host: "peer.example", port: 1 }), 5);
});

Deno.test("presence: whether another client of a user holds the whole file", () => {
  const presence = verifiedPresence();
  presence.hold("g", "h", holder(1, "a"));
  presence.hold("g", "h", holder(2, "a", false));
  presence.hold("g", "h", holder(3, "b"));
  presence.hold("other", "h2", holder(4, "a"));
  assert.equal(presence.heldElsewhere("a", "g", "h", 2), true, "connection 1 seeds it");
  assert.equal(presence.heldElsewhere("a", "g", "h", 1), false, "2 is partial, 3 is b's");
  assert.equal(presence.heldElsewhere("b", "g", "h", 9), true);
  assert.equal(presence.heldElsewhere("a", "g", "h2", 9), false, "another group's file");
  presence.releaseConnection(1);
  assert.equal(presence.heldElsewhere("a", "g", "h", 2), false, "gone with its connection");
});

/** A presence with `seeders` complete and `partial` partial holders of g/h, ids from 1. */
function crowd(random: () => number, seeders: number, partial: number): Presence {
  const presence = verifiedPresence({ random });
  for (let id = 1; id <= seeders + partial; id++) {
    presence.hold("g", "h", holder(id, `u${id}`, id <= seeders));
  }
  return presence;
}

Deno.test("presence: holders are handed out as a bounded random sample, seeders first", async (t) => {
  await t.step("the generator decides, not the order holders came in", () => {
    // always the last candidate: a partial Fisher-Yates swaps 5 to the front, then 1
    const presence = crowd(() => 0.999, 5, 0);
    assert.deepEqual(presence.handOut("g", "h", 0, 2).map((h) => h.connectionId), [5, 1]);
    // always the first candidate: insertion order, which the secure generator rarely gives
    assert.deepEqual(
      crowd(() => 0, 5, 0).handOut("g", "h", 0, 2).map((h) => h.connectionId),
      [1, 2],
    );
  });

  await t.step("bounded, distinct, without the asker, seeders before partial holders", () => {
    const presence = crowd(seededRandom(7), 30, 40);
    for (let round = 0; round < 20; round++) {
      const ids = presence.handOut("g", "h", 3, 50).map((h) => h.connectionId);
      assert.equal(ids.length, 50);
      assert.equal(new Set(ids).size, 50, "no holder twice");
      assert.ok(!ids.includes(3), "the asker is not sent to itself");
      assert.ok(ids.slice(0, 29).every((id) => id <= 30), "the other 29 seeders come first");
      assert.ok(ids.slice(29).every((id) => id > 30));
    }
  });

  await t.step("every holder gets its share: uniform over many draws", () => {
    const presence = crowd(seededRandom(42), 10, 0);
    const counts = new Map<number, number>();
    const draws = 10_000;
    for (let i = 0; i < draws; i++) {
      for (const h of presence.handOut("g", "h", 0, 3)) {
        counts.set(h.connectionId, (counts.get(h.connectionId) ?? 0) + 1);
      }
    }
    // each of 10 holders is in a sample of 3 with probability 0.3: 3,000 expected; the seed
    // is fixed, so this cannot flake, and a biased sampler (insertion order) fails it at once
    for (let id = 1; id <= 10; id++) {
      const count = counts.get(id) ?? 0;
      assert.ok(count > 2_800 && count < 3_200, `holder ${id} in ${count} of ${draws} samples`);
    }
  });

  await t.step("more holders than the cap: each one is reachable", () => {
    const presence = crowd(seededRandom(1), 60, 0);
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      for (const h of presence.handOut("g", "h", 0, 50)) seen.add(h.connectionId);
    }
    assert.equal(seen.size, 60, "the last ten to arrive are handed out too");
  });

  await t.step("randomSample: at most what there is, nothing for a cap of 0", () => {
    assert.deepEqual(randomSample([1, 2, 3], 10, () => 0.5).sort(), [1, 2, 3]);
    assert.deepEqual(randomSample([1, 2, 3], 0, Math.random), []);
    // a generator that (wrongly) returns 1 still picks within bounds
    assert.deepEqual(randomSample([1, 2, 3], 3, () => 1).sort(), [1, 2, 3]);
  });
});
