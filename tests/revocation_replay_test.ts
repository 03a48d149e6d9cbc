/**
 * A holder that was offline when a member left hears of it when it holds files in the group
 * again (tracker/recent_revocations.ts): the tracker pushes the group's recent revocations
 * before it hands the holder out, so the holder refuses the leaver's older tickets at once
 * rather than serving them until they run out.
 */

import assert from "node:assert/strict";
import {
  MAX_REPLAYED_PER_GROUP,
  RecentRevocations,
  REVOCATION_REPLAY_MS,
} from "../tracker/recent_revocations.ts";
import { rawLogin, rawMember, shareFileRequest } from "./raw_tls.ts";
import { TempDir, TrackerProcess } from "./harness.ts";

const revokes = (link: { pushes: Record<string, unknown>[] }) =>
  link.pushes.filter((push) => push.push === "revoke")
    .map(({ user, group }) => `${user} ${group}`);

Deno.test("a holder offline when a member left is told when it holds in the group again", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const owner = await rawMember(tracker.port, "owner");
  await owner.ok({ type: "create_group", group: "films" });
  await owner.ok({ type: "create_group", group: "music" });
  const members = [];
  for (const name of ["bob", "carol"]) {
    const member = await rawMember(tracker.port, name);
    for (const group of ["films", "music"]) {
      await member.ok({ type: "join_group", group });
      await owner.ok({ type: "accept_request", group, user: name });
    }
    members.push(member);
  }
  const [bob, carol] = members;
  await carol.ok(shareFileRequest("films", "movie.bin"));
  await carol.ok(shareFileRequest("music", "song.bin"));
  // carol's client goes offline; bob leaves films meanwhile
  carol.link.close();
  await carol.link.closed;
  const leftAfter = Date.now();
  await bob.ok({ type: "leave_group", group: "films" });
  const leftBefore = Date.now();

  // back online: nothing yet, then holding in films brings bob's revocation first
  const back = await rawLogin(tracker.port, "carol");
  assert.deepEqual(revokes(back), []);
  const shared = await back.request(shareFileRequest("films", "movie.bin"));
  assert.equal(shared.ok, true, JSON.stringify(shared.error));
  assert.deepEqual(revokes(back), ["bob films"]);
  // the moment of the leave (tracker clock, this machine's), not of the replay
  const revoke = back.pushes.find((push) => push.push === "revoke")!;
  assert.ok(
    (revoke.at as number) >= leftAfter && (revoke.at as number) <= leftBefore,
    `${revoke.at} not within ${leftAfter}..${leftBefore}`,
  );
  // holding in another group replays only that group's (none); films again: told once,
  // a member hears later ones live
  await back.request(shareFileRequest("music", "song.bin"));
  await back.request(shareFileRequest("films", "movie.bin"));
  await back.request({
    type: "announce",
    group: "films",
    info_hash: "ab".repeat(20),
    state: "stopped",
  });
  assert.deepEqual(revokes(back), ["bob films"]);
  // out of films and back in on this connection: owed again, and told again
  await back.request({ type: "leave_group", group: "films" });
  await back.request({ type: "join_group", group: "films" });
  await owner.ok({ type: "accept_request", group: "films", user: "carol" });
  await back.request(shareFileRequest("films", "movie.bin"));
  assert.deepEqual(revokes(back).filter((r) => r === "bob films"), ["bob films", "bob films"]);
  // a group ended by its last member's leave is not replayed to one made under its name
  const solo = await rawMember(tracker.port, "dave");
  await solo.ok({ type: "create_group", group: "solo" });
  await solo.ok({ type: "leave_group", group: "solo" });
  await back.request({ type: "create_group", group: "solo" });
  await back.request(shareFileRequest("solo", "mine.bin"));
  assert.ok(!revokes(back).includes("dave solo"), `${revokes(back)}`);

  // a holder online at the time hears it once, live
  const owners = await rawLogin(tracker.port, "owner");
  await owners.request(shareFileRequest("music", "tune.bin"));
  await bob.ok({ type: "leave_group", group: "music" });
  // the push was queued on owners' connection before the leave was answered: a reply there
  // now comes after it
  await owners.request({ type: "ping" });
  assert.deepEqual(revokes(owners), ["bob music"]);
  for (const link of [owner.link, bob.link, back, owners, solo.link]) link.close();
});

Deno.test("RecentRevocations: the newest of a group, for as long as a ticket can predate them", () => {
  const clock = { now: 1_000_000 };
  const recent = new RecentRevocations({ now: () => clock.now, maxKept: 100 });
  assert.deepEqual(recent.inGroup("films"), []);
  recent.add({ user: "bob", group: "films", at: clock.now });
  recent.add({ user: "eve", group: "music", at: clock.now });
  assert.deepEqual(recent.inGroup("films").map((r) => r.user), ["bob"]);
  // again: the later time wins, and it is the newest
  recent.add({ user: "ann", group: "films", at: clock.now });
  recent.add({ user: "bob", group: "films", at: clock.now + 5 });
  assert.deepEqual(
    recent.inGroup("films").map((r) => [r.user, r.at]),
    [["ann", clock.now], ["bob", clock.now + 5]],
  );
  // a group's newest MAX_REPLAYED_PER_GROUP
  for (let i = 0; i < MAX_REPLAYED_PER_GROUP + 10; i++) {
    recent.add({ user: `u${i}`, group: "big", at: clock.now });
  }
  const big = recent.inGroup("big");
  assert.equal(big.length, MAX_REPLAYED_PER_GROUP);
  assert.equal(big.at(-1)!.user, `u${MAX_REPLAYED_PER_GROUP + 9}`);
  assert.equal(big[0].user, "u10");
  // at most maxKept in all, the oldest going first
  assert.ok(recent.size <= 100);
  for (let i = 0; i < 200; i++) recent.add({ user: `v${i}`, group: "flood", at: clock.now });
  assert.equal(recent.size, 100);
  assert.deepEqual(recent.inGroup("films"), []);
  // forgotten once no ticket issued before them verifies
  recent.add({ user: "late", group: "films", at: clock.now + 10 });
  clock.now += REVOCATION_REPLAY_MS - 1;
  assert.equal(recent.inGroup("films").length, 1);
  clock.now += 11;
  assert.deepEqual(recent.inGroup("films"), []);
  assert.equal(recent.size, 0);
});
