/**
 * The tracker on PostgreSQL, end to end: real tracker processes with `--db postgres://...`
 * against a real server (tests/postgres_server.ts), real clients that make users and a group,
 * share and download; state that outlives a restart; a database that cannot be used. Skipped,
 * with one line saying why, where PostgreSQL is not installed.
 */

import assert from "node:assert/strict";
import { JsonShell, sha1OfFile, startSwarm, TrackerProcess, writeRandomFile } from "./harness.ts";
import { PostgresServer, postgresUnavailable } from "./postgres_server.ts";

const unavailable = await postgresUnavailable();

const MiB = 1 << 20;

Deno.test({
  name: "tracker on PostgreSQL: users, a group, sharing and downloading, across a restart",
  ignore: unavailable !== undefined,
  async fn(t) {
    await using server = await PostgresServer.start();
    await server.createDatabase("e2e");
    const db = server.url("e2e");
    await using swarm = await startSwarm(["owner", "member"], { db });
    const group = swarm.group;
    const owner = swarm.shell("owner");
    const member = swarm.shell("member");

    await t.step("the tracker names its database without the password", () => {
      const line = swarm.tracker.stdout.all.find((text) => text.startsWith("tracker database "));
      assert.equal(line, `tracker database postgres://swarmshare@127.0.0.1:${server.port}/e2e`);
    });

    const sha1 = await writeRandomFile(`${swarm.home("owner")}/film.bin`, 3 * MiB);
    await t.step("a member shares, another downloads the same bytes", async () => {
      await owner.ok(`upload_file film.bin ${group}`);
      assert.deepEqual(await member.ok(`list_files ${group}`), [
        { name: "film.bin", size: 3 * MiB, sha1, seeders: 1 },
      ]);
      await member.ok(`download_file ${group} film.bin ${swarm.home("member")}`);
      const done = await member.event("download_complete");
      assert.equal(await sha1OfFile(String(done.path)), sha1);
    });

    await t.step("refusals read as on SQLite", async () => {
      assert.equal(await member.fails(`create_group ${group}`), `group "${group}" already exists`);
      assert.equal(
        await member.fails(`accept_request ${group} owner`),
        `only the owner of group "${group}" (owner) can do that`,
      );
      assert.match(await member.fails("login owner wrong"), /already logged in/);
    });

    await t.step("users, groups, files and the tracker's identity outlive a restart", async () => {
      const fingerprint = swarm.tracker.fingerprint;
      assert.equal((await swarm.tracker.stop()).code, 0);
      await using again = await TrackerProcess.start(db);
      assert.equal(again.fingerprint, fingerprint, "the identity is kept in the database");
      await using late = JsonShell.start(again.port);
      // the member's share of its download is on record: this login serves it again
      assert.deepEqual(await late.ok("login member pw-member"), {
        user: "member",
        shares_restored: 1,
      });
      const files = await late.ok(`list_files ${group}`) as { name: string; sha1: string }[];
      assert.deepEqual(files.map((file) => [file.name, file.sha1]), [["film.bin", sha1]]);
      await late.ok(`leave_group ${group}`);
      await using third = JsonShell.start(again.port);
      await third.ok("login owner pw-owner");
      assert.deepEqual(await third.ok(`list_groups`), [{ group, owner: "owner", members: 1 }]);
    });
  },
});

Deno.test({
  name:
    "tracker on PostgreSQL: a database it cannot log in to is an error naming it, not the password",
  ignore: unavailable !== undefined,
  async fn() {
    await using server = await PostgresServer.start();
    const wrong = server.url("postgres").replace(/:[^:@/]+@/, ":not-the-password@");
    await assert.rejects(
      TrackerProcess.start(wrong),
      (error: Error) =>
        error.message.includes(
          `error: cannot open database postgres://swarmshare@127.0.0.1:${server.port}/postgres`,
        ) && !error.message.includes("not-the-password"),
    );
  },
});
