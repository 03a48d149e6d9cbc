/**
 * The client's own bound on the tracker's notices (join requests, answers, new files). A
 * tracker bounds what it sends to each connection (tracker/notices.ts: a burst of 5 per 3 s,
 * then counts), but a broken or hostile one may send without end, and each notice is a line
 * on the user's screen and in the log. So at most `NOTICE_LINES` notices are shown per
 * `NOTICE_WINDOW_MS`, which an honest tracker stays under; the rest are counted, and when the
 * window ends one line says how many were not shown.
 *
 * @example
 * ```ts
 * const limit = new NoticeLimit(show, (count) => say(`${count} more not shown`));
 * limit.offer(notice); // shown, or counted
 * limit.close(); // when the session ends
 * ```
 *
 * @module
 */

/**
 * Notices shown per window: an honest tracker sends at most 5 in its own 3 s window, then a
 * count per kind and group held back (a few, unless the user is in many busy groups).
 */
export const NOTICE_LINES = 20;
/** The window `NOTICE_LINES` is counted in: as long as the tracker's. */
export const NOTICE_WINDOW_MS = 3_000;

/** How a limit counts. Defaults: the constants of this module. */
export interface NoticeLimitOptions {
  maxLines?: number;
  windowMs?: number;
  now?: () => number;
}

/** Passes at most `maxLines` notices per window to `show`; tells `held` how many it kept back. */
export class NoticeLimit<T> {
  readonly #show: (notice: T) => void;
  readonly #held: (count: number) => void;
  readonly #maxLines: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #shown = 0;
  #count = 0;
  #timer?: ReturnType<typeof setTimeout>;

  constructor(
    show: (notice: T) => void,
    held: (count: number) => void,
    options: NoticeLimitOptions = {},
  ) {
    this.#show = show;
    this.#held = held;
    this.#maxLines = options.maxLines ?? NOTICE_LINES;
    this.#windowMs = options.windowMs ?? NOTICE_WINDOW_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Shows `notice` now, or counts it to be said when the window ends. */
  offer(notice: T): void {
    const now = this.#now();
    if (this.#timer === undefined && now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#shown = 0;
    }
    if (this.#shown < this.#maxLines) {
      this.#shown++;
      this.#show(notice);
      return;
    }
    this.#count++;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(
        () => this.#endWindow(),
        Math.max(0, this.#windowStart + this.#windowMs - now),
      );
      // a count still to say does not keep the client running
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Forgets what is counted (the session ended). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#count = 0;
  }

  #endWindow(): void {
    this.#timer = undefined;
    const count = this.#count;
    this.#count = 0;
    // the line that says the count opens the next window, and is one of its lines
    this.#windowStart = this.#now();
    this.#shown = 1;
    this.#held(count);
  }
}
