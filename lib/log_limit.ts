/**
 * A log that cannot be flooded: at most `maxLines` lines per window; lines beyond are
 * counted, and the count is said once when a later line opens the next window. Hostile
 * peers can provoke a log line per connection; this keeps stderr (and a log file behind it)
 * bounded whatever they do.
 *
 * @module
 */

/** Options of a limited log. */
export interface LogLimitOptions {
  /** Lines let through per window. Default 20. */
  maxLines?: number;
  /** Window length in ms. Default 10 s. */
  windowMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * Says how many lines were suppressed (a logger gives it its timestamp and level).
   * Default: `write` of `(N more log lines suppressed)`.
   */
  note?: (suppressed: number) => void;
}

/** Wraps `write` so that it passes at most `maxLines` lines per `windowMs`. */
export function limitedLog(
  write: (line: string) => void,
  options: LogLimitOptions = {},
): (line: string) => void {
  const maxLines = options.maxLines ?? 20;
  const windowMs = options.windowMs ?? 10_000;
  const now = options.now ?? Date.now;
  const note = options.note ??
    ((suppressed: number) =>
      write(`(${suppressed} more log line${suppressed === 1 ? "" : "s"} suppressed)`));
  let windowStart = -Infinity;
  let written = 0;
  let suppressed = 0;
  return (line) => {
    const time = now();
    if (time - windowStart >= windowMs) {
      if (suppressed > 0) note(suppressed);
      windowStart = time;
      written = 0;
      suppressed = 0;
    }
    if (written < maxLines) {
      written++;
      write(line);
    } else {
      suppressed++;
    }
  };
}
