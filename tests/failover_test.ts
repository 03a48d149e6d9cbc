/**
 * Clients that fail over (issue 16): two tracker processes on one real PostgreSQL, clients
 * given the second with `--tracker`; the first is killed (SIGKILL) under them, and they go on
 * on the second without a login typed, a download running across the kill completing; the
 * first, restarted, is a candidate again. A hung tracker (SIGSTOP) is left within seconds,
 * while one that is only slow (its database stopped) is not. And a client whose trackers are
 * all unreachable keeps saying where it tries next and when, within bounds, and moves to the
 * first that comes up. Skipped, with one line saying why, where PostgreSQL is not installed.
 */

import assert from "node:assert/strict";
import {
  freePort,
  type JsonReply,
  JsonShell,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./harness.ts";
import { PostgresServer, postgresUnavailable } from "./postgres_server.ts";
import { describeEvent } from "../peer/shell.ts";
import type { SessionEvent } from "../peer/session.ts";

const unavailable = await postgresUnavailable();

const MiB = 1 << 20;

/** What the issue asks: clients of a killed instance are on another within this. */
const SWITCH_LIMIT_MS = 5_000;

Deno.test({
  name: "failover: SIGKILL one of two trackers on PostgreSQL; clients resume on the other, " +
    "a running download completes, the restarted one is a candidate again",
  ignore: unavailable !== undefined,
  async fn(t) {
    await using server = await PostgresServer.start();
    await server.createDatabase("failover");
    const db = server.url("failover");
    await using dir = await TempDir.create();
    // one after the other: the first makes the deployment's identity, the second reads it.
    // Tickets last 3 s and the seeder honours none past expiry: the download goes on only
    // with tickets renewed from the second instance, checked with the key the seeder got
    // from the first (one deployment, one key)
    const trackerArgs = ["--ticket-lifetime-ms", "3000"];
    let first = await TrackerProcess.start(db, { extraArgs: trackerArgs });
    await using second = await TrackerProcess.start(db, { extraArgs: trackerArgs });
    const firstPort = first.port;
    const firstAddress = `127.0.0.1:${firstPort}`;
    const secondAddress = `127.0.0.1:${second.port}`;
    try {
      assert.equal(second.fingerprint, first.fingerprint, "one deployment, one identity");
      const client = async (name: string, extraArgs: string[] = []) => {
        await Deno.mkdir(dir.join(name));
        return JsonShell.start(firstPort, {
          cwd: dir.join(name),
          peerPort: freePort(),
          stateHome: dir.join(`${name}.state`),
          extraArgs: ["--tracker", secondAddress, ...extraArgs],
        });
      };
      // the seeder serves slowly, so the download is still running when the tracker dies
      await using seeder = await client("seeder", [
        "--upload-limit-kib",
        "768",
        "--ticket-grace-ms",
        "0",
        "--verbose",
      ]);
      await using viewer = await client("viewer");
      await seeder.ok("create_user seeder pw");
      await seeder.ok("login seeder pw");
      await seeder.ok("create_group films");
      await viewer.ok("create_user viewer pw");
      await viewer.ok("login viewer pw");
      await viewer.ok("join_group films");
      await seeder.ok("accept_request films viewer");
      const sha1 = await writeRandomFile(dir.join("seeder/film.bin"), 6 * MiB);
      await seeder.ok("upload_file film.bin films");

      await t.step("the first tracker's fingerprint is pinned on first use", async () => {
        for (const shell of [seeder, viewer]) {
          const trusted = await shell.event("tracker_trusted");
          assert.equal(trusted.address, firstAddress);
          assert.equal(trusted.same_as, undefined);
        }
      });

      await viewer.ok(`download_file films film.bin ${dir.join("viewer")}`);
      const before = await viewer.downloadState("film.bin", (download) => download.bytes_done > 0);
      assert.ok(before.bytes_done < before.bytes_total, "the download runs across the kill");

      await t.step("SIGKILL the first: both clients are on the second within 5 s", async () => {
        const killedAt = performance.now();
        first.kill("SIGKILL");
        await first.exited();
        for (const shell of [seeder, viewer]) {
          const switched = await within(
            shell.event("tracker_switched"),
            "the switch to the second tracker",
          );
          const afterMs = performance.now() - killedAt;
          assert.ok(afterMs < SWITCH_LIMIT_MS, `switched after ${afterMs.toFixed(0)} ms`);
          assert.equal(switched.from, firstAddress);
          assert.equal(switched.to, secondAddress);
          assert.ok(switched.user === "seeder" || switched.user === "viewer");
        }
      });

      await t.step("the second is trusted as the same deployment, and pinned", async () => {
        for (const shell of [seeder, viewer]) {
          const trusted = await shell.event("tracker_trusted");
          assert.equal(trusted.address, secondAddress);
          assert.equal(trusted.same_as, firstAddress);
          assert.equal(trusted.fingerprint, first.fingerprint);
        }
        const pins = await Deno.readTextFile(dir.join("viewer.state/swarmshare/known_trackers"));
        assert.match(pins, new RegExp(`^${secondAddress} `, "m"));
      });

      await t.step("the next command works without a login; the download completes", async () => {
        assert.deepEqual(await viewer.ok("list_groups"), [
          { group: "films", owner: "seeder", members: 2 },
        ]);
        const done = await viewer.event("download_complete");
        assert.equal(await sha1OfFile(String(done.path)), sha1);
        // the seeder's shares were announced again on the second: it names the seeder
        const files = await viewer.ok("list_files films") as { name: string; seeders: number }[];
        assert.deepEqual(files.map((file) => [file.name, file.seeders]), [["film.bin", 2]]);
        assert.ok(
          !seeder.events.concat(viewer.events).some((event: JsonReply) =>
            event.event === "session_expired" || event.event === "tracker_disconnected"
          ),
          "no outage said, no session lost",
        );
        assert.ok(
          !seeder.stderr.all.some((line) => /ticket expired/.test(line)),
          "the seeder never dropped the viewer for want of a ticket",
        );
      });

      await t.step("the first, restarted, takes the clients when the second dies", async () => {
        first = await TrackerProcess.start(db, { port: firstPort, extraArgs: trackerArgs });
        second.kill("SIGKILL");
        await second.exited();
        for (const shell of [seeder, viewer]) {
          const switched = await shell.event("tracker_switched");
          assert.equal(switched.from, secondAddress);
          assert.equal(switched.to, firstAddress);
        }
        assert.deepEqual(await seeder.ok("requests list_requests films"), []);
      });
    } finally {
      await first[Symbol.asyncDispose]();
    }
  },
});

Deno.test("failover: a client whose trackers are all unreachable says where it tries next and when, and takes the first that comes up", async () => {
  await using dir = await TempDir.create();
  const seedPort = freePort();
  const otherPort = freePort();
  const seed = `127.0.0.1:${seedPort}`;
  const other = `127.0.0.1:${otherPort}`;
  await using shell = JsonShell.start(seedPort, {
    cwd: dir.path,
    stateHome: dir.join("state"),
    extraArgs: ["--tracker", other, "--verbose"],
  });
  const disconnected = await shell.event("tracker_disconnected");
  assert.deepEqual(disconnected.trying, [seed, other]);
  assert.equal(disconnected.address, seed);
  assert.match(await shell.fails("create_user alice pw"), /tracker is unreachable/);

  // the log (stderr with --verbose) names each attempt's tracker and the next one's, in turn
  const attempt = /tracker (\S+) unreachable \(.*\); next try (\S+) in (\d+\.\d) s$/;
  const attempts: [string, string, number][] = [];
  while (attempts.length < 6) {
    const line = await shell.stderr.until((text) => attempt.test(text), "an attempt's line");
    const [, failed, next, seconds] = attempt.exec(line)!;
    attempts.push([failed, next, Number(seconds)]);
  }
  assert.deepEqual(attempts.map(([failed, next]) => [failed, next]), [
    [seed, other],
    [other, seed],
    [seed, other],
    [other, seed],
    [seed, other],
    [other, seed],
  ]);
  // the other at once, then pauses doubling (bounded: one attempt per 5 s at most later)
  assert.deepEqual(attempts.map(([, , seconds]) => seconds), [0, 0.1, 0.2, 0.4, 0.8, 1.6]);
  assert.equal(shell.events.filter((e) => e.event === "tracker_disconnected").length, 0);

  // the second comes up: the client takes it (from the seed, the one it was to use)
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), { port: otherPort });
  const switched = await shell.event("tracker_switched");
  assert.deepEqual(switched, {
    event: "tracker_switched",
    from: seed,
    to: other,
    reason: switched.reason,
    user: null,
  });
  assert.equal(
    describeEvent(switched as SessionEvent),
    `tracker ${seed} unreachable; now using ${other}`,
  );
  assert.match(
    describeEvent(disconnected as SessionEvent),
    new RegExp(`^the trackers at ${seed}, ${other} are unreachable \\(.*\\); reconnecting`),
  );
  await shell.ok("create_user alice pw");
  await shell.ok("login alice pw");
  assert.equal(tracker.port, otherPort);
});

