/**
 * Text that reaches a terminal from others (the tracker's lists, a peer's reasons, names)
 * is made safe to print: control characters that a terminal would act on (escape sequences,
 * carriage returns, C1 controls) and the bidirectional controls that reorder what is shown
 * (`gnp.exe` as `exe.png`) are written out as `\uXXXX` instead. Line breaks stay.
 *
 * @module
 */

// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every character a terminal would act on written out as `\uXXXX`. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * `text` as one line a terminal shows as written: `terminalSafe`, and line breaks written out
 * as `\n`, so that a name or reason from others can never start a line of its own (a forged
 * `error: ...`).
 */
export function terminalLine(text: string): string {
  return terminalSafe(text).replaceAll("\n", "\\n");
}

/**
 * A JSON line made safe the same way (the same function): JSON already escapes C0 controls,
 * and the C1 and bidi controls it leaves raw can only stand inside strings, where `\uXXXX`
 * is their JSON escape, so the line parses to the same value.
 */
export const jsonTerminalSafe: (line: string) => string = terminalSafe;

function escapeChar(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}
