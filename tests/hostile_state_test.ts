/**
 * The client's state directory as an attacker (or a crash, or a careless user) leaves it:
 * `unfinished_downloads/` with corrupt, oddly shaped, huge, linked and oddly named files by
 * the thousand, or itself a link; `history/` files that are links, huge, binary, pipes or
 * directories. The client starts, says one line per bad entry (a bounded number of them),
 * takes up the good downloads, never follows a link to read or write elsewhere, and never
 * reads more than its stated bounds.
 */

import assert from "node:assert/strict";
import type { ClientSession } from "../peer/session.ts";
import { Shell } from "../peer/shell.ts";
import {
  HISTORY_LIMIT_BYTES,
  HISTORY_LINE_MAX_CHARS,
  HISTORY_LINES,
  MAX_UNFINISHED_FILES_READ,
  MAX_UNFINISHED_PROBLEMS,
  StateDir,
  type UnfinishedDownload,
} from "../peer/state_dir.ts";
import { Program } from "../scripts/processes.ts";
import { startSwarm, TempDir, TrackerProcess, within, writeRandomFile } from "./harness.ts";
import { hasScript, startTerminal } from "./pty.ts";

const TRACKER = "127.0.0.1:5000";
// deno-lint-ignore no-control-regex
const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

function download(name: string, more: Partial<UnfinishedDownload> = {}): UnfinishedDownload {
  return {
    group: "films",
    name,
    path: `/data/${name}`,
    info_hash: "b".repeat(40),
    paused: false,
    pieces_done: 0,
    ...more,
  };
}

/** Every entry of a directory, names only (empty when there is none). */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

Deno.test("unfinished_downloads: links are never followed, odd names reported as they are", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const alice = state.unfinishedDownloads(TRACKER, "alice");
  const dir = temp.join("state/unfinished_downloads");
  await alice.put(download("good.bin"));
  const [good] = await namesIn(dir);

  await t.step("a link to a valid record elsewhere, a link to a directory, a pipe", async () => {
    // a perfect record of ours, but outside the state directory: a link to it is not read
    await Deno.writeTextFile(
      temp.join("planted.json"),
      JSON.stringify({ tracker: TRACKER, user: "alice", download: download("x.bin") }),
    );
    await Deno.symlink(temp.join("planted.json"), `${dir}/link.json`);
    await Deno.symlink(temp.path, `${dir}/dirlink.json`);
    await new Deno.Command("mkfifo", { args: [`${dir}/pipe.json`] }).output();
    const { downloads, problems } = await within(alice.list(), "the list, with a pipe in it");
    assert.deepEqual(downloads.map((d) => d.name), ["good.bin"]);
    assert.deepEqual(problems.map((p) => [p.file.slice(dir.length + 1), p.reason]), [
      ["dirlink.json", "a symbolic link"],
      ["link.json", "a symbolic link"],
      ["pipe.json", "not a regular file"],
    ]);
    for (const name of ["link.json", "dirlink.json", "pipe.json"]) {
      await Deno.remove(`${dir}/${name}`);
    }
  });

  await t.step(
    "names with control characters and line breaks are reported as they are",
    async () => {
      const odd = "evil\x1b[2J\nerror: forged\u202e.json";
      await Deno.writeTextFile(`${dir}/${odd}`, "{");
      await Deno.writeTextFile(
        `${dir}/dots.json`,
        JSON.stringify({
          tracker: TRACKER,
          user: "alice",
          download: download("../../.bashrc", { path: "/data/../../.bashrc" }),
        }),
      );
      const { problems } = await alice.list();
      assert.deepEqual(problems.map((p) => [p.file.slice(dir.length + 1), p.reason]), [
        ["dots.json", "no valid file name"],
        [odd, "not valid JSON"],
      ]);
      // as the shell prints them: one line each, nothing a terminal acts on
      const printed: string[] = [];
      const print = console.log;
      console.log = (line: string) => printed.push(line);
      try {
        const shell = new Shell({ session: {} as ClientSession, json: false, interactive: false });
        for (const { file, reason } of problems) {
          shell.announce({ event: "download_not_resumed", group: null, name: null, file, reason });
        }
      } finally {
        console.log = print;
      }
      assert.deepEqual(printed, [
        `warning: not resuming from ${dir}/dots.json: no valid file name`,
        `warning: not resuming from ${dir}/evil\\u001b[2J\\nerror: forged\\u202e.json: ` +
        "not valid JSON",
      ]);
      await Deno.remove(`${dir}/${odd}`);
      await Deno.remove(`${dir}/dots.json`);
    },
  );

  await t.step(
    "thousands of junk files: a bounded read, a bounded number of problems",
    async () => {
      const junk = MAX_UNFINISHED_FILES_READ + 500;
      for (let i = 0; i < junk; i++) {
        await Deno.writeTextFile(`${dir}/zz-${String(i).padStart(5, "0")}.json`, "x");
      }
      const { downloads, problems } = await alice.list();
      assert.deepEqual(downloads.map((d) => d.name), ["good.bin"], "the good one still counts");
      assert.equal(problems.length, MAX_UNFINISHED_PROBLEMS + 1);
      assert.deepEqual(problems[0], {
        file: dir,
        reason: `it holds ${junk + 1} files; only ${MAX_UNFINISHED_FILES_READ} were read`,
      });
      assert.deepEqual(problems.at(-1), {
        file: dir,
        // read: the good one and 999 junk files, of which 9 were said one by one
        reason: `${MAX_UNFINISHED_FILES_READ - 1 - (MAX_UNFINISHED_PROBLEMS - 1)} more unusable ` +
          "files in it skipped",
      });
      for (const name of await namesIn(dir)) {
        if (name.startsWith("zz-")) await Deno.remove(`${dir}/${name}`);
      }
    },
  );

  await t.step(
    "the directory itself a link: said once, nothing read, written or removed there",
    async () => {
      await Deno.rename(dir, temp.join("moved"));
      await Deno.mkdir(temp.join("elsewhere"));
      await Deno.symlink(temp.join("elsewhere"), dir);
      const elsewhereFile = temp.join(`elsewhere/${good}`);
      await Deno.copyFile(temp.join(`moved/${good}`), elsewhereFile);
      assert.deepEqual(await alice.list(), {
        downloads: [],
        problems: [{
          file: dir,
          reason: "it is a symbolic link; nothing in it is read or written",
        }],
      });
      await assert.rejects(alice.put(download("new.bin")), /is a symbolic link/);
      await assert.rejects(alice.remove("films", "good.bin"), /is a symbolic link/);
      assert.deepEqual(await namesIn(temp.join("elsewhere")), [good]);
      // nor is a pending share written there
      await Deno.symlink(temp.join("elsewhere"), temp.join("state/pending_shares"));
      const shares = state.pendingShares(TRACKER, "alice");
      await assert.rejects(shares.list(), /is a symbolic link/);
      await assert.rejects(
        shares.add({
          group: "films",
          name: "s.bin",
          size: 1,
          sha1: "a".repeat(40),
          info_hash: "b".repeat(40),
          info: "",
          path: "/data/s.bin",
          mtime_ms: 0,
        }),
        /is a symbolic link/,
      );
      assert.deepEqual(await namesIn(temp.join("elsewhere")), [good]);
    },
  );
});

