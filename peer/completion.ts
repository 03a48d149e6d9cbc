/**
 * Tab completion for the shell: what the word under the cursor may become, read from the
 * command table (peer/commands.ts), so every command completes, and so do its arguments by
 * what their parameters name: `group_id` a group, `file_name` a file of the group given
 * before it, a `*_path` a local path, `command` a command. Where the lists come from (the
 * tracker, the disk) is the caller's: `CompletionSources`; `localEntries` reads a directory
 * as upload_file and download_file resolve paths.
 *
 * @example
 * ```ts
 * const [candidates, typed] = await completeLine("download_file fi", sources);
 * // candidates ["films "], typed "fi": readline puts "films " in place of "fi"
 * ```
 *
 * @module
 */

import { type ResolveOptions, resolveUserPath } from "../lib/paths.ts";
import { terminalSafe } from "../lib/terminal_text.ts";
import { type Command, COMMAND_TABLE, commandWords } from "./commands.ts";

/** The most entries of one directory Tab reads: a huge directory costs a bounded read. */
export const MAX_LOCAL_ENTRIES = 2_000;

/** Where completion finds names; each may answer from a cache, and may answer none. */
export interface CompletionSources {
  groups(): Promise<string[]>;
  files(group: string): Promise<string[]>;
  /**
   * The entries of the directory `dir` as typed (`""`: the current one; `~/` expanded by
   * the source), directories ending in `/`.
   */
  entries(dir: string): Promise<string[]>;
}

/** A line split for completion: the words before the cursor's, and the one being typed. */
interface PartialLine {
  words: string[];
  /** The last word's value so far (quotes and backslashes undone). */
  current: string;
  /** How the last word appears on the line, to be replaced. */
  raw: string;
  /** The quote it is open in, if any. */
  quote?: "'" | '"';
}

/** Splits like lib/shell_words.ts, but a line may end inside a word or a quote. */
function splitPartial(line: string): PartialLine {
  const words: string[] = [];
  let word = "";
  let start = 0;
  let inWord = false;
  let quote: "'" | '"' | undefined;
  let opened: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (!inWord && !/\s/.test(char)) {
      start = i;
      opened = undefined;
    }
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      if (!inWord) opened = char;
      inWord = true;
    } else if (char === "\\") {
      if (i + 1 < line.length) word += line[++i];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (!inWord) return { words, current: "", raw: "" };
  return { words, current: word, raw: line.slice(start), quote: quote ?? opened };
}

/**
 * False for a name with a character a terminal acts on or a line break (a file named with an
 * escape sequence): readline would draw it raw, and nobody could type it anyway.
 */
function typeable(value: string): boolean {
  return terminalSafe(value) === value && !value.includes("\n");
}

/** `value` as typed on a line: in the quote the word opened with, else with backslashes. */
function quoteWord(value: string, quote: "'" | '"' | undefined, complete: boolean): string {
  const end = complete ? " " : "";
  if (quote === "'" && !value.includes("'")) return `'${value}${complete ? "' " : ""}`;
  if (quote) return `"${value.replace(/["\\]/g, "\\$&")}${complete ? '" ' : ""}`;
  return value.replace(/[\s'"\\]/g, "\\$&") + end;
}

/** The command a line's first words name, and where its arguments start. */
function commandOf(words: string[]): { command: Command; firstArg: number } | undefined {
  const twoWords = COMMAND_TABLE.find((command) => command.name === `${words[0]} ${words[1]}`);
  if (twoWords && words.length >= 2) return { command: twoWords, firstArg: 2 };
  const one = COMMAND_TABLE.find((command) =>
    command.name === words[0] || command.aliases?.includes(words[0])
  );
  return one && { command: one, firstArg: 1 };
}

/**
 * The candidates for the word under the cursor at the end of `line`, as typed (quoted or
 * escaped, a space after a whole word, `/` after a directory), and the text they replace:
 * the `[completions, substring]` pair node:readline's completer gives.
 */
export async function completeLine(
  line: string,
  sources: CompletionSources,
): Promise<[string[], string]> {
  const { words, current, raw, quote } = splitPartial(line);
  const whole = (values: Iterable<string>) =>
    [...new Set(values)].filter((value) => value.startsWith(current) && typeable(value)).sort()
      .map((value) => quoteWord(value, quote, true));
  if (words.length === 0) return [whole(commandWords()), raw];
  // the second word of a two-word command (`requests list_requests`, `logout --all`)
  const seconds = COMMAND_TABLE.map((command) => command.name.split(" "))
    .filter((name) => name.length === 2 && name[0] === words[0]).map((name) => name[1]);
  if (words.length === 1 && seconds.length > 0 && !commandOf(words)?.command.params.length) {
    return [whole(seconds), raw];
  }
  const found = commandOf(words);
  if (!found) return [[], raw];
  const { command, firstArg } = found;
  const params = [...command.params, ...command.optionalParams ?? []];
  const param = params[words.length - firstArg];
  if (param === undefined) return [[], raw];
  if (param === "command") return [whole(commandWords()), raw];
  if (param.includes("group_id")) return [whole(await sources.groups()), raw];
  if (param === "file_name") {
    const group = words[firstArg + params.findIndex((name) => name.includes("group_id"))];
    return [group === undefined ? [] : whole(await sources.files(group)), raw];
  }
  if (param.includes("path")) {
    const slash = current.lastIndexOf("/");
    const dir = current.slice(0, slash + 1);
    const base = current.slice(slash + 1);
    if (!typeable(dir)) return [[], raw];
    const entries = (await sources.entries(dir))
      // hidden entries only when asked for, as shells do
      .filter((entry) =>
        entry.startsWith(base) && (base.startsWith(".") || !entry.startsWith(".")) &&
        typeable(entry)
      )
      .sort();
    return [
      entries.map((entry) => quoteWord(dir + entry, quote, !entry.endsWith("/"))),
      raw,
    ];
  }
  return [[], raw];
}

/**
 * The entries of the directory `dir` as typed (`""`: the base directory; `~/` the home
 * directory; a relative path from where the user started the client), resolved as
 * upload_file and download_file resolve paths (lib/paths.ts), directories (and links to
 * them) ending in `/`. At most `MAX_LOCAL_ENTRIES`; none when the directory cannot be read.
 */
export async function localEntries(dir: string, paths: ResolveOptions): Promise<string[]> {
  let path: string;
  try {
    path = dir === "" ? paths.base : resolveUserPath(dir, paths);
  } catch {
    return []; // `~user/`, or `~` without a home: nothing to offer
  }
  const entries: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) {
      let isDirectory = entry.isDirectory;
      if (entry.isSymlink) {
        isDirectory = await Deno.stat(`${path}/${entry.name}`).then((info) => info.isDirectory)
          .catch(() => false);
      }
      entries.push(isDirectory ? `${entry.name}/` : entry.name);
      if (entries.length >= MAX_LOCAL_ENTRIES) break;
    }
  } catch {
    // no such directory, or not readable: nothing to offer
  }
  return entries;
}
