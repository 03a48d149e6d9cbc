/**
 * The load itself: a directory (directory.ts) on trackers this module starts (trackers.ts),
 * then `connections` logged-in links (link.ts), each from its user's own loopback address,
 * that send `list_groups`, `list_files` and `locate_file` in turn, one at a time, as fast as
 * they are answered (closed loop) or at an offered rate for all of them together, for
 * `seconds`. It measures throughput, latency per request type, error replies by code, the
 * trackers' peak memory and CPU during the run, and their memory per idle logged-in link.
 * scripts/loadtest/cli.ts is `deno task loadtest` (and `deno task load`).
 *
 * @module
 */

import { PROTOCOL_VERSION } from "../../lib/protocol.ts";
import { MAX_CONNECTIONS_PER_ADDRESS } from "../../lib/transport.ts";
import { GROUPS_PER_PAGE } from "../../tracker/account_handlers.ts";
import { FILES_PER_PAGE } from "../../tracker/file_handlers.ts";
import { MAX_STRANGERS } from "../../tracker/server.ts";
import { TempDir } from "../processes.ts";
import {
  chooseSeeding,
  type DirectoryShape,
  type LoadUser,
  populateByProtocol,
  type Seeding,
  seedStore,
} from "./directory.ts";
import { inTurn, KEEPALIVE_MS, Link, MAX_LOAD_ADDRESSES } from "./link.ts";
import { type ProcessUsage, processUsage, severalTrackersRefusal, TrackerSet } from "./trackers.ts";
// the test suite's throwaway server: initdb in a temp dir, run as nobody when root
import { PostgresServer, postgresUnavailable } from "../../tests/postgres_server.ts";

/** One load run. */
export interface LoadOptions extends DirectoryShape {
  connections: number;
  /** Tracker instances (more than 1 share a PostgreSQL database). */
  trackers: number;
  /**
   * The PostgreSQL database the trackers use (an empty one: the directory is built in it).
   * Default: a SQLite file for one tracker; for several, or with `postgres`, a PostgreSQL
   * server of the load's own in its temp dir (tests/postgres_server.ts).
   */
  dbUrl?: string;
  /** One tracker on a PostgreSQL server of the load's own rather than on SQLite. */
  postgres?: boolean;
  seconds: number;
  /** Requests per second offered by all connections together; undefined: closed loop. */
  rate?: number;
  /**
   * The request types each connection sends in turn (default `REQUEST_TYPES`): one type
   * alone shows its own cost, which in the mix hides behind the queue all types share.
   */
  mix?: readonly RequestType[];
  /**
   * Entries a listing page asks for (`limit` of `list_groups` and `list_files`); default the
   * tracker's page. Equal pages compare directories of different sizes by what they cost
   * beyond the page they return.
   */
  page?: number;
  /**
   * Groups of each user's that its links ask about: its first N (default all). With the
   * same N, directories of different sizes are asked about working sets of one size, so
   * what a larger directory costs shows apart from what a larger working set costs (caches).
   */
  activeGroups?: number;
  /** How the directory is built; `auto` picks the store for large ones. */
  seeding: Seeding | "auto";
  plaintext: boolean;
  /** More arguments for the trackers this tool starts. */
  trackerArgs: string[];
  /**
   * `deno run`'s flags for the trackers instead of the usual ones (scripts/runtime_flags.ts):
   * to measure V8 flags, or to profile (`--cpu-prof`).
   */
  trackerDenoFlags?: string[];
  /** Progress and the limits worked within, one line each. */
  log: (line: string) => void;
  /** Ends the run early (what was measured so far is reported). */
  signal?: AbortSignal;
}

/** The request types of issue 16's mix, in the order each connection sends them. */
export const REQUEST_TYPES = ["list_groups", "list_files", "locate_file"] as const;
export type RequestType = typeof REQUEST_TYPES[number];

