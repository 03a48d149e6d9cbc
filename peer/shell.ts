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
import { CommandLineError, formatSize, resolveCommand, resumingText } from "./commands.ts";
import { TerminalScreen } from "./live_terminal.ts";
import { completionDetail, promptSummary } from "./progress_text.ts";
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

/** How often the prompt's transfer summary is brought up to date. */
const PROMPT_REFRESH_MS = 1_000;

/** Runs commands from standard input until it ends or `quit`. */
export class Shell {
  readonly #options: ShellOptions;
  #readline?: Interface;
  /** Live output, on a terminal in text mode only. */
  #screen?: TerminalScreen;
  /** True while the prompt is shown and the user may be typing (no command running). */
  #atPrompt = false;

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
    const live = interactive && !this.#options.json;
    if (live) this.#screen = new TerminalScreen(process.stdout, readline);
    // the summary in the prompt follows the transfers while the user types
    const promptTimer = live ? setInterval(() => this.#refreshPrompt(), PROMPT_REFRESH_MS) : 0;
    let quitting = false;
    try {
      this.#prompt();
      for await (const line of readline) {
        if (this.#screen?.takeSkippedLine()) continue;
        this.#atPrompt = false;
        if (line.trim() !== "") await this.execute(line, () => quitting = true);
        if (quitting) break;
        this.#prompt();
      }
    } finally {
      clearInterval(promptTimer);
      this.#atPrompt = false;
      this.#screen = undefined;
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
      const { data, text } = await command.run(
        { session, quit, paths, log, terminal: this.#screen },
        args,
      );
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
    this.#readline.setPrompt(this.#promptText());
    this.#readline.prompt();
    this.#atPrompt = true;
  }

  /** `bob> `, or with running transfers `bob [1↓ 37% 8.1 MiB/s]> ` (text mode only). */
  #promptText(): string {
    const { session, json } = this.#options;
    const user = session.user ?? "swarmshare";
    const summary = this.#screen && !json ? promptSummary(session.transfers()) : "";
    return summary ? `${user} [${summary}]> ` : `${user}> `;
  }

  /** Redraws the prompt when its summary changed, keeping the line typed and the cursor. */
  #refreshPrompt(): void {
    const readline = this.#readline;
    if (!readline || !this.#atPrompt) return;
    const prompt = this.#promptText();
    if (prompt === readline.getPrompt()) return;
    readline.setPrompt(prompt);
    readline.prompt(true);
  }

  #forgetLastHistoryEntry(): void {
    const history = (this.#readline as unknown as { history?: string[] } | undefined)?.history;
    history?.shift();
  }
}

/** "and 37 more new files in group "films"": notices the tracker counted instead of sending. */
function describeMoreNotices(event: Extract<SessionEvent, { event: "more_notices" }>): string {
  const { count, group } = event;
  const plural = (one: string, many: string) => count === 1 ? one : many;
  const where = group === null ? "several groups" : `group "${group}"`;
  switch (event.notice) {
    case "file_shared":
      return `and ${count} more new ${plural("file", "files")} in ${where}` +
        (group === null ? "" : `: list_files ${group}`);
    case "join_requested":
      return `and ${count} more ${plural("request", "requests")} to join ` +
        (group === null ? "your groups" : `${where}: requests list_requests ${group}`);
    case "join_accepted":
      return `and ${count} more of your requests to join accepted: ${where}`;
    case "join_rejected":
      return `and ${count} more of your requests to join turned down: ${where}`;
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
        completionDetail(event.size, event.seconds, event.peers.filter((p) => p.bytes > 0).length)
      })`;
    case "download_failed":
      return `[F] [${event.group}] ${event.name}: ${event.reason}`;
    case "download_resumed":
      return event.paused
        ? `download of "${event.name}" in group "${event.group}" stays paused: ` +
          `${event.pieces_done} of ${event.pieces_total} pieces verified; ` +
          `resume_download ${event.group} ${event.name} continues it`
        : resumingText(event);
    case "download_not_resumed":
      return event.group === null
        ? `warning: ignoring the remembered download in ${event.file}: ${event.reason}`
        : `warning: not resuming the download of "${event.name}" in group "${event.group}": ` +
          event.reason;
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
    case "join_requested":
      return `${event.user} wants to join group "${event.group}": accept_request ${event.group} ${event.user}`;
    case "join_accepted":
      return `your request to join group "${event.group}" was accepted: you are a member now`;
    case "join_rejected":
      return `your request to join group "${event.group}" was turned down by its owner`;
    case "file_shared":
      return `new file in group "${event.group}": "${event.name}" (${
        formatSize(event.size)
      }) from ${event.user}`;
    case "more_notices":
      return describeMoreNotices(event);
    case "tracker_trusted":
      return `trusting the tracker at ${event.address} on first use: fingerprint ${event.fingerprint} (pinned in ${event.file})`;
  }
}
