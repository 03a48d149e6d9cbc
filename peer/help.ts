/**
 * The shell's help as people read it: the command list fitted to the terminal's width
 * (wrapped on word boundaries, never inside a word unless a word alone is wider than the
 * line), and one command's usage, description and example. Only layout lives here; the
 * command table (peer/commands.ts) says what there is.
 *
 * @module
 */

/** The width help assumes when standard output is no terminal (a pipe, a file). */
export const DEFAULT_WIDTH = 80;

/** Narrower than this, no layout is readable: help is laid out for this width at least. */
const MIN_WIDTH = 40;

/** What help needs to know of a command. */
export interface HelpEntry {
  /** `name <param> [<optional>]` */
  usage: string;
  summary: string;
  details?: string;
  example?: string;
  aliases?: readonly string[];
}

/** The width to lay help out for: the terminal's columns, else `DEFAULT_WIDTH`. */
export function helpWidth(columns: number | undefined): number {
  return Math.max(MIN_WIDTH, columns && columns > 0 ? columns : DEFAULT_WIDTH);
}

/**
 * `text` as lines of at most `width` characters, broken at blanks. A word longer than a
 * whole line gets a line of its own (and overflows it) rather than being cut.
 */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((word) => word !== "")) {
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/**
 * The command list under a `COMMAND  WHAT IT DOES` header: usage on the left, the summary
 * wrapped in a column on the right. A usage wider than its column (at most 40% of the width)
 * stands on a line of its own, its summary starting on the next one in the column.
 */
export function helpText(entries: readonly HelpEntry[], width: number): string {
  // one blank between a usage's words: a tab or a line break would break the columns
  const usages = entries.map((entry) => wrapWords(entry.usage, Infinity)[0] ?? "");
  const longest = Math.max("COMMAND".length, ...usages.map((usage) => usage.length));
  const usageColumn = Math.min(longest, Math.floor(width * 0.4) - 2);
  const indent = " ".repeat(usageColumn + 2);
  const descriptionWidth = width - indent.length;
  const lines = [`${"COMMAND".padEnd(usageColumn)}  WHAT IT DOES`];
  for (const [index, entry] of entries.entries()) {
    const usage = usages[index];
    const [first = "", ...rest] = wrapWords(entry.summary, descriptionWidth);
    if (usage.length <= usageColumn) {
      lines.push(`${usage.padEnd(usageColumn)}  ${first}`.trimEnd());
    } else {
      lines.push(...wrapWords(usage, width));
      if (first !== "") lines.push(`${indent}${first}`);
    }
    for (const line of rest) lines.push(`${indent}${line}`);
  }
  return lines.join("\n");
}

/**
 * One command's help: its usage line, what it does, other names, and an example. The
 * example is a line to copy, so it is never wrapped: too wide beside `example:`, it stands
 * on the next line alone.
 */
export function commandHelp(entry: HelpEntry, width: number): string {
  const lines = wrapWords(`usage: ${entry.usage}`, width);
  const description = entry.details ? `${entry.summary}. ${entry.details}` : entry.summary;
  lines.push(...wrapWords(description, width));
  if (entry.aliases?.length) {
    lines.push(...wrapWords(`also typed as: ${entry.aliases.join(", ")}`, width));
  }
  if (entry.example) {
    const line = `example: ${entry.example}`;
    lines.push(...line.length <= width ? [line] : ["example:", entry.example]);
  }
  return lines.join("\n");
}
