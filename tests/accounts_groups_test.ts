/**
 * Every account and group command through the real `--json` shell against a real tracker:
 * each success path, each refusal, and the access rules the tracker enforces.
 */

import assert from "node:assert/strict";
import { JsonShell, TempDir, TrackerProcess, usersInGroup } from "./harness.ts";

Deno.test("accounts: create_user, login, logout through the shell", async (t) => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await using alice = JsonShell.start(tracker.port);
  await using other = JsonShell.start(tracker.port);

  await t.step("create_user succeeds once per id", async () => {
    assert.deepEqual(await alice.run("create_user alice s3cret"), {
      command: "create_user",
      ok: true,
      data: { user: "alice" },
    });
    assert.match(await alice.fails("create_user alice other"), /user "alice" already exists/);
  });

  await t.step("create_user rejects bad ids and arguments", async () => {
    assert.match(await alice.fails("create_user bad/id pw"), /invalid user id "bad\/id"/);
    assert.match(await alice.fails(`create_user ${"x".repeat(65)} pw`), /invalid user id/);
    assert.match(await alice.fails('create_user bob ""'), /password must not be empty/);
    assert.deepEqual(await alice.run("create_user onlyone"), {
      command: "create_user",
      ok: false,
      error:
        "usage: create_user <user_id> <passwd> (without a terminal the password must be given " +
        "on the line; a terminal asks for it with echo off)",
    });
  });

  await t.step("commands other than create_user and login need a login", async () => {
    for (
      const command of [
        "create_group g",
        "join_group g",
        "leave_group g",
        "requests list_requests g",
        "accept_request g alice",
        "list_groups",
        "logout",
      ]
    ) {
      assert.match(await alice.fails(command), /^not logged in/, command);
    }
  });

  await t.step("login: a wrong password and an unknown user get the same error", async () => {
    const wrongPassword = await alice.fails("login alice wrong");
    const unknownUser = await alice.fails("login nobody s3cret");
    assert.equal(wrongPassword, "wrong user id or password");
    assert.equal(unknownUser, wrongPassword);
  });

  await t.step("login, then login again is refused until logout", async () => {
    assert.deepEqual(await alice.ok("login alice s3cret"), { user: "alice", shares_restored: 0 });
    assert.match(await alice.fails("login alice s3cret"), /already logged in as alice/);
    assert.deepEqual(await alice.ok("list_groups"), []);
  });

  await t.step("the same user may be logged in on two clients at once", async () => {
    assert.deepEqual(await other.ok("login alice s3cret"), { user: "alice", shares_restored: 0 });
    assert.deepEqual(await other.ok("list_groups"), []);
  });

  await t.step("logout ends only this client's session", async () => {
    assert.equal(await alice.ok("logout"), null);
    assert.match(await alice.fails("list_groups"), /^not logged in/);
    assert.deepEqual(await other.ok("list_groups"), []);
    assert.match(await alice.fails("logout"), /^not logged in/);
  });

  await t.step("help and unknown commands", async () => {
    const help = await alice.ok("help") as { commands: string[] };
    assert.ok(help.commands.includes("requests list_requests <group_id>"));
    assert.ok(help.commands.includes("accept_request <group_id> <user_id>"));
    assert.deepEqual(await alice.run("frobnicate now"), {
      command: "frobnicate",
      ok: false,
      error: 'unknown command "frobnicate"; type help for the list',
    });
    assert.deepEqual(await alice.run("requests"), {
      command: "requests",
      ok: false,
      error: "usage: requests list_requests <group_id>",
    });
    assert.match(await alice.fails('login "unclosed'), /unclosed " quote/);
  });

  await t.step("quit ends the shell cleanly", async () => {
    assert.deepEqual(await alice.run("quit"), { command: "quit", ok: true, data: null });
    assert.equal((await alice.exited()).code, 0);
  });
});

