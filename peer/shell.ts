/**
 * The user's shell: reads one command per line, runs it, prints its result. With a terminal
 * it shows a prompt and offers line editing; from a pipe it runs every line in order with no
 * prompt. In `--json` mode every command prints exactly one JSON line, and announcements
 * that arrive on their own (tracker lost, reconnected) are lines with an `"event"` key.
 *
 * On a terminal it follows the readline conventions of bash, psql and python: Ctrl-C
 * abandons the line being typed, Ctrl-D (on an empty line) or `quit` leaves, asking first
 * while transfers run; Tab completes (peer/completion.ts); a password left off `login` or
 * `create_user` is asked for with echo off; each user's history is kept in the state
 * directory, never with a password in it.
 *
 * @module
 */

import { createInterface, type Interface } from "node:readline";
import process from "node:process";
import { errorMessage, UserError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ResolveOptions } from "../lib/paths.ts";
import { splitWords } from "../lib/shell_words.ts";
import { jsonTerminalSafe, terminalLine, terminalSafe } from "../lib/terminal_text.ts";
import {
  type CommandContext,
  CommandLineError,
  formatSize,
  resolveCommand,
  resumingText,
  transfersInProgress,
} from "./commands.ts";
import { completeLine, type CompletionSources, localEntries } from "./completion.ts";
import { TerminalScreen } from "./live_terminal.ts";
import { completionDetail, promptSummary } from "./progress_text.ts";
import type { ClientSession, SessionEvent } from "./session.ts";
import type { History } from "./state_dir.ts";

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
  /** Where a user's history is kept across runs (terminal only); none: kept in memory. */
  history?: (user: string) => History;
  /** Where Tab finds names; default: the session's lists and the current directory. */
  completion?: CompletionSources;
}

/** Lines of history in memory (readline's list), as many as are saved per user. */
const HISTORY_SIZE = 1000;
/** How long Tab waits for a list from the tracker before offering what it had. */
const COMPLETION_WAIT_MS = 300;
/** How long a list fetched for Tab is offered without asking again. */
const COMPLETION_FRESH_MS = 10_000;

/** Commands whose arguments include a password: kept out of the line-editing history. */
const SECRET_COMMANDS = new Set(["create_user", "login"]);

/** A command's single output line in `--json` mode. */
export type JsonLine =
  /** `more`: a page of a long listing; the lines that follow hold the rest. */
  | { command: string; ok: true; data: unknown; more?: true }
  | { command: string; ok: false; error: string };

/** How often the prompt's transfer summary is brought up to date. */
const PROMPT_REFRESH_MS = 1_000;

/**
 * Announcements kept while a command runs, printed when it ends; more are counted. Notices
 * come at most 20 per 3 s and transfers end once each, so only a very long command fills it.
 */
const MAX_HELD_LINES = 200;

/** Runs commands from standard input until it ends or `quit`. */
export class Shell {
  readonly #options: ShellOptions;
  #readline?: Interface;
  /** Live output, on a terminal in text mode only. */
  #screen?: TerminalScreen;
  /** True while the prompt is shown and the user may be typing (no command running). */
  #atPrompt = false;
  /** Set by `stop` (SIGTERM): leave without asking anything. */
  #stopped = false;
  /** While a password is typed: nothing readline draws reaches the screen. */
  #muted = false;
  /** Abandons the question being asked (Ctrl-C), if any. */
  #cancelQuestion?: () => void;
  /** Whose history is in use, and the lines typed since it was loaded (oldest first). */
  #historyUser?: string;
  #typed: string[] = [];
  /** Lists fetched for Tab, by what they list. */
  readonly #lists = new Map<string, { names: string[]; at: number; fetching?: Promise<void> }>();

  constructor(options: ShellOptions) {
    this.#options = options;
  }

