/**
 * The shell on a terminal: a prompt that names the user, and line editing. A pseudo-terminal
 * comes from util-linux `script`; the test is skipped where that is missing.
 */

import assert from "node:assert/strict";
import { MAIN, TempDir, TrackerProcess, within } from "./harness.ts";

const hasScript =
  new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .outputSync().success;

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
      env: { NO_COLOR: "1", TERM: "xterm" },
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
