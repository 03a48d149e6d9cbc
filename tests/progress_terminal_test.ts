/**
 * Live progress on a terminal: hashing progress during upload_file, the prompt's transfer
 * summary redrawn while a line is being typed (the line survives), and `watch` redrawing
 * until Enter. A pseudo-terminal comes from util-linux `script`; skipped where it is missing.
 */

import assert from "node:assert/strict";
import { MAIN, startSwarm, within, writeRandomFile } from "./harness.ts";

const hasScript =
  new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .outputSync().success;

const MiB = 1 << 20;

Deno.test({
  name: "terminal: hashing progress, a prompt that follows the download, watch until Enter",
  ignore: !hasScript,
  async fn() {
    await using swarm = await startSwarm(["seed"]);
    const seed = swarm.shell("seed");
    await writeRandomFile(`${swarm.home("seed")}/f.bin`, 3 * MiB);
    await seed.ok(`upload_file f.bin ${swarm.group}`);
    const home = swarm.dir.join("tty");
    await Deno.mkdir(`${home}/downloads`, { recursive: true });
    await writeRandomFile(`${home}/big.bin`, 48 * MiB);
    // 3 MiB at 256 KiB/s: some 12 s of download to look at
    const client = `'${Deno.execPath()}' run -A '${MAIN}' client 127.0.0.1 0 127.0.0.1 ` +
      `${swarm.tracker.port} --download-limit-kib 256`;
    const child = new Deno.Command("script", {
      args: ["-qfec", client, "/dev/null"],
      cwd: home,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1", TERM: "xterm", COLUMNS: "120" },
    }).spawn();
    const input = child.stdin.getWriter();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let screen = "";
    /** Waits for `pattern` in what the terminal shows next; returns all up to its end. */
    const waitFor = async (pattern: string | RegExp) => {
      const find = () => {
        if (typeof pattern === "string") {
          const at = screen.indexOf(pattern);
          return at < 0 ? -1 : at + pattern.length;
        }
        const match = pattern.exec(screen);
        return match ? match.index + match[0].length : -1;
      };
      while (find() < 0) {
        const { value, done } = await within(reader.read(), `${pattern} on the terminal`)
          .catch((error) => {
            throw new Error(`${error.message}; the terminal shows: ${JSON.stringify(screen)}`);
          });
        if (done) throw new Error(`terminal closed before ${pattern}: ${screen}`);
        screen += value;
      }
      const end = find();
      const seen = screen.slice(0, end);
      screen = screen.slice(end);
      return seen;
    };
    const type = (keys: string) => input.write(new TextEncoder().encode(keys));
    try {
      await waitFor("swarmshare> ");
      await type("create_user tty pw\r");
      await waitFor('user "tty" created');
      await type("login tty pw\r");
      await waitFor("tty> ");
      await type(`join_group ${swarm.group}\r`);
      await waitFor("waiting for its owner");
      await seed.ok(`accept_request ${swarm.group} tty`);

      // hashing a large file shows a line redrawn in place, cleared before the result
      await type(`upload_file big.bin ${swarm.group}\r`);
      await waitFor(/hashing big\.bin: \d+% \([\d.]+ \w+ of 48\.0 MiB\)/);
      const shared = await waitFor('shared "big.bin"');
      assert.ok(shared.includes("\r\x1b[K"), JSON.stringify(shared));
      await waitFor("tty> ");

      // the prompt sums up the running download
      await type(`download_file ${swarm.group} f.bin downloads\r`);
      await waitFor("see show_downloads");
      await waitFor(/tty \[1↓ \d+% [\d.]+ \w+\/s\]> /);
      // a half-typed line survives the redraws: a later prompt still shows it, and it runs
      await type("list_gr");
      await waitFor("list_gr");
      await waitFor(/tty \[1↓ \d+% [\d.]+ \w+\/s\]> list_gr/);
      await type("oups\r");
      await waitFor("GROUP");
      await waitFor("]> ");

      // watch draws a bar per download and per peer, redraws in place, and stops at Enter
      await type("watch\r");
      await waitFor(/\[D\] \[crew\] f\.bin \[[#-]+\] +\d+%/);
      await waitFor(/from 127\.0\.0\.1:\d+ +\[[#-]+\]/);
      // moved up over the last frame: a redraw
      await waitFor(new RegExp(String.raw`\x1b\[\d+A\x1b\[J`));
      await type("\r");
      const after = await waitFor(/tty( \[[^\]]*\])?> /);
      assert.ok(!after.includes("unknown command"), "the Enter that stopped watch ran nothing");
      await type("\x04"); // Ctrl-D: end of input
      // while the download runs, leaving is asked first (it may have ended just before)
      const asked = await Promise.race([
        waitFor("quit anyway? [y/N] ").then(() => true, () => false),
        child.status.then(() => false),
      ]);
      if (asked) await type("y\r");
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
