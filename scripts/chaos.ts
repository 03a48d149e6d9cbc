/**
 * `deno task chaos`: faults on purpose. A tracker and clients (default 8) on 127.0.0.1 move
 * several files in rounds while a driver SIGKILLs a random client or the tracker at seeded
 * random moments and restarts it: same database, same state directory, same ports, so the
 * pinned tracker and the peers' addresses hold. A restarted client logs in again (its shares
 * come back with the login, and so do its unfinished downloads, resuming from their part
 * files; a download that failed is started again to the same destination); clients of a
 * restarted tracker resume on their own.
 *
 * At the end it stops killing, lets everything settle (on replies and events; every wait is
 * bounded) and checks: every download started completed with the right SHA-1, every shared
 * file is still listed by the tracker with every holder it should have, and no process it
 * spawned is still running. It prints what it survived and what was lost (the goal: nothing)
 * and exits 1 when anything was. `--seed` replays a run's schedule (kill moments, targets and
 * down times; what the processes do meanwhile still depends on timing).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorMessage } from "../lib/errors.ts";
import { PART_FILE_SUFFIX } from "../lib/protocol.ts";
import {
  freePort,
  JsonShell,
  type Program,
  seededRandom,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./processes.ts";

const MiB = 1 << 20;
const GROUPS = ["alpha", "beta"] as const;

/** How a chaos run is shaped. */
export interface ChaosOptions {
  /** How long the driver kills (the run then settles and checks). */
  seconds: number;
  clients: number;
  files: number;
  sizeMiB: number;
  seed: number;
  /** Mean time between two kills. */
  killEverySeconds: number;
  /** Every client's `--upload-limit-kib`, so that downloads last long enough to be hit. */
  uploadLimitKib: number;
  /** The most the end may take for every download to finish and every client to be back. */
  settleSeconds: number;
  /** Loses a share and corrupts a downloaded file on purpose: the checks must say so. */
  sabotage: boolean;
  /** Where progress lines go. */
  log: (line: string) => void;
  /** Also logs every login and completed download. */
  verbose: boolean;
}

/** What a run survived and what it lost; the `--json` row. */
export interface ChaosReport {
  seed: number;
  clients: number;
  files: number;
  size_mib: number;
  /** The killing phase, the settling and checking after it, and the whole run. */
  chaos_s: number;
  settle_s: number;
  duration_s: number;
  kills_clients: number;
  kills_tracker: number;
  downloads_started: number;
  downloads_completed: number;
  /** Downloads started again at least once (after their client was killed, or a failure). */
  downloads_resumed: number;
  /** Starts again after the downloading client was killed. */
  restarts_after_kill: number;
  /** Starts again after the download failed (`download_failed`). */
  restarts_after_failure: number;
  /** Verified pieces a started-again download found in its part file. */
  pieces_kept: number;
  /** Downloads found complete on disk after a kill (done before the event could be read). */
  found_complete: number;
  /** Shared files checked in `list_files` at the end, and holders they should have. */
  files_checked: number;
  holders_expected: number;
  processes_spawned: number;
  processes_left: number;
  /** Survived but worth reading: throttled logins, failed downloads and their reasons. */
  notes: string[];
  /** Everything not recovered by the end (the goal: nothing). */
  lost: string[];
}

// The schedule

/** One planned fault: at `atMs` after the start of the chaos, kill `target`, restart after `downMs`. */
export interface Kill {
  atMs: number;
  target: "tracker" | number;
  downMs: number;
}

/**
 * The kills of a run, from its seed alone: gaps drawn around `killEverySeconds`, targets
 * drawn among the tracker (about one kill in six with 8 clients) and the clients, down times
 * of 0.2-2 s. A run of two kills or more kills the tracker at least once.
 */
export function killSchedule(
  seed: number,
  options: { seconds: number; clients: number; killEverySeconds: number },
): Kill[] {
  const random = seededRandom(seed);
  const kills: Kill[] = [];
  const meanGapMs = options.killEverySeconds * 1000;
  for (let atMs = meanGapMs * (0.5 + random());; atMs += meanGapMs * (0.5 + random())) {
    if (atMs >= options.seconds * 1000) break;
    const [pick, which, down] = [random(), random(), random()];
    kills.push({
      atMs: Math.round(atMs),
      target: pick < 1.5 / (options.clients + 1) ? "tracker" : Math.floor(which * options.clients),
      downMs: Math.round(200 + down * 1800),
    });
  }
  if (kills.length >= 2 && !kills.some((kill) => kill.target === "tracker")) {
    kills[Math.floor(kills.length / 2)].target = "tracker";
  }
  return kills;
}

// Processes

/** `/proc/<pid>/stat`'s start time: which process a pid names, since pids are reused. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is the state (field 3); a zombie has exited
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** Every process this driver spawned: which exits were asked for, and which are still running. */
class ProcessLedger {
  readonly #entries: { program: Program; what: string; startTime?: string }[] = [];
  readonly #expected = new Set<Program>();
  /** Exits nobody asked for, said as they happen. */
  readonly crashes: string[] = [];

