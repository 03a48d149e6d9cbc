/**
 * Properties of what helps a person type at the shell, each fed what a person (or a
 * tracker's list, or a directory) may hold: Tab completion of a partial line
 * (peer/completion.ts), "did you mean" (lib/did_you_mean.ts), and help laid out for a width
 * (peer/help.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { closestWord, editDistance } from "../../lib/did_you_mean.ts";
import { splitWords } from "../../lib/shell_words.ts";
import { terminalSafe } from "../../lib/terminal_text.ts";
import { completeLine, type CompletionSources } from "../../peer/completion.ts";
import { commandHelp, helpText, helpWidth, wrapWords } from "../../peer/help.ts";
import { anyText, asyncOutcomeOf, type NamedProperty, outcomeOf } from "./inputs.ts";

/** Sources that answer every list with `names`. */
function listing(names: string[]): CompletionSources {
  return {
    groups: () => Promise.resolve(names),
    files: () => Promise.resolve(names),
    entries: () => Promise.resolve(names),
  };
}

/** Words of a few letters, so that distances between them are small and varied. */
const nearWord = fc.string({ unit: fc.constantFrom("a", "b", "c", "A"), maxLength: 9 });

/** A word as a person starts typing it: escaped, or in a quote left open. */
function typedStart(prefix: string, style: "plain" | "single" | "double"): string {
  if (style === "single" && !prefix.includes("'")) return `'${prefix}`;
  if (style === "plain") return prefix.replace(/[\s'"\\]/g, "\\$&");
  return `"${prefix.replace(/["\\]/g, "\\$&")}`;
}

/** The words of help text, blanks of any kind between them. */
const wordsOf = (text: string) => text.split(/\s+/).filter((word) => word !== "");

/** Text for help: words of ASCII and any text, joined by blanks of any kind. */
const helpWords = fc.array(
  fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), anyText),
  { maxLength: 12 },
).map((words) => words.join(" "));

