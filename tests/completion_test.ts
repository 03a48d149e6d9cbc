/**
 * peer/completion.ts without a terminal: what Tab offers for commands, group names, a
 * group's file names and local paths (`~`, spaces, quotes), and how each candidate is
 * written so that the shell reads back the name offered.
 */

import assert from "node:assert/strict";
import {
  completeLine,
  type CompletionSources,
  localEntries,
  MAX_LOCAL_ENTRIES,
} from "../peer/completion.ts";
import { TempDir } from "./harness.ts";

/** Lists as the tracker and the disk would give them; `asked` records what was asked. */
function sources(
  lists: {
    groups?: string[];
    files?: Record<string, string[]>;
    entries?: Record<string, string[]>;
  },
) {
  const asked: string[] = [];
  const fake: CompletionSources = {
    groups: () => {
      asked.push("groups");
      return Promise.resolve(lists.groups ?? []);
    },
    files: (group) => {
      asked.push(`files ${group}`);
      return Promise.resolve(lists.files?.[group] ?? []);
    },
    entries: (dir) => {
      asked.push(`entries ${dir}`);
      return Promise.resolve(lists.entries?.[dir] ?? []);
    },
  };
  return { fake, asked };
}

/** A line typed, the candidates Tab offers, and the end of the line they replace. */
type Case = [line: string, candidates: string[], replaced: string];

async function check(fake: CompletionSources, cases: Case[]): Promise<void> {
  for (const [line, candidates, replaced] of cases) {
    assert.deepEqual(await completeLine(line, fake), [candidates, replaced], line);
  }
}

Deno.test("completion: command words, the second word of two-word commands, help's argument", async () => {
  const { fake } = sources({});
  const [all, replaced] = await completeLine("", fake);
  assert.equal(replaced, "");
  for (const word of ["login ", "download_file ", "list_requests ", "requests ", "quit "]) {
    assert.ok(all.includes(word), `${word} missing from ${all}`);
  }
  assert.equal(new Set(all).size, all.length, "a word offered twice (logout has two commands)");
  await check(fake, [
    ["lo", ["login ", "logout "], "lo"],
    ["  downl", ["download_file "], "downl"],
    ["logout ", ["--all "], ""],
    ["requests l", ["list_requests "], "l"],
    ["help can", ["cancel_download "], "can"],
    // nothing for what names no command, nor past a command's last argument
    ["frobnicate ", [], ""],
    ["zz", [], "zz"],
    ["quit now", [], "now"],
    ["list_files films x", [], "x"],
  ]);
});

Deno.test("completion: group names from the tracker, file names of the group typed before", async () => {
  const { fake, asked } = sources({
    groups: ["films", "fiction", "music", "films"],
    files: { films: ["big.iso", "my notes.txt", "it's here.txt", "bad\x1b[2J.txt"] },
  });
  await check(fake, [
    ["list_files fi", ["fiction ", "films "], "fi"],
    ["accept_request f", ["fiction ", "films "], "f"],
    ["accept_request films ", [], ""],
    ["download_file films b", ["big.iso "], "b"],
    // blanks and quotes are written so that the line reads back the name
    ["download_file films my", ["my\\ notes.txt "], "my"],
    ["download_file films 'my n", ["'my notes.txt' "], "'my n"],
    ['download_file films "my', ['"my notes.txt" '], '"my'],
    ["download_file films my\\ n", ["my\\ notes.txt "], "my\\ n"],
    ["download_file films it", ["it\\'s\\ here.txt "], "it"],
    // a name with a quote of the kind opened is written in the other kind
    ["download_file films 'it", [`"it's here.txt" `], "'it"],
    // a name a terminal would act on is never offered (nobody could type it)
    ["download_file films ba", [], "ba"],
    // a quoted group name is the group
    ["stop_share 'films' b", ["big.iso "], "b"],
    ["stop_share music b", [], "b"],
  ]);
  assert.ok(asked.includes("files films") && asked.includes("files music"));
});

Deno.test("completion: local paths, directories with a slash, hidden ones when asked for", async () => {
  const { fake, asked } = sources({
    entries: {
      "": ["notes about.txt", "Downloads/", ".hidden", "big.iso"],
      "~/": ["My Docs/", "a.txt"],
      "~/My Docs/": ["plan.txt", "old/"],
      "/tmp/": ["x"],
    },
  });
  await check(fake, [
    ["upload_file n", ["notes\\ about.txt "], "n"],
    ["upload_file ", ["Downloads/", "big.iso ", "notes\\ about.txt "], ""],
    ["upload_file .", [".hidden "], "."],
    ["upload_file ~/M", ["~/My\\ Docs/"], "~/M"],
    ["upload_file ~/My\\ Docs/", ["~/My\\ Docs/old/", "~/My\\ Docs/plan.txt "], "~/My\\ Docs/"],
    // inside an open quote a directory leaves it open, a file closes it
    ["upload_file '~/My Docs/p", ["'~/My Docs/plan.txt' "], "'~/My Docs/p"],
    ['upload_file "~/My', ['"~/My Docs/'], '"~/My'],
    ["download_file films big.iso /tmp/", ["/tmp/x "], "/tmp/"],
  ]);
  assert.deepEqual(asked, [
    "entries ",
    "entries ",
    "entries ",
    "entries ~/",
    "entries ~/My Docs/",
    "entries ~/My Docs/",
    "entries ~/",
    "entries /tmp/",
  ]);
});

Deno.test("localEntries: reads a directory as upload_file resolves it, bounded, never failing", async () => {
  await using dir = await TempDir.create();
  const home = dir.join("home");
  const work = dir.join("work");
  await Deno.mkdir(`${home}/My Docs`, { recursive: true });
  await Deno.mkdir(`${work}/sub`, { recursive: true });
  await Deno.writeTextFile(`${home}/My Docs/plan.txt`, "");
  await Deno.writeTextFile(`${work}/a b.txt`, "");
  await Deno.writeTextFile(`${work}/sub/inner`, "");
  await Deno.symlink(`${work}/sub`, `${work}/to-sub`);
  await Deno.symlink(`${work}/nowhere`, `${work}/dangling`);
  const paths = { base: work, env: { get: (name: string) => name === "HOME" ? home : undefined } };
  const sorted = async (typed: string, options = paths) =>
    (await localEntries(typed, options)).sort();
  assert.deepEqual(await sorted(""), ["a b.txt", "dangling", "sub/", "to-sub/"]);
  assert.deepEqual(await sorted("sub/"), ["inner"]);
  assert.deepEqual(await sorted("./to-sub/"), ["inner"]);
  assert.deepEqual(await sorted("~/"), ["My Docs/"]);
  assert.deepEqual(await sorted("~/My Docs/"), ["plan.txt"]);
  assert.deepEqual(await sorted(`${home}/`), ["My Docs/"]);
  // what cannot be read offers nothing: no such directory, a file, ~user, ~ without HOME
  assert.deepEqual(await sorted("missing/"), []);
  assert.deepEqual(await sorted("a b.txt/"), []);
  assert.deepEqual(await sorted("~root/"), []);
  assert.deepEqual(await sorted("~/", { base: work, env: { get: () => undefined } }), []);
  // a huge directory costs a bounded read
  await Deno.mkdir(`${work}/many`);
  for (let i = 0; i < MAX_LOCAL_ENTRIES + 5; i++) await Deno.writeTextFile(`${work}/many/${i}`, "");
  assert.equal((await sorted("many/")).length, MAX_LOCAL_ENTRIES);
});