  get spawned(): number {
    return this.#entries.length;
  }

  /** Records a new process and watches for its exit. */
  add(program: Program, what: string): void {
    this.#entries.push({ program, what, startTime: processStartTime(program.pid) });
    program.status.then((status) => {
      if (this.#expected.has(program)) return;
      const stderr = program.stderr.all.slice(-5).join(" | ");
      this.crashes.push(
        `${what} (pid ${program.pid}) exited on its own with code ${status.code}` +
          (status.signal ? ` (${status.signal})` : "") + (stderr ? `: ${stderr}` : ""),
      );
    }).catch(() => {});
  }

  /** The next exit of `program` is ours (a kill, end of input, SIGTERM). */
  expectExit(program: Program): void {
    this.#expected.add(program);
  }

  /**
   * Processes still running: those spawned (same pid and start time) and any other child of
   * this driver. Without /proc, only what the runtime says of its children.
   */
  async stillRunning(): Promise<string[]> {
    const left: string[] = [];
    const hasProc = processStartTime(Deno.pid) !== undefined;
    for (const { program, what, startTime } of this.#entries) {
      const running = hasProc
        ? startTime !== undefined && processStartTime(program.pid) === startTime
        : await Promise.race([program.status.then(() => false), Promise.resolve(true)]);
      if (running) left.push(`${what} (pid ${program.pid})`);
    }
    if (hasProc) {
      for (const entry of Deno.readDirSync("/proc")) {
        if (!/^\d+$/.test(entry.name)) continue;
        const pid = Number(entry.name);
        if (this.#entries.some(({ program }) => program.pid === pid)) continue;
        try {
          const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          if (Number(fields[1]) === Deno.pid && fields[0] !== "Z") {
            left.push(`a child process nobody recorded (pid ${pid})`);
          }
        } catch {
          // gone meanwhile
        }
      }
    }
    return left;
  }
}

// The swarm

interface SharedFile {
  name: string;
  group: string;
  sha1: string;
  sharer: Client;
}

/** One download a client was asked to make: a file, into one round's directory. */
interface Job {
  file: SharedFile;
  dir: string;
  path: string;
  state: "new" | "running" | "done";
  /** The client's generation (process) it was last started in. */
  generation: number;
  starts: number;
}

/** A client: its fixed identity and place (user, ports, directories) and its current process. */
class Client {
  shell?: JsonShell;
  /** Bumped at each kill: a reply or event of an older generation is of a dead process. */
  generation = 0;
  loggedInGeneration = -1;
  #up = Promise.withResolvers<void>();
  #killed = Promise.withResolvers<void>();
  readonly shares: SharedFile[] = [];
  /** The current round's downloads (downloaders). */
  jobs: Job[] = [];
  /** Gave up on (a bounded wait ran out at the end): left out of the final checks. */
  abandoned = false;

  constructor(
    readonly name: string,
    readonly role: "sharer" | "downloader",
    readonly groups: readonly string[],
    readonly home: string,
    readonly port: number,
  ) {}

  get password(): string {
    return `pw-${this.name}`;
  }

  get isUp(): boolean {
    return this.shell !== undefined;
  }

  /** Resolves once a process runs for this client. */
  whenUp(): Promise<void> {
    return this.#up.promise;
  }

  /** Resolves at the next kill. */
  whenKilled(): Promise<void> {
    return this.#killed.promise;
  }

  started(shell: JsonShell): void {
    this.shell = shell;
    this.#up.resolve();
  }

  /** Marks the process dead before it is killed, so whatever waits on it knows why it ends. */
  killing(): JsonShell | undefined {
    const shell = this.shell;
    this.shell = undefined;
    this.generation++;
    this.#up = Promise.withResolvers<void>();
    this.#killed.resolve();
    this.#killed = Promise.withResolvers<void>();
    return shell;
  }
}

/** The tracker's fixed place (database, port) and its current process. */
class Tracker {
  process?: TrackerProcess;
  port = 0;
  #up = Promise.withResolvers<void>();

  constructor(readonly dbPath: string) {}

  whenUp(): Promise<void> {
    return this.#up.promise;
  }

  started(process: TrackerProcess): void {
    this.process = process;
    this.port = process.port;
    this.#up.resolve();
  }

  killing(): TrackerProcess | undefined {
    const process = this.process;
    this.process = undefined;
    this.#up = Promise.withResolvers<void>();
    return process;
  }
}

/** A promise that resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** The end's time ran out: what was waited for is lost. */
class GaveUp extends Error {
  override name = "GaveUp";
}

/** Events a run may survive but should not cause: each is noted. */
const NOTEWORTHY_EVENTS = new Set([
  "share_dropped",
  "share_not_restored",
  "more_shares_not_restored",
  "session_expired",
  "tracker_refused",
  "peer_refused",
]);

/** The most a restart may take before the killer's next kill of that process gives up. */
const RESTART_LIMIT_MS = 120_000;
/** How long the clients have to answer once the downloads are done (or given up). */
const CHECK_IN_LIMIT_MS = 30_000;

const UNREACHABLE = /tracker is unreachable|connection to the tracker was lost|did not answer/;
const THROTTLED = /too many attempts; try again in (\d+) s/;

/**
 * One chaos run: a swarm, the killer, the clients' drivers, then the checks. It owns every
 * process it starts and its directory; disposing it (at the end, on an error or an interrupt)
 * waits for restarts under way, so that none starts a process after the others are gone.
 */
export class ChaosRun implements AsyncDisposable {
  readonly #options: ChaosOptions;
  readonly #resources = new AsyncDisposableStack();
  /** Set once disposal began: nothing is started any more, drivers give up. */
  #closed = false;
  readonly #closing = new AbortController();
  readonly #ledger = new ProcessLedger();
  readonly #stop = new AbortController();
  readonly #log: (line: string) => void;
  #dir!: TempDir;
  #tracker!: Tracker;
  readonly #clients: Client[] = [];
  readonly #files: SharedFile[] = [];
  #t0 = performance.now();
  /** Set when the killing stops: waits end by then, or what they wait for is lost. */
  #deadline = Infinity;
  /** Settles when the deadline passes (or the run is disposed), whenever a wait began. */
  #late = Promise.withResolvers<void>();
  #lateTimer?: ReturnType<typeof setTimeout>;
  #restarts: Promise<void>[] = [];
  /** Tracker processes killed so far, whose output is read at the end. */
  readonly #trackers: TrackerProcess[] = [];
  readonly #lost: string[] = [];
  readonly #notes: string[] = [];
  readonly #counts = {
    killsClients: 0,
    killsTracker: 0,
    started: 0,
    completed: 0,
    resumed: 0,
    afterKill: 0,
    afterFailure: 0,
    piecesKept: 0,
    foundComplete: 0,
    filesChecked: 0,
    holdersExpected: 0,
  };

  constructor(options: ChaosOptions) {
    this.#options = options;
    this.#log = (line) => {
      if (!this.#closed) options.log(`${this.#elapsed().toFixed(1).padStart(6)} s  ${line}`);
    };
  }

  /** Waits from now on end `ms` from now at the latest. */
  #setDeadline(ms: number): void {
    clearTimeout(this.#lateTimer);
    // waits begun under the previous deadline (none: the chaos phase) end by this one
    const previous = this.#late;
    const late = Promise.withResolvers<void>();
    late.promise.then(() => previous.resolve());
    this.#late = late;
    this.#deadline = Date.now() + ms;
    this.#lateTimer = setTimeout(() => late.resolve(), ms);
  }

  /** `promise`, or GaveUp naming `what` once the end's deadline passes. */
  #byDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
    const late = this.#late.promise.then(() => {
      throw new GaveUp(`ran out of time waiting for ${what}`);
    });
    late.catch(() => {}); // unobserved when the promise wins
    return Promise.race([promise, late]);
  }

  #elapsed(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  #debug(line: string): void {
    if (this.#options.verbose) this.#log(line);
  }

  #note(line: string): void {
    this.#notes.push(line);
    this.#log(`note: ${line}`);
  }

  #lose(line: string): void {
    if (this.#closed) return; // an interrupted run reports nothing
    this.#lost.push(line);
    this.#log(`LOST: ${line}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#lateTimer);
    this.#late.resolve();
    this.#closing.abort();
    this.#stop.abort();
    await Promise.allSettled(this.#restarts);
    await this.#resources.disposeAsync();
  }

  /** Runs the swarm to its end and reports; call once. */
  async run(): Promise<ChaosReport> {
    const options = this.#options;
    this.#t0 = performance.now();
    this.#dir = this.#resources.use(await TempDir.create("swarmshare-chaos-"));
    this.#log(`directory ${this.#dir.path}`);
    await this.#setUp();
    const kills = killSchedule(options.seed, options);
    this.#log(
      `${kills.length} kills planned over ${options.seconds} s ` +
        `(${kills.filter((kill) => kill.target === "tracker").length} of the tracker)`,
    );
    const chaosStarted = performance.now();
    const drivers = this.#clients.map((client) => this.#drive(client));
    await this.#kill(kills, chaosStarted);
    const chaosSeconds = (performance.now() - chaosStarted) / 1000;

    // settle: no more kills; every process back, every download finished, every client in
    const settleStarted = performance.now();
    this.#setDeadline(options.settleSeconds * 1000);
    this.#stop.abort();
    this.#log("killing stopped; settling");
    await Promise.all(this.#restarts);
    await Promise.all(drivers);
    // the clients left get a moment of their own to answer, whatever the downloads took
    this.#setDeadline(CHECK_IN_LIMIT_MS);
    await Promise.all(this.#clients.map((client) => this.#checkIn(client)));
    if (options.sabotage) await this.#sabotage();
    await this.#checkShares();
    await this.#checkDownloads();
    await this.#shutDown();
    const settleSeconds = (performance.now() - settleStarted) / 1000;
    const left = await this.#ledger.stillRunning();
    for (const crash of this.#ledger.crashes) this.#lose(`crash: ${crash}`);
    for (const process of left) this.#lose(`process left running: ${process}`);
    const counts = this.#counts;
    return {
      seed: options.seed,
      clients: options.clients,
      files: options.files,
      size_mib: options.sizeMiB,
      chaos_s: round1(chaosSeconds),
      settle_s: round1(settleSeconds),
      duration_s: round1(this.#elapsed()),
      kills_clients: counts.killsClients,
      kills_tracker: counts.killsTracker,
      downloads_started: counts.started,
      downloads_completed: counts.completed,
      downloads_resumed: counts.resumed,
      restarts_after_kill: counts.afterKill,
      restarts_after_failure: counts.afterFailure,
      pieces_kept: counts.piecesKept,
      found_complete: counts.foundComplete,
      files_checked: counts.filesChecked,
      holders_expected: counts.holdersExpected,
      processes_spawned: this.#ledger.spawned,
      processes_left: left.length,
      notes: this.#notes,
      lost: this.#lost,
    };
  }

  // Setting up

  async #setUp(): Promise<void> {
    const options = this.#options;
    this.#tracker = new Tracker(this.#dir.join("tracker.db"));
    await this.#startTracker();
    this.#log(`tracker on 127.0.0.1:${this.#tracker.port}`);
    const sharers = Math.ceil(options.clients / 2);
    for (let index = 0; index < options.clients; index++) {
      const name = `c${index + 1}`;
      const role = index < sharers ? "sharer" : "downloader";
      // sharers are in both groups; downloaders alternate between both and the first only
      const groups = role === "sharer" || (index - sharers) % 2 === 0 ? GROUPS : GROUPS.slice(0, 1);
      const home = this.#dir.join(name);
      await Deno.mkdir(`${home}/state`, { recursive: true });
      await Deno.mkdir(`${home}/files`);
      this.#clients.push(new Client(name, role, groups, home, freePort()));
    }
    for (const client of this.#clients) this.#startClient(client);
    for (const client of this.#clients) {
      await client.shell!.ok(`create_user ${client.name} ${client.password}`);
      await client.shell!.ok(`login ${client.name} ${client.password}`);
      client.loggedInGeneration = client.generation;
    }
    const owners = new Map<string, Client>();
    for (const [index, group] of GROUPS.entries()) {
      const owner = this.#clients[index % this.#clients.length];
      owners.set(group, owner);
      await owner.shell!.ok(`create_group ${group}`);
    }
    for (const client of this.#clients) {
      for (const group of client.groups) {
        const owner = owners.get(group)!;
        if (owner === client) continue;
        await client.shell!.ok(`join_group ${group}`);
        await owner.shell!.ok(`accept_request ${group} ${client.name}`);
      }
    }
    const size = Math.round(options.sizeMiB * MiB);
    const sharerList = this.#clients.filter((client) => client.role === "sharer");
    for (let index = 0; index < options.files; index++) {
      const sharer = sharerList[index % sharerList.length];
      const name = `chaos-${index + 1}.bin`;
      const path = `${sharer.home}/files/${name}`;
      const file: SharedFile = {
        name,
        group: GROUPS[index % GROUPS.length],
        sha1: await writeRandomFile(path, size),
        sharer,
      };
      await sharer.shell!.ok(`upload_file ${path} ${file.group}`);
      sharer.shares.push(file);
      this.#files.push(file);
    }
    this.#log(
      `${options.clients} clients (${sharerList.map((c) => c.name).join(", ")} share; ` +
        `the others download in rounds), ${options.files} files of ${options.sizeMiB} MiB ` +
        `in groups ${GROUPS.join(" and ")}, upload limit ${options.uploadLimitKib} KiB/s each`,
    );
  }

  /** Starts the tracker (again) and resolves with its pid. */
  async #startTracker(): Promise<number> {
    if (this.#closed) throw new GaveUp("the run is over");
    // the port it had, so that the clients find it and their pinned fingerprint holds
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const process = await TrackerProcess.start(this.#tracker.dbPath, {
          port: this.#tracker.port,
        });
        this.#resources.use(process);
        this.#ledger.add(process, "the tracker");
        this.#tracker.started(process);
        return process.pid;
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`the tracker did not start again: ${errorMessage(lastError)}`);
  }

  #startClient(client: Client): void {
    if (this.#closed) throw new GaveUp("the run is over");
    const shell = JsonShell.start(this.#tracker.port, {
      cwd: client.home,
      peerPort: client.port,
      stateHome: client.home,
      waitLimitMs: 60_000,
      extraArgs: [
        "--state-dir",
        `${client.home}/state`,
        "--upload-limit-kib",
        String(this.#options.uploadLimitKib),
      ],
    });
    this.#resources.use(shell);
    this.#ledger.add(shell, `client ${client.name}`);
    client.started(shell);
  }

  // The killer

  async #kill(kills: Kill[], startedAt: number): Promise<void> {
    const signal = this.#stop.signal;
    for (const kill of kills) {
      await pause(startedAt + kill.atMs - performance.now(), signal);
      if (signal.aborted) break;
      if (kill.target === "tracker") {
        await within(this.#tracker.whenUp(), "the tracker to be back", RESTART_LIMIT_MS);
        const process = this.#tracker.killing()!;
        this.#trackers.push(process);
        this.#ledger.expectExit(process);
        process.kill("SIGKILL");
        await process.exited();
        this.#counts.killsTracker++;
        this.#log(`killed the tracker (pid ${process.pid}); back in ${kill.downMs} ms`);
        this.#restarts.push(
          pause(kill.downMs, this.#closing.signal)
            .then(() => this.#startTracker())
            .then((pid) => this.#log(`tracker restarted (pid ${pid})`))
            .catch((error) => this.#lose(errorMessage(error))),
        );
      } else {
        const client = this.#clients[kill.target];
        await within(client.whenUp(), `${client.name} to be back`, RESTART_LIMIT_MS);
        const running = client.jobs.filter((job) => job.state === "running").length;
        const shell = client.killing()!;
        this.#noteOutput(client.name, shell);
        this.#ledger.expectExit(shell);
        shell.kill("SIGKILL");
        await shell.exited();
        this.#counts.killsClients++;
        this.#log(
          `killed ${client.name} (${client.role}` +
            (client.role === "downloader" ? `, ${running} downloads running` : "") +
            `); back in ${kill.downMs} ms`,
        );
        this.#restarts.push(
          pause(kill.downMs, this.#closing.signal)
            .then(() => this.#startClient(client))
            .catch((error) => this.#lose(errorMessage(error))),
        );
      }
    }
    // the chaos lasts its time even when the last kill came early
    await pause(startedAt + this.#options.seconds * 1000 - performance.now(), signal);
  }

  // Driving one client

  /**
   * Runs `step` on the client's current process until it completes: after a kill it waits
   * for the restart and logs in again; while the tracker is away it waits for the client to
   * say it is back; a throttled login waits as long as the tracker asks. Once the end's
   * deadline passes it gives up (GaveUp).
   */
  async #resilient<T>(
    client: Client,
    what: string,
    step: (shell: JsonShell, generation: number) => Promise<T>,
  ): Promise<T> {
    let oddities = 0;
    while (true) {
      if (this.#closed) throw new GaveUp("the run is over");
      if (Date.now() > this.#deadline) throw new GaveUp(`${what} did not finish in time`);
      await this.#byDeadline(client.whenUp(), `${client.name} to be restarted`);
      const shell = client.shell!;
      const generation = client.generation;
      try {
        if (client.loggedInGeneration !== generation) await this.#login(client, shell);
        client.loggedInGeneration = generation;
        return await this.#byDeadline(step(shell, generation), what);
      } catch (error) {
        if (error instanceof GaveUp) throw error;
        if (client.generation !== generation) continue; // killed: wait for the restart
        const message = errorMessage(error);
        const throttled = message.match(THROTTLED);
        if (throttled) {
          this.#note(`${client.name}: ${what}: the tracker said "${throttled[0]}"; waiting`);
          await pause(Number(throttled[1]) * 1000, this.#closing.signal);
        } else if (UNREACHABLE.test(message)) {
          // said once when the link went down; "reconnected" follows once it is back
          await this.#byDeadline(
            shell.event(["tracker_reconnected", "tracker_refused"]),
            `${client.name} to reconnect`,
          ).catch((error) => {
            if (error instanceof GaveUp) throw error;
          });
        } else if (/^not logged in/.test(message)) {
          this.#note(`${client.name}: ${what}: "${message}"; logging in again`);
          client.loggedInGeneration = -1;
        } else {
          if (++oddities > 5) throw new Error(`${client.name}: ${what}: ${message}`);
          this.#note(`${client.name}: ${what}: ${message}; trying again`);
          await pause(200 * oddities, this.#closing.signal);
        }
      }
    }
  }

  async #login(client: Client, shell: JsonShell): Promise<void> {
    const reply = await shell.run(`login ${client.name} ${client.password}`);
    if (!reply.ok) {
      if (/^already logged in/.test(reply.error ?? "")) {
        this.#note(
          `${client.name}: a login that failed had left the client logged in ("${reply.error}")`,
        );
        return;
      }
      throw new Error(reply.error);
    }
    const restored = (reply.data as { shares_restored: number }).shares_restored;
    this.#debug(`${client.name} logged in, ${restored} shares restored`);
    if (client.role === "sharer" && restored !== client.shares.length) {
      this.#note(`${client.name}: login restored ${restored} of ${client.shares.length} shares`);
    }
  }

  async #drive(client: Client): Promise<void> {
    try {
      if (client.role === "sharer") await this.#driveSharer(client);
      else await this.#driveDownloader(client);
    } catch (error) {
      client.abandoned = true;
      this.#lose(`${client.name}: ${errorMessage(error)}`);
    }
  }

  /** A sharer has nothing to do but be logged in (its shares come back with the login). */
  async #driveSharer(client: Client): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.#stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    while (!this.#stop.signal.aborted) {
      const killed = client.whenKilled();
      await this.#resilient(client, "logging in", () => Promise.resolve());
      await Promise.race([killed, stopped]);
    }
    await this.#resilient(client, "logging in", () => Promise.resolve());
  }

  /**
   * A downloader fetches every file of its groups into a round's directory; once all are in
   * (each checked by SHA-1) it stops sharing them, deletes them and starts the next round,
   * until the killing stops: then it finishes its round.
   */
  async #driveDownloader(client: Client): Promise<void> {
    for (let round = 1;; round++) {
      const dir = `${client.home}/round-${round}`;
      await Deno.mkdir(dir);
      client.jobs = this.#files
        .filter((file) => client.groups.includes(file.group))
        .map((file) => ({
          file,
          dir,
          path: `${dir}/${file.name}`,
          state: "new",
          generation: -1,
          starts: 0,
        }));
      this.#counts.started += client.jobs.length;
      await this.#resilient(
        client,
        `round ${round}'s downloads`,
        (shell, generation) => this.#downloadAll(client, shell, generation),
      );
      if (this.#stop.signal.aborted) return;
      await this.#resilient(client, `the end of round ${round}`, async (shell) => {
        for (const job of client.jobs) {
          const reply = await shell.run(`stop_share ${job.file.group} ${job.file.name}`);
          // after a kill it may be stopped already
          if (!reply.ok && !/do not share/.test(reply.error ?? "")) throw new Error(reply.error);
        }
      });
      await Deno.remove(dir, { recursive: true });
    }
  }

  /** Starts what is not running in this process and waits until every job is done. */
  async #downloadAll(client: Client, shell: JsonShell, generation: number): Promise<void> {
    for (const job of client.jobs) {
      if (job.state === "done" || (job.state === "running" && job.generation === generation)) {
        continue;
      }
      await this.#startDownload(client, shell, generation, job);
    }
    while (client.jobs.some((job) => job.state !== "done")) {
      const running = new Map(
        client.jobs.filter((job) => job.state === "running").map((job) => [job.path, job]),
      );
      const event = await shell.event(
        ["download_complete", "download_failed"],
        (event) => running.has(String(event.path)),
      );
      const job = running.get(String(event.path))!;
      if (event.event === "download_complete") {
        await this.#verify(client, job);
      } else {
        this.#note(`${client.name}: ${job.file.name} failed: ${event.reason}; starting it again`);
        job.state = "new";
        this.#counts.afterFailure++;
        await this.#startDownload(client, shell, generation, job);
      }
    }
  }

  async #startDownload(
    client: Client,
    shell: JsonShell,
    generation: number,
    job: Job,
  ): Promise<void> {
    const again = job.starts > 0;
    if (again && job.state === "running") this.#counts.afterKill++;
    this.#debug(`${client.name}: download_file ${job.file.name}`);
    const reply = await shell.run(`download_file ${job.file.group} ${job.file.name} ${job.dir}`);
    this.#debug(`${client.name}: download_file ${job.file.name}: ${reply.ok ? "ok" : reply.error}`);
    // the login took up the download the killed process left unfinished
    const takenUp = !reply.ok && /is already being downloaded/.test(reply.error ?? "");
    if (!reply.ok && !takenUp) {
      // done by the killed process after all (before we could read its event)
      if (/already exists/.test(reply.error ?? "")) {
        // it may have died before telling the tracker: share it as a user would
        await shell.ok(`upload_file ${job.path} ${job.file.group}`);
        this.#counts.foundComplete++;
        await this.#verify(client, job);
        return;
      }
      throw new Error(`download_file ${job.file.name}: ${reply.error}`);
    }
    if (job.starts === 1) this.#counts.resumed++;
    job.starts++;
    job.state = "running";
    job.generation = generation;
    if (again) {
      const downloads = await shell.ok("show_downloads") as {
        path: string;
        state: string;
        pieces_done: number;
      }[];
      const status = downloads.findLast((line) => line.path === job.path);
      this.#counts.piecesKept += status?.pieces_done ?? 0;
    }
  }

  async #verify(client: Client, job: Job): Promise<void> {
    this.#debug(`${client.name} has ${job.path}`);
    const sha1 = await sha1OfFile(job.path);
    if (sha1 !== job.file.sha1) {
      this.#lose(`${client.name}: ${job.path} has SHA-1 ${sha1}, not ${job.file.sha1}`);
    } else {
      this.#counts.completed++;
    }
    job.state = "done";
  }

  // The end

  /** Waits until the client is logged in and answers after the last restart of everything. */
  async #checkIn(client: Client): Promise<void> {
    if (client.abandoned) return;
    try {
      await this.#resilient(client, "checking in", async (shell) => {
        for (const group of client.groups) await shell.ok(`list_files ${group}`);
      });
    } catch (error) {
      client.abandoned = true;
      this.#lose(`${client.name}: ${errorMessage(error)}`);
    }
  }

  /** Loses a share and corrupts a downloaded file, to show the checks see both. */
  async #sabotage(): Promise<void> {
    const file = this.#files[0];
    await file.sharer.shell!.ok(`stop_share ${file.group} ${file.name}`);
    const job = this.#clients.flatMap((client) => client.jobs).find((job) => job.state === "done");
    if (job) {
      using handle = await Deno.open(job.path, { read: true, write: true });
      const byte = new Uint8Array(1);
      await handle.read(byte);
      byte[0] ^= 0xff;
      await handle.seek(0, Deno.SeekMode.Start);
      await handle.write(byte);
    }
    this.#log(`sabotage: ${file.sharer.name} stopped sharing ${file.name}; ${job?.path} corrupted`);
  }

  /**
   * Every file shared is listed with its SHA-1 and every holder it should have: its sharer
   * and each downloader of its group (whose last round finished it).
   */
  async #checkShares(): Promise<void> {
    const asker = this.#clients.find((client) =>
      client.role === "sharer" && !client.abandoned && client.groups.length === GROUPS.length
    );
    if (!asker) return this.#lose("no client left to ask the tracker for its files");
    for (const group of GROUPS) {
      const listed = await asker.shell!.ok(`list_files ${group}`) as {
        name: string;
        sha1: string;
        seeders: number;
      }[];
      for (const file of this.#files.filter((file) => file.group === group)) {
        this.#counts.filesChecked++;
        const holders = 1 +
          this.#clients.filter((client) =>
            client.role === "downloader" && client.groups.includes(group)
          ).length;
        this.#counts.holdersExpected += holders;
        const entry = listed.find((line) => line.name === file.name);
        if (!entry) {
          this.#lose(`${file.name} is no longer listed in group "${group}"`);
        } else if (entry.sha1 !== file.sha1) {
          this.#lose(`${file.name} is listed with SHA-1 ${entry.sha1}, not ${file.sha1}`);
        } else if (entry.seeders !== holders) {
          const detail = `${file.name} in group "${group}" has ${entry.seeders} seeders online, ` +
            `not ${holders}`;
          if (entry.seeders < holders) this.#lose(detail);
          else this.#note(detail);
        }
      }
    }
  }

  /** Every download's file, read again from disk: its SHA-1 is the shared file's. */
  async #checkDownloads(): Promise<void> {
    for (const client of this.#clients) {
      for (const job of client.jobs) {
        if (job.state !== "done") {
          this.#lose(`${client.name}: ${job.file.name} never completed (${job.starts} starts)`);
          continue;
        }
        const sha1 = await sha1OfFile(job.path).catch((error) => errorMessage(error));
        if (sha1 !== job.file.sha1) {
          this.#lose(`${client.name}: ${job.path} reads back as ${sha1}, not ${job.file.sha1}`);
        }
        const part = `${job.dir}/.${job.file.name}${PART_FILE_SUFFIX}`;
        if (await Deno.stat(part).then(() => true, () => false)) {
          this.#note(`${client.name}: ${part} was left beside the complete file`);
        }
      }
    }
  }

  /** Ends every shell's input and stops the tracker with SIGTERM; each must exit cleanly. */
  async #shutDown(): Promise<void> {
    await Promise.all(this.#clients.map(async (client) => {
      const shell = client.shell;
      if (!shell) return;
      this.#ledger.expectExit(shell);
      const status = await shell.quit().catch(() => undefined);
      if (status?.code !== 0) {
        this.#note(`${client.name} did not exit cleanly at the end of its input (${status?.code})`);
      }
      this.#noteOutput(client.name, shell);
    }));
    const tracker = this.#tracker.process;
    if (tracker) {
      this.#ledger.expectExit(tracker);
      const status = await tracker.stop().catch(() => undefined);
      if (status?.code !== 0) this.#note(`the tracker did not stop cleanly (${status?.code})`);
    }
    for (const process of [...this.#trackers, ...tracker ? [tracker] : []]) {
      this.#noteOutput("the tracker", process);
    }
  }

  /**
   * What a process said that nobody should have to: events a chaos run should not cause
   * (a share dropped, a session ended, a tracker or peer refused) and internal errors.
   */
  #noteOutput(who: string, program: Program): void {
    for (const line of program.stdout.all) {
      if (!line.startsWith("{")) continue;
      const event = JSON.parse(line) as { event?: string; command?: string; error?: string };
      if (event.event && NOTEWORTHY_EVENTS.has(event.event)) this.#note(`${who}: ${line}`);
      if (event.error?.startsWith("internal error")) this.#note(`${who}: ${line}`);
    }
    for (const line of program.stderr.all) {
      if (/internal error|Uncaught|panicked|error:/i.test(line)) this.#note(`${who}: ${line}`);
    }
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** The report for people. */
export function formatReport(report: ChaosReport): string {
  const lines = [
    `chaos report (seed ${report.seed})`,
    `  duration     ${report.duration_s} s: ${report.chaos_s} s of kills, ` +
    `${report.settle_s} s settling and checking`,
    `  kills        ${report.kills_clients + report.kills_tracker}: ` +
    `${report.kills_clients} of clients, ${report.kills_tracker} of the tracker (SIGKILL)`,
    `  downloads    ${report.downloads_started} started, ${report.downloads_completed} ` +
    `completed with the right SHA-1; ${report.downloads_resumed} started again ` +
    `(${report.restarts_after_kill} after a kill, ${report.restarts_after_failure} after a ` +
    `failure; ${report.pieces_kept} verified pieces kept from part files; ` +
    `${report.found_complete} found complete after a kill)`,
    `  shares       ${report.files_checked} files listed by the tracker, ` +
    `${report.holders_expected} holders expected`,
    `  processes    ${report.processes_spawned} spawned, ${report.processes_left} left running`,
  ];
  if (report.notes.length > 0) {
    lines.push(`  notes        ${report.notes.length}`);
    for (const note of report.notes) lines.push(`    ${note}`);
  }
  lines.push(`  lost         ${report.lost.length === 0 ? "nothing" : report.lost.length}`);
  for (const lost of report.lost) lines.push(`    ${lost}`);
  return lines.join("\n");
}

