/**
 * Notices through real processes: a join request reaches the group's owner and nobody else,
 * the answer reaches the requester, a new file reaches the group's other online members and
 * neither its uploader nor strangers, reject_request's refusals, and the bound on a spree of
 * uploads (a few lines, then a count of the rest). A user who must not hear of something is
 * checked after a later notice that does reach them: the tracker pushes to one connection in
 * order, so had the first come, it would be there before.
 */

import assert from "node:assert/strict";
import {
  freePort,
  type JsonReply,
  JsonShell,
  startSwarm,
  type Swarm,
  within,
  writeRandomFile,
} from "./harness.ts";
import { Program } from "../scripts/processes.ts";
import { NOTICE_BURST } from "../tracker/notices.ts";

/** A logged-in user who is in no group yet; disposed with the swarm's own clients. */
async function stranger(swarm: Swarm, name: string): Promise<JsonShell> {
  await Deno.mkdir(swarm.home(name));
  const shell = JsonShell.start(swarm.tracker.port, { cwd: swarm.home(name) });
  swarm.shells.set(name, shell);
  await shell.ok(`create_user ${name} pw-${name}`);
  await shell.ok(`login ${name} pw-${name}`);
  return shell;
}

/** The events of a kind a shell has met so far and not taken. */
function seen(shell: JsonShell, kind: string): JsonReply[] {
  return shell.events.filter((event) => event.event === kind);
}

Deno.test("join requests reach the owner only; answers reach the requester", async (t) => {
  await using swarm = await startSwarm(["owner", "member"], { group: "films" });
  const owner = swarm.shell("owner");
  const member = swarm.shell("member");
  const alice = await stranger(swarm, "alice");
  const bob = await stranger(swarm, "bob");

  await t.step("the owner is told of a request to join, as a --json event", async () => {
    await alice.ok("join_group films");
    const event = await within(
      owner.event("join_requested", (e) => e.user === "alice"),
      "the owner to hear of alice",
    );
    assert.deepEqual(event, { event: "join_requested", group: "films", user: "alice" });
    // still listed for an owner who was offline, as before
    assert.deepEqual(await owner.ok("requests list_requests films"), [{ user: "alice" }]);
  });

  await t.step("another member is not told", async () => {
    await writeRandomFile(`${swarm.home("owner")}/later.bin`, 1000);
    await owner.ok("upload_file later.bin films");
    await member.event("file_shared", (e) => e.name === "later.bin");
    assert.deepEqual(seen(member, "join_requested"), []);
    assert.deepEqual(seen(alice, "join_requested"), []);
  });

  await t.step("the requester is told of the acceptance", async () => {
    assert.deepEqual(await owner.ok("accept_request films alice"), {
      group: "films",
      user: "alice",
    });
    assert.deepEqual(await alice.event("join_accepted"), {
      event: "join_accepted",
      group: "films",
    });
    assert.deepEqual(await alice.ok("list_files films"), [{
      name: "later.bin",
      size: 1000,
      sha1: (await owner.ok("list_files films") as { sha1: string }[])[0].sha1,
      seeders: 1,
    }]);
  });

  await t.step("reject_request turns a request down; the requester is told", async () => {
    await bob.ok("join_group films");
    await owner.event("join_requested", (e) => e.user === "bob");
    assert.deepEqual(await owner.ok("reject_request films bob"), { group: "films", user: "bob" });
    assert.deepEqual(await bob.event("join_rejected"), { event: "join_rejected", group: "films" });
    assert.deepEqual(await owner.ok("requests list_requests films"), []);
    assert.match(await bob.fails("list_files films"), /not a member of group "films"/);
    // turned down is not banned: bob may ask again
    assert.deepEqual(await bob.ok("join_group films"), { group: "films", status: "pending" });
    await owner.event("join_requested", (e) => e.user === "bob");
    // the member who joined was told of nothing meant for the owner
    assert.deepEqual(seen(alice, "join_requested"), []);
  });
});

Deno.test("reject_request: owner only, a pending request, a group that exists", async () => {
  await using swarm = await startSwarm(["owner", "member"], { group: "films" });
  const owner = swarm.shell("owner");
  const member = swarm.shell("member");
  const carol = await stranger(swarm, "carol");
  await carol.ok("join_group films");
  assert.deepEqual(await member.run("reject_request films carol"), {
    command: "reject_request",
    ok: false,
    error: `only the owner of group "films" (owner) can do that`,
  });
  assert.equal(
    await owner.fails("reject_request films ghost"),
    `user "ghost" has no pending request to join "films"`,
  );
  assert.equal(
    await owner.fails("reject_request films member"),
    `user "member" has no pending request to join "films"`,
  );
  assert.equal(await owner.fails("reject_request nowhere carol"), `group "nowhere" does not exist`);
  assert.match(await owner.fails("reject_request films no*one"), /^invalid user id "no\*one"/);
  assert.equal(
    await owner.fails("reject_request films"),
    "usage: reject_request <group_id> <user_id>",
  );
  // none of the refusals touched carol's request
  assert.deepEqual(await owner.ok("requests list_requests films"), [{ user: "carol" }]);
  assert.deepEqual(seen(carol, "join_rejected"), []);
  const help = await owner.ok("help") as { commands: string[] };
  assert.ok(help.commands.includes("reject_request <group_id> <user_id>"));
});

