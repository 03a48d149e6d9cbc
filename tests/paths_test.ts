/** lib/paths.ts: where the user started the program, and the state home. */

import assert from "node:assert/strict";
import { defaultTrackerStateDir, startDirectory, stateHome } from "../lib/paths.ts";
import { closestWord } from "../lib/argv.ts";
import { Logger } from "../lib/log.ts";

const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });

Deno.test("startDirectory: INIT_CWD only where deno task runs the program", () => {
  const cases: [string, Record<string, string>, string, string | undefined, string][] = [
    [
      "deno task in the project",
      { INIT_CWD: "/home/me/films" },
      "/src/ss",
      "/src/ss",
      "/home/me/films",
    ],
    ["inherited by a child elsewhere", { INIT_CWD: "/src/ss" }, "/tmp/t1", "/src/ss", "/tmp/t1"],
    ["a compiled binary", { INIT_CWD: "/home/me" }, "/srv", undefined, "/srv"],
    ["a relative INIT_CWD", { INIT_CWD: "films" }, "/src/ss", "/src/ss", "/src/ss"],
    ["no INIT_CWD", {}, "/src/ss", "/src/ss", "/src/ss"],
  ];
  for (const [what, vars, cwd, projectDir, expected] of cases) {
    assert.equal(startDirectory({ env: env(vars), cwd, projectDir }), expected, what);
  }
});

Deno.test("stateHome: XDG_STATE_HOME when absolute, else ~/.local/state", () => {
  assert.equal(stateHome(env({ XDG_STATE_HOME: "/x/state/", HOME: "/h" })), "/x/state");
  assert.equal(stateHome(env({ XDG_STATE_HOME: "rel", HOME: "/h" })), "/h/.local/state");
  assert.equal(defaultTrackerStateDir(env({ HOME: "/h" })), "/h/.local/state/swarmshare/tracker");
  assert.throws(() => stateHome(env({})), /set XDG_STATE_HOME or HOME/);
});

Deno.test("closestWord: slips and near names, nothing for strangers", () => {
  const options = ["db", "state-dir", "json", "idle-timeout-ms", "verbose"];
  const cases: [string, string | undefined][] = [
    ["stat-dir", "state-dir"],
    ["sjon", "json"],
    ["db-path", "db"],
    ["idle-timeout", "idle-timeout-ms"],
    ["verbos", "verbose"],
    ["bogus", undefined],
    ["x", undefined],
  ];
  for (const [word, expected] of cases) assert.equal(closestWord(word, options), expected, word);
});

Deno.test("Logger: levels, one escaped line per entry, limited lines said once", () => {
  const lines: string[] = [];
  let now = 0;
  const log = new Logger({
    level: "info",
    write: (line) => lines.push(line),
    now: () => new Date(now),
  });
  log.debug("hidden");
  log.info("a\nforged 2026-01-01T00:00:00.000Z error line\x1b[2J");
  assert.deepEqual(lines, [
    "1970-01-01T00:00:00.000Z info  a\\nforged 2026-01-01T00:00:00.000Z error line\\u001b[2J",
  ]);
  const limited = log.limited({ maxLines: 2, windowMs: 1000, now: () => now });
  for (let i = 0; i < 5; i++) limited.info(`flood ${i}`);
  limited.debug("a disabled level does not count");
  now = 1000;
  limited.warn("later");
  assert.deepEqual(lines.slice(1).map((line) => line.slice(25)), [
    "info  flood 0",
    "info  flood 1",
    "warn  (3 more log lines suppressed)",
    "warn  later",
  ]);
});
