/**
 * Program arguments: `--name value`, `--name=value`, boolean `--flag`, one-letter flags
 * (`-h`), and `--` before positionals that start with a dash. Every mistake is a
 * `UsageError` with one sentence that names it (an unknown option with the nearest known
 * one, "did you mean"); nothing here prints. Written for our two programs rather than taken
 * from `node:util`'s `parseArgs`, whose messages are meant for developers.
 *
 * @example
 * ```ts
 * const { values, positionals } = parseArguments(["127.0.0.1", "5000", "--db", "t.db"], {
 *   db: { type: "string" },
 *   help: { type: "boolean", short: "h" },
 * });
 * // values.db === "t.db", positionals = ["127.0.0.1", "5000"]
 * ```
 *
 * @module
 */

import { editDistance } from "./did_you_mean.ts";
import { UsageError } from "./errors.ts";
import { quoted } from "./protocol.ts";

/**
 * One option: takes a value (`string`) or not (`boolean`); `short` is its one-letter form.
 * `multiple`: a string option that may be given again, each value kept in order (the program
 * bounds how many it takes).
 */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** The options a program takes, by long name (without the dashes). */
export type OptionSpecs = Record<string, OptionSpec>;

/** The options given, by long name: a string (strings, for `multiple`), `true`, or absent. */
export type OptionValues<S extends OptionSpecs> = {
  [K in keyof S]?: S[K]["type"] extends "string" ? S[K]["multiple"] extends true ? string[] : string
    : boolean;
};

/** What `parseArguments` found. */
export interface ParsedArguments<S extends OptionSpecs> {
  values: OptionValues<S>;
  positionals: string[];
}

/**
 * Splits `args` into options (as `specs` says) and positionals. Throws a UsageError for an
 * unknown option (suggesting the nearest), a missing value, a value given to a flag, or an
 * option given twice (unless it is `multiple`).
 */
export function parseArguments<S extends OptionSpecs>(
  args: readonly string[],
  specs: S,
): ParsedArguments<S> {
  const values: Record<string, string | string[] | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.short) byShort.set(spec.short, name);
  }
  const set = (name: string, value: string | boolean) => {
    if (specs[name].multiple && typeof value === "string") {
      const earlier = values[name];
      if (Array.isArray(earlier)) earlier.push(value);
      else values[name] = [value];
      return;
    }
    if (Object.hasOwn(values, name)) throw new UsageError(`--${name} is given twice`);
    values[name] = value;
  };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--") {
      positionals.push(...args.slice(index + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const equals = arg.indexOf("=");
      const name = arg.slice(2, equals < 0 ? undefined : equals);
      const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
      if (!spec) throw unknownOption(`--${name}`, specs);
      if (spec.type === "boolean") {
        if (equals >= 0) throw new UsageError(`--${name} takes no value`);
        set(name, true);
        continue;
      }
      if (equals >= 0) {
        set(name, arg.slice(equals + 1));
        continue;
      }
      const value = args[index + 1];
      if (value === undefined || value.startsWith("--")) {
        throw new UsageError(`--${name} needs a value`);
      }
      set(name, value);
      index++;
      continue;
    }
    if (arg.length > 1 && arg.startsWith("-")) {
      const name = byShort.get(arg.slice(1));
      if (name === undefined || specs[name].type !== "boolean") {
        throw unknownOption(arg, specs);
      }
      set(name, true);
      continue;
    }
    positionals.push(arg);
  }
  return { values: values as OptionValues<S>, positionals };
}

/** The longest option text quoted back in an error. */
const MAX_SHOWN_OPTION_CHARS = 40;

function unknownOption(option: string, specs: OptionSpecs): UsageError {
  const shown = option.length > MAX_SHOWN_OPTION_CHARS
    ? `${option.slice(0, MAX_SHOWN_OPTION_CHARS)}...`
    : option;
  const near = option.startsWith("--")
    ? closestWord(option.slice(2), Object.keys(specs))
    : undefined;
  return new UsageError(
    `unknown option ${quoted(shown)}` + (near === undefined ? "" : `; did you mean --${near}?`),
  );
}

/**
 * The candidate nearest to `word`, when near enough to be a slip: at most one edit (adding,
 * removing, changing or swapping two neighbouring letters) per three letters of the longer,
 * and at least one allowed; else the only candidate that `word` begins, or that begins `word`
 * followed by a dash (`db-path` for `db`). Undefined when none is.
 *
 * @example
 * ```ts
 * closestWord("stat-dir", ["state-dir", "db"]); // "state-dir"
 * closestWord("xyz", ["state-dir", "db"]); // undefined
 * ```
 */
export function closestWord(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const allowed = Math.max(1, Math.floor(Math.max(word.length, candidate.length) / 3));
    const distance = editDistance(word, candidate, allowed);
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  // a word cut short (`--state`) or run on (`--db-path`): the one candidate it shares a start with
  const prefixed = candidates.filter((candidate) =>
    candidate.length >= 2 && word.length >= 2 &&
    (candidate.startsWith(word) || word.startsWith(`${candidate}-`))
  );
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
