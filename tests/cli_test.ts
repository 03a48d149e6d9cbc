/**
 * What a user sees of the programs around the shell (issue 15): paths resolve where the
 * user started the program, under `deno task` too; the tracker's default database lives in
 * its state directory; both programs log (the tracker what its users do, never a secret;
 * the client its transfers, never on the shell's stdout); the client says where it tries
 * to reach the tracker.
 */

import assert from "node:assert/strict";
import { Program } from "../scripts/processes.ts";
import { connectRawTls } from "./raw_tls.ts";
import {
  freePort,
  type JsonReply,
  JsonShell,
  startSwarm,
  TempDir,
  TrackerProcess,
  usersInGroup,
  writeRandomFile,
} from "./harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** `2026-12-14T10:00:00.000Z info  ...` */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) \S/;

/** Runs one command on a `--json` client started some other way; returns its reply. */
async function reply(program: Program, command: string): Promise<JsonReply> {
  await program.write(`${command}\n`);
  while (true) {
    const line = await program.stdout.next(`the reply to ${command}`);
    if (line === undefined) throw new Error(`ended before ${command}: ${program.stderr.all}`);
    const parsed = JSON.parse(line) as JsonReply;
    if (parsed.event === undefined) return parsed;
  }
}

Deno.test("paths: under deno task, shell paths resolve where the user started it", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const user = dir.join("user");
  const home = dir.join("home");
  await Deno.mkdir(user);
  await Deno.mkdir(home);
  await Deno.writeTextFile(`${user}/notes.txt`, "hello\n");
  await Deno.writeTextFile(`${home}/in-home.txt`, "home\n");
  // as a user in `user` types `deno task -q client ...`: the task runs in the project
  await using client = new Program(
    [
      "task",
      "-q",
      "--config",
      `${ROOT}deno.json`,
      "client",
      "127.0.0.1",
      "0",
      "127.0.0.1",
      String(tracker.port),
      "--json",
    ],
    { executable: Deno.execPath(), cwd: user, stdin: true, env: { HOME: home } },
  );
  for (const command of ["create_user pat pw-pat", "login pat pw-pat", "create_group g"]) {
    assert.equal((await reply(client, command)).ok, true, command);
  }
  const shared = await reply(client, "upload_file notes.txt g");
  assert.equal(shared.ok, true, shared.error);
  assert.equal((await reply(client, "upload_file ~/in-home.txt g")).ok, true);
  const missing = await reply(client, "upload_file nothing-here.bin g");
  assert.match(missing.error ?? "", new RegExp(`"${user}/nothing-here\\.bin"`));
  const nowhere = await reply(client, "download_file g notes.txt no/such/dir");
  assert.match(nowhere.error ?? "", new RegExp(`"${user}/no/such/dir" is not an existing`));
  const other = await reply(client, "upload_file ~other/x g");
  assert.match(other.error ?? "", /cannot expand "~other"/);
  await client.endInput();
  await client.exited();
});

