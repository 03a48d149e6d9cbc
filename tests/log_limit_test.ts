import assert from "node:assert/strict";
import { limitedLog } from "../lib/log_limit.ts";

Deno.test("limitedLog: a flood of lines passes a bounded few and says how many it dropped", () => {
  let clock = 0;
  const lines: string[] = [];
  const log = limitedLog((line) => lines.push(line), {
    maxLines: 3,
    windowMs: 1000,
    now: () => clock,
  });
  for (let i = 0; i < 10_000; i++) log(`hostile ${i}`);
  assert.deepEqual(lines, ["hostile 0", "hostile 1", "hostile 2"]);
  clock = 999;
  log("still the same window");
  assert.equal(lines.length, 3);
  clock = 1000;
  log("next window");
  assert.deepEqual(lines.slice(3), ["(9998 more log lines suppressed)", "next window"]);
  clock = 5000;
  log("quiet since");
  assert.deepEqual(lines.slice(5), ["quiet since"], "nothing suppressed: nothing to say");
});
