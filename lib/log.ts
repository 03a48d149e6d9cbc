/**
 * The log of both programs: one line per entry, `<ISO time> <level> <message>`, at four
 * levels (error, warn, info, debug), written to a sink (a file opened for appending, stdout,
 * stderr, or nowhere). A message may carry names and reasons that came from others (a user
 * id, a file name, a peer's error), so each is made safe on the way out: terminal controls and
 * line breaks are escaped (one entry is always one line; nobody forges a second) and it is cut
 * at `MAX_LOG_MESSAGE_CHARS`. Entries others can provoke go through `limited`, which passes a
 * stated number of lines per window and says how many it held back.
 *
 * @example
 * ```ts
 * const log = new Logger({ level: "info", write: (line) => console.log(line) });
 * log.info(`connection 1 from 127.0.0.1:50000`);
 * log.debug("not written at level info");
 * ```
 *
 * @module
 */

import { limitedLog, type LogLimitOptions } from "./log_limit.ts";
import { terminalLine } from "./terminal_text.ts";
import { UserError } from "./errors.ts";

/** How serious an entry is, most serious first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * The longest message written, in characters after escaping (a line is at most this, its
 * timestamp and level: about 540 characters). Names are at most 255 bytes and reasons a few
 * hundred; only a hostile one is cut.
 */
export const MAX_LOG_MESSAGE_CHARS = 512;

/** Options of a logger. */
export interface LoggerOptions {
  /** The least serious level written. Default "info". */
  level?: LogLevel;
  /** Where finished lines go (no line break at the end). Default: nowhere. */
  write?: (line: string) => void;
  /** The clock. Default `new Date()`. */
  now?: () => Date;
}

/** A levelled, line-safe log. */
export class Logger {
  readonly level: LogLevel;
  readonly #write?: (line: string) => void;
  readonly #now: () => Date;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? "info";
    this.#write = options.write;
    this.#now = options.now ?? (() => new Date());
  }

  /** True when entries of `level` are written. */
  enabled(level: LogLevel): boolean {
    return this.#write !== undefined && RANK[level] <= RANK[this.level];
  }

  /** Writes `message` at `level`, when that level is enabled. */
  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.#write!(formatLogLine(this.#now(), level, message));
  }

  error(message: string): void {
    this.log("error", message);
  }

  warn(message: string): void {
    this.log("warn", message);
  }

  info(message: string): void {
    this.log("info", message);
  }

  debug(message: string): void {
    this.log("debug", message);
  }

  /**
   * This log with at most `maxLines` entries per window (`lib/log_limit.ts`); the count held
   * back is said (at warn) when the next window opens. Entries of disabled levels do not
   * count.
   */
  limited(options: LogLimitOptions = {}): Logger {
    let pending: LogLevel = "info";
    const pass = limitedLog((message) => this.log(pending, message), {
      ...options,
      note: (suppressed) =>
        this.warn(`(${suppressed} more log line${suppressed === 1 ? "" : "s"} suppressed)`),
    });
    return new LimitedLogger(this, (level, message) => {
      pending = level;
      pass(message);
    });
  }
}

class LimitedLogger extends Logger {
  readonly #base: Logger;
  readonly #pass: (level: LogLevel, message: string) => void;

  constructor(base: Logger, pass: (level: LogLevel, message: string) => void) {
    super({ level: base.level });
    this.#base = base;
    this.#pass = pass;
  }

  override enabled(level: LogLevel): boolean {
    return this.#base.enabled(level);
  }

  override log(level: LogLevel, message: string): void {
    if (this.enabled(level)) this.#pass(level, message);
  }
}

/**
 * One log line: `2026-12-14T10:00:00.000Z info  message`. The message is escaped for a
 * terminal, line breaks too (`\n`), and cut at `MAX_LOG_MESSAGE_CHARS` with an ellipsis.
 */
export function formatLogLine(time: Date, level: LogLevel, message: string): string {
  return `${time.toISOString()} ${level.padEnd(5)} ${logSafe(message)}`;
}

/** `message` as one safe line of at most `MAX_LOG_MESSAGE_CHARS` characters. */
export function logSafe(message: string): string {
  const safe = terminalLine(message);
  if (safe.length <= MAX_LOG_MESSAGE_CHARS) return safe;
  // never cut an escape in half: cut before the backslash that starts it
  let end = MAX_LOG_MESSAGE_CHARS - 3;
  const escape = safe.lastIndexOf("\\", end);
  if (escape >= 0 && end - escape < 6) end = escape;
  return `${safe.slice(0, end)}...`;
}

/**
 * A sink that appends lines to the file at `path` (created 0600 when missing; an existing
 * file keeps its mode). Lines are written synchronously, in order, each in one write: a log
 * line is small, and a crash then loses none. Throws a UserError naming the path when the
 * file cannot be opened.
 */
export function openLogFile(path: string): { write: (line: string) => void; close(): void } {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "its directory does not exist"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : (error as Error).message;
    throw new UserError(`cannot open log file ${path}: ${reason}`);
  }
  const encoder = new TextEncoder();
  let broken = false;
  return {
    write(line) {
      if (broken) return;
      try {
        writeAllSync(file, encoder.encode(`${line}\n`));
      } catch (error) {
        // a full disk must not stop the tracker: say it once on stderr, then stay quiet
        broken = true;
        writeLineQuietly(Deno.stderr, `error: cannot write log file ${path}: ${error}`);
      }
    },
    close() {
      file.close();
    },
  };
}

/**
 * Writes one line to stdout or stderr, dropping it when nobody reads any more (a closed
 * pipe): a program's last words must not become an uncaught error after its work is done.
 */
export function writeLineQuietly(stream: typeof Deno.stdout | typeof Deno.stderr, line: string) {
  try {
    writeAllSync(stream, new TextEncoder().encode(`${line}\n`));
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

function writeAllSync(target: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array) {
  let offset = 0;
  while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
}
