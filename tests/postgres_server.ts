/**
 * A real PostgreSQL server for tests: `initdb` in a temp dir, `postgres` listening on a free
 * 127.0.0.1 port only (no Unix socket outside its dir), a password login for one superuser,
 * and, when the tests run as root, both run as the unprivileged user `nobody` (PostgreSQL
 * refuses to run as root). Disposing stops the server (fast shutdown) and removes the dir.
 *
 * Debian installs the programs in /usr/lib/postgresql/<version>/bin, not on PATH; both
 * places are searched. Where neither has them, `postgresUnavailable()` says why in one line.
 *
 * @module
 */

import postgres from "postgres";
import { freePort } from "./harness.ts";

/** The uid and gid of `nobody` on Debian, who runs the server when the tests run as root. */
const NOBODY = { uid: 65534, gid: 65534 };
/** Starting (initdb and the first "ready") takes ~1-3 s; give up after this. */
const START_LIMIT_MS = 60_000;
/** Lines of the server's log kept to explain a failure. */
const LOG_LINES_KEPT = 50;
const SUPERUSER = "swarmshare";

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The directory holding `initdb` and `postgres`, or undefined when PostgreSQL is not installed. */
export async function findPostgresBin(): Promise<string | undefined> {
  const candidates: string[] = [];
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && await isExecutable(`${dir}/initdb`)) {
      // Debian links initdb onto PATH; postgres sits beside the real one
      candidates.push((await Deno.realPath(`${dir}/initdb`)).replace(/\/initdb$/, ""));
    }
  }
  try {
    const versions: number[] = [];
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
    for (const version of versions.sort((a, b) => b - a)) {
      candidates.push(`/usr/lib/postgresql/${version}/bin`);
    }
  } catch {
    // no Debian layout
  }
  for (const dir of candidates) {
    if (await isExecutable(`${dir}/initdb`) && await isExecutable(`${dir}/postgres`)) return dir;
  }
  return undefined;
}

/** Set (in the test process's environment) once the line saying why was printed. */
const SKIP_SAID_ENV = "SWARMSHARE_TEST_POSTGRES_SKIP_SAID";

/**
 * Why the PostgreSQL tests cannot run here, or undefined when they can. The first test file
 * that asks prints it, one line for the whole run (test files share the process).
 */
export async function postgresUnavailable(): Promise<string | undefined> {
  let why: string | undefined;
  if (Deno.build.os === "windows") why = "postgres tests skipped: not on Windows";
  else if (await findPostgresBin() === undefined) {
    why = "postgres tests skipped: initdb not found (apt-get install postgresql)";
  }
  if (why !== undefined && Deno.env.get(SKIP_SAID_ENV) === undefined) {
    Deno.env.set(SKIP_SAID_ENV, "1");
    console.error(why);
  }
  return why;
}

/** A running server, with a superuser who logs in by password over TCP. */
export class PostgresServer implements AsyncDisposable {
  readonly #dir: string;
  readonly #child: Deno.ChildProcess;
  readonly #log: string[];
  readonly #password: string;
  /** Settles once the server exited and its log was read to the end. */
  readonly #exited: Promise<void>;
  readonly port: number;
  #admin?: postgres.Sql;
  #stopped?: Promise<void>;
  /** Resumes of `pause` not called yet. */
  readonly #paused = new Set<() => void>();

  private constructor(
    dir: string,
    child: Deno.ChildProcess,
    log: string[],
    password: string,
    port: number,
    exited: Promise<void>,
  ) {
    this.#dir = dir;
    this.#child = child;
    this.#log = log;
    this.#password = password;
    this.port = port;
    this.#exited = exited;
  }

