/**
 * The tracker's login grace period (issue 13): a connection that does not log in within
 * `--login-grace-ms` is closed, with a notice saying why, whatever it sends meanwhile; a
 * logged-in one never is. Clients sit logged out with their link open, so they must take
 * that quietly: no "unreachable" or "reconnected" lines, and the next command connects again.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../lib/identity.ts";
import { Program } from "../scripts/processes.ts";
import { JsonShell, TempDir, TrackerProcess, within } from "./harness.ts";
import { rawTrackerLink } from "./raw_tls.ts";
import { RecordingRelay } from "./relay.ts";

const GRACE_MS = 1500;

/** Asserts the link's last frame is the tracker's login-deadline notice. */
function assertLoginNotice(frames: readonly Record<string, unknown>[]): void {
  const last = frames.at(-1);
  assert.equal(last?.id, 0, JSON.stringify(frames));
  assert.equal(last?.ok, false);
  const error = last?.error as { code: string; message: string };
  assert.equal(error.code, "unauthenticated");
  assert.equal(error.message, "not logged in within 1.5 s: closing the connection");
}

Deno.test("raw links: not logged in within the grace period, closed; logged in, kept", async (t) => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: ["--login-grace-ms", String(GRACE_MS)],
  });
  const identity = await generateIdentity("grace test");

  await t.step("hello and nothing else: closed after the grace, with a notice", async () => {
    const startedAt = Date.now();
    const link = await rawTrackerLink(tracker.port, identity);
    await within(link.closed, "the tracker to close a link that never logged in");
    // the idle timeout (45 s) is far off: this was the grace period
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs >= GRACE_MS - 50, `closed after ${elapsedMs} ms`);
    assertLoginNotice(link.frames);
  });

  await t.step("pings and a create_user do not extend it", async () => {
    const link = await rawTrackerLink(tracker.port, identity);
    const created = await link.request({ type: "create_user", user: "pinger", password: "pw" });
    assert.equal(created.ok, true);
    const pinging = (async () => {
      // paced pings until the tracker closes the link; the pace is not a synchronisation
      while (true) {
        const reply = await link.request({ type: "ping" }).catch(() => undefined);
        if (!reply || reply.id === undefined) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await within(link.closed, "the tracker to close a pinging link");
    await pinging;
    assertLoginNotice(link.frames);
  });

  await t.step("logged in: kept past the grace; logged out again: closed", async () => {
    const member = await rawTrackerLink(tracker.port, identity);
    assert.equal(
      (await member.request({ type: "create_user", user: "m", password: "pw" })).ok,
      true,
    );
    assert.equal((await member.request({ type: "login", user: "m", password: "pw" })).ok, true);
    // a witness opened after the member's connection: once its grace has run out, the
    // member's would have too, had it still been running
    const witness = await rawTrackerLink(tracker.port, identity);
    await within(witness.closed, "the witness to be closed");
    const groups = await member.request({ type: "list_groups" });
    assert.equal(groups.ok, true, "the logged-in link was closed");
    assert.ok(!member.frames.some((frame) => frame.id === 0), JSON.stringify(member.frames));

    assert.equal((await member.request({ type: "logout" })).ok, true);
    await within(member.closed, "the tracker to close the link after logout");
    assertLoginNotice(member.frames);
  });
});

Deno.test("a human-mode client logged out past the grace logs in quietly, and stays", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: ["--login-grace-ms", String(GRACE_MS)],
  });
  // the client dials the tracker through a relay, which shows when its link is closed
  await using relay = RecordingRelay.start({
    target: { hostname: "127.0.0.1", port: tracker.port },
  });
  await using client = new Program(
    ["client", "127.0.0.1", "0", "127.0.0.1", String(relay.port)],
    { stdin: true },
  );
  const say = async (line: string, expected: string[]) => {
    await client.write(`${line}\n`);
    for (const want of expected) assert.equal(await client.stdout.next(`output of ${line}`), want);
  };

  await say("create_user alice 'pass word'", ['user "alice" created']);
  await within(relay.untilEnded(1), "the tracker to close the logged-out client's link");
  assert.equal(relay.connections, 1);

  await say("login alice 'pass word'", ["logged in as alice"]);
  assert.equal(relay.connections, 2, "the login connected again");
  await say("create_group films", ['group "films" created; you are its owner']);

  // logged in now: a witness connection opened after this client's is closed, this one not
  const witness = await rawTrackerLink(tracker.port, await generateIdentity("witness"));
  await within(witness.closed, "the witness to be closed");
  await say("list_groups", ["GROUP  OWNER  MEMBERS", "films  alice  1"]);
  assert.equal(relay.ended, 1, "the logged-in link was closed");
  assert.equal(relay.connections, 2);

  await client.endInput();
  assert.equal((await client.exited()).code, 0);
  const everything = [...client.stdout.all, ...client.stderr.all];
  assert.deepEqual(everything.filter((line) => /^error:|unreachable|reconnect/.test(line)), []);
  assert.deepEqual(client.stdout.all, [
    'user "alice" created',
    "logged in as alice",
    'group "films" created; you are its owner',
    "GROUP  OWNER  MEMBERS",
    "films  alice  1",
  ]);
});

Deno.test("a session ended elsewhere: the grace closes its link, which says only that", async () => {
  await using dir = await TempDir.create();
  // a short idle timeout makes clients ping often, so the logged-out link is seen at once
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: ["--login-grace-ms", String(GRACE_MS), "--idle-timeout-ms", "3000"],
  });
  await using laptop = JsonShell.start(tracker.port);
  await using phone = JsonShell.start(tracker.port);
  await laptop.ok("create_user alice pw");
  await laptop.ok("login alice pw");
  await phone.ok("login alice pw");
  const sessions = await phone.ok("list_sessions") as { id: string; current: boolean }[];
  const phoneId = sessions.find((session) => session.current)!.id;
  await laptop.ok(`end_session ${phoneId}`);

  assert.deepEqual(await phone.event("session_expired"), {
    event: "session_expired",
    user: "alice",
  });
  assert.deepEqual(
    phone.events.filter((event) => event.event !== "tracker_trusted"),
    [],
    "the phone announced more than the session's end",
  );
  assert.match(await phone.fails("list_groups"), /^not logged in/);
  await phone.ok("login alice pw");
  assert.deepEqual(await phone.ok("list_groups"), []);
});
