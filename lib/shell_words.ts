/**
 * Splits a shell line into words the way a user expects from a terminal: blanks separate
 * words, single or double quotes keep blanks inside one word, and a backslash takes the next
 * character literally. So `upload_file "my notes.txt" g1` names a file with a space.
 *
 * @module
 */

import { UserError } from "./errors.ts";

/** The words of `line`; throws `UserError` on an unclosed quote or a trailing backslash. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === "\\") {
      if (i + 1 >= line.length) throw new UserError("the line ends with a lone backslash");
      word += line[++i];
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
  if (quote) throw new UserError(`unclosed ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}