const USAGE = `usage: deno task chaos [--seconds N] [--clients N] [--files N] [--size MiB]
                       [--seed N] [--kill-every S] [--upload-limit-kib N] [--settle-seconds N]
                       [--json] [--verbose] [--sabotage]
  a tracker and clients on 127.0.0.1 move files while random clients and the tracker are
  killed (SIGKILL) and restarted; then every download, share and process is checked.
  defaults: --seconds 180 --clients 8 --files 4 --size 8 --kill-every 5
            --upload-limit-kib 1024 --settle-seconds 120, a random seed (printed)
  --json: progress on stderr, one summary row on stdout
  --verbose: also every login and every download completed
  --sabotage: lose a share and corrupt a download on purpose (the checks must catch both)
  exit 0 when nothing was lost, 1 when something was, 2 on bad arguments`;

function parseOptions(args: string[]): Omit<ChaosOptions, "log"> & { json: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string", default: "180" },
      clients: { type: "string", default: "8" },
      files: { type: "string", default: "4" },
      size: { type: "string", default: "8" },
      seed: { type: "string" },
      "kill-every": { type: "string", default: "5" },
      "upload-limit-kib": { type: "string", default: "1024" },
      "settle-seconds": { type: "string", default: "120" },
      json: { type: "boolean", default: false },
      sabotage: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) throw new HelpRequested();
  const number = (name: string, value: string, min: number, integer = false) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || (integer && !Number.isInteger(parsed))) {
      throw new Error(`--${name} must be ${integer ? "an integer" : "a number"} >= ${min}`);
    }
    return parsed;
  };
  return {
    seconds: number("seconds", values.seconds, 0),
    clients: number("clients", values.clients, 2, true),
    files: number("files", values.files, 1, true),
    sizeMiB: number("size", values.size, 0),
    seed: values.seed === undefined
      ? crypto.getRandomValues(new Uint32Array(1))[0]
      : number("seed", values.seed, 0, true),
    killEverySeconds: number("kill-every", values["kill-every"], 0.1),
    uploadLimitKib: number("upload-limit-kib", values["upload-limit-kib"], 1, true),
    settleSeconds: number("settle-seconds", values["settle-seconds"], 1),
    sabotage: values.sabotage,
    verbose: values.verbose,
    json: values.json,
  };
}

class HelpRequested extends Error {}

async function main(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(args);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    console.error(`error: ${errorMessage(error)}\n${USAGE}`);
    return 2;
  }
  const { json, ...shape } = parsed;
  const log = json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  log(
    `chaos: seed ${shape.seed} (replay: deno task chaos --seed ${shape.seed} ` +
      `--seconds ${shape.seconds} --clients ${shape.clients} --files ${shape.files} ` +
      `--size ${shape.sizeMiB} --kill-every ${shape.killEverySeconds} ` +
      `--upload-limit-kib ${shape.uploadLimitKib})`,
  );
  const interrupted = Promise.withResolvers<"interrupted">();
  const onSignal = () => interrupted.resolve("interrupted");
  Deno.addSignalListener("SIGINT", onSignal);
  const run = new ChaosRun({ ...shape, log });
  try {
    const outcome = await Promise.race([run.run(), interrupted.promise]);
    if (outcome === "interrupted") {
      console.error("error: interrupted; cleaning up");
      return 130;
    }
    if (json) console.log(JSON.stringify(outcome));
    else log(formatReport(outcome));
    return outcome.lost.length === 0 ? 0 : 1;
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  } finally {
    await run[Symbol.asyncDispose]();
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
