/**
 * Output that changes in place on a terminal: a status line redrawn while a command runs
 * (hashing progress), and the frames `watch` redraws once a second until Enter or Ctrl-C.
 * The only place besides the shell's prompt handling that writes escape sequences; what
 * the lines say comes from peer/progress_text.ts.
 *
 * @module
 */

import type { Interface } from "node:readline";

/** Live output for a command on a terminal (commands get none on a pipe or in `--json`). */
export interface LiveTerminal {
  /** The terminal's width in characters. */
  readonly columns: number;
  /** Shows `text` on one line redrawn in place (at most ten times a second). */
  status(text: string): void;
  /** Removes the status line, if one is shown. */
  clearStatus(): void;
  /**
   * Draws `frame(columns)` (lines that fit the width), then again every second until Enter,
   * Ctrl-C or the end of input; removes the last frame before it resolves.
   */
  watch(frame: (columns: number) => string[]): Promise<void>;
}

/** Where a live terminal writes. */
export interface TerminalOutput {
  write(text: string): unknown;
  readonly columns?: number;
}

/** How often `watch` redraws. */
export const WATCH_INTERVAL_MS = 1_000;
const STATUS_INTERVAL_MS = 100;

/** A `LiveTerminal` on the shell's terminal, reading keys through its line editor. */
export class TerminalScreen implements LiveTerminal {
  readonly #output: TerminalOutput;
  readonly #readline: Interface;
  #statusShown = false;
  #statusAt = 0;
  /** Lines the shell must not run: the Enter that ended a watch, with whatever was typed. */
  #linesToSkip = 0;

  constructor(output: TerminalOutput, readline: Interface) {
    this.#output = output;
    this.#readline = readline;
  }

  get columns(): number {
    return this.#output.columns || 80;
  }

  status(text: string): void {
    const now = performance.now();
    if (this.#statusShown && now - this.#statusAt < STATUS_INTERVAL_MS) return;
    this.#statusAt = now;
    this.#statusShown = true;
    const fitted = [...text].slice(0, this.columns - 1).join("");
    this.#output.write(`\r\x1b[K${fitted}`);
  }

  clearStatus(): void {
    if (!this.#statusShown) return;
    this.#statusShown = false;
    this.#output.write("\r\x1b[K");
  }

  /** True once for each line that ended a watch: the shell drops it instead of running it. */
  takeSkippedLine(): boolean {
    if (this.#linesToSkip === 0) return false;
    this.#linesToSkip--;
    return true;
  }

  async watch(frame: (columns: number) => string[]): Promise<void> {
    const readline = this.#readline;
    let drawn = 0;
    const draw = () => {
      // one width for the whole frame: a line that wrapped would break the count
      const lines = frame(Math.max(20, this.columns - 1));
      const up = drawn > 0 ? `\x1b[${drawn}A` : "";
      this.#output.write(`\r${up}\x1b[J${lines.join("\n")}\n`);
      drawn = lines.length;
    };
    const stopped = Promise.withResolvers<"enter" | "other">();
    const onLine = () => {
      this.#linesToSkip++;
      stopped.resolve("enter");
    };
    const onOther = () => stopped.resolve("other");
    readline.on("line", onLine);
    readline.on("SIGINT", onOther);
    readline.on("close", onOther);
    draw();
    const timer = setInterval(draw, WATCH_INTERVAL_MS);
    try {
      // the line editor wrote a line break for Enter: the frame is one more line up
      const how = await stopped.promise;
      const up = drawn + (how === "enter" ? 1 : 0);
      this.#output.write(`\r${up > 0 ? `\x1b[${up}A` : ""}\x1b[J`);
    } finally {
      clearInterval(timer);
      readline.off("line", onLine);
      readline.off("SIGINT", onOther);
      readline.off("close", onOther);
    }
  }
}
