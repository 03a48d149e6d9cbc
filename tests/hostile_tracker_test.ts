/**
 * Notices from a tracker that does not keep the rules (broken or hostile): unknown kinds,
 * wrong shapes, control characters and line breaks, very long names, and floods. The client
 * shows a bounded number of notice lines, each one line with nothing a terminal acts on,
 * says how many it held back, and goes on working. A fake tracker in plaintext speaks just
 * enough of the protocol for a login; the client is the real program.
 */

import assert from "node:assert/strict";
import { NOTICE_LINES, NoticeLimit } from "../peer/notice_limit.ts";
import { Program } from "../scripts/processes.ts";
import { startFakeTracker } from "./fake_tracker.ts";
import { TempDir, within } from "./harness.ts";

// deno-lint-ignore no-control-regex
const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

Deno.test("NoticeLimit: a window's lines, then one count when it ends", async (t) => {
  await t.step("past the bound, notices are counted and the count said once", async () => {
    const shown: number[] = [];
    const counts = Promise.withResolvers<number>();
    const limit = new NoticeLimit<number>((n) => shown.push(n), counts.resolve, {
      maxLines: 3,
      windowMs: 50,
    });
    try {
      for (let n = 0; n < 10; n++) limit.offer(n);
      assert.deepEqual(shown, [0, 1, 2]);
      assert.equal(await within(counts.promise, "the count"), 7);
      // the count was one line of the new window: two more fit in it
      for (let n = 10; n < 13; n++) limit.offer(n);
      assert.deepEqual(shown, [0, 1, 2, 10, 11]);
    } finally {
      limit.close();
    }
  });

  await t.step("closed, nothing counted is said", async () => {
    let said = 0;
    const limit = new NoticeLimit<number>(() => {}, () => said++, { maxLines: 1, windowMs: 10 });
    limit.offer(1);
    limit.offer(2);
    limit.close();
    // a timer of the same length would have fired by the time this one does
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(said, 0);
  });
});

Deno.test("a tracker's flood of notices, malformed, hostile and valid, is shown bounded, one safe line each", async () => {
  await using dir = await TempDir.create();
  await using tracker = await startFakeTracker();
  const log = dir.join("client.log");
  await using client = new Program(
    [
      "client",
      "127.0.0.1",
      "0",
      "127.0.0.1",
      String(tracker.port),
      "--insecure-plaintext",
      "--log",
      log,
    ],
    { stdin: true },
  );
  await client.write("login eve pw-eve\n");
  await client.stdout.until((line) => line === "logged in as eve", "the login");
  const flood = await tracker.loggedIn;
  const forged = "\nerror: forged\x1b[2J\u202e";
  const frames: unknown[] = [
    // malformed: refused with one line in the log, nothing on screen
    { push: "evil\x1b[2J", group: "g" },
    { push: "file_shared", group: 5, name: "a", size: 1, user: "bob" },
    { push: "file_shared", group: "g", name: `x${forged}`, size: 1, user: "bob" },
    { push: "file_shared", group: "g", name: "n".repeat(300), size: 1, user: "bob" },
    { push: "join_requested", group: "g", user: "u".repeat(65) },
    { push: "join_accepted", group: "g", extra: forged },
    { push: "more_notices", notice: "evil", count: 1 },
    { push: "file_shared", id: 7, group: "g", name: "a", size: 1, user: "bob" },
    // well formed but hostile: a reason and a host made to forge lines and move the cursor
    { push: "address_check", host: `h${forged}`, port: 9, verified: false, reason: forged },
    { push: "more_notices", notice: "file_shared", group: "g", count: Number.MAX_SAFE_INTEGER },
    // a flood of valid notices with the longest names
    ...Array.from({ length: 500 }, (_, i) => ({
      push: "file_shared",
      group: "g",
      name: `${String(i).padStart(4, "0")}${"f".repeat(230)}`,
      size: i,
      user: "bob",
    })),
  ];
  await flood(frames);
  const held = await client.stdout.until(
    (line) => line.includes("notices from the tracker not shown"),
    "the count of the notices held back",
  );
  assert.match(held, /^and \d+ more notices from the tracker not shown: /);
  // the client still works
  await client.write("list_groups\n");
  await client.stdout.until((line) => line === "no groups yet", "a command after the flood");
  await client.endInput();
  assert.equal((await client.exited()).code, 0, client.stderr.all.join("\n"));

  const out = client.stdout.all;
  const notices = out.filter((line) =>
    /^(new file in group|and \d+ more new files|warning: peers are not sent)/.test(line)
  );
  assert.ok(notices.length <= NOTICE_LINES, `${notices.length} notice lines`);
  assert.ok(notices.length >= NOTICE_LINES - 2, `only ${notices.length} notice lines`);
  const shown = Number(/^and (\d+) more/.exec(held)![1]);
  assert.equal(notices.length + shown, 502, "every valid notice is shown or counted");
  for (const line of [...out, ...client.stderr.all]) {
    assert.ok(!TERMINAL_UNSAFE.test(line), JSON.stringify(line));
    assert.ok(!line.startsWith("error: forged"), "a tracker's text started a line of its own");
  }
  assert.ok(
    out.some((line) =>
      line.startsWith("warning: peers are not sent to this client at [h\\nerror: forged")
    ),
    out.join("\n"),
  );
  assert.ok(
    out.includes(`and ${Number.MAX_SAFE_INTEGER} more new files in group "g": list_files g`),
  );
  // the log took one line for every malformed push, and one for the flood
  const logged = (await Deno.readTextFile(log)).trimEnd().split("\n");
  const malformed = logged.filter((line) => line.includes("tracker sent a malformed push"));
  assert.equal(malformed.length, 1, logged.join("\n"));
  assert.ok(
    logged.some((line) => /warn {2}the tracker sent too many notices: \d+ not shown/.test(line)),
  );
  for (const line of logged) assert.ok(!TERMINAL_UNSAFE.test(line), JSON.stringify(line));
});
