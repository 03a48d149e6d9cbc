/**
 * Test helpers on top of scripts/processes.ts: whole scripts through a shell, argv runs, and a
 * swarm of logged-in group members in one call, so each test reads as a story.
 *
 * @module
 */

import { freePort, JsonShell, Program, TempDir, TrackerProcess } from "../scripts/processes.ts";

export {
  type DownloadLine,
  freePort,
  type JsonReply,
  JsonShell,
  LineQueue,
  MAIN,
  seededRandom,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "../scripts/processes.ts";

/**
 * Serves every connection a fake server's listener accepts until it is closed, then waits
 * for those being served to end: the accept loop of the tests' fake trackers.
 */
export async function serveEach<C>(
  listener: AsyncIterable<C>,
  serve: (conn: C) => Promise<void>,
): Promise<void> {
  const served: Promise<void>[] = [];
  try {
    for await (const conn of listener) served.push(serve(conn));
  } catch {
    // closed
  }
  await Promise.allSettled(served);
}

/** Runs a whole script through a client shell in human mode and returns what it printed. */
export async function runScript(
  trackerPort: number,
  lines: string[],
  options: { json?: boolean; cwd?: string } = {},
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const args = ["client", "127.0.0.1", "0", "127.0.0.1", String(trackerPort)];
  await using shell = new ScriptShell(options.json ? [...args, "--json"] : args, options.cwd);
  await shell.write(lines.map((line) => `${line}\n`).join(""));
  await shell.endInput();
  const { code } = await shell.exited();
  return { code, stdout: [...shell.stdout.all], stderr: [...shell.stderr.all] };
}

class ScriptShell extends Program {
  constructor(args: string[], cwd?: string) {
    super(args, { stdin: true, cwd });
  }
}

/** Processes whose working directory is `dir` or inside it (Linux; none found elsewhere). */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cwd = Deno.readLinkSync(`/proc/${entry.name}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(entry.name));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Runs `main.ts` with `args` and no input, returning exit code and output. */
export async function runMain(
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  await using program = new ScriptShell(args, options.cwd);
  await program.endInput();
  const { code } = await program.exited();
  return { code, stdout: [...program.stdout.all], stderr: [...program.stderr.all] };
}

/** Shells logged in as fresh users (one per name), the first owning `group` when given. */
export async function usersInGroup(
  trackerPort: number,
  names: string[],
  group?: string,
): Promise<JsonShell[]> {
  const shells = names.map(() => JsonShell.start(trackerPort));
  for (const [index, shell] of shells.entries()) {
    await shell.ok(`create_user ${names[index]} pw-${names[index]}`);
    await shell.ok(`login ${names[index]} pw-${names[index]}`);
  }
  if (group) await shells[0].ok(`create_group ${group}`);
  return shells;
}

/** A tracker and logged-in members of one group, each client in its own directory. */
export interface Swarm extends AsyncDisposable {
  dir: TempDir;
  tracker: TrackerProcess;
  group: string;
  /** Shells by user name, in the order given. */
  shells: Map<string, JsonShell>;
  /** A shell by name (throws for an unknown one). */
  shell(name: string): JsonShell;
  /** The directory a user's client runs in. */
  home(name: string): string;
  /** The state home (`XDG_STATE_HOME`) of a user's clients, with `persistentState`. */
  stateHome(name: string): string;
  /**
   * Starts another client for a user (a member already), logged in; also disposed at the end.
   * `peerPort`: its peer port (default a free one).
   */
  addClient(name: string, extraArgs?: string[], peerPort?: number): Promise<JsonShell>;
}

/**
 * Starts a tracker and one client per name, every user logged in and a member of `group`
 * (the first one owns it). Each client gets a known peer port and its own directory.
 */
export async function startSwarm(
  names: string[],
  options: {
    group?: string;
    clientArgs?: Record<string, string[]>;
    trackerArgs?: string[];
    /** Peer ports chosen beforehand (others get a free one). */
    peerPorts?: Record<string, number>;
    /** The tracker's `--db` (default: a SQLite file in the swarm's dir). */
    db?: string;
    /**
     * Every client of a user keeps its state in `<dir>/<name>.state` (one device, whose
     * remembered downloads a client started again finds). Default: a fresh one per client.
     */
    persistentState?: boolean;
  } = {},
): Promise<Swarm> {
  const group = options.group ?? "crew";
  const dir = await TempDir.create();
  const tracker = await TrackerProcess.start(options.db ?? dir.join("tracker.db"), {
    extraArgs: options.trackerArgs,
  });
  const shells = new Map<string, JsonShell>();
  const extra: JsonShell[] = [];
  const home = (name: string) => dir.join(name);
  const stateHome = (name: string) => dir.join(`${name}.state`);
  const stateOf = (name: string) => options.persistentState ? stateHome(name) : undefined;
  const swarm: Swarm = {
    dir,
    tracker,
    group,
    shells,
    shell(name) {
      const shell = shells.get(name);
      if (!shell) throw new Error(`no shell for ${name}`);
      return shell;
    },
    home,
    stateHome,
    async addClient(name, extraArgs = [], peerPort = freePort()) {
      const shell = JsonShell.start(tracker.port, {
        cwd: home(name),
        peerPort,
        extraArgs,
        stateHome: stateOf(name),
      });
      extra.push(shell);
      await shell.ok(`login ${name} pw-${name}`);
      return shell;
    },
    async [Symbol.asyncDispose]() {
      for (const shell of [...shells.values(), ...extra]) await shell[Symbol.asyncDispose]();
      await tracker[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
  try {
    for (const name of names) {
      await Deno.mkdir(home(name));
      if (options.persistentState) await Deno.mkdir(stateHome(name));
      const shell = JsonShell.start(tracker.port, {
        cwd: home(name),
        peerPort: options.peerPorts?.[name] ?? freePort(),
        extraArgs: options.clientArgs?.[name],
        stateHome: stateOf(name),
      });
      shells.set(name, shell);
      await shell.ok(`create_user ${name} pw-${name}`);
      await shell.ok(`login ${name} pw-${name}`);
    }
    const [owner, ...others] = names;
    await swarm.shell(owner).ok(`create_group ${group}`);
    for (const name of others) {
      await swarm.shell(name).ok(`join_group ${group}`);
      await swarm.shell(owner).ok(`accept_request ${group} ${name}`);
    }
    return swarm;
  } catch (error) {
    await swarm[Symbol.asyncDispose]();
    throw error;
  }
}
