/**
 * The shell's command table: each command's words, parameters, what it does on the session,
 * and how its result reads to a person. The shell owns parsing and printing; the session owns
 * state; this module is the one place that says which command means what.
 *
 * @module
 */

import { basename } from "node:path";
import { closestWord } from "../lib/did_you_mean.ts";
import { UserError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { type ResolveOptions, resolveUserPath } from "../lib/paths.ts";
import { fileNameProblem, idProblem, passwordProblem } from "../lib/protocol.ts";
import type { DownloadStatus } from "./file_sharing.ts";
import type { LiveTerminal } from "./live_terminal.ts";
import {
  completedDetail,
  formatSize,
  transferDetail,
  uploadsText,
  watchFrame,
} from "./progress_text.ts";
import { commandHelp, helpText as layOutHelp, helpWidth } from "./help.ts";
import type { ClientSession } from "./session.ts";

export { formatSize };

/** A command's outcome: `data` for `--json`, `text` for a person. */
export interface CommandResult {
  data: unknown;
  text: string;
}

/** What a command may act on. */
export interface CommandContext {
  session: ClientSession;
  /** Asks the shell to stop after this command. */
  quit(): void;
  /** Live output (redrawn lines) when the shell runs on a terminal in text mode; else none. */
  terminal?: LiveTerminal;
  /** How typed paths resolve. Default: against the working directory, `~` at HOME. */
  paths?: ResolveOptions;
  /** The client's log (transfers started). Default: none. */
  log?: Logger;
  /**
   * Asks the person at the terminal for a secret, with echo off; rejects with a UserError
   * when they abandon it (Ctrl-C). Absent without a terminal: nobody to ask.
   */
  askSecret?(prompt: string): Promise<string>;
  /**
   * Asks the person at the terminal a yes/no question: `answerIfEmpty` (default no) unless
   * they type the other answer; undefined when they abandon it (Ctrl-C). Absent without a
   * terminal.
   */
  confirm?(question: string, answerIfEmpty?: boolean): Promise<boolean | undefined>;
  /** The terminal's width in columns; undefined on a pipe. */
  columns?: number;
  /**
   * Shows part of a long result at once (a page of a listing, in the command's own format),
   * before the command returns the rest. Absent: a command returns all of it in one result.
   */
  partial?(data: unknown[], text: string): void;
}

/** A typed path, absolute: against where the user started the client, `~` at their home. */
function userPath(context: CommandContext, path: string): string {
  return resolveUserPath(path, context.paths ?? { base: Deno.cwd(), env: Deno.env });
}

/** One shell command. */
export interface Command {
  /** The words that name it, as typed and as reported in `--json` (`requests list_requests`). */
  name: string;
  params: readonly string[];
  /** Flags it takes after its parameters, at most one of them (`--keep`, `--delete`). */
  flags?: readonly string[];
  /** Parameters that may be left out, after `params` (a password asked for on a terminal). */
  optionalParams?: readonly string[];
  /** Other names typed for it (`list_requests`); `--json` reports `name`. */
  aliases?: readonly string[];
  summary: string;
  /** More than the summary, for `help <command>`. */
  details?: string;
  /** A whole line as typed, for `help <command>`. */
  example?: string;
  run(context: CommandContext, args: string[]): Promise<CommandResult>;
}

/** `name <param> ... [<optional>]`, as shown in help and in usage errors. */
export function usageOf(command: Command): string {
  const flags = command.flags?.length ? [`[${command.flags.join("|")}]`] : [];
  return [
    command.name,
    ...command.params.map((param) => `<${param}>`),
    ...(command.optionalParams ?? []).map((param) => `[<${param}>]`),
    ...flags,
  ].join(" ");
}

function checkId(kind: "user" | "group", id: string): string {
  const problem = idProblem(kind, id);
  if (problem) throw new UserError(problem);
  return id;
}

function checkPassword(password: string): string {
  const problem = passwordProblem(password);
  if (problem) throw new UserError(problem);
  return password;
}

function checkFileName(name: string): string {
  const problem = fileNameProblem(name);
  if (problem) throw new UserError(problem);
  return name;
}

/** The most a limit may say: 16 GiB/s is beyond any link, and exact in every unit. */
const MAX_LIMIT_KIB = 16 * 1024 * 1024;

/** A rate limit as typed: KiB/s (a whole number), or "none" (undefined). */
function parseLimit(text: string, which: "upload" | "download"): number | undefined {
  if (text === "none") return undefined;
  if (!/^[1-9]\d{0,7}$/.test(text) || Number(text) > MAX_LIMIT_KIB) {
    throw new UserError(
      `the ${which} limit must be a whole number of KiB/s from 1 to ${MAX_LIMIT_KIB}, or none`,
    );
  }
  return Number(text);
}

/**
 * One `show_downloads` line: `[D] [grp] file 37% (...); 18.5 of 50.0 MiB, down ...`,
 * `[C] [grp] file: downloaded to PATH (...)`, `[F] [grp] file: why`.
 */
export function downloadLine(download: DownloadStatus): string {
  const head = `[${download.state}] [${download.group}] ${download.name}`;
  if (download.state === "C") return `${head}${completedDetail(download)}`;
  if (download.state === "F") return `${head}: ${download.reason}`;
  const percent = download.pieces_total === 0
    ? 100
    : Math.floor((download.pieces_done / download.pieces_total) * 100);
  const peers = download.peers.filter((peer) => peer.bytes > 0).length;
  const detail = download.reason ? `, ${download.reason}` : "";
  return `${head} ${percent}% (${download.pieces_done}/${download.pieces_total} pieces from ${peers} peer${
    peers === 1 ? "" : "s"
  }${detail}); ${transferDetail(download)}`;
}

/**
 * What `download_file`, `resume_download` and a login say when a download goes on from its
 * part file: `resuming download of "f" in group "g": 188 of 400 pieces already verified`.
 */
export function resumingText(
  download: { group: string; name: string; pieces_done: number; pieces_total: number },
): string {
  return `resuming download of "${download.name}" in group "${download.group}": ` +
    `${download.pieces_done} of ${download.pieces_total} pieces already verified`;
}

/** A moment for people: local `YYYY-MM-DD HH:MM`. */
export function formatTime(ms: number): string {
  const date = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${
    two(date.getHours())
  }:${two(date.getMinutes())}`;
}

/** Rows in columns under `header` (a listing's later pages go without one). */
function table(header: string[] | undefined, rows: string[][]): string {
  const widths = (header ?? rows[0]).map((_, column) =>
    Math.max(header?.[column].length ?? 0, ...rows.map((row) => row[column].length))
  );
  return (header ? [header, ...rows] : rows)
    .map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd())
    .join("\n");
}

/**
 * A listing the tracker sends in pages: shown page by page where the shell can (one page at
 * a time in memory and on the output, a reply line per page in `--json`, the last one
 * without `more`), else returned whole. A listing of one page is one result either way.
 */
async function pagedListing<T>(
  context: CommandContext,
  pages: AsyncIterable<T[]>,
  shape: { header: string[]; row: (entry: T) => string[]; empty: string },
): Promise<CommandResult> {
  const all: T[] = [];
  let held: T[] = [];
  let shown = false;
  for await (const page of pages) {
    if (!context.partial) {
      all.push(...page);
      continue;
    }
    if (held.length > 0) {
      context.partial(held, table(shown ? undefined : shape.header, held.map(shape.row)));
      shown = true;
    }
    held = page;
  }
  const data = context.partial ? held : all;
  if (!shown && data.length === 0) return { data, text: shape.empty };
  return { data, text: table(shown ? undefined : shape.header, data.map(shape.row)) };
}

const COMMAND_LIST: Command[] = [
  {
    name: "create_user",
    params: ["user_id"],
    optionalParams: ["passwd"],
    summary: "create an account",
    details: "Ids are 1 to 64 characters from A-Z a-z 0-9 _ . -. Without a password, a " +
      "terminal asks for it twice with echo off; from a pipe or script, give it on the line.",
    example: "create_user alice",
    async run(context, [user, given]) {
      checkId("user", user);
      const password = given ?? await askNewPassword(context, "create_user");
      const data = await context.session.createUser(user, checkPassword(password));
      return { data, text: `user "${user}" created` };
    },
  },
  {
    name: "login",
    params: ["user_id"],
    optionalParams: ["passwd"],
    summary: "log in (one user per client at a time)",
    details: "Without a password, a terminal asks for it with echo off; from a pipe or " +
      "script, give it on the line. Files shared before are served again.",
    example: "login alice",
    async run(context, [user, given]) {
      checkId("user", user);
      const password = given ?? await askPassword(context, "login", "password: ");
      const data = await context.session.login(user, checkPassword(password));
      const restored = data.shares_restored;
      const more = restored > 0
        ? `; serving ${restored} shared file${restored === 1 ? "" : "s"} again`
        : "";
      context.log?.info(`logged in as ${user}${more}`);
      return { data, text: `logged in as ${user}${more}` };
    },
  },
  {
    name: "create_group",
    params: ["group_id"],
    summary: "create a group; you become its owner",
    example: "create_group films",
    async run({ session }, [group]) {
      const data = await session.createGroup(checkId("group", group));
      return { data, text: `group "${group}" created; you are its owner` };
    },
  },
  {
    name: "join_group",
    params: ["group_id"],
    summary: "ask the owner of a group to let you in",
    example: "join_group films",
    async run({ session }, [group]) {
      const data = await session.joinGroup(checkId("group", group));
      return { data, text: `asked to join group "${group}"; waiting for its owner to accept` };
    },
  },
  {
    name: "leave_group",
    params: ["group_id"],
    summary: "leave a group (an owner hands it to the longest-standing member)",
    example: "leave_group films",
    async run({ session }, [group]) {
      const data = await session.leaveGroup(checkId("group", group));
      const after = data.deleted
        ? "it had no members left and was deleted"
        : `its owner is ${data.owner}`;
      return { data, text: `left group "${group}"; ${after}` };
    },
  },
  {
    name: "requests list_requests",
    params: ["group_id"],
    aliases: ["list_requests"],
    summary: "list pending join requests (owner only)",
    example: "list_requests films",
    async run({ session }, [group]) {
      const data = await session.listRequests(checkId("group", group));
      const text = data.length === 0
        ? `no pending requests for group "${group}"`
        : [`pending requests for group "${group}":`, ...data.map(({ user }) => `  ${user}`)]
          .join("\n");
      return { data, text };
    },
  },
  {
    name: "accept_request",
    params: ["group_id", "user_id"],
    summary: "let a user with a pending request into your group (owner only)",
    example: "accept_request films bob",
    async run({ session }, [group, user]) {
      const data = await session.acceptRequest(checkId("group", group), checkId("user", user));
      return { data, text: `${user} is now a member of group "${group}"` };
    },
  },
  {
    name: "reject_request",
    params: ["group_id", "user_id"],
    summary: "turn down a user's pending request to join your group (owner only)",
    example: "reject_request films mallory",
    async run({ session }, [group, user]) {
      const data = await session.rejectRequest(checkId("group", group), checkId("user", user));
      return { data, text: `turned down ${user}'s request to join group "${group}"` };
    },
  },
  {
    name: "list_groups",
    params: [],
    summary: "list every group with its owner and member count",
    example: "list_groups",
    run(context) {
      return pagedListing(context, context.session.groupPages(), {
        header: ["GROUP", "OWNER", "MEMBERS"],
        row: ({ group, owner, members }) => [group, owner, String(members)],
        empty: "no groups yet",
      });
    },
  },
  {
    name: "upload_file",
    params: ["file_path", "group_id"],
    summary: "share a file with a group (members only); this client serves it",
    example: "upload_file ~/big.iso films",
    async run(context, [path, group]) {
      const { session, terminal } = context;
      const name = basename(path);
      let shared;
      try {
        shared = await session.uploadFile(userPath(context, path), checkId("group", group), {
          onHashProgress: terminal &&
            ((hashed, total) =>
              terminal.status(
                `hashing ${name}: ${total === 0 ? 100 : Math.floor((hashed / total) * 100)}% (${
                  formatSize(hashed)
                } of ${formatSize(total)})`,
              )),
        });
      } finally {
        terminal?.clearStatus();
      }
      context.log?.info(
        `sharing "${shared.name}" (${shared.size} bytes) in group "${shared.group}"`,
      );
      const data = { group: shared.group, name: shared.name, size: shared.size, sha1: shared.sha1 };
      return {
        data,
        text: `shared "${data.name}" in group "${group}" (${
          formatSize(data.size)
        }, sha1 ${data.sha1})`,
      };
    },
  },
  {
    name: "list_files",
    params: ["group_id"],
    summary: "list a group's files with size, SHA-1 and online seeders (members only)",
    example: "list_files films",
    run(context, [group]) {
      return pagedListing(context, context.session.filePages(checkId("group", group)), {
        header: ["NAME", "SIZE", "SHA1", "SEEDERS"],
        row: (file) => [file.name, formatSize(file.size), file.sha1, String(file.seeders)],
        empty: `no files shared in group "${group}"`,
      });
    },
  },
  {
    name: "download_file",
    params: ["group_id", "file_name", "destination_path"],
    summary: "fetch a file into an existing directory, in the background",
    example: "download_file films big.iso ~/Downloads",
    async run(context, [group, name, destination]) {
      const data = await context.session.downloadFile(
        checkId("group", group),
        checkFileName(name),
        userPath(context, destination),
      );
      context.log?.info(`download of "${name}" from group "${group}" started, to ${data.path}`);
      return {
        data,
        text: data.resumed
          ? `${resumingText(data)} (to ${data.path}); see show_downloads`
          : `downloading "${name}" from group "${group}" to ${data.path}; see show_downloads`,
      };
    },
  },
  {
    name: "pause_download",
    params: ["group_id", "file_name"],
    summary: "pause a download, keeping its pieces; it stays paused after a restart",
    example: "pause_download films big.iso",
    async run({ session, log }, [group, name]) {
      const data = await session.pauseDownload(checkId("group", group), checkFileName(name));
      log?.info(
        `download of "${name}" from group "${group}" paused: ${data.pieces_done} of ` +
          `${data.pieces_total} pieces verified`,
      );
      return {
        data,
        text: `paused download of "${name}" in group "${group}": ${data.pieces_done} of ` +
          `${data.pieces_total} pieces verified; resume_download ${group} ${name} continues it`,
      };
    },
  },
  {
    name: "resume_download",
    params: ["group_id", "file_name"],
    summary: "resume a paused download from the pieces it has",
    example: "resume_download films big.iso",
    async run({ session, log }, [group, name]) {
      const data = await session.resumeDownload(checkId("group", group), checkFileName(name));
      log?.info(
        `download of "${name}" from group "${group}" resumed: ${data.pieces_done} of ` +
          `${data.pieces_total} pieces verified, to ${data.path}`,
      );
      return { data, text: `${resumingText(data)}; see show_downloads` };
    },
  },
  {
    name: "cancel_download",
    params: ["group_id", "file_name"],
    flags: ["--keep", "--delete"],
    summary: "stop and forget a download; its part file is kept (--keep) for a later " +
      "download_file, or deleted (--delete)",
    details: "Without either flag, a terminal asks whether to keep the part file (Enter " +
      "keeps it); from a pipe, a script or in --json it is kept, and the reply says so.",
    example: "cancel_download films big.iso --delete",
    async run({ session, terminal, confirm, log }, [group, name, flag]) {
      checkId("group", group);
      checkFileName(name);
      let keep = flag !== "--delete";
      // a person at a terminal in text mode is asked; --json and pipes keep the part file
      if (flag === undefined && terminal && confirm) {
        const part = session.partToCancel(group, name);
        const answer = await confirm(
          `keep the part file ${part.part_path} (${part.pieces_done} of ${part.pieces_total} ` +
            `pieces verified)? [Y/n] `,
          true,
        );
        if (answer === undefined) {
          throw new UserError(
            `not cancelled: no answer was given; the download of "${name}" goes on`,
          );
        }
        keep = answer;
      }
      const data = await session.cancelDownload(group, name, keep);
      log?.info(
        `download of "${name}" from group "${group}" cancelled: ${data.pieces_done} of ` +
          `${data.pieces_total} pieces verified; part file ${data.part_path} ` +
          (keep ? "kept" : "deleted"),
      );
      const head = `cancelled download of "${name}" in group "${group}"`;
      const text = keep
        ? `${head}; kept its part file ${data.part_path} (${data.pieces_done} of ` +
          `${data.pieces_total} pieces verified): download_file resumes from it`
        : `${head}; deleted its part file ${data.part_path}`;
      return { data, text };
    },
  },
  {
    name: "show_downloads",
    params: [],
    summary: "list this session's downloads: [D] downloading, [C] complete, [F] failed",
    example: "show_downloads",
    run({ session }) {
      const data = session.showDownloads();
      const text = data.length === 0
        ? "no downloads in this session"
        : data.map(downloadLine).join("\n");
      return Promise.resolve({ data, text });
    },
  },
  {
    name: "show_uploads",
    params: [],
    summary: "list the files this client serves and who fetches them now, with rates",
    example: "show_uploads",
    run({ session }) {
      const data = session.showUploads();
      return Promise.resolve({ data, text: uploadsText(data) });
    },
  },
  {
    name: "watch",
    params: [],
    summary: "redraw downloads and uploads with bars once a second until Enter (terminal only)",
    example: "watch",
    async run({ session, terminal }) {
      if (!terminal) throw new UserError("watch needs a terminal; use show_downloads");
      await terminal.watch((columns) => watchFrame(session.transfers(), columns));
      const data = session.transfers();
      // the last frame stays as the command's output, as wide as the frames were
      return { data, text: watchFrame(data, Math.max(20, terminal.columns - 1)).join("\n") };
    },
  },
  {
    name: "set_limits",
    params: ["upload_KiB/s|none", "download_KiB/s|none"],
    summary: "limit what this client sends and receives in all, at once for every transfer",
    example: "set_limits 2048 none",
    run({ session }, [upload, download]) {
      const up = parseLimit(upload, "upload");
      const down = parseLimit(download, "download");
      session.setLimits(up && up * 1024, down && down * 1024);
      const data = { upload_kib: up ?? null, download_kib: down ?? null };
      const said = (kib: number | undefined) => kib === undefined ? "none" : `${kib} KiB/s`;
      return Promise.resolve({
        data,
        text: `upload limit ${said(up)}, download limit ${said(down)}`,
      });
    },
  },
  {
    name: "stop_share",
    params: ["group_id", "file_name"],
    summary: "stop sharing a file in a group",
    example: "stop_share films big.iso",
    async run({ session, log }, [group, name]) {
      const data = await session.stopShare(checkId("group", group), checkFileName(name));
      log?.info(`stopped sharing "${name}" in group "${group}"`);
      const after = data.file_removed ? "; nobody shares it any more" : "";
      return { data, text: `stopped sharing "${name}" in group "${group}"${after}` };
    },
  },
  {
    name: "logout",
    params: [],
    summary: "log out: stop serving and stop downloads (both are taken up at next login)",
    example: "logout",
    async run({ session }) {
      const user = session.user;
      const data = await session.logout();
      return { data, text: user ? `logged out ${user}` : "logged out" };
    },
  },
  {
    name: "logout --all",
    params: [],
    summary: "log out on every device: end all your sessions, this one too",
    example: "logout --all",
    async run({ session }) {
      const data = await session.logoutEverywhere();
      return {
        data,
        text: `logged out ${data.user} on every device (${data.sessions} session${
          data.sessions === 1 ? "" : "s"
        })`,
      };
    },
  },
  {
    name: "list_sessions",
    params: [],
    summary: "list your login sessions, newest first (* marks this client's)",
    example: "list_sessions",
    async run({ session }) {
      const data = await session.listSessions();
      const text = data.length === 0 ? "no sessions" : table(
        ["ID", "CREATED", "LAST USED", "DEVICE"],
        data.map((s) => [
          s.current ? `${s.id} *` : s.id,
          formatTime(s.created_at),
          formatTime(s.last_seen_at),
          s.fingerprint === null ? "-" : s.fingerprint.slice(0, 16),
        ]),
      );
      return { data, text };
    },
  },
  {
    name: "end_session",
    params: ["session_id"],
    summary: "end another of your sessions (see list_sessions); that client must log in again",
    example: "end_session 0a1b2c3d",
    async run({ session }, [id]) {
      if (!/^[0-9a-f]{8}$/.test(id)) {
        throw new UserError(`invalid session id "${id}": use the 8 hex digits list_sessions shows`);
      }
      const data = await session.endSession(id);
      return { data, text: `ended session ${id}` };
    },
  },
  {
    name: "help",
    params: [],
    optionalParams: ["command"],
    summary: "show this list, or one command's usage and an example",
    example: "help download_file",
    // async: an unknown name is a rejection, as every other command's mistakes are
    // deno-lint-ignore require-await
    async run({ columns }, [name]) {
      const width = helpWidth(columns);
      if (name === undefined) {
        return { data: { commands: COMMAND_LIST.map(usageOf) }, text: helpText(width) };
      }
      const found = commandsNamed(name);
      if (found.length === 0) throw new UserError(unknownCommand(name));
      return {
        data: found.map((command) => ({
          command: command.name,
          usage: usageOf(command),
          summary: command.summary,
          example: command.example ?? null,
          aliases: command.aliases ?? [],
        })),
        text: found.map((command) => commandHelp(helpEntry(command), width)).join("\n\n"),
      };
    },
  },
  {
    name: "quit",
    params: [],
    summary: "log out and leave the shell (Ctrl-D too)",
    example: "quit",
    details: "On a terminal, asks first while downloads are running.",
    async run({ session, quit, confirm }) {
      const running = transfersInProgress(session);
      if (confirm && running && !await confirm(`${running}; quit anyway? [y/N] `)) {
        return { data: null, text: "not quitting" };
      }
      quit();
      return { data: null, text: "bye" };
    },
  },
];

