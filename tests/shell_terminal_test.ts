/**
 * The shell on a terminal: a prompt that names the user, and line editing. A pseudo-terminal
 * comes from util-linux `script`; the test is skipped where that is missing.
 */

import assert from "node:assert/strict";
import { JsonShell, MAIN, TempDir, TrackerProcess, within } from "./harness.ts";

const hasScript =
  new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .outputSync().success;

/** A client on a pseudo-terminal: keys typed in, the screen read until some text shows. */
function startTerminal(trackerPort: number, stateHome: string, cwd?: string) {
  const client =
    `'${Deno.execPath()}' run -A '${MAIN}' client 127.0.0.1 0 127.0.0.1 ${trackerPort}`;
  const child = new Deno.Command("script", {
    args: ["-qfec", client, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    cwd,
    env: { NO_COLOR: "1", TERM: "xterm", XDG_STATE_HOME: stateHome },
  }).spawn();
  const input = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let screen = "";
  /** Everything shown, for checks that something never appeared. */
  let everything = "";
  const waitFor = async (text: string) => {
    while (!screen.includes(text)) {
      const { value, done } = await within(reader.read(), `"${text}" on the terminal`)
        .catch((error) => {
          throw new Error(`${error.message}; the terminal shows: ${JSON.stringify(screen)}`);
        });
      if (done) throw new Error(`terminal closed before "${text}": ${screen}`);
      screen += value;
      everything += value;
    }
    const at = screen.indexOf(text) + text.length;
    const seen = screen.slice(0, at);
    screen = screen.slice(at);
    return seen;
  };
  const type = (keys: string) => input.write(new TextEncoder().encode(keys));
  return {
    child,
    waitFor,
    type,
    get everything() {
      return everything;
    },
    async [Symbol.asyncDispose]() {
      await input.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await reader.cancel().catch(() => {});
    },
  };
}

Deno.test({
  name: "terminal: prompt, line editing and history",
  ignore: !hasScript,
  async fn() {
    await using dir = await TempDir.create();
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
    const client =
      `'${Deno.execPath()}' run -A '${MAIN}' client 127.0.0.1 0 127.0.0.1 ${tracker.port}`;
    const child = new Deno.Command("script", {
      args: ["-qfec", client, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      // its own state: the user's history and pins stay out of it
      env: { NO_COLOR: "1", TERM: "xterm", XDG_STATE_HOME: dir.join("state") },
    }).spawn();
    const input = child.stdin.getWriter();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let screen = "";
    const waitFor = async (text: string) => {
      while (!screen.includes(text)) {
        const { value, done } = await within(reader.read(), `"${text}" on the terminal`)
          .catch((error) => {
            throw new Error(`${error.message}; the terminal shows: ${JSON.stringify(screen)}`);
          });
        if (done) throw new Error(`terminal closed before "${text}": ${screen}`);
        screen += value;
      }
      const at = screen.indexOf(text) + text.length;
      const seen = screen.slice(0, at);
      screen = screen.slice(at);
      return seen;
    };
    const type = (keys: string) => input.write(new TextEncoder().encode(keys));
    try {
      await waitFor("swarmshare> ");
      await type("create_user tty pw\r");
      await waitFor('user "tty" created');
      await waitFor("swarmshare> ");
      // edit the line before sending it: type a typo, erase it with backspace
      await type("login tty pwx\x7f\r");
      await waitFor("logged in as tty");
      await waitFor("tty> ");
      await type("create_group term\r");
      await waitFor("you are its owner");
      await waitFor("tty> ");
      // arrow up recalls the last command; editing it turns it into a new one
      await type("\x1b[A\x7f\x7f\x7f\x7fzzz\r");
      await waitFor('group "zzz" created');
      await waitFor("tty> ");
      // lines with passwords are not in the history: three steps up go past both groups to
      // nothing, where an unfiltered history would offer "login tty pw"
      await type("\x1b[A\x1b[A\x1b[A\r");
      await type("list_groups\r");
      const recalled = await waitFor("GROUP");
      assert.ok(recalled.includes("create_group term"), recalled);
      assert.ok(!recalled.includes("login") && !recalled.includes("already"), recalled);
      await type("\x04"); // Ctrl-D: end of input
      assert.equal((await within(child.status, "the shell to exit")).code, 0);
    } finally {
      await input.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await reader.cancel().catch(() => {});
    }
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
      await using term = startTerminal(tracker.port, home, dir.join("work"));
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
    await using term = startTerminal(tracker.port, home);
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
    await using dir = await TempDir.create();
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
    await using seeder = JsonShell.start(tracker.port);
    await seeder.ok("create_user seed pw");
    await seeder.ok("login seed pw");
    await seeder.ok("create_group g");
    await Deno.writeFile(dir.join("big.bin"), new Uint8Array(4 * 1024 * 1024).fill(7));
    await seeder.ok(`upload_file ${dir.join("big.bin")} g`);
    await seeder.ok("set_limits 16 none"); // 4 MiB at 16 KiB/s: the download runs for minutes
    await Deno.mkdir(dir.join("into"));
    await using term = startTerminal(tracker.port, dir.join("state"), dir.join("into"));
    await term.waitFor("swarmshare> ");
    await term.type("create_user leech pw\r");
    await term.waitFor("created");
    await term.type("login leech pw\r");
    await term.waitFor("leech> ");
    await term.type("join_group g\r");
    await term.waitFor("waiting for its owner");
    await seeder.ok("accept_request g leech");
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
