/** The README's main command keeps working: the demo runs a small swarm end to end. */

import assert from "node:assert/strict";

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
