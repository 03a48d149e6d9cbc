/**
 * The build: each executable bakes in its program name, so `dist/server` and `dist/client`
 * take the documented argv; a bad `DENORT_BIN` is reported before anything is compiled.
 * (Compiling itself needs a denort, which this machine cannot download; the same argv is
 * covered through `deno run main.ts` by every other test.)
 */

import assert from "node:assert/strict";
import { compileArgs, denortProblem } from "../scripts/build.ts";
import { RUNTIME_FLAGS, TRACKER_RUNTIME_FLAGS } from "../scripts/runtime_flags.ts";
import { TempDir } from "./harness.ts";

const BUILD = new URL("../scripts/build.ts", import.meta.url).pathname;

Deno.test("build: each binary is main.ts with its program name baked in", () => {
  assert.deepEqual(compileArgs({ program: "server", output: "dist/server" }).slice(-4), [
    "--output",
    "dist/server",
    "main.ts",
    "server",
  ]);
  const client = compileArgs({ program: "client", output: "dist/client" });
  assert.deepEqual(client.slice(-2), ["main.ts", "client"]);
  assert.ok(client.includes("--allow-net"));
  const include = client.indexOf("--include");
  assert.equal(
    client[include + 1],
    "peer/piece_writer_worker.ts",
    "the disk writer worker is embedded",
  );
  const included = client.filter((_, i) => client[i - 1] === "--include");
  for (const worker of included) {
    assert.ok(Deno.statSync(new URL(`../${worker}`, import.meta.url)).isFile, worker);
  }
  // every worker the sources start must be embedded, or the binary fails at that point: a
  // module written for a worker says so (deno.worker), and one may be named far from the
  // `new Worker` that starts it
  for (const dir of ["lib", "peer", "tracker"]) {
    for (const entry of Deno.readDirSync(new URL(`../${dir}`, import.meta.url))) {
      const source = Deno.readTextFileSync(new URL(`../${dir}/${entry.name}`, import.meta.url));
      const workers = [...source.matchAll(/new Worker\(new URL\("\.\/([\w.]+)"/g)]
        .map(([, worker]) => `${dir}/${worker}`);
      if (source.includes('/// <reference lib="deno.worker" />')) {
        workers.push(`${dir}/${entry.name}`);
      }
      for (const worker of workers) {
        assert.ok(included.includes(worker), `${worker} is not --include'd`);
      }
    }
  }
  assert.ok(!client.includes("--allow-all") && !client.includes("-A"));
});

Deno.test("build: DENORT_BIN must name a file", async () => {
  await using dir = await TempDir.create();
  assert.equal(await denortProblem(undefined), undefined);
  assert.match((await denortProblem(dir.join("missing")))!, /does not exist/);
  assert.match((await denortProblem(dir.path))!, /is not a file/);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BUILD],
    env: { DENORT_BIN: dir.join("missing"), NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 1);
  assert.match(new TextDecoder().decode(stderr), /^error: DENORT_BIN=.*missing does not exist/);
});

Deno.test("build and tasks run each program with its V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const flagsOf = { server: TRACKER_RUNTIME_FLAGS, client: RUNTIME_FLAGS, dev: RUNTIME_FLAGS };
  for (const [task, flags] of Object.entries(flagsOf)) {
    for (const flag of flags) {
      assert.ok(config.tasks[task].includes(flag), `${task}: ${flag}`);
    }
  }
  assert.ok(!config.tasks.server.includes("--optimize-for-size"));
  for (const program of ["server", "client"] as const) {
    const args = compileArgs({ program, output: `dist/${program}` });
    for (const flag of flagsOf[program]) assert.ok(args.includes(flag), `${program}: ${flag}`);
  }
});
