/**
 * Where a path the user typed leads: every path of both programs (their options, and the
 * shell's `upload_file` and `download_file`) resolves against the directory the user started
 * the program in, with `~` for their home, and every error about it names the absolute path
 * tried. Also where each program keeps its state when not told: XDG's state home.
 *
 * `deno task` runs a task in the project's directory, not the user's; it says where the user
 * was in `INIT_CWD` (as npm does, and it keeps an `INIT_CWD` already set, so under
 * `npx ... task` it is npm's, the same directory). A child process inherits `INIT_CWD` from
 * whatever ran it, so it is taken only when the program runs in the project's directory,
 * where `deno task` put it; anywhere else (a compiled binary, a script's child with its own
 * working directory) the working directory is where the user is.
 *
 * @example
 * ```ts
 * const base = startDirectory({ env: Deno.env, cwd: Deno.cwd(), projectDir: "/src/swarmshare" });
 * const db = resolveUserPath("~/tracker.db", { base, env: Deno.env }); // "/home/me/tracker.db"
 * ```
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { UserError } from "./errors.ts";

/** Reads environment variables (`Deno.env`, or a map in tests). */
export interface Env {
  get(name: string): string | undefined;
}

/** Where the program runs: its environment, working directory and project directory. */
export interface StartPlace {
  env: Env;
  /** The process's working directory. */
  cwd: string;
  /** The directory `deno task` runs the program in (the one holding deno.json), if any. */
  projectDir?: string;
}

/**
 * The directory the user started the program in: `INIT_CWD` when the program runs in the
 * project's directory and it names an absolute path, else `cwd`.
 */
export function startDirectory(place: StartPlace): string {
  const init = place.env.get("INIT_CWD");
  if (
    init && isAbsolute(init) && place.projectDir !== undefined &&
    samePath(place.cwd, place.projectDir)
  ) {
    return resolve(init);
  }
  return place.cwd;
}

/** How `resolveUserPath` resolves: against `base`, with HOME from `env`. */
export interface ResolveOptions {
  /** The directory relative paths start from (`startDirectory`). */
  base: string;
  env: Env;
}

/**
 * The absolute, normalised path `path` names: `~` and `~/...` start at `$HOME`, a relative
 * path at `base`. Throws a UserError for an empty path, `~user` (only the user's own home is
 * known) and `~` without HOME.
 */
export function resolveUserPath(path: string, options: ResolveOptions): string {
  if (path === "") throw new UserError("the path is empty");
  if (path === "~" || path.startsWith("~/")) {
    const home = options.env.get("HOME");
    if (!home || !isAbsolute(home)) {
      throw new UserError(`cannot expand "${path}": HOME is not set to an absolute path`);
    }
    return resolve(home, path.slice(2));
  }
  if (path.startsWith("~")) {
    throw new UserError(
      `cannot expand "${path.split("/")[0]}": only ~ (your home) is expanded; ` +
        `write the full path, or ./${path} for a name that starts with ~`,
    );
  }
  return resolve(options.base, path);
}

/**
 * XDG's state home: `$XDG_STATE_HOME` when it is absolute (the spec ignores a relative one),
 * else `$HOME/.local/state`. Throws a UserError when neither is set.
 */
export function stateHome(env: Env): string {
  const xdg = env.get("XDG_STATE_HOME");
  if (xdg && isAbsolute(xdg)) return resolve(xdg);
  const home = env.get("HOME");
  if (home && isAbsolute(home)) return resolve(home, ".local/state");
  throw new UserError("cannot find a state directory: set XDG_STATE_HOME or HOME");
}

/** The tracker's state directory when `--db` is not given: `<state home>/swarmshare/tracker`. */
export function defaultTrackerStateDir(env: Env): string {
  return resolve(stateHome(env), "swarmshare", "tracker");
}

/** The tracker's database file in its default state directory. */
export const TRACKER_DB_FILE = "tracker.db";

/**
 * Creates `path` and its parents (the new ones private to the user, 0700) unless it exists;
 * throws a UserError naming it (`what`: "state directory") when it cannot be made or is not a
 * directory.
 */
export async function makePrivateDir(path: string, what: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    const reason = error instanceof Deno.errors.AlreadyExists
      ? "a file of that name is in the way"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (error as Error).message;
    throw new UserError(`cannot create ${what} ${path}: ${reason}`);
  }
}

function samePath(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}