Deno.test("tracker: default database in its state directory; the log says who does what, never a secret", async () => {
  await using dir = await TempDir.create();
  await using tracker = new Program(["server", "127.0.0.1", "0"], { stateHome: dir.path });
  const listening = await tracker.stdout.until(
    (line) => line.startsWith("tracker listening on "),
    "the tracker to listen",
  );
  const port = Number(listening.split(":").at(-1));
  assert.match(await tracker.stdout.next() ?? "", /^tracker fingerprint SHA256:/);
  const database = `${dir.path}/swarmshare/tracker/tracker.db`;
  assert.equal(await tracker.stdout.next(), `tracker database ${database}`);
  assert.ok((await Deno.stat(database)).isFile);

  const logFile = dir.join("client.log");
  await Deno.mkdir(dir.join("ben"));
  const [ann, ben] = await usersInGroup(port, ["ann", "ben"], "g");
  await using _ann = ann;
  await using _ben = ben;
  await ben.ok("join_group g");
  await ann.ok("accept_request g ben");
  {
    await using stranger = JsonShell.start(port);
    assert.match(await stranger.fails("login ann wrong-secret-123"), /./);
  }
  await writeRandomFile(dir.join("f.bin"), 300_000);
  await ann.ok(`upload_file ${dir.join("f.bin")} g`);
  // a second client of ben's logs its transfers to a file
  await using benLog = JsonShell.start(port, { extraArgs: ["--log", logFile] });
  await benLog.ok("login ben pw-ben");
  await benLog.ok(`download_file g f.bin ${dir.join("ben")}`);
  await benLog.event("download_complete");
  tracker.kill("SIGTERM");
  await tracker.exited();

  const lines = tracker.stdout.all;
  assert.equal(lines.at(-1), "tracker stopped");
  const log = lines.filter((line) => LOG_LINE.test(line));
  const has = (pattern: RegExp) =>
    assert.ok(log.some((line) => pattern.test(line)), `no ${pattern} in\n${log.join("\n")}`);
  has(/info {2}connection \d+ from 127\.0\.0\.1:\d+$/);
  has(/user "ann" created on connection/);
  has(/ann logged in on connection \d+ from 127\.0\.0\.1/);
  has(/info {2}login as "ann" refused on connection \d+ from 127\.0\.0\.1:\d+: /);
  has(/ann created group "g"/);
  has(/ben asked to join group "g"/);
  has(/ann let "ben" into group "g"/);
  has(/ann shares "f\.bin" in group "g" \(300000 bytes, sha1 [0-9a-f]{40}\)/);
  has(/ticket issued to ben for "f\.bin" in group "g"/);
  has(/tracker stopping \(SIGTERM\)/);
  for (const secret of ["pw-ann", "pw-ben", "wrong-secret-123"]) {
    assert.ok(!lines.some((line) => line.includes(secret)), `${secret} is in the log`);
  }
  // the client's log: its transfers, in its own file; its stdout stays JSON
  const clientLog = (await Deno.readTextFile(logFile)).trimEnd().split("\n");
  assert.ok(clientLog.every((line) => LOG_LINE.test(line)), clientLog.join("\n"));
  assert.ok(clientLog.some((line) => /download of "f\.bin" from group "g" started/.test(line)));
  assert.ok(
    clientLog.some((line) =>
      /download of "f\.bin" from group "g" complete: 300000 bytes .* from 1 peer \(/.test(line)
    ),
    clientLog.join("\n"),
  );
  assert.ok(benLog.stdout.all.every((line) => line.startsWith("{")));
});

Deno.test("client: says where it tries to reach the tracker and how often", async () => {
  const port = freePort();
  await using shell = JsonShell.start(port, { extraArgs: ["--verbose"] });
  assert.match(await shell.fails("create_user early pw"), /tracker is unreachable/);
  const event = await shell.event("tracker_disconnected");
  assert.equal(event.address, `127.0.0.1:${port}`);
  assert.equal(event.retry_max_ms, 5000);
  // --verbose: each try on stderr, with when the next one comes
  await shell.stderr.until(
    (line) =>
      LOG_LINE.test(line) &&
      line.includes(`tracker 127.0.0.1:${port} unreachable`) && /next try in \d+\.\d s/.test(line),
    "a retry line",
  );
  assert.ok(shell.stdout.all.every((line) => line.startsWith("{")));
});

Deno.test("client: --log FILE has its transfers, who it serves and peer warnings, none on stdout", async () => {
  await using logs = await TempDir.create();
  const logOf = (name: string) => logs.join(`${name}.log`);
  await using swarm = await startSwarm(["seed", "get", "gone"], {
    clientArgs: {
      seed: ["--log", logOf("seed")],
      get: ["--log", logOf("get"), "--stall-timeout-ms", "1000"],
    },
  });
  const [seed, get, gone] = ["seed", "get", "gone"].map((name) => swarm.shell(name));
  const group = swarm.group;
  await writeRandomFile(`${swarm.home("seed")}/f.bin`, 1024 * 1024);
  await seed.ok(`upload_file f.bin ${group}`);
  await seed.ok("set_limits 256 none"); // two pieces at 256 KiB/s: time to pause and resume
  // a file whose only holder has left: its download fails once the stall timeout passes
  await writeRandomFile(`${swarm.home("gone")}/h.bin`, 1000);
  await gone.ok(`upload_file h.bin ${group}`);
  await gone.ok("logout");

  await get.ok(`download_file ${group} f.bin .`);
  await get.ok(`pause_download ${group} f.bin`);
  await get.ok("logout");
  await get.ok("login get pw-get");
  await get.event("download_resumed"); // taken up at login, kept paused
  await get.ok(`resume_download ${group} f.bin`);
  await get.ok(`cancel_download ${group} f.bin --keep`);
  await get.ok(`download_file ${group} f.bin .`);
  await seed.ok("set_limits none none");
  assert.equal(
    (await get.event(["download_complete", "download_failed"])).event,
    "download_complete",
  );
  await get.ok(`download_file ${group} h.bin .`);
  assert.equal(
    (await get.event(["download_complete", "download_failed"])).event,
    "download_failed",
  );

  // a stranger's garbage on the seeder's peer port: a warning in its log
  const conn = await connectRawTls(seed.peerPort);
  await conn.write(new Uint8Array(68).fill(0xff));
  while (await conn.read(new Uint8Array(256)) !== null) {
    // until the seeder hangs up
  }
  conn.close();
  // leaving ends every connection served: the last lines are in the files once they exit
  await seed.quit();
  await get.quit();

  for (const [name, shell] of [["seed", seed], ["get", get]] as const) {
    assert.ok(shell.stdout.all.every((line) => line.startsWith("{")), `${name}'s stdout`);
    assert.ok(!shell.stderr.all.some((line) => LOG_LINE.test(line)), `${name}'s stderr`);
  }
  const read = async (name: string) => {
    const lines = (await Deno.readTextFile(logOf(name))).trimEnd().split("\n");
    assert.ok(lines.every((line) => LOG_LINE.test(line)), lines.join("\n"));
    return (pattern: RegExp) =>
      assert.ok(lines.some((line) => pattern.test(line)), `no ${pattern} in\n${lines.join("\n")}`);
  };
  const inGet = await read("get");
  const f = `download of "f\\.bin" from group "${group}"`;
  inGet(new RegExp(`info  ${f} started, to /`));
  inGet(new RegExp(`info  ${f} paused: \\d+ of 2 pieces verified`));
  inGet(new RegExp(`info  ${f} taken up at login and kept paused: \\d+ of 2 pieces verified`));
  inGet(new RegExp(`info  ${f} resumed: \\d+ of 2 pieces verified, to /`));
  inGet(new RegExp(`info  ${f} cancelled: \\d+ of 2 pieces verified; part file /\\S+ kept`));
  inGet(new RegExp(`info  ${f} complete: 1048576 bytes`));
  inGet(/warn {2}download of "h\.bin" from group "\w+" failed: /);
  const inSeed = await read("seed");
  inSeed(new RegExp(`info  sharing "f\\.bin" \\(1048576 bytes\\) in group "${group}"`));
  inSeed(/info {2}serving "f\.bin" to get at 127\.0\.0\.1:\d+$/);
  inSeed(/info {2}stopped serving "f\.bin" to get at 127\.0\.0\.1:\d+: \d+ bytes sent \(/);
  inSeed(/warn {2}peer 127\.0\.0\.1:\d+: /);
  // a file no longer shared when its last connection ends is still named by its name
  assert.doesNotMatch(await Deno.readTextFile(logOf("seed")), /serving "[0-9a-f]{40}"/);
});
