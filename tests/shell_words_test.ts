import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { splitWords } from "../lib/shell_words.ts";

Deno.test("splitWords: blanks, quotes and backslashes", () => {
  const cases: [string, string[]][] = [
    ["", []],
    ["   ", []],
    ["list_groups", ["list_groups"]],
    ["  login  alice\tpw  ", ["login", "alice", "pw"]],
    ['upload_file "my notes.txt" g1', ["upload_file", "my notes.txt", "g1"]],
    ["login alice 'pass word'", ["login", "alice", "pass word"]],
    ["a\\ b c", ["a b", "c"]],
    ['say "she said \\"hi\\""', ["say", 'she said "hi"']],
    ["'it''s'", ["its"]],
    ["empty '' arg", ["empty", "", "arg"]],
    ["'a\\b'", ["a\\b"]],
  ];
  for (const [line, words] of cases) assert.deepEqual(splitWords(line), words, line);
});

Deno.test("splitWords: unclosed quotes and a lone backslash are user errors", () => {
  for (const line of ['login "alice', "login 'alice", "trailing \\"]) {
    assert.throws(() => splitWords(line), UserError, line);
  }
});
