/** The README's main command keeps working: the demo runs a small swarm end to end. */

import assert from "node:assert/strict";
import { within } from "./harness.ts";

Deno.test("demo: four clients, three seeders, the file verified, exit 0", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../scripts/demo.ts", import.meta.url).pathname, "--size", "3"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const output = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${output}\n${new TextDecoder().decode(stderr)}`);
  assert.match(output, /3 seeders online/);
  assert.match(output, /complete: SHA-1 verified, 3\.0 MiB in/);
  const demoDir = output.match(/^swarmshare demo in (\S+)$/m)?.[1];
  assert.ok(demoDir);
  await assert.rejects(Deno.stat(demoDir), Deno.errors.NotFound, "the demo left its directory");
});

Deno.test("demo: bad arguments exit 2 with usage", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../scripts/demo.ts", import.meta.url).pathname, "--size", "lots"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 2);
  assert.match(new TextDecoder().decode(stderr), /^error: --size must be a number of MiB/);
});

Deno.test("demo: Ctrl-C stops every process and removes its directory", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../scripts/demo.ts", import.meta.url).pathname, "--size", "3"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  // interrupt once the clients are up, mid-run
  while (!output.includes("are members of group")) {
    const { value, done } = await within(lines.read(), "the demo's clients to start");
    if (done) break;
    output += value;
  }
  child.kill("SIGINT");
  const { code } = await within(child.status, "the demo to exit");
  let errors = "";
  for (let part = await stderr.read(); !part.done; part = await stderr.read()) errors += part.value;
  await lines.cancel();
  assert.equal(code, 130, errors);
  assert.match(errors, /interrupted/);
  const demoDir = output.match(/^swarmshare demo in (\S+)$/m)?.[1];
  assert.ok(demoDir);
  await assert.rejects(Deno.stat(demoDir), Deno.errors.NotFound, "the demo left its directory");
  const ports = [...output.matchAll(/127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]));
  for (const port of ports) {
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }).then((conn) => conn.close()),
      `something still listens on ${port}`,
    );
  }
});