/** Every command by its full name. */
export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  COMMAND_LIST.map((command) => [command.name, command]),
);

/** Commands by their other names. */
const ALIASES: ReadonlyMap<string, Command> = new Map(
  COMMAND_LIST.flatMap((command) => (command.aliases ?? []).map((alias) => [alias, command])),
);

/** Every command, in the order help lists them. */
export const COMMAND_TABLE: readonly Command[] = COMMAND_LIST;

/** The help listing for a terminal `width` columns wide: usage and summary per command. */
export function helpText(width = helpWidth(undefined)): string {
  return layOutHelp(COMMAND_LIST.map(helpEntry), width);
}

function helpEntry(command: Command) {
  return {
    usage: usageOf(command),
    summary: command.summary,
    details: command.details,
    example: command.example,
    aliases: command.aliases,
  };
}

/** The commands a word names: by name, alias, or first word (`logout`: both logouts). */
export function commandsNamed(word: string): Command[] {
  const alias = ALIASES.get(word);
  if (alias) return [alias];
  return COMMAND_LIST.filter((command) =>
    command.name === word || command.name.startsWith(`${word} `)
  );
}

/**
 * What quitting now would stop, as a sentence (`2 downloads are running`), or undefined when
 * nothing runs.
 */
export function transfersInProgress(session: ClientSession): string | undefined {
  const { downloads, uploads } = session.runningTransfers();
  const parts = [];
  if (downloads > 0) {
    parts.push(`${downloads} download${downloads === 1 ? " is" : "s are"} running`);
  }
  if (uploads > 0) {
    parts.push(`${uploads} peer${uploads === 1 ? " is" : "s are"} downloading from you`);
  }
  return parts.length > 0 ? parts.join(" and ") : undefined;
}

