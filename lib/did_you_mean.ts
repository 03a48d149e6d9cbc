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

/** The longest word compared; a longer one is no slip of any command or option. */
const MAX_COMPARED_CHARS = 64;

/**
 * Edits (insertions, deletions, substitutions and swaps of neighbours, each one) from `a` to
 * `b` (optimal string alignment); any result above `limit` is reported as `limit + 1`.
 * O(|a|·|b|) time and O(|b|) memory, both at most `MAX_COMPARED_CHARS`: longer words are
 * equal (0) or beyond any limit.
 */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  if (a.length > MAX_COMPARED_CHARS || b.length > MAX_COMPARED_CHARS) {
    return a === b ? 0 : limit + 1;
  }
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, before[j - 2] + 1);
      }
      current.push(value);
    }
    before = previous;
    previous = current;
  }
  const distance = previous[b.length];
  return distance > limit ? limit + 1 : distance;
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
    const distance = editDistance(typed.toLowerCase(), word.toLowerCase(), reach);
    if (distance < bestDistance) {
      best = word;
      bestDistance = distance;
    }
  }
  return best;
}