/** Latency of one request type (or all). */
export interface LatencySummary {
  requests: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** One row of `--json`: the fields up to `tracker_cpu_s` are issue 16's, never renamed. */
export interface LoadRow {
  connections: number;
  trackers: number;
  /** null: closed loop. */
  offered_rate: number | null;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Peak resident memory of the trackers (summed) from connecting to the end of the run. */
  tracker_peak_rss_mib: number | null;
  /** CPU (all threads, all instances) during the run. */
  tracker_cpu_s: number | null;
  /** Of that, the main (JavaScript) threads'. */
  tracker_main_thread_cpu_s: number | null;
  /** This process's CPU during the run: the load shares the machine with the tracker. */
  loadgen_cpu_s: number | null;
  /** Resident memory before the connections opened and once they were all logged in, idle. */
  tracker_rss_before_connections_mib: number | null;
  tracker_rss_idle_connections_mib: number | null;
  /** (idle - before) / connections. */
  idle_kib_per_connection: number | null;
  /** Resident memory with the first half of the connections logged in, idle. */
  tracker_rss_half_connections_mib: number | null;
  /**
   * (idle - half) / the second half's connections: what one more idle link costs, without
   * the growth of a tracker's first requests (JIT code, heap and caches taking their size),
   * which `idle_kib_per_connection` counts against the links when the tracker starts cold.
   */
  idle_kib_per_added_connection: number | null;
  seconds: number;
  /** Requests answered with success during the run. */
  requests: number;
  /** The types of the mix only. */
  by_type: Partial<Record<RequestType, LatencySummary>>;
  /** The median latency of the connection whose median is highest. */
  worst_connection_p50_ms: number;
  /** Connections that got no successful reply during the run. */
  starved_connections: number;
  /** Error replies by code (e.g. "busy"; "closed": the link ended; "unanswered": cut off). */
  errors: Record<string, number>;
  /** Links the tracker closed during the run. */
  closed: number;
  users: number;
  groups: number;
  members_per_group: number;
  memberships: number;
  files_per_group: number;
  /** Entries each listing page asked for; null: the tracker's page size. */
  page_limit: number | null;
  /** Groups of each user's its links asked about; null: all. */
  active_groups: number | null;
  seeding: Seeding;
  mix: RequestType[];
  tls: boolean;
  /** The tracker's limits this run had to work within, and how. */
  limits: string[];
}

/** How long requests still in flight at the end may take before they are cut off. */
const DRAIN_MS = 30_000;
/** Connections being opened (not yet logged in) at once: well under the strangers' cap. */
const OPENING_AT_ONCE = 32;
/** Connections per address this tool makes at most, under the tracker's 128. */
export const CONNECTIONS_PER_ADDRESS = MAX_CONNECTIONS_PER_ADDRESS - 8;
/** How long the connections sit idle before their memory is read. */
const IDLE_SETTLE_MS = 2_000;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const round1 = (value: number) => Math.round(value * 10) / 10;

function summarize(latencies: number[], elapsedS: number): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: sorted.length,
    requests_per_s: elapsedS > 0 ? Math.round(sorted.length / elapsedS) : 0,
    p50_ms: round1(percentile(sorted, 0.5)),
    p99_ms: round1(percentile(sorted, 0.99)),
    max_ms: round1(sorted.at(-1) ?? 0),
  };
}

/** Users who are members of some group: only they have something to ask about. */
export function memberCount(shape: DirectoryShape): number {
  return Math.min(
    shape.users,
    shape.groups + Math.max(1, Math.min(shape.members, shape.users)) - 1,
  );
}

/** Checks what the tracker's limits allow before anything starts; throws naming the limit. */
export function checkShape(options: Omit<LoadOptions, "log">): void {
  const members = memberCount(options);
  if (options.users > MAX_LOAD_ADDRESSES) {
    throw new Error(`at most ${MAX_LOAD_ADDRESSES} users (one loopback address each)`);
  }
  if (options.connections / members > CONNECTIONS_PER_ADDRESS) {
    throw new Error(
      `${options.connections} connections over ${members} member addresses is more than ` +
        `${CONNECTIONS_PER_ADDRESS} per address (the tracker takes ${MAX_CONNECTIONS_PER_ADDRESS}); ` +
        `raise --users`,
    );
  }
}

/** CPU seconds of this process. */
async function ownCpuS(): Promise<number | undefined> {
  return (await processUsage(Deno.pid))?.cpuS;
}

/** Sleeps `ms` or until `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * One timer for every link's next due time (an open loop of 5,000 links made 5,000 timers a
 * second, each with an abort listener: the load generator spent more than the tracker): a
 * tick each millisecond while anyone waits releases everyone due by then; an abort releases
 * all.
 */
class Pacer implements Disposable {
  readonly #waiting = new Map<number, (() => void)[]>();
  readonly #signal?: AbortSignal;
  #count = 0;
  #slot = Math.floor(performance.now());
  #ticker?: ReturnType<typeof setInterval>;

