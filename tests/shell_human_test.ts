/**
 * The shell as a person or a script uses it from a pipe: no prompt, every line run in order,
 * one result (or `error: ` line) per command, and a clean exit at the end of input.
 */

import assert from "node:assert/strict";
import { runScript, TempDir, TrackerProcess } from "./harness.ts";

Deno.test("human mode: a whole session piped in prints each result in order", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await runScript(tracker.port, ["create_user bob pw-b", "login bob pw-b", "create_group early"]);

  const { code, stdout } = await runScript(tracker.port, [
    "create_user alice 'pass word'",
    "list_groups",
    "login alice 'pass word'",
    "list_groups",
    "",
    "create_group films",
    "join_group films",
    "join_group early",
    "requests list_requests films",
    "requests list_requests early",
    "accept_request films bob",
    "list_groups",
    "leave_group films",
    "list_groups",
    "requests",
    "nonsense here",
    "logout",
    "logout",
  ]);
  assert.equal(code, 0);
  assert.deepEqual(stdout, [
    'user "alice" created',
    "error: not logged in: use login <user_id> <passwd>",
    "logged in as alice",
    "GROUP  OWNER  MEMBERS",
    "early  bob    1",
    'group "films" created; you are its owner',
    'error: you are already a member of group "films"',
    'asked to join group "early"; waiting for its owner to accept',
    'no pending requests for group "films"',
    'error: only the owner of group "early" (bob) can do that',
    'error: user "bob" has no pending request to join "films"',
    "GROUP  OWNER  MEMBERS",
    "early  bob    1",
    "films  alice  1",
    'left group "films"; it had no members left and was deleted',
    "GROUP  OWNER  MEMBERS",
    "early  bob    1",
    "error: usage: requests list_requests <group_id>",
    'error: unknown command "nonsense"; type help for the list',
    "logged out alice",
    "error: not logged in: use login <user_id> <passwd>",
  ]);
});

Deno.test("human mode: requests are listed one per line; an empty list says so", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await runScript(tracker.port, ["create_user o pw", "login o pw", "create_group g"]);
  await runScript(tracker.port, ["create_user u1 pw", "login u1 pw", "join_group g"]);
  await runScript(tracker.port, ["create_user u2 pw", "login u2 pw", "join_group g"]);
  const { stdout } = await runScript(tracker.port, [
    "login o pw",
    "requests list_requests g",
    "accept_request g u1",
    "accept_request g u2",
    "requests list_requests g",
    "help",
    "quit",
    "list_groups",
  ]);
  assert.deepEqual(stdout.slice(0, 6), [
    "logged in as o",
    'pending requests for group "g":',
    "  u1",
    "  u2",
    'u1 is now a member of group "g"',
    'u2 is now a member of group "g"',
  ]);
  assert.equal(stdout[6], 'no pending requests for group "g"');
  assert.match(stdout[7], /^COMMAND\s+WHAT IT DOES$/);
  assert.ok(stdout.some((line) => line.startsWith("requests list_requests <group_id>")));
  // quit stops the shell: the line after it never runs
  assert.equal(stdout.at(-1), "bye");
});

Deno.test("a password never appears in the shell's output or the tracker's logs", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const secret = "Tr0ub4dor-and-3";
  const human = await runScript(tracker.port, [
    `create_user alice ${secret}`,
    `create_user alice ${secret}`,
    `login alice ${secret}x`,
    `login alice ${secret}`,
  ]);
  const json = await runScript(tracker.port, [`login alice ${secret}`, "logout"], { json: true });
  await tracker.stop();
  const everything = [
    ...human.stdout,
    ...human.stderr,
    ...json.stdout,
    ...json.stderr,
    ...tracker.stdout.all,
    ...tracker.stderr.all,
  ].join("\n");
  assert.ok(!everything.includes(secret), everything);
  assert.ok(everything.includes("logged in as alice"));
});

Deno.test("human mode: what it prints holds no raw terminal control", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const { stdout } = await runScript(tracker.port, [
    "join_group \u001b[2Jgroup",
    "frobnicate\u009b31m \u202eexe.png",
  ]);
  const all = stdout.join("\n");
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\u001b\u009b\u202e]/.test(all), JSON.stringify(all));
  assert.match(all, /\\u001b\[2Jgroup/, "the escape is shown, not obeyed");
});

Deno.test("pipe: list_requests alias, did you mean, help <command>, no password prompt", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const { stdout } = await runScript(tracker.port, [
    "create_user o pw",
    "login o pw",
    "create_group g",
    "list_requests g",
    "lgin o",
    "list_group",
    "help list_requests",
    "login o",
    "create_user p",
  ]);
  assert.deepEqual(stdout.slice(0, 6), [
    'user "o" created',
    "logged in as o",
    'group "g" created; you are its owner',
    'no pending requests for group "g"',
    'error: unknown command "lgin"; did you mean "login"? type help for the list',
    'error: unknown command "list_group"; did you mean "list_groups"? type help for the list',
  ]);
  assert.deepEqual(stdout.slice(6, 10), [
    "usage: requests list_requests <group_id>",
    "list pending join requests (owner only)",
    "also typed as: list_requests",
    "example: list_requests films",
  ]);
  for (const [line, command] of [[stdout[10], "login"], [stdout[11], "create_user"]]) {
    assert.equal(
      line,
      `error: usage: ${command} <user_id> <passwd> (without a terminal the password must be ` +
        "given on the line; a terminal asks for it with echo off)",
    );
  }
});

Deno.test("pipe: help fits 80 columns without cutting a word", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const { stdout } = await runScript(tracker.port, ["help", "help download_file"]);
  for (const line of stdout) assert.ok(line.length <= 80, line);
  const words = new Set(stdout.join(" ").split(/\s+/));
  // every summary word is whole somewhere: a word cut in two would leave pieces instead
  for (const word of ["longest-standing", "list_sessions);", "background"]) {
    assert.ok(words.has(word), word);
  }
  assert.ok(stdout.includes("example: download_file films big.iso ~/Downloads"));
});

Deno.test("--json: alias reported by its full name, help <command>, password needed", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const { stdout } = await runScript(tracker.port, [
    "create_user o pw",
    "login o pw",
    "create_group g",
    "list_requests g",
    "help logout",
    "quitt",
    "login o",
  ], { json: true });
  const lines = stdout.map((line) => JSON.parse(line)).filter((line) => line.command);
  assert.deepEqual(lines[3], { command: "requests list_requests", ok: true, data: [] });
  assert.deepEqual(lines[4].data.map((entry: { command: string }) => entry.command), [
    "logout",
    "logout --all",
  ]);
  assert.deepEqual(lines[4].data[0], {
    command: "logout",
    usage: "logout",
    summary: lines[4].data[0].summary,
    example: "logout",
    aliases: [],
  });
  assert.deepEqual(lines[5], {
    command: "quitt",
    ok: false,
    error: 'unknown command "quitt"; did you mean "quit"? type help for the list',
  });
  assert.equal(lines[6].ok, false);
  assert.match(lines[6].error, /^usage: login <user_id> <passwd> \(without a terminal/);
});
