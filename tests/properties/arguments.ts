/**
 * Properties of what a person types at the programs: their arguments (lib/argv.ts), the
 * paths in them (lib/paths.ts), and the log lines names end up in (lib/log.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { isAbsolute, normalize } from "node:path";
import fc from "fast-check";
import { type OptionSpecs, parseArguments } from "../../lib/argv.ts";
import { UsageError, UserError } from "../../lib/errors.ts";
import { formatLogLine, logSafe, MAX_LOG_MESSAGE_CHARS } from "../../lib/log.ts";
import { resolveUserPath } from "../../lib/paths.ts";
import { anyText, type NamedProperty } from "./inputs.ts";

const SPECS = {
  db: { type: "string" },
  "state-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpecs;

/** Any argument: option-like words, near-misses, and any text. */
const anyArgument = fc.oneof(
  anyText,
  fc.constantFrom("--", "-", "--db", "--db=", "--json", "--json=1", "-h", "-x", "--stat-dir"),
  fc.string({ maxLength: 12 }).map((word) => `--${word}`),
);

/** Positionals that are never read as options. */
const positional = fc.string({ maxLength: 12 }).filter((word) => !word.startsWith("-"));

/** Values a string option may take as a separate word. */
const optionValue = fc.string({ maxLength: 12 }).filter((word) => !word.startsWith("--"));

export const argumentProperties: NamedProperty[] = [
  {
    name: "argv.any_arguments",
    claim: "any argument list parses or throws UsageError",
    build: () =>
      fc.property(fc.array(anyArgument, { maxLength: 8 }), (args) => {
        try {
          const { positionals } = parseArguments(args, SPECS);
          assert.ok(positionals.length <= args.length);
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          assert.doesNotMatch(error.message, /\n/);
        }
      }),
  },
  {
    name: "argv.round_trip",
    claim: "options and positionals written out in any order and form are read back as given",
    build: () =>
      fc.property(
        fc.record({
          db: fc.option(optionValue, { nil: undefined }),
          "state-dir": fc.option(optionValue, { nil: undefined }),
          json: fc.boolean(),
          help: fc.boolean(),
        }),
        fc.array(positional, { maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        (options, positionals, forms) => {
          const words: string[][] = [];
          for (const name of ["db", "state-dir"] as const) {
            const value = options[name];
            if (value === undefined) continue;
            words.push(forms[0] ? [`--${name}=${value}`] : [`--${name}`, value]);
          }
          if (options.json) words.push(["--json"]);
          if (options.help) words.push([forms[1] ? "-h" : "--help"]);
          const args = [
            ...forms[2] ? words.reverse().flat() : words.flat(),
            ...(forms[3] ? ["--"] : []),
            ...positionals,
          ];
          const parsed = parseArguments(args, SPECS);
          assert.deepEqual(parsed.positionals, positionals);
          assert.equal(parsed.values.db, options.db);
          assert.equal(parsed.values["state-dir"], options["state-dir"]);
          assert.equal(parsed.values.json ?? false, options.json);
          assert.equal(parsed.values.help ?? false, options.help);
        },
      ),
  },
  {
    name: "paths.resolve",
    claim: "any path resolves to an absolute, normalised path (under HOME for ~/...) or " +
      "throws UserError; resolving the result again changes nothing",
    build: () =>
      fc.property(
        fc.oneof(
          anyText,
          fc.string({ maxLength: 20 }).map((rest) => `~/${rest}`),
          fc.string({ maxLength: 20 }).map((rest) => `~${rest}`),
          fc.array(fc.constantFrom("a", "..", ".", "", "b c"), { maxLength: 6 }).map((parts) =>
            parts.join("/")
          ),
        ),
        (path) => {
          const env = { get: (name: string) => name === "HOME" ? "/home/me" : undefined };
          const options = { base: "/work/here", env };
          let resolved: string;
          try {
            resolved = resolveUserPath(path, options);
          } catch (error) {
            if (!(error instanceof UserError)) throw error;
            return;
          }
          assert.ok(isAbsolute(resolved));
          assert.equal(normalize(resolved), resolved);
          if (path === "~" || path.startsWith("~/")) assert.ok(resolved.startsWith("/"));
          if (!path.startsWith("~") && !path.startsWith("/") && !path.includes("..")) {
            assert.ok(resolved.startsWith("/work/here"), resolved);
          }
          assert.equal(resolveUserPath(resolved, options), resolved);
        },
      ),
  },
  {
    name: "log.one_line",
    claim: "any message makes one log line, without terminal controls, of bounded length",
    build: () =>
      fc.property(anyText, fc.string({ maxLength: 2000 }), (text, long) => {
        for (const message of [text, long, text + long]) {
          const safe = logSafe(message);
          assert.ok(safe.length <= MAX_LOG_MESSAGE_CHARS, `${safe.length}`);
          // deno-lint-ignore no-control-regex
          assert.doesNotMatch(safe, /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
          const line = formatLogLine(new Date(0), "info", message);
          assert.equal(line.split("\n").length, 1);
        }
      }),
  },
];
