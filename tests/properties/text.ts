/**
 * Properties of the text a person or a peer hands the client: shell words
 * (lib/shell_words.ts) and command lines (peer/commands.ts), names and ids
 * (lib/protocol.ts) with the paths a download makes of a name (peer/storage.ts), and text
 * made safe for a terminal (lib/terminal_text.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import fc from "fast-check";
import { UserError } from "../../lib/errors.ts";
import {
  fileNameProblem,
  idProblem,
  isValidId,
  passwordProblem,
  quoted,
  shownName,
} from "../../lib/protocol.ts";
import { splitWords } from "../../lib/shell_words.ts";
import { jsonTerminalSafe, terminalSafe } from "../../lib/terminal_text.ts";
import { CommandLineError, COMMANDS, resolveCommand } from "../../peer/commands.ts";
import type { ClientSession } from "../../peer/session.ts";
import { partPathFor } from "../../peer/storage.ts";
import { anyText, asyncOutcomeOf, type NamedProperty, outcomeOf, utf8 } from "./inputs.ts";

/** C0, DEL, C1 and the bidirectional controls: never raw in a name or a refusal. */
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** What a terminal acts on: the controls above, but line feeds. */
// deno-lint-ignore no-control-regex
const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** Ids as the README gives them. */
const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const DOWNLOADS = "/home/user/downloads";
const PART_SUFFIX = ".swarmshare-part";
/** The highest rate limit set_limits takes, KiB/s (16 GiB/s), as its usage says. */
const MAX_LIMIT_KIB = 16 * 1024 * 1024;

/** Blanks that separate words: ASCII and Unicode. */
const blank = fc.constantFrom(" ", "\t", "  ", " \t ", "\n", "\u00a0", "\u3000", "\u2028");

/** A word written so the shell reads it back: single-quoted, double-quoted or escaped. */
function quotedWord(word: string, style: "single" | "double" | "escaped"): string {
  if (style === "single") return `'${word.replaceAll("'", "'\\''")}'`;
  if (style === "double") return `"${word.replace(/["\\]/g, "\\$&")}"`;
  return word.length === 0 ? "''" : word.replace(/[\s'"\\]/g, "\\$&");
}

/** File names: any text, names near the length limit, and the names with special meaning. */
const candidateName = fc.oneof(
  anyText,
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 }),
  // around the longest name whose part file fits 255 bytes (238), in 1-, 2- and 3-byte letters
  fc.tuple(fc.integer({ min: 236, max: 241 }), fc.constantFrom("a", "é", "€"), fc.nat(3)).map(
    ([bytes, letter, ascii]) => {
      const width = utf8(letter).length;
      const wide = Math.floor((bytes - ascii) / width);
      return letter.repeat(wide) + "a".repeat(bytes - wide * width);
    },
  ),
  fc.constantFrom(".", "..", "...", ".a", "a/b", "a\\b", "/", "\u202egnp.exe", " ", "a\u0000"),
  fc.string({ maxLength: 10 }).map((name) => `.${name}${PART_SUFFIX}`),
);

