/** lib/did_you_mean.ts: the edit distance, and which word a slip is taken for, if any. */

import assert from "node:assert/strict";
import { closestWord, editDistance } from "../lib/did_you_mean.ts";
import { commandWords } from "../peer/commands.ts";

Deno.test("editDistance: one per insertion, deletion, substitution or swap of neighbours", () => {
  const cases: [string, string, number][] = [
    ["", "", 0],
    ["login", "login", 0],
    ["", "abc", 3],
    ["login", "logn", 1], // deletion
    ["login", "logiin", 1], // insertion
    ["login", "logan", 1], // substitution
    ["login", "lgoin", 1], // swap of neighbours
    ["ab", "ba", 1],
    ["ca", "abc", 3], // optimal string alignment: no edit of a swapped pair
    ["kitten", "sitting", 3],
    ["quit", "exit", 2],
  ];
  for (const [a, b, distance] of cases) {
    assert.equal(editDistance(a, b), distance, `${a} ~ ${b}`);
    assert.equal(editDistance(b, a), distance, `${b} ~ ${a}`);
  }
});

Deno.test("editDistance: a limit cuts the work short, words past 64 characters are not compared", () => {
  assert.equal(editDistance("a", "abcdef", 2), 3, "beyond the limit reads limit + 1");
  assert.equal(editDistance("kitten", "sitting", 3), 3);
  assert.equal(editDistance("kitten", "sitting", 2), 3);
  const long = "x".repeat(65);
  assert.equal(editDistance(long, long), 0);
  assert.equal(editDistance(long, `${long}y`, 5), 6);
  assert.equal(editDistance(long, "x".repeat(10_000_000), 3), 4, "answered without a table");
});

Deno.test("closestWord: a typo's command; nothing for a distant word", () => {
  const commands = commandWords();
  const cases: [string, string | undefined][] = [
    ["lgoin", "login"],
    ["logni", "login"],
    ["LOGIN", "login"], // case is no typo
    ["hlep", "help"],
    ["quti", "quit"],
    ["dwonload_file", "download_file"],
    ["download_files", "download_file"],
    ["list_group", "list_groups"],
    ["show_download", "show_downloads"],
    ["cancel_dowload", "cancel_download"],
    ["list_request", "list_requests"],
    // too far to be a slip
    ["frobnicate", undefined],
    ["rm", undefined],
    ["", undefined],
    ["q", undefined],
    ["download", undefined],
    ["x".repeat(100_000), undefined],
  ];
  for (const [typed, expected] of cases) {
    assert.equal(closestWord(typed, commands), expected, typed.slice(0, 20));
  }
});

Deno.test("closestWord: the reach grows with the word; ties go to the word listed first", () => {
  // up to 4 letters one edit, up to 8 two, beyond three
  assert.equal(closestWord("abcd", ["abxy"]), undefined);
  assert.equal(closestWord("abcd", ["abcx"]), "abcx");
  assert.equal(closestWord("abcdefgh", ["abcdefxy"]), "abcdefxy");
  assert.equal(closestWord("abcdefgh", ["abcdexyz"]), undefined);
  assert.equal(closestWord("abcdefghi", ["abcdefxyz"]), "abcdefxyz");
  assert.equal(closestWord("abcdefghi", ["abcdewxyz"]), undefined);
  // the nearest wins wherever it is listed; between equals, the first
  assert.equal(closestWord("logout", ["login", "logouts"]), "logouts");
  assert.equal(closestWord("cat", ["bat", "hat"]), "bat");
  assert.equal(closestWord("cat", ["hat", "bat"]), "hat");
  assert.equal(closestWord("cat", new Set(["hat", "cat", "bat"])), "cat");
  assert.equal(closestWord("cat", []), undefined);
});
