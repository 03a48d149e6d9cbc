/**
 * Two tracker instances on one PostgreSQL database, as real processes against a real server
 * (tests/postgres_server.ts), with real clients on 127.0.0.1: a user on one instance sees at
 * once what a user on the other does (groups, join requests, files, holders), a download on
 * B's client from a seeder logged in on A works, notices, revocations and ended sessions cross
 * instances, a SIGKILLed instance's holders expire within the stated bound, instances started
 * together on an empty database present one identity, a lost LISTEN connection comes back
 * and says so, login attempts split across instances are throttled as one, list_sessions
 * shows a session online wherever it is used, and no instance hands out a kept ticket (a
 * leave elsewhere reaches it late). Skipped, with one line saying why, where
 * PostgreSQL is not installed.
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
import { INSTANCE_TTL_MS } from "../tracker/postgres_presence.ts";
import { generateIdentity } from "../lib/identity.ts";
import { rawMember, rawTrackerLink, shareFileRequest } from "./raw_tls.ts";
import { PostgresAttemptCounts } from "../tracker/postgres_attempts.ts";
import { PostgresBus } from "../tracker/postgres_events.ts";

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

/** The owner of group "crew" logged in on instance a, and another user logged in on b. */
async function ownerOnAAskerOnB(setup: Awaited<ReturnType<typeof twoTrackers>>) {
  const owner = await setup.client(setup.a.port, "owner");
  const asker = await setup.client(setup.b.port, "asker");
  await owner.ok("create_user owner pw-owner");
  await asker.ok("create_user asker pw-asker");
  await owner.ok("login owner pw-owner");
  await asker.ok("login asker pw-asker");
  await owner.ok("create_group crew");
  return { owner, asker };
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
    const { a } = setup;
    const { owner, asker } = await ownerOnAAskerOnB(setup);

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
  name: "two trackers on one PostgreSQL: login attempts split across them are throttled as one",
  ignore: unavailable !== undefined,
  async fn(t) {
    await using setup = await twoTrackers();
    const { a, b } = setup;
    // the account exists (made from 127.0.0.1); the guesses come from 127.0.0.3, to both
    await (await rawMember(a.port, "victim")).link.close();
    const identity = await generateIdentity("guesser");
    const onA = await rawTrackerLink(a.port, identity, { localAddress: "127.0.0.3" });
    const onB = await rawTrackerLink(b.port, identity, { localAddress: "127.0.0.3" });
    try {
      /** Logs in on a, then b, then a...; the number of the first refused, with its message. */
      const guessUntilRefused = async (user: (n: number) => string, most: number) => {
        for (let n = 1; n <= most; n++) {
          const reply = await (n % 2 === 1 ? onA : onB).request({
            type: "login",
            user: user(n),
            password: "guess",
          });
          const error = reply.error as { code: string; message: string };
          if (error.code === "rate_limited") return { n, message: error.message };
          assert.equal(error.code, "unauthenticated", JSON.stringify(reply));
        }
        return { n: Infinity, message: "" };
      };

      await t.step("20 failed logins of one account, 10 on each, throttle it on both", async () => {
        const refused = await guessUntilRefused(() => "victim", 30);
        // each instance alone would allow 20 of its own (30 in all, 15 here)
        assert.equal(refused.n, 21);
        assert.match(refused.message, /^too many attempts; try again in \d+ s$/);
        // and on the other instance too
        const again = await onB.request({ type: "login", user: "victim", password: "guess" });
        assert.equal((again.error as { code: string }).code, "rate_limited");
      });

      await t.step("30 attempts from one address, 15 on each, throttle it on both", async () => {
        // 20 counted above (the refusals for the account are not); 10 more reach the limit
        const refused = await guessUntilRefused((n) => `nobody${n}`, 40);
        assert.equal(refused.n, 11);
        const again = await onA.request({ type: "login", user: "nobody", password: "guess" });
        assert.equal((again.error as { code: string }).code, "rate_limited");
      });

      await t.step("another address is not throttled", async () => {
        const other = await rawTrackerLink(b.port, identity, { localAddress: "127.0.0.4" });
        try {
          const reply = await other.request({ type: "login", user: "victim2", password: "x" });
          assert.equal((reply.error as { code: string }).code, "unauthenticated");
        } finally {
          other.close();
        }
      });

      await t.step("the counts live in one bounded table", async () => {
        const admin = postgres(setup.db, { max: 1, onnotice: () => {} });
        try {
          const [row] = await admin<{ rows: number }[]>`
            SELECT COUNT(*)::int AS rows FROM login_attempts`;
          // source:127.0.0.1, source:127.0.0.3, source:127.0.0.4, failures of victim,
          // nobody1..nobody10 and victim2
          assert.equal(row.rows, 15);
          // past its bound, a prune keeps the newest windows only; ended windows go
          const counts = new PostgresAttemptCounts(admin, { log: () => {}, maxRows: 2 });
          await counts.take("late:1", 5, 60_000);
          await counts.take("late:2", 5, 60_000);
          await counts.prune();
          await counts.close();
          const keys = await admin<{ key: string }[]>`SELECT key FROM login_attempts ORDER BY key`;
          assert.deepEqual(keys.map((row) => row.key), ["late:1", "late:2"]);
          const ending = new PostgresAttemptCounts(admin, { log: () => {} });
          await ending.take("brief", 5, 1);
          await admin`SELECT pg_sleep(0.01)`;
          await ending.prune();
          await ending.close();
          assert.equal((await admin`SELECT key FROM login_attempts`).length, 0);
        } finally {
          await admin.end();
        }
      });
    } finally {
      onA.close();
      onB.close();
    }
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: list_sessions shows a session online on the other",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a, b } = setup;
    const onA = await setup.client(a.port, "u-a");
    const onB = await setup.client(b.port, "u-b");
    await onA.ok("create_user u pw-u");
    await onA.ok("login u pw-u");
    await onB.ok("login u pw-u");
    type Listed = { id: string; current: boolean; online: boolean };
    const onAId = ((await onA.ok("list_sessions")) as Listed[]).find((s) => s.current)!.id;
    const listed = (await onB.ok("list_sessions")) as Listed[];
    assert.equal(listed.length, 2);
    assert.deepEqual(
      listed.map((session) => [session.current, session.online]).sort(),
      [[false, true], [true, true]],
      "the session used on A is online as B lists it",
    );

    // A's client dies: B shows its session offline once A has written so
    // (killed: a client that quits logs out, and its session ends)
    onA.kill("SIGKILL");
    await onA.exited();
    await until(
      async () => {
        const sessions = (await onB.ok("list_sessions")) as Listed[];
        return sessions.find((session) => session.id === onAId)?.online === false
          ? true
          : undefined;
      },
      "the session of the client that left to be offline on B",
      10_000,
    );
  },
});

