/**
 * What a user sees of the programs around the shell (issue 15): paths resolve where the
 * user started the program, under `deno task` too; the tracker's default database lives in
 * its state directory; both programs log (the tracker what its users do, never a secret;
 * the client its transfers, never on the shell's stdout); the client says where it tries
 * to reach the tracker.
 */

import assert from "node:assert/strict";
import { Program } from "../scripts/processes.ts";
import {
  freePort,
  type JsonReply,
  JsonShell,
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