Deno.test("a new file reaches the other online members, not the uploader nor strangers", async () => {
  await using swarm = await startSwarm(["owner", "member"], { group: "films" });
  const owner = swarm.shell("owner");
  const member = swarm.shell("member");
  const ownerElsewhere = await swarm.addClient("owner");
  const dave = await stranger(swarm, "dave");

  await writeRandomFile(`${swarm.home("owner")}/first.bin`, 3000);
  await owner.ok("upload_file first.bin films");
  assert.deepEqual(await member.event("file_shared"), {
    event: "file_shared",
    group: "films",
    name: "first.bin",
    size: 3000,
    user: "owner",
  });

  // later notices that do reach them: had first.bin's come, it would have come before
  await writeRandomFile(`${swarm.home("member")}/reply.bin`, 10);
  await member.ok("upload_file reply.bin films");
  await owner.event("file_shared", (e) => e.name === "reply.bin");
  await ownerElsewhere.event("file_shared", (e) => e.name === "reply.bin");
  assert.deepEqual(seen(owner, "file_shared"), []);
  assert.deepEqual(seen(ownerElsewhere, "file_shared"), []);
  await dave.ok("join_group films");
  await owner.ok("reject_request films dave");
  await dave.event("join_rejected");
  assert.deepEqual(seen(dave, "file_shared"), []);

  // the same file shared again by another holder is no news
  await Deno.copyFile(`${swarm.home("owner")}/first.bin`, `${swarm.home("member")}/first.bin`);
  await member.ok("upload_file first.bin films");
  await writeRandomFile(`${swarm.home("member")}/next.bin`, 10);
  await member.ok("upload_file next.bin films");
  await owner.event("file_shared", (e) => e.name === "next.bin");
  assert.deepEqual(seen(owner, "file_shared"), []);
});

Deno.test("an upload spree gives each member a few lines and a count of the rest", async () => {
  const files = 4 * NOTICE_BURST;
  await using swarm = await startSwarm(["owner", "member"], { group: "films" });
  const owner = swarm.shell("owner");
  const member = swarm.shell("member");
  for (let i = 0; i < files; i++) {
    await writeRandomFile(`${swarm.home("owner")}/f${i}.bin`, 100);
    await owner.ok(`upload_file f${i}.bin films`);
  }
  // every file is accounted for once: a line of its own, or in a count
  const single: string[] = [];
  const counts: number[] = [];
  while (single.length + counts.reduce((sum, n) => sum + n, 0) < files) {
    const event = await member.event(["file_shared", "more_notices"]);
    if (event.event === "file_shared") single.push(String(event.name));
    else {
      assert.equal(event.notice, "file_shared");
      assert.equal(event.group, "films");
      counts.push(Number(event.count));
    }
  }
  assert.equal(single.length + counts.reduce((sum, n) => sum + n, 0), files);
  assert.ok(counts.length >= 1, "nothing was counted");
  // each window (ended by a count) lets at most a burst through
  assert.ok(
    single.length <= NOTICE_BURST * (counts.length + 1),
    `${single.length} single lines for ${counts.length} counts`,
  );
  assert.ok(single.length + counts.length < files);
  // the first come one by one, in the order they were shared (the member's burst may be
  // partly spent already: the news of their own acceptance came moments before)
  assert.equal(single[0], "f0.bin");
  const order = single.map((name) => Number(name.slice(1, -4)));
  assert.deepEqual(order, [...order].sort((a, b) => a - b));
});

Deno.test("notices read as lines of their own in the human shell", async () => {
  await using swarm = await startSwarm(["owner"], { group: "films" });
  await Deno.mkdir(swarm.home("erin"));
  await using erin = new Program(
    ["client", "127.0.0.1", String(freePort()), "127.0.0.1", String(swarm.tracker.port)],
    { stdin: true, cwd: swarm.home("erin") },
  );
  await erin.write("create_user erin pw-erin\nlogin erin pw-erin\njoin_group films\n");
  await erin.stdout.until((line) => line.startsWith("asked to join group"), "erin's request");
  await swarm.shell("owner").event("join_requested", (e) => e.user === "erin");
  await swarm.shell("owner").ok("accept_request films erin");
  await erin.stdout.until(
    (line) => line === `your request to join group "films" was accepted: you are a member now`,
    "erin to hear she is in",
  );
  await writeRandomFile(`${swarm.home("owner")}/notes.txt`, 2048);
  await swarm.shell("owner").ok("upload_file notes.txt films");
  await erin.stdout.until(
    (line) => line === `new file in group "films": "notes.txt" (2.0 KiB) from owner`,
    "erin to hear of the new file",
  );
  await erin.write("create_group notes\n");
  await erin.stdout.until((line) => line.startsWith(`group "notes" created`), "erin's group");
  await swarm.shell("owner").ok("join_group notes");
  await erin.stdout.until(
    (line) => line === `owner wants to join group "notes": accept_request notes owner`,
    "erin to hear of the owner's request",
  );
  await erin.write("quit\n");
  await erin.endInput();
  assert.equal((await erin.exited()).code, 0);
});