  /**
   * Prints something that happened outside any command: one line each, whatever the names
   * and reasons in it hold (they come from the tracker, peers and files on disk).
   */
  announce(event: SessionEvent): void {
    if (this.#options.json) return this.#print(JSON.stringify(event), true);
    const line = terminalLine(describeEvent(event));
    // like ssh's "Permanently added ... to the list of known hosts": beside the output, not in it
    if (event.event === "tracker_trusted" && !this.#options.interactive) {
      return console.error(line);
    }
    this.#print(line, true);
  }

  /** Leaves at once, asking nothing (SIGTERM): input ends as if it had been closed. */
  stop(): void {
    this.#stopped = true;
    this.#cancelQuestion?.();
    this.#readline?.close();
    try {
      Deno.stdin.close();
    } catch {
      // already closed
    }
  }

  /** Reads and runs lines until end of input or `quit`. */
  async run(): Promise<void> {
    const live = this.#options.interactive && !this.#options.json;
    // the summary in the prompt follows the transfers while the user types
    const promptTimer = live ? setInterval(() => this.#refreshPrompt(), PROMPT_REFRESH_MS) : 0;
    try {
      while (!this.#stopped) {
        const readline = this.#open();
        if (live) this.#screen = new TerminalScreen(process.stdout, readline);
        let quitting = false;
        try {
          this.#prompt();
          for await (const line of readline) {
            if (this.#screen?.takeSkippedLine()) continue;
            this.#atPrompt = false;
            if (line.trim() !== "") {
              this.#remember(line);
              await this.execute(line, () => quitting = true);
              await this.#switchHistory();
            }
            if (quitting) break;
            this.#prompt();
          }
        } finally {
          this.#atPrompt = false;
          this.#screen = undefined;
          this.#readline = undefined;
          readline.close();
        }
        // Ctrl-D on a terminal: leave, unless transfers run and the user says to stay
        if (quitting || this.#stopped || !this.#options.interactive) break;
        if (await this.#confirmLeaving()) break;
      }
    } finally {
      clearInterval(promptTimer);
      this.#flushHeld();
      await this.#saveHistory();
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
      const context = this.#context(quit);
      context.partial = (data, text) =>
        this.#result({ command: command.name, ok: true, data, more: true }, text);
      const { data, text } = await command.run(context, args);
      this.#result({ command: name, ok: true, data }, text);
    } catch (error) {
      if (error instanceof CommandLineError) name = error.commandName;
      const message = error instanceof UserError
        ? error.message
        : `internal error: ${errorMessage(error)}`;
      this.#result({ command: name, ok: false, error: message }, `error: ${message}`);
    }
  }

  #context(quit: () => void): CommandContext {
    const { session, paths, log } = this.#options;
    const context: CommandContext = { session, quit, paths, log, terminal: this.#screen };
    if (!this.#options.interactive) return context;
    context.columns = process.stdout.isTTY ? process.stdout.columns : undefined;
    context.askSecret = async (prompt) => {
      const answer = await this.#ask(prompt, true);
      if (answer === undefined) throw new UserError("cancelled: no password was given");
      return answer;
    };
    context.confirm = async (question, answerIfEmpty = false) => {
      const answer = await this.#ask(question, false);
      return answer === undefined ? undefined : answerOf(answer, answerIfEmpty);
    };
    return context;
  }

  #open(): Interface {
    const { interactive } = this.#options;
    const readline = createInterface({
      input: process.stdin,
      output: interactive ? process.stdout : undefined,
      terminal: interactive,
      historySize: interactive ? HISTORY_SIZE : 0,
      ...interactive
        ? {
          completer: (line: string, done: (error: null, result: [string[], string]) => void) => {
            completeLine(line, this.#options.completion ?? this.#completionSources())
              .then((result) => done(null, result), () => done(null, [[], line]));
          },
        }
        : {},
    });
    if (interactive) {
      const internal = readline as unknown as {
        history: string[];
        line: string;
        cursor: number;
        _writeToOutput(text: string): void;
      };
      // readline keeps its history per interface: a new one (after a declined Ctrl-D) goes on
      internal.history.push(...this.#readline ? [] : this.#historyLines);
      this.#historyLines = internal.history;
      const write = internal._writeToOutput.bind(readline);
      internal._writeToOutput = (text) => {
        if (!this.#muted) return write(text);
        // typing a password: readline redraws "prompt + line" and clears the row first, so
        // the question is written again on its own, and the keys typed never
        const question = readline.getPrompt();
        if (question !== "" && text.startsWith(question)) write(question);
      };
      readline.on("SIGINT", () => {
        // a command running (watch) takes Ctrl-C itself; the prompt comes back after it
        if (!this.#cancelQuestion && !this.#atPrompt) return;
        // like bash: the line stays on screen with ^C after it, and a fresh prompt follows
        process.stdout.write(this.#muted ? "^C\n" : `${internal.line.slice(internal.cursor)}^C\n`);
        internal.line = "";
        internal.cursor = 0;
        if (this.#cancelQuestion) this.#cancelQuestion();
        else this.#prompt();
      });
    }
    this.#readline = readline;
    return readline;
  }

  /** readline's history, newest first; carried from one interface to the next. */
  #historyLines: string[] = [];

  /** Asks a question on the terminal; undefined when it was abandoned or input ended. */
  #ask(query: string, hidden: boolean): Promise<string | undefined> {
    const readline = this.#readline;
    if (!readline) return Promise.resolve(undefined);
    const history = this.#historyLines;
    return new Promise<string | undefined>((resolve) => {
      const abandon = new AbortController();
      const finish = (answer: string | undefined) => {
        readline.off("close", onClose);
        this.#cancelQuestion = undefined;
        if (hidden) {
          this.#muted = false;
          if (answer !== undefined) process.stdout.write("\n");
        }
        // an answer is no command: never recalled, never saved
        if (answer !== undefined && answer !== "" && history[0] === answer) history.shift();
        resolve(answer);
      };
      const onClose = () => {
        abandon.abort();
        finish(undefined);
      };
      readline.once("close", onClose);
      this.#cancelQuestion = () => {
        abandon.abort();
        finish(undefined);
      };
      this.#muted = hidden;
      readline.question(query, { signal: abandon.signal }, finish);
    });
  }

  /** After Ctrl-D: true to leave (nothing runs, or the user says so), false to stay. */
  async #confirmLeaving(): Promise<boolean> {
    const running = transfersInProgress(this.#options.session);
    // input really ended (the terminal went away): nobody to ask
    if (!running || process.stdin.readableEnded) return true;
    const readline = this.#open();
    try {
      process.stdout.write("\n");
      return isYes(await this.#ask(`${running}; quit anyway? [y/N] `, false), true);
    } finally {
      this.#readline = undefined;
      readline.close();
    }
  }

  #result(line: JsonLine, text: string): void {
    this.#print(this.#options.json ? JSON.stringify(line) : text, false);
  }

  /**
   * Writes whole lines. On a terminal an announcement at the prompt redraws the prompt the
   * user was typing at; one that comes while a command runs (its reply, a question, `watch`'s
   * display are on screen) waits for the command to end, so that no stale prompt is drawn in
   * the middle of them.
   */
  #print(output: string, isAnnouncement: boolean): void {
    // names, lists and reasons come from the tracker and from peers: never raw to a terminal
    const text = this.#options.json ? jsonTerminalSafe(output) : terminalSafe(output);
    const readline = this.#readline;
    if (this.#options.interactive && isAnnouncement && readline) {
      if (!this.#atPrompt) return this.#hold(text);
      process.stdout.write(`\r\x1b[K${text}\n`);
      readline.prompt(true);
      return;
    }
    console.log(text);
  }

  /** Announcements waiting for the running command to end (at most `MAX_HELD_LINES`). */
  #held: string[] = [];
  #heldOver = 0;

  #hold(text: string): void {
    if (this.#held.length < MAX_HELD_LINES) this.#held.push(text);
    else this.#heldOver++;
  }

  /** Prints what came while the last command ran, before the prompt comes back. */
  #flushHeld(): void {
    for (const text of this.#held) console.log(text);
    if (this.#heldOver > 0) {
      console.log(`(and ${this.#heldOver} more lines while the command ran, not shown)`);
    }
    this.#held = [];
    this.#heldOver = 0;
  }

  #prompt(): void {
    if (!this.#options.interactive || !this.#readline) return;
    this.#flushHeld();
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
    if (this.#historyLines.length > 0) this.#historyLines.shift();
  }

  /** Keeps a typed line for the user's history file, unless it may hold a password. */
  #remember(line: string): void {
    if (!this.#options.interactive) return;
    const first = line.trim().split(/\s+/)[0];
    if (!SECRET_COMMANDS.has(first)) this.#typed.push(line.trimEnd());
  }

  /** After a login or logout: saves the last user's lines and loads the new user's. */
  async #switchHistory(): Promise<void> {
    const user = this.#options.session.user;
    if (user === this.#historyUser || !this.#options.interactive || !this.#options.history) {
      return;
    }
    await this.#saveHistory();
    this.#historyUser = user;
    if (user === undefined) return;
    try {
      const saved = await this.#options.history(user).load();
      // newest first, as readline keeps it; what this run typed stays the newest
      this.#historyLines.push(...saved.reverse());
      this.#historyLines.splice(HISTORY_SIZE);
    } catch (error) {
      console.error(`warning: history not loaded: ${errorMessage(error)}`);
    }
  }

  async #saveHistory(): Promise<void> {
    const user = this.#historyUser;
    const lines = this.#typed;
    this.#typed = [];
    if (user === undefined || lines.length === 0 || !this.#options.history) return;
    try {
      await this.#options.history(user).append(lines);
    } catch (error) {
      console.error(`warning: history not saved: ${errorMessage(error)}`);
    }
  }

  /** Tab's lists: the session's, cached briefly, never waited on for long. */
  #completionSources(): CompletionSources {
    const session = this.#options.session;
    return {
      groups: () =>
        this.#list("groups", async () => (await session.listGroups()).map(({ group }) => group)),
      files: (group) =>
        this.#list(
          `files\n${group}`,
          async () => (await session.listFiles(group)).map(({ name }) => name),
        ),
      entries: (dir) =>
        localEntries(dir, this.#options.paths ?? { base: Deno.cwd(), env: Deno.env }),
    };
  }

  /** A list from the tracker: fresh from the cache, else fetched for a short while at most. */
  async #list(key: string, fetch: () => Promise<string[]>): Promise<string[]> {
    let entry = this.#lists.get(key);
    if (entry && Date.now() - entry.at < COMPLETION_FRESH_MS) return entry.names;
    if (!entry) this.#lists.set(key, entry = { names: [], at: 0 });
    const cached = entry;
    // one query at a time; a slow one fills the cache for the next Tab
    cached.fetching ??= fetch().then(
      (names) => {
        cached.names = names;
        cached.at = Date.now();
      },
      () => {},
    ).finally(() => cached.fetching = undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      cached.fetching,
      new Promise<void>((resolve) => timer = setTimeout(resolve, COMPLETION_WAIT_MS)),
    ]);
    clearTimeout(timer);
    return cached.names;
  }
}

/** `y` or `yes` (any case); anything else is the default. */
function isYes(answer: string | undefined, ifAbandoned = false): boolean {
  if (answer === undefined) return ifAbandoned;
  return answerOf(answer, false);
}

/**
 * A yes/no answer: the answer that is not the default only when typed as such (`y`, `yes`,
 * `n`, `no`, any case), so that a slip of the keyboard never picks the other one.
 */
function answerOf(answer: string, answerIfEmpty: boolean): boolean {
  return answerIfEmpty ? !/^\s*no?\s*$/i.test(answer) : /^\s*y(es)?\s*$/i.test(answer);
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
      return (event.trying
        ? `the trackers at ${event.trying.join(", ")} are unreachable (${event.reason}); ` +
          `reconnecting in the background, trying one every ${event.retry_max_ms / 1000} s at most`
        : `the tracker at ${event.address} is unreachable (${event.reason}); ` +
          `reconnecting in the background, trying every ${event.retry_max_ms / 1000} s at most`);
    case "tracker_switched":
      return `tracker ${event.from} unreachable; now using ${event.to}`;
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
        ? `warning: not resuming from ${event.file}: ${event.reason}`
        : `warning: not resuming the download of "${event.name}" in group "${event.group}": ` +
          event.reason;
    case "share_dropped":
      return `warning: no longer sharing "${event.name}" in group "${event.group}": ${event.reason}`;
    case "share_not_restored":
      return `warning: not serving "${event.name}" in group "${event.group}" on this client: ` +
        `${event.reason}; another client of yours still shares it`;
    case "more_shares_not_restored":
      return `warning: and ${event.count} more shared file${event.count === 1 ? "" : "s"} ` +
        `not served on this client` +
        (event.dropped > 0 ? ` (${event.dropped} of them no longer shared)` : "");
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
    case "notices_held":
      return `and ${event.count} more ${event.count === 1 ? "notice" : "notices"} from the ` +
        "tracker not shown: it sent more than a tracker should";
    case "tracker_trusted":
      return event.same_as
        ? `trusting the tracker at ${event.address}: it presents ${event.fingerprint}, the ` +
          `fingerprint pinned for ${event.same_as} (one deployment; pinned in ${event.file})`
        : `trusting the tracker at ${event.address} on first use: fingerprint ${event.fingerprint} (pinned in ${event.file})`;
  }
}
