/**
 * Reading a list the tracker sends page by page (`list_groups`, `list_files`): ask for the
 * page after the last entry received until a page comes back empty. A tracker that sends
 * pages out of order, or without end, is refused rather than followed.
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";

/**
 * Pages one listing may take: 2,000 pages of 500 is a million entries, far beyond any group
 * or tracker this program serves, and a bound on what a broken tracker can make us hold.
 */
export const MAX_PAGES = 2_000;

/**
 * The pages of a paged listing as they come, checked; `fetch(after)` returns the page after
 * `after`. What a shell shows page by page: a group of 100,000 files is 200 pages, never one
 * 10 MB reply held whole.
 */
export async function* pagesOf<T>(
  fetch: (after: string | undefined) => Promise<T[]>,
  keyOf: (entry: T) => string,
  what: string,
): AsyncGenerator<T[]> {
  let after: string | undefined;
  for (let pages = 0;; pages++) {
    const page = await fetch(after);
    if (page.length === 0) return;
    if (pages === MAX_PAGES) {
      throw new UserError(`the tracker's ${what} runs past ${MAX_PAGES} pages; giving up`);
    }
    for (const entry of page) {
      const key = keyOf(entry);
      // each page continues after the last: keys only grow, or the tracker is repeating itself
      if (after !== undefined && !(key > after)) {
        throw new UserError(`the tracker sent its ${what} out of order; try again`);
      }
      after = key;
    }
    yield page;
  }
}

/** Every entry of a paged listing; `fetch(after)` returns the page after `after`. */
export async function allPages<T>(
  fetch: (after: string | undefined) => Promise<T[]>,
  keyOf: (entry: T) => string,
  what: string,
): Promise<T[]> {
  const entries: T[] = [];
  for await (const page of pagesOf(fetch, keyOf, what)) entries.push(...page);
  return entries;
}