Deno.test("history: links, pipes and directories refused; huge and binary files read within bounds", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const history = state.history("alice");
  const dir = temp.join("state/history");
  await Deno.mkdir(dir);

  await t.step("a link to a file elsewhere is neither read nor written through", async () => {
    const target = temp.join("target.txt");
    await Deno.writeTextFile(target, "secret line\n");
    await Deno.symlink(target, history.path);
    await assert.rejects(history.load(), /is a symbolic link; it is not followed/);
    await assert.rejects(history.append(["list_groups"]), /is a symbolic link/);
    assert.equal(await Deno.readTextFile(target), "secret line\n");
    assert.ok((await Deno.lstat(history.path)).isSymlink, "the user's link is left alone");
    await Deno.remove(history.path);
  });

  await t.step(
    "a pipe is never opened (it would wait for ever), a directory is refused",
    async () => {
      await new Deno.Command("mkfifo", { args: [history.path] }).output();
      await assert.rejects(within(history.load(), "load of a pipe"), /is not a regular file/);
      await assert.rejects(within(history.append(["x"]), "save over a pipe"), /not a regular/);
      await Deno.remove(history.path);
      await Deno.mkdir(history.path);
      await assert.rejects(history.load(), /is not a regular file/);
      await Deno.remove(history.path);
    },
  );

  await t.step("the history directory a link: nothing read or written there", async () => {
    await Deno.remove(dir);
    await Deno.mkdir(temp.join("elsewhere"));
    await Deno.symlink(temp.join("elsewhere"), dir);
    await assert.rejects(history.load(), /is a symbolic link/);
    await assert.rejects(history.append(["list_groups"]), /is a symbolic link/);
    assert.deepEqual(await namesIn(temp.join("elsewhere")), []);
    await Deno.remove(dir);
    await Deno.mkdir(dir);
  });

  await t.step(`a huge file: only its last ${HISTORY_LIMIT_BYTES} bytes are read`, async () => {
    const filler = `${"x".repeat(99)}\n`; // 100 bytes a line
    await Deno.writeTextFile(
      history.path,
      `oldest\n${filler.repeat((3 * HISTORY_LIMIT_BYTES) / 100)}newest\n`,
    );
    const lines = await history.load();
    assert.equal(lines.length, HISTORY_LINES);
    assert.equal(lines.at(-1), "newest");
    assert.ok(!lines.includes("oldest"));
    // saving keeps the last lines only: the file shrinks to them
    await history.append(["list_groups"]);
    const saved = (await Deno.readTextFile(history.path)).trimEnd().split("\n");
    assert.equal(saved.length, HISTORY_LINES);
    assert.deepEqual(saved.slice(-2), ["newest", "list_groups"]);
  });

  await t.step("a file one line of which fills the bound: no part of a line is taken", async () => {
    await Deno.writeTextFile(history.path, `${"y".repeat(2 * HISTORY_LIMIT_BYTES)}\nlast\n`);
    assert.deepEqual(await history.load(), ["last"]);
  });

  await t.step(
    "binary, controls, over-long lines: only lines a terminal shows as written",
    async () => {
      const bytes = new Uint8Array(64 * 1024);
      crypto.getRandomValues(bytes);
      const text = new TextEncoder().encode(
        "list_groups\nevil \x1b[2J\nrtl \u202e\nlong " + "z".repeat(HISTORY_LINE_MAX_CHARS) +
          "\n\n   \nshow_downloads\n",
      );
      await Deno.writeFile(history.path, new Uint8Array([...bytes, 10, ...text]));
      const lines = await history.load();
      assert.deepEqual(lines.slice(-2), ["list_groups", "show_downloads"]);
      for (const line of lines) {
        assert.ok(!TERMINAL_UNSAFE.test(line), JSON.stringify(line));
        assert.ok(!line.includes("\ufffd") && line.length <= HISTORY_LINE_MAX_CHARS);
      }
      // nor is such a line saved
      await Deno.writeTextFile(history.path, "");
      await history.append(["quit", "x\x1b[31m", "a\nb"]);
      assert.equal(await Deno.readTextFile(history.path), "quit\n");
    },
  );
});

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
      download: download("../../.bashrc", { group, path: "/home/d/../../.bashrc" }),
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