export const typingAidProperties: NamedProperty[] = [
  {
    name: "completion.any_line",
    claim: "any line, with any names listed, gets candidates that replace an end of the " +
      "line and carry nothing a terminal acts on, never an error",
    build: () =>
      fc.asyncProperty(
        fc.oneof(
          anyText,
          fc.tuple(
            fc.constantFrom("download_file films ", "upload_file ", "help ", "logout ", "l"),
            anyText,
          ).map(([head, tail]) => head + tail),
        ),
        fc.array(anyText, { maxLength: 8 }),
        async (line, names) => {
          const outcome = await asyncOutcomeOf(() => completeLine(line, listing(names)), []);
          assert.ok(outcome.ok);
          const [candidates, replaced] = outcome.value;
          assert.ok(line.endsWith(replaced), `${JSON.stringify(replaced)} ends no line`);
          for (const candidate of candidates) {
            assert.equal(terminalSafe(candidate), candidate, JSON.stringify(candidate));
          }
        },
      ),
  },
  {
    name: "completion.round_trip",
    claim: "a name completed from any start, typed plain or in an open quote, reads back " +
      "as that name: every candidate put in place is one of the names listed",
    build: () =>
      fc.asyncProperty(
        fc.array(fc.oneof(anyText, fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 6 })
          .map((names) => names.filter((name) => name !== "")).filter((names) => names.length > 0),
        fc.nat(),
        fc.nat(),
        fc.constantFrom("plain" as const, "single" as const, "double" as const),
        fc.constantFrom(
          { head: "list_files ", words: ["list_files"], path: false },
          { head: "download_file 'my films' ", words: ["download_file", "my films"], path: false },
          { head: "upload_file ", words: ["upload_file"], path: true },
        ),
        async (listed, pick, cut, style, { head, words, path }) => {
          // a path's last part holds no slash: what stands before one is the directory
          const names = path ? listed.filter((name) => !name.includes("/")) : listed;
          if (names.length === 0) return;
          const name = names[pick % names.length];
          const prefix = name.slice(0, cut % (name.length + 1));
          const line = head + typedStart(prefix, style);
          const [candidates, replaced] = await completeLine(line, listing(names));
          const readBack = candidates.map((candidate) => {
            assert.ok(candidate.endsWith(" "), `a name is completed whole: ${candidate}`);
            return splitWords(line.slice(0, line.length - replaced.length) + candidate);
          });
          for (const read of readBack) {
            assert.deepEqual(read.slice(0, -1), words);
            assert.ok(names.includes(read.at(-1)!), `${JSON.stringify(read.at(-1))} not listed`);
            assert.ok(read.at(-1)!.startsWith(prefix));
          }
          // the name itself is offered unless nobody could type it, or it is hidden
          const typeable = terminalSafe(name) === name && !name.includes("\n");
          const hidden = path && name.startsWith(".") && !prefix.startsWith(".");
          if (typeable && !hidden) {
            assert.ok(readBack.some((read) => read.at(-1) === name), `${name} not offered`);
          }
        },
      ),
  },
  {
    name: "did_you_mean.edit_distance",
    claim: "edit distance is symmetric, zero only between equal words, between their " +
      "length difference and the longer length, and a limit only caps it",
    testRuns: 1000,
    build: () =>
      fc.property(
        fc.oneof(nearWord, anyText),
        fc.oneof(nearWord, anyText),
        fc.nat(4),
        (a, b, limit) => {
          const distance = editDistance(a, b);
          assert.equal(editDistance(b, a), distance);
          assert.equal(editDistance(a, a), 0);
          assert.equal(distance === 0, a === b);
          assert.ok(distance >= Math.abs(a.length - b.length));
          assert.ok(distance <= Math.max(a.length, b.length));
          assert.equal(editDistance(a, b, limit), Math.min(distance, limit + 1));
        },
      ),
  },
  {
    name: "did_you_mean.closest_word",
    claim: "a suggestion is a known word within reach of the typed one (by its length), " +
      "none is nearer, none as near is listed before it; no suggestion means none is in reach",
    testRuns: 1000,
    build: () =>
      fc.property(
        fc.oneof(nearWord, anyText),
        fc.array(fc.oneof(nearWord, anyText), { maxLength: 8 }),
        (typed, known) => {
          const guess = outcomeOf(() => closestWord(typed, known), []);
          assert.ok(guess.ok);
          const reach = typed.length <= 4 ? 1 : typed.length <= 8 ? 2 : 3;
          const distances = known.map((word) =>
            editDistance(typed.toLowerCase(), word.toLowerCase())
          );
          const nearest = Math.min(...distances);
          if (guess.value === undefined) {
            assert.ok(nearest > reach, `${known[distances.indexOf(nearest)]} is in reach`);
          } else {
            assert.ok(nearest <= reach);
            assert.equal(guess.value, known[distances.indexOf(nearest)]);
          }
        },
      ),
  },
  {
    name: "help.layout",
    claim: "help for any width keeps every word whole and in order, each line within the " +
      "width unless one word alone is wider, no line ending in blanks",
    build: () =>
      fc.property(
        fc.array(
          fc.record({
            usage: helpWords,
            summary: helpWords,
            // an example is one line as typed
            example: fc.option(fc.string({ minLength: 1, maxLength: 90 }), { nil: undefined }),
          }),
          { maxLength: 6 },
        ),
        fc.integer({ min: -10, max: 240 }),
        (entries, columns) => {
          const width = helpWidth(columns);
          assert.ok(width >= 40);
          const fits = (line: string) => line.length <= width || wordsOf(line).length === 1;
          const list = helpText(entries, width);
          assert.deepEqual(
            wordsOf(list),
            [
              "COMMAND",
              "WHAT",
              "IT",
              "DOES",
              ...entries.flatMap((entry) => [
                ...wordsOf(entry.usage),
                ...wordsOf(entry.summary),
              ]),
            ],
          );
          for (const line of list.split("\n")) {
            assert.ok(fits(line), `${width}: ${JSON.stringify(line)}`);
            assert.equal(line, line.trimEnd());
          }
          for (const entry of entries) {
            const example = entry.example;
            const lines = commandHelp(entry, width).split("\n");
            for (const line of lines) {
              assert.ok(fits(line) || line === example || line === `example: ${example}`, line);
            }
            if (example) assert.equal(lines.at(-1)!.endsWith(example), true);
          }
          for (const text of [entries[0]?.summary ?? "", entries.map((e) => e.usage).join("\t")]) {
            const wrapped = wrapWords(text, width);
            assert.deepEqual(wrapped.join(" "), wordsOf(text).join(" "));
            for (const line of wrapped) assert.ok(fits(line), line);
          }
        },
      ),
  },
];
