/**
 * A client shell on a real pseudo-terminal, for the tests of what a person at a terminal
 * sees: keys typed in, the screen read until some text shows. The pseudo-terminal comes from
 * util-linux `script` (80 columns unless `COLUMNS` says otherwise); tests that need it are
 * skipped where it is missing (`hasScript`).
 *
 * @example
 * ```ts
 * await using term = startTerminal({ trackerPort, stateHome: dir.join("state") });
 * await term.waitFor("swarmshare> ");
 * await term.type("help\r");
 * ```
 *
 * @module
 */

import { MAIN, within } from "../scripts/processes.ts";

/** True where util-linux `script` runs, so that a pseudo-terminal can be had. */
export const hasScript =
  new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .outputSync().success;

/** How the client on the terminal is started. */
export interface TerminalOptions {
  trackerPort: number;
  /** Its `XDG_STATE_HOME`: its identity, pins, history and remembered downloads. */
  stateHome: string;
  /** Where it starts (relative paths typed resolve here). Default: this process's. */
  cwd?: string;
  /** More client options, after the four positional arguments. */
  extraArgs?: string[];
  /** More environment variables (e.g. `COLUMNS`). */
  env?: Record<string, string>;
}

/** A client shell on a pseudo-terminal; dispose it to end it. */
export interface Terminal extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /**
   * Waits for `pattern` in what the terminal shows next, and returns everything shown up to
   * its end (what follows is what the next wait reads).
   */
  waitFor(pattern: string | RegExp): Promise<string>;
  /** Types keys (`\r` is Enter, `\x03` Ctrl-C, `\x04` Ctrl-D, `\t` Tab). */
  type(keys: string): Promise<void>;
  /** Everything the terminal has shown, for checks that something never appeared. */
  readonly everything: string;
}

/** Starts `main.ts client 127.0.0.1 0 127.0.0.1 <trackerPort>` on a pseudo-terminal. */
export function startTerminal(options: TerminalOptions): Terminal {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const client = [
    Deno.execPath(),
    "run",
    "-A",
    MAIN,
    "client",
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(options.trackerPort),
    ...options.extraArgs ?? [],
  ].map(quote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfec", client, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    cwd: options.cwd,
    env: {
      NO_COLOR: "1",
      TERM: "xterm",
      XDG_STATE_HOME: options.stateHome,
      // paths typed resolve where it was started, not where `deno task test` was typed
      INIT_CWD: options.cwd ?? Deno.cwd(),
      ...options.env,
    },
  }).spawn();
  const input = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let screen = "";
  let everything = "";
  const find = (pattern: string | RegExp) => {
    if (typeof pattern === "string") {
      const at = screen.indexOf(pattern);
      return at < 0 ? -1 : at + pattern.length;
    }
    const match = pattern.exec(screen);
    return match ? match.index + match[0].length : -1;
  };
  return {
    child,
    async waitFor(pattern) {
      while (find(pattern) < 0) {
        const { value, done } = await within(reader.read(), `${pattern} on the terminal`)
          .catch((error) => {
            throw new Error(`${error.message}; the terminal shows: ${JSON.stringify(screen)}`);
          });
        if (done) throw new Error(`terminal closed before ${pattern}: ${JSON.stringify(screen)}`);
        screen += value;
        everything += value;
      }
      const end = find(pattern);
      const seen = screen.slice(0, end);
      screen = screen.slice(end);
      return seen;
    },
    type: (keys) => input.write(new TextEncoder().encode(keys)),
    get everything() {
      return everything;
    },
    async [Symbol.asyncDispose]() {
      await input.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await reader.cancel().catch(() => {});
    },
  };
}

/**
 * The rows a terminal shows after `output`, for checks of what stays on screen rather than
 * which bytes were sent: carriage return, line feed, printable text overwriting, and the
 * escapes readline uses (erase in line `K`, erase below `J`, cursor column `G`, up `A`, down
 * `B`, forward `C`, back `D`); other escapes change nothing here. No wrapping: a row is as
 * long as what was written on it.
 */
export function screenRows(output: string): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let column = 0;
  const here = () => rows[row] ??= [];
  for (let at = 0; at < output.length; at++) {
    const char = output[at];
    if (char === "\r") column = 0;
    else if (char === "\n") {
      row++;
      column = 0;
      here();
    } else if (char === "\x1b" && output[at + 1] === "[") {
      // the escape character itself is at `at`: the pattern reads what follows it
      const escape = /^\[([0-9;?]*)([A-Za-z])/.exec(output.slice(at + 1, at + 16));
      if (!escape) continue;
      at += escape[0].length;
      const n = Number(escape[1].split(";")[0] || "1");
      switch (escape[2]) {
        case "K":
          here().length = Math.min(here().length, column);
          break;
        case "J":
          here().length = Math.min(here().length, column);
          rows.length = row + 1;
          break;
        case "G":
          column = n - 1;
          break;
        case "A":
          row = Math.max(0, row - n);
          break;
        case "B":
          row += n;
          here();
          break;
        case "C":
          column += n;
          break;
        case "D":
          column = Math.max(0, column - n);
          break;
      }
    } else if (char >= " ") {
      const line = here();
      while (line.length < column) line.push(" ");
      line[column++] = char;
    }
  }
  return rows.map((line) => Array.from(line, (char) => char ?? " ").join(""));
}
