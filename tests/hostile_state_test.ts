/**
 * The client's state directory as an attacker (or a crash, or a careless user) leaves it,
 * with the real programs: `unfinished_downloads/` full of corrupt, oddly shaped, huge, linked
 * and oddly named files by the thousand, and a `history/` file that is a link. The client
 * starts, says one line per bad entry (a bounded number of them), takes up the good download,
 * and never follows the link. The same attacks file by file: tests/state_dir_test.ts.
 */

import assert from "node:assert/strict";
import { MAX_UNFINISHED_PROBLEMS } from "../peer/state_dir.ts";
import { Program } from "../scripts/processes.ts";
import { startSwarm, TempDir, TrackerProcess, within, writeRandomFile } from "./harness.ts";
import { hasScript, startTerminal } from "./pty.ts";

// deno-lint-ignore no-control-regex
const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

Deno.test("a client given a state full of junk starts, warns a bounded number of lines, resumes the good download", async () => {
  await using swarm = await startSwarm(["s", "d"], {
    persistentState: true,
    clientArgs: { s: ["--upload-limit-kib", "256"] },
  });
  const group = swarm.group;
  await writeRandomFile(`${swarm.home("s")}/f.bin`, 1024 * 1024); // 4 s at 256 KiB/s
  await swarm.shell("s").ok(`upload_file f.bin ${group}`);
  const d = swarm.shell("d");
  await d.ok(`download_file ${group} f.bin .`);
  await d.quit(); // remembered: the good one

  const dir = `${swarm.stateHome("d")}/swarmshare/unfinished_downloads`;
  const planted: Record<string, string> = {
    "bad-corrupt.json": "{half a record",
    "bad-shape.json": JSON.stringify({ tracker: 5, user: ["d"] }),
    "bad-dots.json": JSON.stringify({
      tracker: `127.0.0.1:${swarm.tracker.port}`,
      user: "d",
      download: {
        group,
        name: "../../.bashrc",
        path: "/home/d/../../.bashrc",
        info_hash: "b".repeat(40),
        paused: false,
        pieces_done: 0,
      },
    }),
    "bad-huge.json": " ".repeat(1024 * 1024),
    "bad-evil\x1b[2J\nerror: forged.json": "{",
  };
  for (const [name, text] of Object.entries(planted)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  await Deno.symlink("/etc/passwd", `${dir}/bad-link.json`);
  for (let i = 0; i < 2000; i++) await Deno.writeTextFile(`${dir}/zz-junk-${i}.json`, "[]");

  // in human mode on a pipe, as a person would see it
  await using client = new Program(
    ["client", "127.0.0.1", "0", "127.0.0.1", String(swarm.tracker.port)],
    { stdin: true, cwd: swarm.home("d"), stateHome: swarm.stateHome("d") },
  );
  await client.write("login d pw-d\n");
  await client.stdout.until((line) => line.startsWith("logged in as d"), "the login");
  await client.stdout.until(
    (line) => line.startsWith("[C] [crew] f.bin: downloaded to "),
    "the good download to be taken up and finish",
  );
  await client.endInput();
  assert.equal((await client.exited()).code, 0, client.stderr.all.join("\n"));
  const out = client.stdout.all;
  assert.ok(out.some((line) => line.startsWith('resuming download of "f.bin" in group "crew"')));
  const warnings = out.filter((line) => line.startsWith("warning: "));
  assert.equal(warnings.length, MAX_UNFINISHED_PROBLEMS + 1, warnings.join("\n"));
  assert.ok(warnings.every((line) => line.startsWith(`warning: not resuming from ${dir}`)));
  for (
    const reason of [
      "not valid JSON",
      "larger than 16 KiB",
      "a symbolic link",
      "no valid file name",
    ]
  ) {
    assert.ok(warnings.some((line) => line.endsWith(`: ${reason}`)), `nothing says ${reason}`);
  }
  assert.ok(warnings.some((line) => line.includes("bad-evil\\u001b[2J\\nerror: forged.json")));
  for (const line of [...out, ...client.stderr.all]) {
    assert.ok(!TERMINAL_UNSAFE.test(line), JSON.stringify(line));
    assert.ok(!line.startsWith("error: forged"), "a file name started a line of its own");
  }
});

Deno.test({
  name: "terminal: a history file that is a link is said, not followed, and left alone",
  ignore: !hasScript,
  async fn() {
    await using dir = await TempDir.create();
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
    const stateHome = dir.join("state");
    await Deno.mkdir(`${stateHome}/swarmshare/history`, { recursive: true, mode: 0o700 });
    const target = dir.join("elsewhere.txt");
    await Deno.writeTextFile(target, "not a history\n");
    await Deno.symlink(target, `${stateHome}/swarmshare/history/user-tty`);
    await using term = startTerminal({ trackerPort: tracker.port, stateHome });
    await term.waitFor("swarmshare> ");
    await term.type("create_user tty pw\r");
    await term.waitFor("created");
    await term.type("login tty pw\r");
    await term.waitFor("warning: history not loaded: ");
    await term.waitFor("is a symbolic link; it is not followed");
    await term.waitFor("tty> ");
    await term.type("list_groups\r");
    await term.waitFor("no groups yet");
    await term.type("\x04");
    await term.waitFor("warning: history not saved: ");
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
    assert.equal(await Deno.readTextFile(target), "not a history\n");
  },
});