/** The words that start a command line: each command's first word, and every alias. */
export function commandWords(): string[] {
  const words = new Set<string>();
  for (const command of COMMAND_LIST) {
    words.add(command.name.split(" ")[0]);
    for (const alias of command.aliases ?? []) words.add(alias);
  }
  return [...words];
}

/** `unknown command "x"; type help ...`, with the closest command when it looks like a typo. */
function unknownCommand(word: string): string {
  const guess = closestWord(word, commandWords());
  const hint = guess ? `did you mean "${guess}"? ` : "";
  return `unknown command "${word}"; ${hint}type help for the list`;
}

/** Asks for a password on the terminal, or says how to give one without a terminal. */
async function askPassword(
  { askSecret }: CommandContext,
  command: string,
  prompt: string,
): Promise<string> {
  if (!askSecret) {
    throw new UserError(
      `usage: ${command} <user_id> <passwd> (without a terminal the password must be given ` +
        `on the line; a terminal asks for it with echo off)`,
    );
  }
  return await askSecret(prompt);
}

/** A new password, typed twice on the terminal; a mismatch is refused. */
async function askNewPassword(context: CommandContext, command: string): Promise<string> {
  const first = await askPassword(context, command, "new password: ");
  checkPassword(first);
  const again = await askPassword(context, command, "the same password again: ");
  if (again !== first) throw new UserError("the passwords do not match; no account was created");
  return first;
}