Deno.test("failover trust: pins are per address; an unpinned instance with another identity is trusted on first use, a pinned one with another is refused", async (t) => {
  await using dir = await TempDir.create();
  // two trackers with their own databases: two identities, as two deployments would have
  let first = await TrackerProcess.start(dir.join("first.db"));
  await using second = await TrackerProcess.start(dir.join("second.db"));
  const firstPort = first.port;
  const firstAddress = `127.0.0.1:${firstPort}`;
  const secondAddress = `127.0.0.1:${second.port}`;
  /** Kills the first (it is restarted on its port for the next step). */
  const killFirst = async () => {
    first.kill("SIGKILL");
    await first.exited();
  };
  const restartFirst = async () => {
    first = await TrackerProcess.start(dir.join("first.db"), { port: firstPort });
  };
  try {
    assert.notEqual(first.fingerprint, second.fingerprint);

    await t.step("an unpinned instance with another fingerprint: trust on first use", async () => {
      await using shell = JsonShell.start(firstPort, {
        stateHome: dir.join("fresh"),
        extraArgs: ["--tracker", secondAddress],
      });
      assert.equal((await shell.event("tracker_trusted")).address, firstAddress);
      await killFirst();
      const trusted = await shell.event("tracker_trusted");
      assert.equal(trusted.address, secondAddress);
      assert.equal(trusted.fingerprint, second.fingerprint);
      assert.equal(trusted.same_as, undefined, "not vouched for by the first's pin");
      const switched = await shell.event("tracker_switched");
      assert.equal(switched.to, secondAddress);
      await restartFirst();
    });

    await t.step("a pinned instance presenting another fingerprint is refused", async () => {
      const home = dir.join("pinned");
      {
        await using shell = JsonShell.start(firstPort, { stateHome: home });
        await shell.event("tracker_trusted");
        assert.equal((await shell.quit()).code, 0);
      }
      // the second's address pinned to the first's fingerprint: what it presents is not that
      await Deno.writeTextFile(
        `${home}/swarmshare/known_trackers`,
        `${secondAddress} ${first.fingerprint}\n`,
        { append: true },
      );
      await using shell = JsonShell.start(firstPort, {
        stateHome: home,
        extraArgs: ["--tracker", secondAddress],
      });
      await shell.ok("create_user pinned pw");
      await killFirst();
      const refused = await shell.event("tracker_refused");
      assert.ok(String(refused.reason).includes(secondAddress), String(refused.reason));
      assert.match(String(refused.reason), /is pinned for it/);
      assert.deepEqual((await shell.event("tracker_disconnected")).trying, [
        firstAddress,
        secondAddress,
      ]);
      assert.ok(!shell.events.some((event) => event.event === "tracker_switched"));
      // the first back: the client takes it again, never the refused one
      await restartFirst();
      await shell.event("tracker_reconnected");
      await shell.ok("login pinned pw");
    });

    await t.step("--tracker-fingerprint is every instance's: another is refused", async () => {
      await using shell = JsonShell.start(firstPort, {
        stateHome: dir.join("expected"),
        extraArgs: ["--tracker", secondAddress, "--tracker-fingerprint", first.fingerprint!],
      });
      await shell.ok("create_user expected pw");
      await killFirst();
      const refused = await shell.event("tracker_refused");
      assert.ok(String(refused.reason).includes(secondAddress), String(refused.reason));
      assert.match(String(refused.reason), /--tracker-fingerprint/);
      assert.ok(!shell.events.some((event) => event.event === "tracker_trusted"));
      await restartFirst();
    });
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

/**
 * Two trackers on one fresh PostgreSQL and a client logged in on the first, given the second
 * with `--tracker`.
 */
async function clientOnFirstOfTwo() {
  const server = await PostgresServer.start();
  const dir = await TempDir.create();
  const trackers: TrackerProcess[] = [];
  let shell: JsonShell | undefined;
  const dispose = async () => {
    await shell?.[Symbol.asyncDispose]();
    for (const tracker of trackers) {
      // a stopped process takes no SIGTERM until it runs again
      tracker.kill("SIGCONT");
      await tracker[Symbol.asyncDispose]();
    }
    await dir[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
  };
  try {
    await server.createDatabase("hung");
    const db = server.url("hung");
    trackers.push(await TrackerProcess.start(db));
    trackers.push(await TrackerProcess.start(db));
    const [first, second] = trackers;
    shell = JsonShell.start(first.port, {
      cwd: dir.path,
      stateHome: dir.join("state"),
      extraArgs: ["--tracker", `127.0.0.1:${second.port}`],
    });
    await shell.ok("create_user u pw");
    await shell.ok("login u pw");
    await shell.ok("create_group crew");
    return { server, first, second, shell, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The bound for leaving a dead instance; a hung one is noticed within it too. */
const HUNG_LIMIT_MS = SWITCH_LIMIT_MS;

Deno.test({
  name: "failover: a hung tracker (SIGSTOP) is left within seconds, not at the request timeout",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await clientOnFirstOfTwo();
    const { first, second, shell } = setup;
    first.kill("SIGSTOP");
    const stoppedAt = performance.now();
    // a command waits on the stopped tracker (TCP accepts, nothing answers); the client
    // leaves it and asks the second (the command changes nothing: it is asked again)
    const reply = await shell.run("list_groups");
    const afterMs = performance.now() - stoppedAt;
    assert.deepEqual(reply, {
      command: "list_groups",
      ok: true,
      data: [{ group: "crew", owner: "u", members: 1 }],
    });
    // said before the reply came
    const switched = await shell.event("tracker_switched");
    assert.equal(switched.from, `127.0.0.1:${first.port}`);
    assert.equal(switched.to, `127.0.0.1:${second.port}`);
    assert.match(String(switched.reason), /stopped answering/);
    // the link's bound is 4.25 s from the request (tracker_link.ts); the switch takes a dial
    // and a resume more. Without the probe it took the request timeout, 20 s
    assert.ok(afterMs < 2 * HUNG_LIMIT_MS, `answered after ${afterMs.toFixed(0)} ms`);
    first.kill("SIGCONT");
  },
});

Deno.test({
  name: "failover: a tracker that is slow to answer but greets new connections is not left",
  ignore: unavailable !== undefined,
  async fn() {
    await using setup = await clientOnFirstOfTwo();
    const { server, first, shell } = setup;
    // the database stops: the tracker's requests hang there while its event loop runs
    const paused = await server.pause();
    try {
      const reply = shell.run("list_groups");
      // the client probes the tracker on fresh connections: at 1.5 s, and 3 s after the first
      // answered; each is opened and closed without a login. Two probes: the command has
      // waited longer than a hung tracker is given (4.25 s)
      for (let probe = 0; probe < 2; probe++) {
        await first.stdout.until(
          (line) => /connection \d+ from 127\.0\.0\.1:\d+ closed$/.test(line),
          "the client to probe the tracker",
        );
      }
      paused.resume();
      assert.deepEqual(await reply, {
        command: "list_groups",
        ok: true,
        data: [{ group: "crew", owner: "u", members: 1 }],
      });
    } finally {
      paused.resume();
    }
    assert.ok(
      !shell.events.some((event) =>
        event.event === "tracker_switched" || event.event === "tracker_disconnected"
      ),
      "the client stayed on the busy tracker",
    );
  },
});
