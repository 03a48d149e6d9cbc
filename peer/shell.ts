/**
 * The user's shell: reads one command per line, runs it, prints its result. With a terminal
 * it shows a prompt and offers line editing; from a pipe it runs every line in order with no
 * prompt. In `--json` mode every command prints exactly one JSON line, and announcements
 * that arrive on their own (tracker lost, reconnected) are lines with an `"event"` key.
 *
 * @module
 */

import { createInterface, type Interface } from "node:readline";
import process from "node:process";
import { errorMessage, UserError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ResolveOptions } from "../lib/paths.ts";
import { splitWords } from "../lib/shell_words.ts";
import { jsonTerminalSafe, terminalSafe } from "../lib/terminal_text.ts";
import { CommandLineError, formatSize, resolveCommand } from "./commands.ts";
import type { ClientSession, SessionEvent } from "./session.ts";

/** How the shell talks to its user. */
export interface ShellOptions {
  session: ClientSession;
  /** One JSON line per command instead of text. */
  json: boolean;
  /** True when standard input is a terminal: prompt, line editing, history. */
  interactive: boolean;
  /** How typed paths resolve (where the user started the client). */
  paths?: ResolveOptions;
  /** The client's log, for commands that start transfers. */
  log?: Logger;
}

/** Commands whose arguments include a password: kept out of the line-editing history. */
const SECRET_COMMANDS = new Set(["create_user", "login"]);

/** A command's single output line in `--json` mode. */
export type JsonLine =
  | { command: string; ok: true; data: unknown }
  | { command: string; ok: false; error: string };

/** Runs commands from standard input until it ends or `quit`. */
export class Shell {
  readonly #options: ShellOptions;
  #readline?: Interface;

  constructor(options: ShellOptions) {
    this.#options = options;
  }

  /** Prints something that happened outside any command. */
  announce(event: SessionEvent): void {
    if (this.#options.json) return this.#print(JSON.stringify(event), true);
    // like ssh's "Permanently added ... to the list of known hosts": beside the output, not in it
    if (event.event === "tracker_trusted" && !this.#options.interactive) {
      return console.error(terminalSafe(describeEvent(event)));
    }
    this.#print(describeEvent(event), true);
  }

  /** Reads and runs lines until end of input or `quit`. */
  async run(): Promise<void> {
    const { interactive } = this.#options;
    const readline = createInterface({
      input: process.stdin,
      output: interactive ? process.stdout : undefined,
      terminal: interactive,
      historySize: interactive ? 100 : 0,
    });
    this.#readline = readline;
    let quitting = false;
    try {
      this.#prompt();
      for await (const line of readline) {
        if (line.trim() !== "") await this.execute(line, () => quitting = true);
        if (quitting) break;
        this.#prompt();
      }
    } finally {
      this.#readline = undefined;
      readline.close();
    }
  }

  /** Runs one line and prints its outcome; never throws. */
  async execute(line: string, quit: () => void): Promise<void> {
    let name = "";
    try {
      const words = splitWords(line);
      if (words.length === 0) return;
      name = words[0];
      if (SECRET_COMMANDS.has(name)) this.#forgetLastHistoryEntry();
      const { command, args } = resolveCommand(words);
      name = command.name;
      const { session, paths, log } = this.#options;
      const { data, text } = await command.run({ session, quit, paths, log }, args);
      this.#result({ command: name, ok: true, data }, text);
    } catch (error) {
      if (error instanceof CommandLineError) name = error.commandName;
      const message = error instanceof UserError
        ? error.message
        : `internal error: ${errorMessage(error)}`;
      this.#result({ command: name, ok: false, error: message }, `error: ${message}`);
    }
  }

  #result(line: JsonLine, text: string): void {
    this.#print(this.#options.json ? JSON.stringify(line) : text, false);
  }

  /** Writes whole lines; an announcement redraws the prompt the user was typing at. */
  #print(output: string, isAnnouncement: boolean): void {
    // names, lists and reasons come from the tracker and from peers: never raw to a terminal
    const text = this.#options.json ? jsonTerminalSafe(output) : terminalSafe(output);
    const readline = this.#readline;
    if (this.#options.interactive && isAnnouncement && readline) {
      process.stdout.write(`\r\x1b[K${text}\n`);
      readline.prompt(true);
      return;
    }
    console.log(text);
  }

  #prompt(): void {
    if (!this.#options.interactive || !this.#readline) return;
    this.#readline.setPrompt(`${this.#options.session.user ?? "swarmshare"}> `);
    this.#readline.prompt();
  }

  #forgetLastHistoryEntry(): void {
    const history = (this.#readline as unknown as { history?: string[] } | undefined)?.history;
    history?.shift();
  }
}

/** The sentence a person reads for an event. */
export function describeEvent(event: SessionEvent): string {
  switch (event.event) {
    case "tracker_disconnected":
      return `the tracker at ${event.address} is unreachable (${event.reason}); ` +
        `reconnecting in the background, trying every ${event.retry_max_ms / 1000} s at most`;
    case "tracker_reconnected":
      return event.user
        ? `reconnected to the tracker; session of ${event.user} resumed`
        : "reconnected to the tracker";
    case "session_expired":
      return `the tracker ended the session of ${event.user}: log in again`;
    case "download_complete":
      return `[C] [${event.group}] ${event.name}: downloaded to ${event.path} (${
        formatSize(event.size)
      } in ${event.seconds.toFixed(1)} s from ${
        event.peers.filter((p) => p.bytes > 0).length
      } peers)`;
    case "download_failed":
      return `[F] [${event.group}] ${event.name}: ${event.reason}`;
    case "share_dropped":
      return `warning: no longer sharing "${event.name}" in group "${event.group}": ${event.reason}`;
    case "peer_refused":
      return `error: [${event.group}] ${event.name}: ${event.reason}`;
    case "peer_revoked":
      return `[${event.group}] ${event.name}: stopped serving ${event.peer}: ${event.user} left the group`;
    case "tracker_refused":
      return `error: ${event.reason}`;
    case "address_unverified":
      return `warning: peers are not sent to this client at ${event.address}, so nobody ` +
        `downloads from it: ${event.reason}`;
    case "address_verified":
      return `the tracker verified ${event.address}: peers are sent to this client again`;
    case "tracker_trusted":
      return `trusting the tracker at ${event.address} on first use: fingerprint ${event.fingerprint} (pinned in ${event.file})`;
  }
}