  constructor(signal?: AbortSignal) {
    this.#signal = signal;
    signal?.addEventListener("abort", () => this.#release(Infinity), { once: true });
  }

  /** Resolves at `due` (performance.now's clock, 1 ms steps) or at an abort. */
  until(due: number): Promise<void> {
    if (this.#signal?.aborted) return Promise.resolve();
    const slot = Math.max(Math.ceil(due), this.#slot);
    const { promise, resolve } = Promise.withResolvers<void>();
    let list = this.#waiting.get(slot);
    if (!list) this.#waiting.set(slot, list = []);
    list.push(resolve);
    this.#count++;
    this.#ticker ??= setInterval(() => this.#release(performance.now()), 1);
    return promise;
  }

  #release(now: number): void {
    const last = now === Infinity ? Infinity : Math.floor(now);
    if (last === Infinity) {
      for (const list of this.#waiting.values()) for (const resolve of list) resolve();
      this.#waiting.clear();
      this.#count = 0;
    } else {
      for (; this.#slot <= last && this.#count > 0; this.#slot++) {
        const list = this.#waiting.get(this.#slot);
        if (!list) continue;
        this.#waiting.delete(this.#slot);
        this.#count -= list.length;
        for (const resolve of list) resolve();
      }
      this.#slot = Math.max(this.#slot, last + 1);
    }
    if (this.#count === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  [Symbol.dispose](): void {
    this.#release(Infinity);
  }
}

interface Held {
  link: Link;
  user: LoadUser;
}

/**
 * Opens and logs in (resume) links `from` to `to` (exclusive) of those spread over users and
 * tracker ports, adding them to `held`; every link held is kept alive meanwhile.
 */
async function connect(
  ports: number[],
  users: LoadUser[],
  held: Held[],
  [from, to]: [number, number],
  signal?: AbortSignal,
): Promise<void> {
  const members = users.filter((user) => user.groups.length > 0);
  if (members.length === 0) throw new Error("no user is a member of any group");
  const keepalive = setInterval(() => {
    for (const { link } of held) link.request({ type: "ping" });
  }, KEEPALIVE_MS);
  try {
    const indices = Array.from({ length: to - from }, (_, i) => from + i);
    await inTurn(indices, OPENING_AT_ONCE, async (i) => {
      if (signal?.aborted) return;
      const user = members[i % members.length];
      const link = await Link.open(ports[i % ports.length], user.address, user.identity);
      held.push({ link, user });
      await link.expect({ type: "hello", version: PROTOCOL_VERSION });
      await link.expect({ type: "resume", token: user.token });
    });
  } catch (error) {
    for (const { link } of held) link.close();
    throw error;
  } finally {
    clearInterval(keepalive);
  }
}

/** Runs the mix on `held` links; latencies by type, per connection, errors. */
async function drive(held: Held[], options: LoadOptions) {
  const byType: Record<RequestType, number[]> = {
    list_groups: [],
    list_files: [],
    locate_file: [],
  };
  const perConnection: number[][] = held.map(() => []);
  const errors: Record<string, number> = {};
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  // an open loop spaces each connection's requests evenly and times each from when it was
  // due, so a connection that falls behind counts its wait (no coordinated omission); a
  // closed loop sends the next request the moment the previous one is answered
  const gapMs = options.rate ? (held.length * 1000) / options.rate : 0;
  const mix = options.mix ?? REQUEST_TYPES;
  const limit = options.page === undefined ? {} : { limit: options.page };
  let lastAnswer = started;
  for (const { link } of held) link.outcomesOnly();
  using pacer = new Pacer(options.signal);
  const loops = Promise.all(held.map(async ({ link, user }, index) => {
    let turn = index;
    let due = started + (gapMs * index) / held.length;
    while (!link.closed && !options.signal?.aborted) {
      if (gapMs > 0 && due > performance.now()) await pacer.until(due);
      const now = performance.now();
      if (now >= deadline || options.signal?.aborted) break;
      const sent = gapMs > 0 ? due : now;
      due += gapMs;
      const active = Math.min(user.groups.length, options.activeGroups ?? Infinity);
      const group = `g${user.groups[turn % active]}`;
      const type = mix[turn++ % mix.length];
      const message = type === "list_groups"
        ? { type, ...limit }
        : type === "list_files"
        ? { type, group, ...limit }
        : { type, group, name: `file${turn % Math.max(1, options.files)}.bin` };
      const reply = await link.request(message);
      lastAnswer = performance.now();
      if (reply.ok) {
        const took = lastAnswer - sent;
        byType[type].push(took);
        perConnection[index].push(took);
      } else {
        const code = String((reply.error as { code?: string } | undefined)?.code);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  }));
  // requests still unanswered long after the end are cut off, so every run is bounded
  let drained: ReturnType<typeof setTimeout> | undefined;
  const cutOff = new Promise<boolean>((resolve) => {
    drained = setTimeout(() => resolve(true), options.seconds * 1000 + DRAIN_MS);
  });
  const wasCut = await Promise.race([loops.then(() => false), cutOff]);
  clearTimeout(drained);
  const closed = held.filter(({ link }) => link.closed).length;
  if (wasCut) {
    errors.unanswered = held.length - closed;
    for (const { link } of held) link.close();
    await loops;
  }
  const medians = perConnection.map((list) =>
    list.length === 0 ? Infinity : percentile(Float64Array.from(list).sort(), 0.5)
  );
  return {
    elapsedS: (Math.max(lastAnswer, deadline) - started) / 1000,
    byType,
    errors,
    closed,
    worst: Math.max(0, ...medians.filter(Number.isFinite)),
    starved: medians.filter((median) => !Number.isFinite(median)).length,
  };
}

/**
 * Where the trackers keep their state: `--db-url`, else for several trackers (or `postgres`)
 * a PostgreSQL server of this load's own, else a SQLite file in `temp`.
 */
async function loadDatabase(
  options: LoadOptions,
  temp: TempDir,
  log: (line: string) => void,
): Promise<AsyncDisposable & { db: string }> {
  if (options.dbUrl !== undefined) {
    return { db: options.dbUrl, [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  if (options.trackers === 1 && !options.postgres) {
    return { db: temp.join("tracker.db"), [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const why = await postgresUnavailable();
  if (why !== undefined) throw new Error(severalTrackersRefusal(2, "") ?? why);
  const server = await PostgresServer.start();
  try {
    await server.createDatabase("loadtest");
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
  log(`loadtest: a PostgreSQL server of its own on 127.0.0.1:${server.port}`);
  return { db: server.url("loadtest"), [Symbol.asyncDispose]: () => server[Symbol.asyncDispose]() };
}

/** Runs one load: builds the directory, starts the trackers, measures; stops everything. */
export async function runLoad(options: LoadOptions): Promise<LoadRow> {
  checkShape(options);
  const log = options.log;
  const seeding = chooseSeeding(options, options.seeding);
  const members = Math.min(options.members, options.users);
  const limits: string[] = [];
  await using temp = await TempDir.create("swarmshare-loadtest-");
  await using database = await loadDatabase(options, temp, log);
  const dbPath = database.db;
  let users: LoadUser[] = [];
  const describe = `${options.users} users, ${options.groups} groups of ${members} members ` +
    `(${options.groups * members} memberships), ${options.files} files each`;
  if (seeding === "store") {
    log(
      `loadtest: seeding ${describe} straight into the store (tracker/store.ts), not through logins`,
    );
    const begun = performance.now();
    users = await seedStore(dbPath, options, options.plaintext, options.signal);
    log(`loadtest: seeded in ${((performance.now() - begun) / 1000).toFixed(1)} s`);
    limits.push(
      "accounts, sessions, groups and files seeded into the store: no scrypt, no per-user " +
        "limits on groups owned or files shared",
    );
  }
  await using trackers = await TrackerSet.start({
    count: options.trackers,
    dbPath,
    plaintext: options.plaintext,
    connections: options.connections,
    extraArgs: options.trackerArgs,
    denoFlags: options.trackerDenoFlags,
  });
  const ports = trackers.ports;
  limits.push(
    `descriptors: tracker started with ulimit -n ${trackers.descriptorLimit} (its listener ` +
      `holds half less 64)`,
  );
  if (seeding === "protocol") {
    log(`loadtest: building ${describe} through the protocol`);
    const begun = performance.now();
    users = await populateByProtocol(ports[0], options, options.plaintext);
    log(`loadtest: built in ${((performance.now() - begun) / 1000).toFixed(1)} s`);
    limits.push(
      `logins: one create_user and one login per user from its own address, 4 at once ` +
        `(scrypt, 2 at once on the tracker; per-address login throttles untouched)`,
    );
  }
  const memberUsers = users.filter((user) => user.groups.length > 0).length;
  limits.push(
    `connections per address: at most ${Math.ceil(options.connections / memberUsers)} over ` +
      `${Math.min(memberUsers, options.connections)} addresses 127.77.x.y (tracker: ` +
      `${MAX_CONNECTIONS_PER_ADDRESS}); every link resumes its user's session, no login each`,
    `strangers: ${OPENING_AT_ONCE} links opening at once (tracker: ${MAX_STRANGERS} not logged in)`,
    `idle timeout: links idle while others open are pinged every ${KEEPALIVE_MS / 1000} s`,
    `listings: only the first page is asked for` +
      (options.page === undefined
        ? ` (${GROUPS_PER_PAGE} groups, ${FILES_PER_PAGE} files)`
        : `, of at most ${options.page} entries (the tracker's: ${GROUPS_PER_PAGE} groups, ` +
          `${FILES_PER_PAGE} files)`),
  );
  if (options.activeGroups !== undefined) {
    limits.push(
      `working set: each user's links ask about its first ${options.activeGroups} groups`,
    );
  }
  for (const line of limits) log(`loadtest: limit: ${line}`);
  // the directory's own garbage and scrypt memory are not the connections' cost
  await pause(1000, options.signal);
  const before = await trackers.usage();
  const peakReset = await trackers.resetPeaks();
  if (!peakReset) limits.push("peak memory: VmHWM could not be reset, it includes the directory's");
  log(`loadtest: opening ${options.connections} connections`);
  // in two halves, measured after each: the second half's growth is what a link costs,
  // without the tracker's own first growth (code compiled, heap and caches sized)
  const half = Math.floor(options.connections / 2);
  const held: Held[] = [];
  try {
    await connect(ports, users, held, [0, half], options.signal);
    await pause(IDLE_SETTLE_MS, options.signal);
    const halfway = await trackers.usage();
    await connect(ports, users, held, [half, options.connections], options.signal);
    await pause(IDLE_SETTLE_MS, options.signal);
    const idle = await trackers.usage();
    const offered = options.rate ? `offered ${options.rate} requests/s` : "closed loop";
    log(`loadtest: ${held.length} connections, ${offered}, for ${options.seconds} s`);
    const cpuBefore = await trackers.usage();
    const ownBefore = await ownCpuS();
    const run = await drive(held, options);
    const after = await trackers.usage();
    const ownAfter = await ownCpuS();
    const all = REQUEST_TYPES.flatMap((type) => run.byType[type]);
    const total = summarize(all, run.elapsedS);
    const cpu = (pick: (usage: ProcessUsage) => number) =>
      after && cpuBefore ? round1(pick(after) - pick(cpuBefore)) : null;
    return {
      connections: options.connections,
      trackers: options.trackers,
      offered_rate: options.rate ?? null,
      requests_per_s: total.requests_per_s,
      p50_ms: total.p50_ms,
      p99_ms: total.p99_ms,
      max_ms: total.max_ms,
      tracker_peak_rss_mib: after ? Math.round(after.hwmMib) : null,
      tracker_cpu_s: cpu((usage) => usage.cpuS),
      tracker_main_thread_cpu_s: cpu((usage) => usage.mainThreadCpuS),
      loadgen_cpu_s: ownAfter !== undefined && ownBefore !== undefined
        ? round1(ownAfter - ownBefore)
        : null,
      tracker_rss_before_connections_mib: before ? Math.round(before.rssMib) : null,
      tracker_rss_idle_connections_mib: idle ? Math.round(idle.rssMib) : null,
      idle_kib_per_connection: before && idle && held.length > 0
        ? Math.round(((idle.rssMib - before.rssMib) * 1024) / held.length)
        : null,
      tracker_rss_half_connections_mib: halfway ? Math.round(halfway.rssMib) : null,
      idle_kib_per_added_connection: halfway && idle && held.length > half
        ? Math.round(((idle.rssMib - halfway.rssMib) * 1024) / (held.length - half))
        : null,
      seconds: round1(run.elapsedS),
      requests: total.requests,
      by_type: Object.fromEntries(
        (options.mix ?? REQUEST_TYPES).map((
          type,
        ) => [type, summarize(run.byType[type], run.elapsedS)]),
      ),
      worst_connection_p50_ms: round1(run.worst),
      starved_connections: run.starved,
      errors: run.errors,
      closed: run.closed,
      users: options.users,
      groups: options.groups,
      members_per_group: members,
      memberships: options.groups * members,
      files_per_group: options.files,
      page_limit: options.page ?? null,
      active_groups: options.activeGroups ?? null,
      seeding,
      mix: [...options.mix ?? REQUEST_TYPES],
      tls: !options.plaintext,
      limits,
    };
  } finally {
    for (const { link } of held) link.close();
  }
}
