/**
 * Replies from a tracker that does not keep the rules: each command whose reply has the wrong
 * shape prints one `error:` line saying which reply and what is wrong with it, starts
 * nothing, and the shell goes on; a refusal's text is one line whatever it holds. The
 * client is the real program, the tracker a fake (tests/fake_tracker.ts).
 */

import assert from "node:assert/strict";
import { Program } from "../scripts/processes.ts";
import { type FakeAnswers, startFakeTracker } from "./fake_tracker.ts";
import { TempDir } from "./harness.ts";

Deno.test("a tracker's malformed replies and refusals: one error line per command, nothing started, the shell goes on", async () => {
  await using dir = await TempDir.create();
  let groupLists = 0;
  const answers: FakeAnswers = {
    // the first listing is malformed, the next one well formed
    list_groups: () =>
      groupLists++ === 0 ? { data: [{ group: "g", owner: "o", members: "many" }] } : { data: [] },
    list_files: () => ({ data: "not a list" }),
    locate_file: () => ({
      data: {
        group: "g",
        name: "a.bin",
        size: 10,
        sha1: "0".repeat(40),
        info_hash: "0".repeat(40),
        info: "!!",
        peers: [],
        ticket: "t",
      },
    }),
    join_group: () => ({ data: { group: 5, status: "pending" } }),
    leave_group: () => ({ data: {} }),
    list_requests: () => ({ data: { user: "bob" } }),
    list_sessions: () => ({ data: [null] }),
    create_group: (request) => ({
      frame: {
        id: request.id,
        ok: false,
        error: { code: "evil", message: "taken\nerror: forged\r" },
      },
    }),
  };
  await using tracker = await startFakeTracker(answers);
  await using client = new Program(
    ["client", "127.0.0.1", "0", "127.0.0.1", String(tracker.port), "--insecure-plaintext"],
    { stdin: true, cwd: dir.path },
  );
  await client.write("login eve pw-eve\n");
  await client.stdout.until((line) => line === "logged in as eve", "the login");
  const expected = [
    [
      "list_groups",
      `error: the tracker's reply to list_groups is malformed: item 1: "members" is not a whole number`,
    ],
    ["list_files g", "error: the tracker's reply to list_files is not a list"],
    [
      "download_file g a.bin .",
      `error: the tracker's reply to locate_file is malformed: "info" is not base64`,
    ],
    [
      "join_group g",
      `error: the tracker's reply to join_group is malformed: "group" is not a valid id`,
    ],
    ["leave_group g", `error: the tracker's reply to leave_group lacks "group"`],
    ["requests list_requests g", "error: the tracker's reply to list_requests is not a list"],
    [
      "list_sessions",
      "error: the tracker's reply to list_sessions is malformed: item 1 is not an object",
    ],
    ["create_group g", "error: taken\\nerror: forged\\r"],
    ["show_downloads", "no downloads in this session"],
    ["list_groups", "no groups yet"],
  ];
  for (const [command, line] of expected) {
    await client.write(`${command}\n`);
    const said = await client.stdout.next(`the answer to ${command}`);
    assert.equal(said, line, command);
  }
  await client.endInput();
  assert.equal((await client.exited()).code, 0, client.stderr.all.join("\n"));
  assert.deepEqual(client.stdout.all, ["logged in as eve", ...expected.map(([, line]) => line)]);
  // nothing was written where the download would have gone
  const entries = [];
  for await (const entry of Deno.readDir(dir.path)) entries.push(entry.name);
  assert.deepEqual(entries, []);
});
