/**
 * The session commands through real tracker and client processes: one user on three
 * clients lists its sessions, ends one of them, then logs out everywhere; each client whose
 * session ended elsewhere learns it at its next command.
 */

import assert from "node:assert/strict";
import type { SessionSummary } from "../lib/protocol.ts";
import { JsonShell, runScript, TempDir, TrackerProcess } from "./harness.ts";

type SessionLine = SessionSummary;

async function sessionsOf(shell: JsonShell): Promise<SessionLine[]> {
  return await shell.ok("list_sessions") as SessionLine[];
}

function currentId(sessions: SessionLine[]): string {
  const current = sessions.filter((session) => session.current);
  assert.equal(current.length, 1, "exactly one session is the asker's");
  return current[0].id;
}

Deno.test("session commands: list_sessions, end_session, logout --all across clients", async (t) => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await using laptop = JsonShell.start(tracker.port);
  await using phone = JsonShell.start(tracker.port);
  await using tablet = JsonShell.start(tracker.port);
  await using bob = JsonShell.start(tracker.port);
  await laptop.ok("create_user alice pw-alice");
  await bob.ok("create_user bob pw-bob");
  for (const shell of [laptop, phone, tablet]) await shell.ok("login alice pw-alice");
  await bob.ok("login bob pw-bob");

  let laptopId = "";
  let phoneId = "";

  await t.step("list_sessions: every session of the user, newest first", async () => {
    const listed = await sessionsOf(laptop);
    assert.equal(listed.length, 3, "bob's session is not listed");
    for (const session of listed) {
      assert.match(session.id, /^[0-9a-f]{8}$/);
      assert.match(String(session.fingerprint), /^[0-9a-f]{64}$/, "each device's certificate");
      assert.equal(session.online, true);
      assert.ok(session.last_seen_at >= session.created_at);
    }
    assert.equal(
      new Set(listed.map((session) => session.fingerprint)).size,
      3,
      "three clients with state directories of their own are three devices",
    );
    const created = listed.map((session) => session.created_at);
    assert.deepEqual(created, [...created].sort((a, b) => b - a));
    laptopId = currentId(listed);
    assert.equal(listed.at(-1)!.id, laptopId, "the laptop logged in first");
    phoneId = currentId(await sessionsOf(phone));
    assert.notEqual(phoneId, laptopId);
    assert.deepEqual(
      (await sessionsOf(phone)).map((session) => session.id),
      listed.map((session) => session.id),
      "ids are stable and the same from every client",
    );
  });

  await t.step("end_session refusals", async () => {
    assert.match(await laptop.fails(`end_session ${laptopId}`), /this client's own: use logout/);
    const unknown = [laptopId, phoneId].includes("00000000") ? "00000001" : "00000000";
    assert.match(await laptop.fails(`end_session ${unknown}`), /you have no session "0000000/);
    assert.match(await laptop.fails("end_session nothex!"), /invalid session id "nothex!"/);
    assert.match(await laptop.fails("end_session"), /^usage: end_session <session_id>/);
    const bobId = currentId(await sessionsOf(bob));
    assert.match(await laptop.fails(`end_session ${bobId}`), /you have no session/);
    assert.equal((await sessionsOf(bob)).length, 1, "bob's session is untouched");
  });

  await t.step("end_session ends the phone's session; the phone learns it next", async () => {
    assert.deepEqual(await laptop.run(`end_session ${phoneId}`), {
      command: "end_session",
      ok: true,
      data: { id: phoneId },
    });
    assert.match(await phone.fails("list_groups"), /^not logged in/);
    assert.deepEqual(await phone.event("session_expired"), {
      event: "session_expired",
      user: "alice",
    });
    assert.match(await phone.fails("list_groups"), /^not logged in/, "it stays logged out");
    assert.equal(
      phone.events.filter((event) => event.event === "session_expired").length,
      0,
      "announced once",
    );
    const left = await sessionsOf(laptop);
    assert.equal(left.length, 2);
    assert.ok(!left.some((session) => session.id === phoneId));
  });

  await t.step("the phone logs in again with a new session", async () => {
    await phone.ok("login alice pw-alice");
    assert.equal((await sessionsOf(phone)).length, 3);
  });

  await t.step("logout --all ends every session, this one too", async () => {
    assert.deepEqual(await laptop.run("logout --all"), {
      command: "logout --all",
      ok: true,
      data: { user: "alice", sessions: 3 },
    });
    assert.match(await laptop.fails("list_sessions"), /^not logged in/);
    assert.deepEqual(
      laptop.events.map((event) => event.event),
      ["tracker_trusted"],
      "the client that asked expects its logout: no session_expired",
    );
    for (const shell of [phone, tablet]) {
      assert.match(await shell.fails("list_groups"), /^not logged in/);
      await shell.event("session_expired");
    }
    assert.equal((await sessionsOf(bob)).length, 1, "bob is still logged in");
    assert.match(await laptop.fails("logout --all"), /^not logged in/);
  });

  await t.step("plain logout is unchanged", async () => {
    await laptop.ok("login alice pw-alice");
    assert.deepEqual(await laptop.run("logout"), { command: "logout", ok: true, data: null });
  });
});

Deno.test("session commands in human mode: the table and the logout line", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await using other = JsonShell.start(tracker.port);
  await other.ok("create_user alice pw");
  await other.ok("login alice pw");
  const { code, stdout } = await runScript(tracker.port, [
    "login alice pw",
    "list_sessions",
    "logout --all",
  ]);
  assert.equal(code, 0);
  assert.equal(stdout[0], "logged in as alice");
  assert.match(stdout[1], /^ID {10}CREATED {11}LAST USED {9}DEVICE$/);
  assert.match(
    stdout[2],
    /^[0-9a-f]{8} \* +\d{4}-\d\d-\d\d \d\d:\d\d {2}\d{4}-\d\d-\d\d \d\d:\d\d {2}[0-9a-f]{16}$/,
  );
  assert.match(
    stdout[3],
    /^[0-9a-f]{8} +\d{4}-\d\d-\d\d \d\d:\d\d {2}\d{4}-\d\d-\d\d \d\d:\d\d {2}[0-9a-f]{16}$/,
  );
  assert.equal(stdout[4], "logged out alice on every device (2 sessions)");
  assert.match(await other.fails("list_groups"), /^not logged in/);
  assert.deepEqual(await other.event("session_expired"), {
    event: "session_expired",
    user: "alice",
  });
});

Deno.test("a session ended elsewhere is refused when its client reconnects", async () => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  let tracker = await TrackerProcess.start(dbPath);
  const port = tracker.port;
  try {
    await using laptop = JsonShell.start(port);
    await using phone = JsonShell.start(port);
    await laptop.ok("create_user alice pw");
    await laptop.ok("login alice pw");
    await phone.ok("login alice pw");
    const phoneId = currentId(await sessionsOf(phone));
    await laptop.ok(`end_session ${phoneId}`);

    assert.equal((await tracker.stop()).code, 0);
    await phone.event("tracker_disconnected");
    tracker = await TrackerProcess.start(dbPath, { port });
    assert.deepEqual(await phone.event("session_expired"), {
      event: "session_expired",
      user: "alice",
    });
    await laptop.event("tracker_reconnected", (event) => event.user === "alice");
    assert.equal((await sessionsOf(laptop)).length, 1, "only the laptop's session is left");
    assert.match(await phone.fails("list_groups"), /^not logged in/);
  } finally {
    await tracker[Symbol.asyncDispose]();
  }
});