/** Properties of lib/shell_words.ts, peer/commands.ts, lib/protocol.ts names, lib/terminal_text.ts. */
export const textProperties: NamedProperty[] = [
  {
    name: "shell_words.any_line",
    claim: "any line splits into words or throws UserError; without quotes or backslashes " +
      "the words are its blank-separated parts",
    build: () =>
      fc.property(
        fc.oneof(
          anyText,
          fc.array(fc.oneof(anyText, blank), { maxLength: 6 }).map((p) => p.join("")),
        ),
        (line) => {
          const outcome = outcomeOf(() => splitWords(line), [UserError]);
          if (/['"\\]/.test(line)) return;
          const parts = line.split(/\s+/).filter((part) => part.length > 0);
          assert.deepEqual(outcome, { ok: true, value: parts });
        },
      ),
  },
  {
    name: "shell_words.round_trip",
    claim: "words quoted any way and joined by any blanks split back into the same words",
    build: () =>
      fc.property(
        fc.array(
          fc.tuple(
            anyText,
            fc.constantFrom("single" as const, "double" as const, "escaped" as const),
          ),
          { maxLength: 6 },
        ),
        fc.array(blank, { minLength: 8, maxLength: 8 }),
        fc.boolean(),
        (words, blanks, padded) => {
          const line = words.map(([word, style], i) =>
            (i > 0 || padded ? blanks[i] : "") + quotedWord(word, style)
          )
            .join("") + (padded ? blanks[7] : "");
          assert.deepEqual(splitWords(line), words.map(([word]) => word));
        },
      ),
  },
  {
    name: "commands.resolve",
    claim: "any words resolve to a command (by name or alias) with its number of arguments " +
      "(optional ones may be left off), or CommandLineError",
    build: () => {
      const names = [...COMMANDS.values()].flatMap((command) => [
        ...command.name.split(" "),
        ...command.aliases ?? [],
      ]);
      return fc.property(
        fc.array(fc.oneof(fc.constantFrom(...names), anyText), { minLength: 1, maxLength: 5 }),
        (words) => {
          const outcome = outcomeOf(() => resolveCommand(words), [CommandLineError]);
          if (!outcome.ok) return;
          const { command, args } = outcome.value;
          assert.ok(args.length >= command.params.length);
          assert.ok(
            args.length <= command.params.length + (command.optionalParams?.length ?? 0),
          );
          const typed = words.slice(0, words.length - args.length);
          assert.deepEqual(words.slice(typed.length), args);
          const named = typed.join(" ") === command.name ||
            (typed.length === 1 && (command.aliases ?? []).includes(typed[0]));
          assert.ok(named, `${JSON.stringify(typed)} names ${command.name}`);
        },
      );
    },
  },
  {
    name: "commands.set_limits",
    claim: "set_limits takes whole KiB/s from 1 to 16 GiB/s or none, and nothing else",
    build: () => {
      const command = COMMANDS.get("set_limits")!;
      const limit = fc.oneof(
        anyText,
        fc.constantFrom(
          "none",
          "None",
          "0",
          "01",
          "1",
          "1.5",
          "-1",
          "1e3",
          " 1",
          "16777216",
          "16777217",
        ),
        fc.integer({ min: 1, max: MAX_LIMIT_KIB + 10 }).map(String),
      );
      return fc.asyncProperty(limit, limit, async (upload, download) => {
        const set: (number | undefined)[] = [];
        const session = { setLimits: (up?: number, down?: number) => set.push(up, down) };
        const context = { session: session as unknown as ClientSession, quit: () => {} };
        const outcome = await asyncOutcomeOf(
          () => command.run(context, [upload, download]),
          [UserError],
        );
        const valid = (text: string) =>
          text === "none" || (/^[1-9][0-9]*$/.test(text) && Number(text) <= MAX_LIMIT_KIB);
        assert.equal(outcome.ok, valid(upload) && valid(download), `${upload} ${download}`);
        if (!outcome.ok) return assert.deepEqual(set, [], "a refused limit was set");
        const bytes = (text: string) => text === "none" ? undefined : Number(text) * 1024;
        assert.deepEqual(set, [bytes(upload), bytes(download)]);
      });
    },
  },
  {
    name: "names.file_name",
    claim: "an accepted file name stays one entry of the download directory, its part file " +
      "fits 255 bytes, and a refusal quotes no control character",
    testRuns: 1000,
    build: () =>
      fc.property(candidateName, (name) => {
        const problem = fileNameProblem(name);
        if (problem !== undefined) {
          assert.ok(
            !CONTROLS.test(problem),
            `refusal carries a control: ${JSON.stringify(problem)}`,
          );
          return;
        }
        assert.ok(name !== "." && name !== ".." && !/[/\\]/.test(name));
        assert.ok(!CONTROLS.test(name), "a name with a control character was accepted");
        const path = join(DOWNLOADS, name);
        assert.equal(dirname(path), DOWNLOADS);
        assert.equal(basename(path), name);
        const part = partPathFor(path);
        assert.equal(dirname(part), DOWNLOADS);
        assert.ok(part !== path, "the part file is the download itself");
        assert.ok(utf8(basename(part)).length <= 255, "the part file's name is too long");
        assert.equal(
          fileNameProblem(basename(part)) !== undefined,
          true,
          "a part name is shareable",
        );
        assert.equal(shownName(name), name.length > 100 ? `${name.slice(0, 100)}...` : name);
      }),
  },
  {
    name: "names.ids_and_shown_text",
    claim: "ids and passwords are checked as documented, and text quoted back or printed " +
      "carries no control a terminal acts on",
    testRuns: 1000,
    build: () =>
      fc.property(
        fc.oneof(
          anyText,
          fc.stringMatching(ID),
          // around the 64 characters of an id and the 100 shown of any text
          fc.stringMatching(/^[A-Za-z0-9_.-]{63,66}$/),
          fc.tuple(fc.string({ minLength: 90, maxLength: 104 }), anyText).map(([a, b]) => a + b),
        ),
        fc.jsonValue({ maxDepth: 2 }),
        (text, value) => {
          assert.equal(isValidId(text), ID.test(text));
          const problem = idProblem("group", text);
          assert.equal(problem === undefined, ID.test(text));
          if (problem) assert.ok(!CONTROLS.test(problem));
          assert.equal(
            passwordProblem(text) === undefined,
            text.length >= 1 && text.length <= 1024,
          );
          const shown = shownName(text);
          assert.ok(!CONTROLS.test(shown));
          const escaped = text.replace(
            new RegExp(CONTROLS.source, "g"),
            (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
          );
          assert.equal(shown, escaped.length > 100 ? `${escaped.slice(0, 100)}...` : escaped);
          assert.equal(quoted(text), `"${shown}"`);
          const safe = terminalSafe(text);
          assert.ok(!TERMINAL_UNSAFE.test(safe));
          assert.equal(safe.split("\n").length, text.split("\n").length, "line breaks changed");
          // a JSON line made safe still parses to the same value
          const line = JSON.stringify({ text, value });
          const safeLine = jsonTerminalSafe(line);
          assert.ok(!TERMINAL_UNSAFE.test(safeLine));
          assert.deepEqual(JSON.parse(safeLine), JSON.parse(line));
        },
      ),
  },
];
