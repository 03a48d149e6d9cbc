/**
 * Listing pages kept between writes (tracker/reply_cache.ts): a kept page is served without
 * the store, a write drops its scope so that the next read sees it, a page read while a write
 * happened is not kept, live parts (seeders) are recomputed, memory stays bounded; and through
 * a real tracker, every kind of write is seen by the next listing on a link that listed before.
 */

import assert from "node:assert/strict";
import { encodeFrame } from "../lib/frame.ts";
import { encodeReplyFrame } from "../tracker/frame_writer.ts";
import {
  ENTRY_OVERHEAD_BYTES,
  filesScope,
  GROUPS_SCOPE,
  ReplyCache,
} from "../tracker/reply_cache.ts";
import { rawMember, shareFileRequest } from "./raw_tls.ts";
import { TempDir, TrackerProcess } from "./harness.ts";

/** A page view whose loads are counted, returning `rows()` at each load. */
function counted<R>(rows: () => R) {
  const view = {
    loads: 0,
    load: () => {
      view.loads++;
      return Promise.resolve(rows());
    },
    build: (loaded: R) => ({ rows: loaded }),
  };
  return view;
}

Deno.test("reply cache: kept pages, dropped by the writes of their scope", async (t) => {
  await t.step("a page is loaded once until its scope changes", async () => {
    const cache = new ReplyCache({ enabled: true });
    let groups = ["a"];
    const view = counted(() => [...groups]);
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["a"] });
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["a"] });
    assert.equal(view.loads, 1);
    groups = ["a", "b"];
    // another scope's change leaves the page alone
    cache.changed({ kind: "files", group: "a" });
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["a"] });
    cache.changed({ kind: "groups" });
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["a", "b"] });
    assert.equal(view.loads, 2);
  });

  await t.step("files pages are kept per group and dropped per group", async () => {
    const cache = new ReplyCache({ enabled: true });
    const inA = counted(() => ["x"]);
    const inB = counted(() => ["y"]);
    await cache.page(filesScope("a"), "", inA);
    await cache.page(filesScope("a"), "m", inA);
    await cache.page(filesScope("b"), "", inB);
    cache.changed({ kind: "files", group: "a" });
    await cache.page(filesScope("a"), "", inA);
    await cache.page(filesScope("a"), "m", inA);
    await cache.page(filesScope("b"), "", inB);
    assert.equal(inA.loads, 4, "both pages of a were read again");
    assert.equal(inB.loads, 1, "b's page was kept");
  });

  await t.step("a page read while a write happened is not kept", async () => {
    const cache = new ReplyCache({ enabled: true });
    let groups = ["old"];
    let loads = 0;
    const view = {
      load: () => {
        loads++;
        const read = [...groups];
        // the write lands after the read, before the page would be kept
        if (loads === 1) {
          groups = ["new"];
          cache.changed({ kind: "groups" });
        }
        return Promise.resolve(read);
      },
      build: (rows: string[]) => ({ rows }),
    };
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["old"] });
    assert.deepEqual(await cache.page(GROUPS_SCOPE, "", view), { rows: ["new"] });
    assert.equal(loads, 2);
  });

  await t.step("live parts are recomputed: a page is remade when they change", async () => {
    const cache = new ReplyCache({ enabled: true });
    let seeders = 0;
    const view = {
      loads: 0,
      load: () => {
        view.loads++;
        return Promise.resolve(["f"]);
      },
      stamp: () => [seeders],
      build: (rows: string[]) => rows.map((name) => ({ name, seeders })),
    };
    const first = await cache.page(filesScope("g"), "", view);
    assert.equal(await cache.page(filesScope("g"), "", view), first, "the same page object");
    seeders = 2;
    assert.deepEqual(await cache.page(filesScope("g"), "", view), [{ name: "f", seeders: 2 }]);
    assert.equal(view.loads, 1, "the store was read once");
  });

  await t.step("JSON of a kept page, and nothing for other values", async () => {
    const cache = new ReplyCache({ enabled: true });
    const page = await cache.page(GROUPS_SCOPE, "", counted(() => ["é", 1]));
    assert.equal(new TextDecoder().decode(cache.jsonOf(page)), JSON.stringify(page));
    assert.equal(cache.jsonOf({ rows: ["é", 1] }), undefined);
    assert.equal(cache.jsonOf(null), undefined);
    assert.equal(cache.jsonOf("text"), undefined);
  });

  await t.step("memory is bounded: the least recently used pages go", async () => {
    // a page here: its JSON, its key ("groups\n\na": 18 bytes) and the entry's overhead
    const each = JSON.stringify({ rows: "x".repeat(300) }).length + 18 + ENTRY_OVERHEAD_BYTES;
    const cache = new ReplyCache({ enabled: true, maxBytes: 3 * each + 50 });
    const big = counted(() => "x".repeat(300));
    for (const key of ["a", "b", "c"]) await cache.page(GROUPS_SCOPE, key, big);
    await cache.page(GROUPS_SCOPE, "a", big); // a is now the most recent
    await cache.page(GROUPS_SCOPE, "d", big);
    // over the bound: down to seven eighths of it, the least recently used first (b, c)
    assert.equal(cache.bytes, 2 * each);
    assert.equal(cache.size, 2);
    big.loads = 0;
    await cache.page(GROUPS_SCOPE, "a", big);
    await cache.page(GROUPS_SCOPE, "d", big);
    assert.equal(big.loads, 0, "a (used again) and d (just made) stayed");
    await cache.page(GROUPS_SCOPE, "b", big);
    assert.equal(big.loads, 1, "b (least recently used) went");
    // whatever keys clients send
    for (let i = 0; i < 100; i++) await cache.page(GROUPS_SCOPE, `k${i}`, big);
    assert.ok(cache.bytes <= 3 * each + 50 && cache.size <= 3);
    // long keys count: empty pages after megabytes of `after` text do not pile up
    const empty = counted(() => []);
    for (let i = 0; i < 1000; i++) {
      await cache.page(GROUPS_SCOPE, `${i}`.padEnd(100_000, "~"), empty);
    }
    assert.ok(cache.size <= 3, `${cache.size} pages kept`);
    cache.changed({ kind: "groups" });
    assert.equal(cache.bytes, 0);
    assert.equal(cache.size, 0);
  });

  await t.step("a page used all the time stays while thousands of others come and go", async () => {
    const cache = new ReplyCache({ enabled: true, maxBytes: 6000 });
    const hot = counted(() => "h".repeat(300));
    const cold = counted(() => "c".repeat(300));
    for (let i = 0; i < 5000; i++) {
      await cache.page(GROUPS_SCOPE, "hot", hot);
      await cache.page(GROUPS_SCOPE, `cold${i}`, cold);
      assert.ok(cache.bytes <= 6000);
    }
    assert.equal(hot.loads, 1);
    assert.equal(cold.loads, 5000);
  });

  await t.step("disabled (a store that does not see every write): every call loads", async () => {
    const cache = new ReplyCache({ enabled: false });
    const view = counted(() => ["a"]);
    await cache.page(GROUPS_SCOPE, "", view);
    await cache.page(GROUPS_SCOPE, "", view);
    assert.equal(view.loads, 2);
  });
});