/** A shell line resolved to its command and arguments. */
export interface ParsedLine {
  command: Command;
  args: string[];
}

/**
 * Resolves the words of a line to a command, checking the argument count. Throws
 * `CommandLineError` (carrying the name to report) for an unknown command or wrong arguments.
 */
export function resolveCommand(words: string[]): ParsedLine {
  const [first, ...rest] = words;
  // a two-word command such as `requests list_requests` or `logout --all`
  const twoWords = rest.length > 0 ? COMMANDS.get(`${first} ${rest[0]}`) : undefined;
  if (twoWords) return checkArity(twoWords, rest.slice(1));
  const command = COMMANDS.get(first) ?? ALIASES.get(first);
  if (command) return checkArity(command, rest);
  const prefix = [...COMMANDS.keys()].find((name) => name.startsWith(`${first} `));
  if (prefix) throw new CommandLineError(first, `usage: ${usageOf(COMMANDS.get(prefix)!)}`);
  throw new CommandLineError(first, unknownCommand(first));
}

function checkArity(command: Command, args: string[]): ParsedLine {
  const count = command.params.length;
  const optional = command.optionalParams?.length ?? 0;
  const flagged = args.length === count + 1 && (command.flags ?? []).includes(args[count]);
  if ((args.length < count || args.length > count + optional) && !flagged) {
    throw new CommandLineError(command.name, `usage: ${usageOf(command)}`);
  }
  return { command, args };
}

/** A line that names no command or gives it the wrong arguments. */
export class CommandLineError extends UserError {
  override name = "CommandLineError";
  constructor(readonly commandName: string, message: string) {
    super(message);
  }
}
