/**
 * The shell on a terminal: a prompt that names the user, and line editing. A pseudo-terminal
 * comes from util-linux `script` (tests/pty.ts); the tests are skipped where that is missing.
 */

import assert from "node:assert/strict";
import { partPathFor } from "../peer/storage.ts";
import { JsonShell, runScript, TempDir, TrackerProcess, within } from "./harness.ts";
import { hasScript, screenRows, startTerminal, type Terminal } from "./pty.ts";

/**
 * A tracker, a seeder of `big.bin` (4 MiB, 8 pieces) in group `g` that sends at 16 KiB/s so
 * that a download of it runs for minutes, and `leech`, a member of `g`, logged in at a
 * terminal started in `<dir>/leech`.
 */
interface SlowSwarm extends AsyncDisposable {
  dir: TempDir;
  tracker: TrackerProcess;
  seeder: JsonShell;
  term: Terminal;
}

async function slowSwarm(): Promise<SlowSwarm> {
  const held: AsyncDisposable[] = [];
  const dispose = async () => {
    for (const resource of held.reverse()) await resource[Symbol.asyncDispose]();
  };
  try {
    const dir = await TempDir.create();
    held.push(dir);
    const tracker = await TrackerProcess.start(dir.join("tracker.db"));
    held.push(tracker);
    const seeder = JsonShell.start(tracker.port);
    held.push(seeder);
    await seeder.ok("create_user seed pw");
    await seeder.ok("login seed pw");
    await seeder.ok("create_group g");
    await seeder.ok("create_user leech pw");
    await Deno.writeFile(dir.join("big.bin"), new Uint8Array(4 * 1024 * 1024).fill(7));
    await seeder.ok(`upload_file ${dir.join("big.bin")} g`);
    await seeder.ok("set_limits 16 none");
    await Deno.mkdir(dir.join("leech"));
    const term = startTerminal({
      trackerPort: tracker.port,
      stateHome: dir.join("state"),
      cwd: dir.join("leech"),
    });
    held.push(term);
    await term.waitFor("swarmshare> ");
    await term.type("login leech pw\r");
    await term.waitFor("leech> ");
    await term.type("join_group g\r");
    await term.waitFor("waiting for its owner");
    await seeder.ok("accept_request g leech");
    return { dir, tracker, seeder, term, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

Deno.test({
  name: "terminal: prompt, line editing and history",
  ignore: !hasScript,
  async fn() {
    await using dir = await TempDir.create();
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
    // its own state: the user's history and pins stay out of it
    await using term = startTerminal({ trackerPort: tracker.port, stateHome: dir.join("state") });
    await term.waitFor("swarmshare> ");
    await term.type("create_user tty pw\r");
    await term.waitFor('user "tty" created');
    await term.waitFor("swarmshare> ");
    // edit the line before sending it: type a typo, erase it with backspace
    await term.type("login tty pwx\x7f\r");
    await term.waitFor("logged in as tty");
    await term.waitFor("tty> ");
    await term.type("create_group term\r");
    await term.waitFor("you are its owner");
    await term.waitFor("tty> ");
    // arrow up recalls the last command; editing it turns it into a new one
    await term.type("\x1b[A\x7f\x7f\x7f\x7fzzz\r");
    await term.waitFor('group "zzz" created');
    await term.waitFor("tty> ");
    // lines with passwords are not in the history: three steps up go past both groups to
    // nothing, where an unfiltered history would offer "login tty pw"
    await term.type("\x1b[A\x1b[A\x1b[A\r");
    await term.type("list_groups\r");
    const recalled = await term.waitFor("GROUP");
    assert.ok(recalled.includes("create_group term"), recalled);
    assert.ok(!recalled.includes("login") && !recalled.includes("already"), recalled);
    await term.type("\x04"); // Ctrl-D: end of input
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
  },
});

Deno.test({
  name: "terminal: hidden passwords, Ctrl-C, Tab completion, help width, saved history",
  ignore: !hasScript,
  async fn() {
    await using dir = await TempDir.create();
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
    const home = dir.join("state");
    await Deno.mkdir(dir.join("work"));
    await Deno.writeTextFile(dir.join("work/notes about.txt"), "x");
    const secret = "s3cret-Pass";
    {
      await using term = startTerminal({
        trackerPort: tracker.port,
        stateHome: home,
        cwd: dir.join("work"),
      });
      await term.waitFor("swarmshare> ");
      // create_user without a password asks twice with echo off; a mismatch is refused
      await term.type("create_user tty\r");
      await term.waitFor("new password: ");
      await term.type(`${secret}\r`);
      await term.waitFor("the same password again: ");
      await term.type(`${secret}x\r`);
      await term.waitFor("error: the passwords do not match; no account was created");
      await term.type("create_user tty\r");
      await term.waitFor("new password: ");
      await term.type(`${secret}\r`);
      await term.waitFor("again: ");
      await term.type(`${secret}\r`);
      await term.waitFor('user "tty" created');
      await term.type("login tty\r");
      await term.waitFor("password: ");
      // Ctrl-C abandons the password question, and the client stays
      await term.type("abc\x03");
      await term.waitFor("error: cancelled: no password was given");
      await term.type("login tty\r");
      await term.waitFor("password: ");
      await term.type(`${secret}\r`);
      await term.waitFor("logged in as tty");
      // the questions stay on screen (readline redraws its line: it used to wipe them), and
      // what was typed after them never shows
      const rows = screenRows(term.everything);
      for (const question of ["new password: ", "the same password again: ", "password: "]) {
        assert.ok(rows.includes(question), `"${question}" is not on screen: ${rows.join("\n")}`);
      }
      await term.waitFor("tty> ");
      await term.type("create_group films\r");
      await term.waitFor("you are its owner");
      await term.waitFor("tty> ");
      // Ctrl-C abandons a half-typed line: it is never run, the prompt comes back
      await term.type("leave_group films\x03");
      await term.waitFor("^C");
      await term.waitFor("tty> ");
      // Tab completes a command, then a group name from the tracker, then a local path
      await term.type("list_gr\t");
      await term.waitFor("list_groups ");
      await term.type("\r");
      await term.waitFor("films  tty");
      await term.type("list_files fi\t");
      await term.waitFor("films ");
      await term.type("\r");
      await term.waitFor('no files shared in group "films"');
      await term.type("upload_file not\t");
      await term.waitFor("notes\\ about.txt ");
      await term.type("films\r");
      await term.waitFor('shared "notes about.txt" in group "films"');
      await term.type("download_file films no\t");
      await term.waitFor("notes\\ about.txt ");
      await term.type("\x15"); // Ctrl-U: drop the line
      // help fits the 80 columns script gives the terminal, never cutting a word
      await term.type("help\r");
      const help = await term.waitFor("quit ");
      for (const line of help.split(/\r?\n/)) {
        // deno-lint-ignore no-control-regex
        assert.ok(line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").length <= 80, line);
      }
      await term.waitFor("tty> ");
      await term.type("\x04");
      assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
      assert.ok(!term.everything.includes(secret), "a typed password is never shown");
      assert.ok(!term.everything.includes("left group"), "the abandoned line never ran");
    }
    // the history was saved for tty, private, with no password and no login line in it
    const file = `${home}/swarmshare/history/user-tty`;
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const saved = await Deno.readTextFile(file);
    assert.ok(saved.includes("create_group films\n"), saved);
    assert.ok(
      !saved.includes(secret) && !saved.includes("login") && !saved.includes("create_user"),
    );
    // and comes back at the next login: two steps up recall the last commands of before
    await using term = startTerminal({ trackerPort: tracker.port, stateHome: home });
    await term.waitFor("swarmshare> ");
    await term.type(`login tty ${secret}\r`);
    await term.waitFor("tty> ");
    await term.type("\x1b[A");
    await term.waitFor("help");
    await term.type("\x1b[A");
    await term.waitFor("upload_file notes\\ about.txt films");
    await term.type("\x15\x04");
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
  },
});

Deno.test({
  name: "terminal: Ctrl-D and quit ask first while a download runs",
  ignore: !hasScript,
  async fn() {
    await using swarm = await slowSwarm();
    const { term } = swarm;
    await term.type("download_file g big.bin .\r");
    await term.waitFor("downloading");
    await term.waitFor("]> "); // the prompt sums up the download: leech [1↓ ...]>
    await term.type("quit\r");
    await term.waitFor("1 download is running; quit anyway? [y/N] ");
    await term.type("n\r");
    await term.waitFor("not quitting");
    await term.waitFor("]> "); // the prompt sums up the download: leech [1↓ ...]>
    await term.type("\x04");
    await term.waitFor("1 download is running; quit anyway? [y/N] ");
    await term.type("\r"); // the default is no
    await term.waitFor("]> "); // the prompt sums up the download: leech [1↓ ...]>
    await term.type("show_downloads\r");
    await term.waitFor("[D] [g] big.bin");
    await term.type("\x04");
    await term.waitFor("quit anyway? [y/N] ");
    await term.type("y\r");
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
  },
});

Deno.test({
  name: "terminal: news that comes while a command runs waits for it; no stale prompt is drawn",
  ignore: !hasScript,
  async fn() {
    await using swarm = await slowSwarm();
    const { term } = swarm;
    await term.type("download_file g big.bin .\r");
    await term.waitFor("]> "); // the prompt sums up the download: leech [1↓ ...]>
    await term.type("logout\r");
    await term.waitFor("swarmshare> ");
    // login takes the download up again, and says so while the login itself still runs
    await term.type("login leech pw\r");
    await term.waitFor('resuming download of "big.bin"');
    await term.waitFor("]> ");
    const rows = screenRows(term.everything);
    const screen = rows.join("\n");
    // the old shell drew its prompt for the news and then the reply after it:
    // "swarmshare> logged in as leech"
    assert.ok(!rows.some((row) => /> (logged in|resuming)/.test(row)), screen);
    assert.ok(rows.some((row) => row.startsWith("logged in as leech")), screen);
    assert.ok(rows.some((row) => row.startsWith('resuming download of "big.bin"')), screen);
  },
});

Deno.test({
  name: "terminal: cancel_download asks whether to keep the part file; a pipe keeps it",
  ignore: !hasScript,
  async fn() {
    await using swarm = await slowSwarm();
    const { dir, tracker, term } = swarm;
    await Deno.mkdir(dir.join("piped"));

    // from a pipe nobody is asked: the part file is kept, and the reply says so
    const piped = await runScript(tracker.port, [
      "login leech pw",
      `download_file g big.bin ${dir.join("piped")}`,
      "cancel_download g big.bin",
    ]);
    const pipedPart = partPathFor(dir.join("piped/big.bin"));
    assert.ok(
      piped.stdout.some((line) =>
        line.startsWith(
          'cancelled download of "big.bin" in group "g"; kept its part file ' +
            `${pipedPart} (`,
        )
      ),
      piped.stdout.join("\n"),
    );
    assert.ok(!piped.stdout.some((line) => line.includes("[Y/n]")), piped.stdout.join("\n"));
    await Deno.stat(pipedPart);

    const part = partPathFor(dir.join("leech/big.bin"));
    const question = new RegExp(
      String.raw`keep the part file ${RegExp.escape(part)} \(\d+ of 8 pieces verified\)\? ` +
        String.raw`\[Y/n\] `,
    );
    await term.type("download_file g big.bin .\r");
    await term.waitFor("see show_downloads");
    await term.waitFor("]> "); // the prompt sums up the download: leech [1↓ ...]>

    // Ctrl-C at the question cancels nothing
    await term.type("cancel_download g big.bin\r");
    await term.waitFor(question);
    await term.type("\x03");
    await term.waitFor(
      'error: not cancelled: no answer was given; the download of "big.bin" goes on',
    );
    await term.waitFor("]> ");
    await term.type("show_downloads\r");
    await term.waitFor("[D] [g] big.bin");
    await term.waitFor("]> ");

    // Enter keeps the part file
    await term.type("cancel_download g big.bin\r");
    await term.waitFor(question);
    await term.type("\r");
    await term.waitFor(`kept its part file ${part} (`);
    await term.waitFor("leech> ");
    await Deno.stat(part);

    // n deletes it
    await term.type("download_file g big.bin .\r");
    await term.waitFor("(to ");
    await term.waitFor("]> ");
    await term.type("cancel_download g big.bin\r");
    await term.waitFor(question);
    await term.type("n\r");
    await term.waitFor(`deleted its part file ${part}`);
    await term.waitFor("leech> ");
    await assert.rejects(Deno.stat(part), Deno.errors.NotFound);

    // a flag asks nothing
    await term.type("download_file g big.bin .\r");
    await term.waitFor("see show_downloads");
    await term.waitFor("]> ");
    await term.type("cancel_download g big.bin --keep\r");
    const flagged = await term.waitFor(`kept its part file ${part} (`);
    assert.ok(!flagged.includes("[Y/n]"), JSON.stringify(flagged));
    await term.waitFor("leech> ");

    await term.type("help cancel_download\r");
    await term.waitFor("(Enter keeps it)");
    await term.waitFor("leech> ");
    await term.type("\x04"); // nothing runs: Ctrl-D leaves without asking
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
  },
});
