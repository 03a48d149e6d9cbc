/**
 * Two tracker instances on one PostgreSQL database, as real processes against a real server
 * (tests/postgres_server.ts), with real clients on 127.0.0.1: a user on one instance sees at
 * once what a user on the other does (groups, join requests, files, holders), a download on
 * B's client from a seeder logged in on A works, notices, revocations and ended sessions cross
 * instances, a SIGKILLed instance's holders expire within the stated bound, instances started
 * together on an empty database present one identity, and a lost LISTEN connection comes back
 * and says so. Skipped, with one line saying why, where PostgreSQL is not installed.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import {
  freePort,
  JsonShell,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./harness.ts";
import { PostgresServer, postgresUnavailable } from "./postgres_server.ts";
import { RecordingRelay } from "./relay.ts";
import { rawMember } from "./raw_tls.ts";
import { encodeInfo } from "../lib/metainfo.ts";
import { INSTANCE_TTL_MS } from "../tracker/postgres_presence.ts";

const unavailable = await postgresUnavailable();

const MiB = 1 << 20;
/** Polls (what has no event to wait on) every this often, within a bounded wait. */
const POLL_MS = 100;

/** Runs `check` until it returns a value other than undefined, for at most `limitMs`. */
async function until<T>(
  check: () => Promise<T | undefined>,
  what: string,
  limitMs: number,
): Promise<T> {
  const deadline = performance.now() + limitMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * A seeder logged in on instance a, sharing `one.bin` in group "crew", and a member logged in
 * on b; `seeders` is the file's seeder count as b lists it.
 */
async function seederOnAAskerOnB(setup: Awaited<ReturnType<typeof twoTrackers>>) {
  const seeder = await setup.client(setup.a.port, "seeder");
  const asker = await setup.client(setup.b.port, "asker");
  await seeder.ok("create_user seeder pw-seeder");
  await asker.ok("create_user asker pw-asker");
  await seeder.ok("login seeder pw-seeder");
  await asker.ok("login asker pw-asker");
  await seeder.ok("create_group crew");
  await asker.ok("join_group crew");
  await seeder.ok("accept_request crew asker");
  await writeRandomFile(setup.dir.join("seeder/one.bin"), 64 * 1024);
  await seeder.ok("upload_file one.bin crew");
  const seeders = async () =>
    ((await asker.ok("list_files crew")) as { seeders: number }[])[0].seeders;
  return { seeder, asker, seeders };
}

/** Two instances on one fresh database, started together, and a temp dir for clients. */
async function twoTrackers(): Promise<
  AsyncDisposable & {
    server: PostgresServer;
    db: string;
    a: TrackerProcess;
    b: TrackerProcess;
    dir: TempDir;
    /** A client on `port` running in `<dir>/<home>` (two clients may share one home). */
    client(
      port: number,
      home: string,
      extraArgs?: string[],
      peerPort?: number,
    ): Promise<JsonShell>;
  }
> {
  const server = await PostgresServer.start();
  const dir = await TempDir.create();
  const shells: JsonShell[] = [];
  const trackers: TrackerProcess[] = [];
  const dispose = async () => {
    for (const shell of shells) await shell[Symbol.asyncDispose]();
    for (const tracker of trackers) await tracker[Symbol.asyncDispose]();
    await dir[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
  };
  try {
    await server.createDatabase("multi");
    const db = server.url("multi");
    const [a, b] = await Promise.all([TrackerProcess.start(db), TrackerProcess.start(db)]);
    trackers.push(a, b);
    return {
      server,
      db,
      a,
      b,
      dir,
      async client(port, name, extraArgs, peerPort) {
        const home = dir.join(name);
        await Deno.mkdir(home, { recursive: true });
        const shell = JsonShell.start(port, { cwd: home, extraArgs, peerPort });
        shells.push(shell);
        return shell;
      },
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

Deno.test({
  name: "two trackers on one PostgreSQL: one identity, shared state, events across instances",
  ignore: unavailable !== undefined,
  async fn(t) {
    await using setup = await twoTrackers();
    const { a, b } = setup;

    await t.step("instances started together on an empty database present one identity", () => {
      assert.ok(a.fingerprint);
      assert.equal(b.fingerprint, a.fingerprint);
    });

    // the seeder serves slowly enough that a download is still flowing when its user leaves
    const owner = await setup.client(a.port, "owner", ["--upload-limit-kib", "512"]);
    const member = await setup.client(b.port, "member");
    await owner.ok("create_user owner pw-owner");
    await member.ok("create_user member pw-member");
    await owner.ok("login owner pw-owner");
    await member.ok("login member pw-member");

    await t.step("a group made on A is listed on B", async () => {
      await owner.ok("create_group films");
      assert.deepEqual(await member.ok("list_groups"), [
        { group: "films", owner: "owner", members: 1 },
      ]);
    });

    await t.step("a join request on B reaches the owner on A; the answer comes back", async () => {
      const told = owner.event("join_requested", (event) => event.user === "member");
      await member.ok("join_group films");
      assert.deepEqual(await within(told, "the owner on A to hear of the request"), {
        event: "join_requested",
        group: "films",
        user: "member",
      });
      assert.deepEqual(await owner.ok("list_requests films"), [{ user: "member" }]);
      const accepted = member.event("join_accepted");
      await owner.ok("accept_request films member");
      assert.equal((await within(accepted, "the member on B to hear")).group, "films");
    });

    const sha1 = await writeRandomFile(setup.dir.join("owner/film.bin"), 1 * MiB);
    await t.step("a file shared on A reaches the member on B, seeded from A", async () => {
      const shared = member.event("file_shared", (event) => event.name === "film.bin");
      await owner.ok("upload_file film.bin films");
      assert.equal((await within(shared, "the member on B to hear of the file")).user, "owner");
      assert.deepEqual(await member.ok("list_files films"), [
        { name: "film.bin", size: 1 * MiB, sha1, seeders: 1 },
      ]);
    });

    await t.step("B's client downloads from the seeder logged in on A", async () => {
      await member.ok(`download_file films film.bin ${setup.dir.join("member")}`);
      const done = await member.event("download_complete");
      assert.equal(await sha1OfFile(String(done.path)), sha1);
    });

    await t.step("a session ended on A logs out its connection on B at once", async () => {
      const ownerOnB = await setup.client(b.port, "owner-b");
      await ownerOnB.ok("login owner pw-owner");
      assert.equal((await ownerOnB.ok("list_groups") as unknown[]).length, 1);
      const sessions = await ownerOnB.ok("list_sessions") as { id: string; current: boolean }[];
      const id = sessions.find((session) => session.current)!.id;
      assert.deepEqual(await owner.ok(`end_session ${id}`), { id });
      // B writes a session's use once a minute: only the event logs it out this soon
      const refusal = await until(
        async () => {
          const reply = await ownerOnB.run("list_groups");
          return reply.ok ? undefined : reply.error;
        },
        "the owner's client on B to be logged out",
        3_000,
      );
      assert.match(refusal, /^not logged in/);
    });

    await t.step("a member leaving on B is cut off by the seeder on A", async () => {
      await writeRandomFile(setup.dir.join("owner/slow.bin"), 8 * MiB);
      await owner.ok("upload_file slow.bin films");
      await member.ok(`download_file films slow.bin ${setup.dir.join("member")}`);
      await member.downloadState("slow.bin", (line) => line.peers.some((peer) => peer.bytes > 0));
      // the member leaves from another client of theirs on B, as in revocation_test.ts
      const memberAgain = await setup.client(b.port, "member-b");
      await memberAgain.ok("login member pw-member");
      const revoked = owner.event("peer_revoked");
      await memberAgain.ok("leave_group films");
      const event = await within(revoked, "the seeder on A to drop the member");
      assert.equal(event.user, "member");
      assert.equal(event.group, "films");
    });
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: a SIGKILLed instance's holders expire within the bound",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a } = setup;
    const { seeders } = await seederOnAAskerOnB(setup);
    assert.equal(await seeders(), 1);

    a.kill("SIGKILL");
    const killedAt = performance.now();
    await a.exited();
    await until(
      async () => (await seeders()) === 0 ? true : undefined,
      "the killed instance's holder to expire",
      INSTANCE_TTL_MS + 5_000,
    );
    const tookMs = performance.now() - killedAt;
    // the bound: its last heartbeat was before the kill, so INSTANCE_TTL_MS after it at most
    // (and a poll more)
    assert.ok(
      tookMs <= INSTANCE_TTL_MS + 1_000,
      `the holder was handed out ${tookMs.toFixed(0)} ms after the kill`,
    );
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: a lost LISTEN connection comes back and says so",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a, b } = setup;
    const owner = await setup.client(a.port, "owner");
    const asker = await setup.client(b.port, "asker");
    await owner.ok("create_user owner pw-owner");
    await asker.ok("create_user asker pw-asker");
    await owner.ok("login owner pw-owner");
    await asker.ok("login asker pw-asker");
    await owner.ok("create_group crew");

    const admin = postgres(setup.db, { max: 1, onnotice: () => {} });
    try {
      const said = a.stdout.until(
        (line) => line.includes("listening to other instances again"),
        "A to say it listens again",
      );
      // every LISTEN connection (A's and B's) is cut
      const cut = await admin`
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE query ILIKE 'listen %' AND pid <> pg_backend_pid()`;
      assert.equal(cut.length, 2);
      await said;
    } finally {
      await admin.end();
    }
    const told = owner.event("join_requested", (event) => event.user === "asker");
    await asker.ok("join_group crew");
    await within(told, "the owner on A to hear of the request after the cut");
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: one presence per user and address across instances",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a, b } = setup;
    // one forwarded port, first to u's client on A, then moved to u's client on B (as in
    // peer_addresses_test.ts, with the two clients on two instances)
    const portA = freePort();
    const portB = freePort();
    await using forward = RecordingRelay.start({ target: { hostname: "127.0.0.1", port: portA } });
    const publicAddr = ["--public-addr", `127.0.0.1:${forward.port}`];
    const owner = await setup.client(b.port, "owner");
    const onA = await setup.client(a.port, "u", publicAddr, portA);
    await owner.ok("create_user owner pw-owner");
    await onA.ok("create_user u pw-u");
    await owner.ok("login owner pw-owner");
    await onA.ok("login u pw-u");
    await owner.ok("create_group crew");
    await onA.ok("join_group crew");
    await owner.ok("accept_request crew u");
    await writeRandomFile(setup.dir.join("u/f.bin"), 1 * MiB);
    await onA.ok("upload_file f.bin crew");
    assert.equal(((await owner.ok("list_files crew")) as { seeders: number }[])[0].seeders, 1);

    forward.target = { hostname: "127.0.0.1", port: portB };
    // u's second client, on B, from the same directory: it serves u's shares at the address
    const told = onA.event("address_unverified");
    const onB = await setup.client(b.port, "u", publicAddr, portB);
    await onB.ok("login u pw-u");
    const restored = await onB.ok("list_files crew") as { seeders: number }[];
    assert.equal(restored[0].seeders, 1, "one presence at the address, not two");
    // the client on A, still online, hears from A that its address went to the other client
    const event = await within(told, "the client on A to lose its address");
    assert.match(String(event.reason), /another client of u now serves at 127\.0\.0\.1:\d+/);
    await owner.ok(`download_file crew f.bin ${setup.dir.join("owner")}`);
    const done = await owner.event(["download_complete", "download_failed"]);
    assert.equal(done.event, "download_complete", JSON.stringify(done));
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: an instance taken for dead publishes its clients again",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a } = setup;
    const { seeders } = await seederOnAAskerOnB(setup);
    assert.equal(await seeders(), 1);

    // what another instance does to one whose heartbeat is late: its row goes, and its
    // clients' rows with it
    const admin = postgres(setup.db, { max: 1, onnotice: () => {} });
    try {
      const said = a.stdout.until(
        (line) => line.includes("this instance was taken for dead"),
        "A to say it was taken for dead",
      );
      // (not asked in between: A's next heartbeat may come any moment)
      assert.equal((await admin`DELETE FROM tracker_instances`).count, 2);
      await said;
    } finally {
      await admin.end();
    }
    // its next heartbeat (1 s) writes its clients again
    await until(
      async () => (await seeders()) === 1 ? true : undefined,
      "the seeder on A to be handed out again",
      5_000,
    );
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: every ticket is signed afresh (none kept for reuse)",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a, b } = setup;
    // a leave on A reaches B only later, as an event: B must not hand out a ticket it kept
    const alice = await rawMember(a.port, "alice");
    const bob = await rawMember(b.port, "bob");
    try {
      await alice.ok({ type: "create_group", group: "crew" });
      await alice.ok({
        type: "share_file",
        group: "crew",
        name: "a.bin",
        size: 1000,
        sha1: "ab".repeat(20),
        info: encodeInfo({ name: "a.bin", length: 1000, pieceHashes: new Uint8Array(20) })
          .toBase64(),
        path: "/shared/a.bin",
        mtime_ms: 0,
      });
      await bob.ok({ type: "join_group", group: "crew" });
      await alice.ok({ type: "accept_request", group: "crew", user: "bob" });
      const locate = { type: "locate_file", group: "crew", name: "a.bin" };
      const first = (await bob.ok(locate) as { ticket: string }).ticket;
      // signatures are deterministic: the clock must move for a new ticket to differ
      await new Promise((resolve) => setTimeout(resolve, 5));
      const second = (await bob.ok(locate) as { ticket: string }).ticket;
      assert.notEqual(second, first);
    } finally {
      alice.link.close();
      bob.link.close();
    }
  },
});