Deno.test("a reply around kept JSON is the frame encodeFrame makes", () => {
  const data = [{ group: "films", owner: "ö", members: 3 }];
  const json = new TextEncoder().encode(JSON.stringify(data));
  assert.deepEqual(encodeReplyFrame(7, json), encodeFrame({ id: 7, ok: true, data }));
  assert.throws(() => encodeReplyFrame(1, new Uint8Array(1 << 20)), /exceeds/);
});

const member = rawMember;

Deno.test("every write is seen by the next listing, pages being kept", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const alice = await member(tracker.port, "alice");
  const bob = await member(tracker.port, "bob");
  try {
    const groups = () => bob.ok({ type: "list_groups" });
    const files = () => alice.ok({ type: "list_files", group: "films" });
    assert.deepEqual(await groups(), []);
    await alice.ok({ type: "create_group", group: "films" });
    assert.deepEqual(await groups(), [{ group: "films", owner: "alice", members: 1 }]);
    await bob.ok({ type: "join_group", group: "films" });
    assert.deepEqual(await groups(), [{ group: "films", owner: "alice", members: 1 }]);
    await alice.ok({ type: "accept_request", group: "films", user: "bob" });
    assert.deepEqual(await groups(), [{ group: "films", owner: "alice", members: 2 }]);

    assert.deepEqual(await files(), []);
    await bob.ok(shareFileRequest("films", "a.mkv"));
    assert.deepEqual(await files(), [
      { name: "a.mkv", size: 1000, sha1: "ab".repeat(20), seeders: 0 },
    ]);
    // a second share of the same file changes no listing
    await alice.ok(shareFileRequest("films", "a.mkv"));
    await bob.ok(shareFileRequest("films", "b.mkv"));
    assert.deepEqual((await files() as { name: string }[]).map((f) => f.name), [
      "a.mkv",
      "b.mkv",
    ]);
    await bob.ok({ type: "stop_share", group: "films", name: "b.mkv" });
    assert.deepEqual((await files() as { name: string }[]).map((f) => f.name), ["a.mkv"]);
    // pages after a name are kept apart
    assert.deepEqual(await alice.ok({ type: "list_files", group: "films", after: "a.mkv" }), []);
    await bob.ok(shareFileRequest("films", "c.mkv"));
    assert.deepEqual(
      (await alice.ok({ type: "list_files", group: "films", after: "a.mkv" }) as {
        name: string;
      }[]).map((f) => f.name),
      ["c.mkv"],
    );

    // the owner leaves: ownership passes, alice's shares go (a.mkv stays: bob shares it too)
    await alice.ok({ type: "leave_group", group: "films" });
    assert.deepEqual(await groups(), [{ group: "films", owner: "bob", members: 1 }]);
    await bob.ok({ type: "leave_group", group: "films" });
    assert.deepEqual(await groups(), []);
    await bob.ok({ type: "create_group", group: "films" });
    assert.deepEqual(await bob.ok({ type: "list_files", group: "films" }), []);
  } finally {
    alice.link.close();
    bob.link.close();
  }
});
