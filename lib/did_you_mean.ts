/**
 * "Did you mean": the known word closest to a mistyped one, by edit distance (insertions,
 * deletions, substitutions and swaps of neighbours each count one), when it is close enough
 * to be a typo rather than another word.
 *
 * @example
 * ```ts
 * closestWord("lgoin", ["login", "logout", "quit"]); // "login"
 * closestWord("frobnicate", ["login", "quit"]); // undefined
 * ```
 *
 * @module
 */

/** The edit distance of `a` and `b` (optimal string alignment: a swap of neighbours is one). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const columns = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(columns).fill(0));
  for (let i = 0; i < rows; i++) d[i][0] = i;
  for (let j = 0; j < columns; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < columns; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The word of `known` closest to `typed`, if within a typo's reach: one edit for words of up
 * to 4 characters, two up to 8, three beyond. Ties go to the earlier word in `known`.
 */
export function closestWord(typed: string, known: Iterable<string>): string | undefined {
  const reach = typed.length <= 4 ? 1 : typed.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = reach + 1;
  for (const word of known) {
    // a word far longer or shorter cannot be close: skip the table
    if (Math.abs(word.length - typed.length) >= bestDistance) continue;
    const distance = editDistance(typed.toLowerCase(), word.toLowerCase());
    if (distance < bestDistance) {
      best = word;
      bestDistance = distance;
    }
  }
  return best;
}