Deno.test({
  name: "two trackers on one PostgreSQL: an event sent while an instance's LISTEN was down " +
    "still reaches its client",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await twoTrackers();
    const { a } = setup;
    const { owner, asker } = await ownerOnAAskerOnB(setup);

    const admin = postgres(setup.server.url(), { max: 1, onnotice: () => {} });
    const db = postgres(setup.db, { max: 1, onnotice: () => {} });
    try {
      const listeners = () =>
        db`SELECT pid FROM pg_stat_activity WHERE query ILIKE 'listen %' AND datname = 'multi'`;
      await db`SELECT 1`; // connected before connections are refused
      // no new connection to the database for now: the cut LISTEN connections stay down
      // (the instances' pools keep theirs)
      await admin`ALTER DATABASE multi ALLOW_CONNECTIONS false`;
      const cut = await db`
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE query ILIKE 'listen %' AND pid <> pg_backend_pid()`;
      assert.equal(cut.length, 2);
      await until(
        async () => (await listeners()).length === 0 ? true : undefined,
        "the LISTEN connections to be gone",
        10_000,
      );
      // made on B while nobody listens: NOTIFY alone would reach nobody
      const told = owner.event("join_requested", (event) => event.user === "asker");
      await asker.ok("join_group crew");
      assert.equal((await listeners()).length, 0, "the join was made while nobody listened");
      const said = a.stdout.until(
        (line) => line.includes("listening to other instances again"),
        "A to say it listens again",
      );
      await admin`ALTER DATABASE multi ALLOW_CONNECTIONS true`;
      await said;
      assert.deepEqual(await within(told, "the owner on A to hear of the request"), {
        event: "join_requested",
        group: "crew",
        user: "asker",
      });
      // the events are kept in a bounded table: a prune keeps the newest only
      assert.ok((await db`SELECT seq FROM tracker_events`).length >= 1);
      const bus = await PostgresBus.open(db, {
        instance: "pruner",
        log: () => {},
        maxKeptEvents: 0,
      });
      await bus.prune();
      await bus.close();
      assert.equal((await db`SELECT seq FROM tracker_events`).length, 0);
    } finally {
      await admin`ALTER DATABASE multi ALLOW_CONNECTIONS true`.catch(() => {});
      await db.end();
      await admin.end();
    }
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
      await alice.ok(shareFileRequest("crew", "a.bin"));
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
