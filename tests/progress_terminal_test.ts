/**
 * Live progress on a terminal: hashing progress during upload_file, the prompt's transfer
 * summary redrawn while a line is being typed (the line survives), and `watch` redrawing
 * until Enter. A pseudo-terminal comes from util-linux `script` (tests/pty.ts); skipped
 * where it is missing.
 */

import assert from "node:assert/strict";
import { startSwarm, within, writeRandomFile } from "./harness.ts";
import { hasScript, startTerminal } from "./pty.ts";

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
    // 3 MiB at 256 KiB/s: some 12 s of download to look at; its own state, not the user's
    await using term = startTerminal({
      trackerPort: swarm.tracker.port,
      stateHome: swarm.dir.join("tty.state"),
      cwd: home,
      extraArgs: ["--download-limit-kib", "256"],
      env: { COLUMNS: "120" },
    });
    await term.waitFor("swarmshare> ");
    await term.type("create_user tty pw\r");
    await term.waitFor('user "tty" created');
    await term.type("login tty pw\r");
    await term.waitFor("tty> ");
    await term.type(`join_group ${swarm.group}\r`);
    await term.waitFor("waiting for its owner");
    await seed.ok(`accept_request ${swarm.group} tty`);

    // hashing a large file shows a line redrawn in place, cleared before the result
    await term.type(`upload_file big.bin ${swarm.group}\r`);
    await term.waitFor(/hashing big\.bin: \d+% \([\d.]+ \w+ of 48\.0 MiB\)/);
    const shared = await term.waitFor('shared "big.bin"');
    assert.ok(shared.includes("\r\x1b[K"), JSON.stringify(shared));
    await term.waitFor("tty> ");

    // the prompt sums up the running download
    await term.type(`download_file ${swarm.group} f.bin downloads\r`);
    await term.waitFor("see show_downloads");
    await term.waitFor(/tty \[1↓ \d+% [\d.]+ \w+\/s\]> /);
    // a half-typed line survives the redraws: a later prompt still shows it, and it runs
    await term.type("list_gr");
    await term.waitFor("list_gr");
    await term.waitFor(/tty \[1↓ \d+% [\d.]+ \w+\/s\]> list_gr/);
    await term.type("oups\r");
    await term.waitFor("GROUP");
    await term.waitFor("]> ");

    // watch draws a bar per download and per peer, redraws in place, and stops at Enter
    await term.type("watch\r");
    await term.waitFor(/\[D\] \[crew\] f\.bin \[[#-]+\] +\d+%/);
    await term.waitFor(/from 127\.0\.0\.1:\d+ +\[[#-]+\]/);
    // moved up over the last frame: a redraw
    await term.waitFor(new RegExp(String.raw`\x1b\[\d+A\x1b\[J`));
    await term.type("\r");
    const after = await term.waitFor(/tty( \[[^\]]*\])?> /);
    assert.ok(!after.includes("unknown command"), "the Enter that stopped watch ran nothing");
    await term.type("\x04"); // Ctrl-D: end of input
    // while the download runs, leaving is asked first (it may have ended just before)
    const asked = await Promise.race([
      term.waitFor("quit anyway? [y/N] ").then(() => true, () => false),
      term.child.status.then(() => false),
    ]);
    if (asked) await term.type("y\r");
    assert.equal((await within(term.child.status, "the shell to exit")).code, 0);
  },
});
