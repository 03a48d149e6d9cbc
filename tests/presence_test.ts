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

/** A presence with `seeders` complete and `partial` partial holders of g/h, ids from 1. */
function crowd(random: () => number, seeders: number, partial: number): Presence {
  const presence = new Presence({ random });
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