  /** Makes a cluster in a fresh temp dir and starts it; resolves once it accepts connections. */
  static async start(): Promise<PostgresServer> {
    const bin = await findPostgresBin();
    if (!bin) throw new Error("initdb not found (apt-get install postgresql)");
    const asRoot = Deno.uid() === 0;
    const owner = asRoot ? NOBODY : undefined;
    const dir = await Deno.makeTempDir({ prefix: "swarmshare-pg-" });
    try {
      // nobody must reach its own files through the dir; nothing in it is readable to others
      await Deno.chmod(dir, 0o711);
      const data = `${dir}/data`;
      const socketDir = `${dir}/socket`;
      const passwordFile = `${dir}/password`;
      const password = crypto.randomUUID();
      await Deno.mkdir(data, { mode: 0o700 });
      await Deno.mkdir(socketDir, { mode: 0o700 });
      await Deno.writeTextFile(passwordFile, `${password}\n`, { mode: 0o600 });
      if (owner) {
        for (const path of [data, socketDir, passwordFile]) {
          await Deno.chown(path, owner.uid, owner.gid);
        }
      }
      const init = await new Deno.Command(`${bin}/initdb`, {
        args: [
          "-D",
          data,
          "-U",
          SUPERUSER,
          `--pwfile=${passwordFile}`,
          "--auth=scram-sha-256",
          // text compares as people's databases do (en-US), not as bytes: the store's own
          // COLLATE "C" is what makes pages come in SQLite's order, and the tests see it
          "--locale=C",
          "--locale-provider=icu",
          "--icu-locale=en-US",
          "--encoding=UTF8",
          "--no-sync",
        ],
        ...owner,
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!init.success) {
        throw new Error(`initdb failed: ${new TextDecoder().decode(init.stderr).trim()}`);
      }
      await Deno.remove(passwordFile);
      // a port picked free may be taken before the server binds it: try a few
      let lastError: Error | undefined;
      for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        try {
          return await PostgresServer.#launch(bin, dir, data, socketDir, port, owner, password);
        } catch (error) {
          lastError = error as Error;
          if (!/could not bind|address already in use/i.test(lastError.message)) break;
        }
      }
      throw lastError;
    } catch (error) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  static async #launch(
    bin: string,
    dir: string,
    data: string,
    socketDir: string,
    port: number,
    owner: { uid: number; gid: number } | undefined,
    password: string,
  ): Promise<PostgresServer> {
    const child = new Deno.Command(`${bin}/postgres`, {
      args: [
        "-D",
        data,
        "-p",
        String(port),
        "-k",
        socketDir,
        "-c",
        "listen_addresses=127.0.0.1",
        // a test cluster: speed over durability
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=60",
      ],
      ...owner,
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const log: string[] = [];
    const ready = Promise.withResolvers<void>();
    // the server logs to stderr for as long as it runs: read it all (a full pipe would stop
    // it), keep the last lines, and settle `ready` on the line that says it accepts clients
    const reading = (async () => {
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          log.push(line);
          if (log.length > LOG_LINES_KEPT) log.shift();
          if (/database system is ready to accept connections/.test(line)) ready.resolve();
        }
      }
    })();
    const exited = child.status.then((status) => {
      ready.reject(new Error(`postgres exited (${status.code}): ${log.slice(-10).join(" | ")}`));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        ready.promise,
        new Promise((_, reject) =>
          timer = setTimeout(
            () => reject(new Error(`postgres did not start within ${START_LIMIT_MS} ms`)),
            START_LIMIT_MS,
          )
        ),
      ]);
    } catch (error) {
      try {
        child.kill("SIGINT");
      } catch {
        // already gone
      }
      await Promise.all([exited, reading]);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const done = Promise.all([exited, reading]).then(() => {});
    return new PostgresServer(dir, child, log, password, port, done);
  }

  /** The URL of database `database` for the superuser. */
  url(database = "postgres"): string {
    return `postgres://${SUPERUSER}:${this.#password}@127.0.0.1:${this.port}/${database}`;
  }

  /** Creates an empty database. */
  async createDatabase(name: string): Promise<void> {
    if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`bad database name ${name}`);
    this.#admin ??= postgres(this.url(), { max: 1, onnotice: () => {} });
    await this.#admin.unsafe(`CREATE DATABASE ${name}`);
  }

  /**
   * Stops the server and all its processes (SIGSTOP, children found in /proc): its clients'
   * queries hang unanswered, as on a stuck database, until `resume` (SIGCONT) is called.
   * Dispose calls `resume` too, so a test that fails meanwhile leaves no stopped server.
   */
  async pause(): Promise<{ resume(): void }> {
    const postmaster = this.#child.pid;
    const pids = [postmaster];
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) pids.push(Number(entry.name));
    }
    const signal = (name: Deno.Signal) => {
      for (const pid of pids) {
        try {
          Deno.kill(pid, name);
        } catch {
          // gone meanwhile
        }
      }
    };
    signal("SIGSTOP");
    const resume = () => signal("SIGCONT");
    this.#paused.add(resume);
    return {
      resume: () => {
        this.#paused.delete(resume);
        resume();
      },
    };
  }

  /** The last lines the server logged. */
  get log(): string[] {
    return [...this.#log];
  }

  /** Stops the server (fast shutdown: clients are disconnected) and removes its dir. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#stopped ??= (async () => {
      for (const resume of this.#paused) resume();
      await this.#admin?.end({ timeout: 5 });
      try {
        this.#child.kill("SIGINT");
      } catch {
        // already gone
      }
      await this.#exited;
      await Deno.remove(this.#dir, { recursive: true });
    })();
    return this.#stopped;
  }
}