Deno.test("groups: create, join, requests, accept, leave, list", async (t) => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const [owner, bob, carol] = await usersInGroup(tracker.port, ["owner", "bob", "carol"]);
  await using _owner = owner;
  await using _bob = bob;
  await using _carol = carol;

  await t.step("create_group: the creator owns it; a taken id is refused", async () => {
    assert.deepEqual(await owner.ok("create_group films"), { group: "films", owner: "owner" });
    assert.match(await bob.fails("create_group films"), /group "films" already exists/);
    assert.match(await bob.fails("create_group no*stars"), /invalid group id "no\*stars"/);
    assert.deepEqual(await bob.ok("list_groups"), [{ group: "films", owner: "owner", members: 1 }]);
  });

  await t.step("join_group files a request; twice, or as a member, is refused", async () => {
    assert.deepEqual(await bob.ok("join_group films"), { group: "films", status: "pending" });
    assert.match(await bob.fails("join_group films"), /already pending/);
    assert.match(await owner.fails("join_group films"), /already a member of group "films"/);
    assert.match(await bob.fails("join_group nowhere"), /group "nowhere" does not exist/);
    await carol.ok("join_group films");
  });

  await t.step("requests list_requests: owner only, oldest first", async () => {
    assert.deepEqual(await owner.run("requests list_requests films"), {
      command: "requests list_requests",
      ok: true,
      data: [{ user: "bob" }, { user: "carol" }],
    });
    assert.match(
      await bob.fails("requests list_requests films"),
      /only the owner of group "films" \(owner\) can do that/,
    );
    assert.match(await owner.fails("requests list_requests nowhere"), /does not exist/);
  });

  await t.step("accept_request: owner only; needs a pending request", async () => {
    assert.match(await bob.fails("accept_request films bob"), /only the owner/);
    assert.deepEqual(await owner.ok("accept_request films bob"), { group: "films", user: "bob" });
    assert.match(await owner.fails("accept_request films bob"), /no pending request/);
    assert.match(await owner.fails("accept_request films ghost"), /no pending request/);
    assert.deepEqual(await owner.ok("requests list_requests films"), [{ user: "carol" }]);
    assert.deepEqual(await carol.ok("list_groups"), [
      { group: "films", owner: "owner", members: 2 },
    ]);
  });

  await t.step("a member who is not the owner still cannot manage requests", async () => {
    assert.match(await bob.fails("requests list_requests films"), /only the owner/);
    assert.match(await bob.fails("accept_request films carol"), /only the owner/);
  });

  await t.step("leave_group: not a member is refused", async () => {
    assert.match(await carol.fails("leave_group films"), /not a member of group "films"/);
    assert.match(await carol.fails("leave_group nowhere"), /does not exist/);
  });

  await t.step("the owner leaving hands the group to the longest-standing member", async () => {
    await owner.ok("accept_request films carol");
    assert.deepEqual(await owner.ok("leave_group films"), {
      group: "films",
      owner: "bob",
      deleted: false,
    });
    assert.deepEqual(await carol.ok("list_groups"), [{ group: "films", owner: "bob", members: 2 }]);
    assert.match(await owner.fails("requests list_requests films"), /only the owner/);
    assert.deepEqual(await bob.ok("requests list_requests films"), []);
  });

  await t.step(
    "a plain member leaving keeps the owner; the last one deletes the group",
    async () => {
      assert.deepEqual(await carol.ok("leave_group films"), {
        group: "films",
        owner: "bob",
        deleted: false,
      });
      assert.deepEqual(await bob.ok("leave_group films"), {
        group: "films",
        owner: null,
        deleted: true,
      });
      assert.deepEqual(await bob.ok("list_groups"), []);
      assert.match(await bob.fails("join_group films"), /does not exist/);
    },
  );

  await t.step("pending requests of a deleted group do not come back with a new one", async () => {
    await bob.ok("create_group again");
    await carol.ok("join_group again");
    await bob.ok("leave_group again");
    await owner.ok("create_group again");
    assert.deepEqual(await owner.ok("requests list_requests again"), []);
  });
});
