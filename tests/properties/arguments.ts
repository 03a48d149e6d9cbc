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
import { MAX_EXTRA_TRACKERS, parseTrackerList } from "../../peer/tracker_addresses.ts";
import { anyText, type NamedProperty } from "./inputs.ts";

const SPECS = {
  db: { type: "string" },
  tracker: { type: "string", multiple: true },
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

/** A tracker address as a person types it: IPv4, IPv6 in brackets, or a host name, and a port. */
const trackerAddress = fc.tuple(
  fc.oneof(
    fc.ipV4(),
    fc.ipV6().map((ip) => `[${ip}]`),
    fc.domain().filter((name) => !name.includes(":")),
  ),
  fc.integer({ min: 1, max: 65_535 }),
).map(([host, port]) => `${host}:${port}`);

/** A `--tracker` value: an address, a near-miss of one, or any text. */
const anyTrackerValue = fc.oneof(
  trackerAddress,
  trackerAddress.map((address) => address.replace(/:(\d+)$/, ":0")),
  trackerAddress.map((address) => address.replace(/:(\d+)$/, ":$1$1$1")),
  trackerAddress.map((address) => address.replace(/:\d+$/, "")),
  trackerAddress.map((address) => ` ${address}`),
  fc.constantFrom("127.0.0.1:5000", "[::1]:5000", "::1:5000", "[]:1", ":5000", "-x:1"),
  anyText,
);

const SEED_TRACKER = { host: "127.0.0.1", port: 5000 };

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
    name: "argv.multiple",
    claim: "a repeatable option keeps every value in order, in either form, among others",
    build: () =>
      fc.property(
        fc.array(optionValue, { maxLength: 6 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        (trackers, forms, json) => {
          const words = trackers.map((value, index) =>
            forms[index] ? [`--tracker=${value}`] : ["--tracker", value]
          );
          if (json) words.splice(Math.floor(words.length / 2), 0, ["--json"]);
          const parsed = parseArguments(words.flat(), SPECS);
          assert.deepEqual(parsed.values.tracker, trackers.length > 0 ? trackers : undefined);
          assert.equal(parsed.values.json ?? false, json);
          assert.deepEqual(parsed.positionals, []);
        },
      ),
  },
  {
    name: "tracker_list.any_values",
    claim: "any --tracker values give the seed then one distinct address each, at most " +
      `${MAX_EXTRA_TRACKERS}, or one UsageError line naming the problem`,
    build: () =>
      fc.property(fc.array(anyTrackerValue, { maxLength: MAX_EXTRA_TRACKERS + 3 }), (values) => {
        let list;
        try {
          list = parseTrackerList(SEED_TRACKER, values);
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          assert.doesNotMatch(error.message, /[\n\r]/);
          assert.ok(error.message.startsWith("--tracker "), error.message);
          assert.ok(error.message.length < 200, error.message);
          return;
        }
        assert.ok(values.length <= MAX_EXTRA_TRACKERS);
        assert.equal(list.length, values.length + 1);
        assert.equal(list[0].address, "127.0.0.1:5000");
        assert.equal(new Set(list.map((tracker) => tracker.address)).size, list.length);
        for (const tracker of list) {
          assert.ok(Number.isInteger(tracker.port) && tracker.port >= 1 && tracker.port <= 65_535);
          assert.ok(tracker.address.endsWith(`:${tracker.port}`));
          assert.doesNotMatch(tracker.host, /[\s\[\]]/);
        }
      }),
  },
  {
    name: "tracker_list.round_trip",
    claim: "distinct addresses, written HOST:PORT, are read back in order as given; more than " +
      `${MAX_EXTRA_TRACKERS} are refused, as is any one given twice`,
    build: () =>
      fc.property(
        fc.uniqueArray(trackerAddress, {
          maxLength: MAX_EXTRA_TRACKERS + 2,
          selector: (address) => address.toLowerCase(),
        }).filter((addresses) => !addresses.includes("127.0.0.1:5000")),
        fc.nat(),
        (addresses, pick) => {
          // two spellings of one IPv6 address are one tracker: keep one of each
          const distinct = addresses.filter((address, index) =>
            addresses.findIndex((other) => same(other, address)) === index
          );
          if (distinct.length > MAX_EXTRA_TRACKERS) {
            assert.throws(() => parseTrackerList(SEED_TRACKER, distinct), /at most 16 times/);
            return;
          }
          const list = parseTrackerList(SEED_TRACKER, distinct);
          assert.deepEqual(
            list.slice(1).map((tracker) => `${bracketed(tracker.host)}:${tracker.port}`),
            distinct,
          );
          if (distinct.length > 0 && distinct.length < MAX_EXTRA_TRACKERS) {
            const again = distinct[pick % distinct.length];
            assert.throws(
              () => parseTrackerList(SEED_TRACKER, [...distinct, again]),
              (error) => error instanceof UsageError && /is given twice/.test(error.message),
            );
          }
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

/** A host as written in an address: IPv6 in brackets. */
function bracketed(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** Whether two addresses name one tracker (as known_trackers would key them). */
function same(a: string, b: string): boolean {
  try {
    return parseTrackerList(SEED_TRACKER, [a, b]).length < 0;
  } catch (error) {
    return error instanceof UsageError && /given twice/.test(error.message);
  }
}
