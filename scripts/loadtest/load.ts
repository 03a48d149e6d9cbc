/**
 * `deno task load`: a load generator that speaks the tracker protocol directly, as many
 * logged-in clients would. It builds a realistic directory first (users, groups with members
 * and shared files), then holds `--connections` logged-in links that each send `list_groups`,
 * `list_files` and `locate_file` in turn, one at a time, as fast as they are answered (or at
 * an offered `--rate` for all of them together), for `--seconds`. It prints throughput, the
 * latency distribution (p50, p99, max, and the slowest connection's median, which shows
 * whether some connections starve), error replies by code, and the tracker's peak memory and
 * CPU when it started the tracker itself.
 *
 *   deno task load [--connections 1000] [--users 100] [--groups 100] [--members 50]
 *                  [--files 20] [--seconds 20] [--rate N] [--port P] [--plaintext] [--json]
 *
 * Every link comes from its user's own loopback address (127.77.x.y), as users on many hosts
 * would, so the tracker's per-address limits (128 connections, login throttles) apply as in
 * real life; keep connections/users under 128.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { encodeFrame, FrameDecoder } from "../../lib/frame.ts";
import { generateIdentity, type Identity, issueCertificate } from "../../lib/identity.ts";
import { encodeInfo } from "../../lib/metainfo.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol.ts";
import { TempDir, TrackerProcess } from "../processes.ts";

export interface LoadOptions {
  connections: number;
  users: number;
  groups: number;
  /** Members per group, the owner included. */
  members: number;
  /** Files shared per group. */
  files: number;
  seconds: number;
  /** Requests per second offered by all connections together; undefined: closed loop. */
  rate?: number;
  /** A running tracker's port on 127.0.0.1; undefined: start one in a temp dir. */
  port?: number;
  plaintext: boolean;
  /** More arguments for the tracker this tool starts. */
  trackerArgs: string[];
}

export interface LoadReport {
  connections: number;
  seconds: number;
  requests: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** The median latency of the connection whose median is highest. */
  worst_connection_p50_ms: number;
  /** Connections that got no reply at all during the run. */
  starved_connections: number;
  /** Error replies by code (e.g. "busy"). */
  errors: Record<string, number>;
  /** Links the tracker closed during the run. */
  closed: number;
  tracker_peak_rss_mib?: number;
  tracker_cpu_s?: number;
}

type Reply = Record<string, unknown> & { id: number; ok: boolean };

/** One hand-spoken tracker link; requests may be pipelined, replies are matched by id. */
class Link {
  readonly #socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  #nextId = 1;
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#decoder.push(chunk);
      for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next()) {
        const reply = frame as Reply;
        const resolve = this.#waiting.get(reply.id);
        if (!resolve) continue; // a push
        this.#waiting.delete(reply.id);
        resolve(reply);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      const lost: Reply = { id: 0, ok: false, error: { code: "closed" } };
      for (const resolve of this.#waiting.values()) resolve(lost);
      this.#waiting.clear();
    });
  }

  static async open(
    port: number,
    localAddress: string,
    identity: Identity | undefined,
  ): Promise<Link> {
    const raw = net.connect({ host: "127.0.0.1", port, localAddress });
    const socket = identity
      ? tls.connect({
        socket: raw,
        cert: identity.certPem,
        key: identity.keyPem,
        rejectUnauthorized: false,
      })
      : raw;
    await new Promise<void>((resolve, reject) => {
      socket.once(identity ? "secureConnect" : "connect", () => resolve());
      socket.once("error", reject);
    });
    socket.setNoDelay(true);
    return new Link(socket);
  }

  request(message: Record<string, unknown>): Promise<Reply> {
    if (this.closed) return Promise.resolve({ id: 0, ok: false, error: { code: "closed" } });
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve) => this.#waiting.set(id, resolve));
    this.#socket.write(encodeFrame({ ...message, id }));
    return reply;
  }

  /** Sends a request and throws unless it succeeds. */
  async expect(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const reply = await this.request(message);
    if (!reply.ok) {
      throw new Error(`${message.type} refused: ${JSON.stringify(reply.error)}`);
    }
    return reply.data as Record<string, unknown>;
  }

  close(): void {
    this.#socket.destroy();
  }
}

interface User {
  name: string;
  address: string;
  identity?: Identity;
  token?: string;
  groups: number[];
}

/** The loopback address of user `index` (127.77.0.1, 127.77.0.2, ...). */
function userAddress(index: number): string {
  return `127.77.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/** Runs `tasks` with at most `limit` at once. */
async function inTurn<T>(items: T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Users, groups with members and files: the directory the load reads. */
async function populate(port: number, options: LoadOptions): Promise<User[]> {
  const users: User[] = [];
  for (let i = 0; i < options.users; i++) {
    users.push({
      name: `load${i}`,
      address: userAddress(i),
      identity: options.plaintext ? undefined : await generateIdentity(`load user ${i}`),
      groups: [],
    });
  }
  const links = new Map<User, Link>();
  // scrypt runs two at a time on the tracker: more in flight would only queue there
  await inTurn(users, 4, async (user) => {
    const link = await Link.open(port, user.address, user.identity);
    const serving = user.identity &&
      await issueCertificate(user.identity, "load peer", [user.address]);
    await link.expect({
      type: "hello",
      version: PROTOCOL_VERSION,
      peer: { host: user.address, port: 9 },
      ...serving ? { peer_cert: serving.certPem } : {},
    });
    await link.expect({ type: "create_user", user: user.name, password: "load-password" });
    const login = await link.expect({ type: "login", user: user.name, password: "load-password" });
    user.token = login.token as string;
    links.set(user, link);
  });
  const members = Math.min(options.members, options.users);
  await inTurn([...Array(options.groups).keys()], 16, async (g) => {
    const owner = users[g % users.length];
    const group = `g${g}`;
    const ownerLink = links.get(owner)!;
    await ownerLink.expect({ type: "create_group", group });
    owner.groups.push(g);
    for (let k = 1; k < members; k++) {
      const member = users[(g + k) % users.length];
      await links.get(member)!.expect({ type: "join_group", group });
      await ownerLink.expect({ type: "accept_request", group, user: member.name });
      member.groups.push(g);
    }
    for (let f = 0; f < options.files; f++) {
      const name = `file${f}.bin`;
      const info = encodeInfo({
        name,
        length: 1000 + f,
        pieceHashes: crypto.getRandomValues(new Uint8Array(20)),
      });
      await ownerLink.expect({
        type: "share_file",
        group,
        name,
        size: 1000 + f,
        sha1: [...crypto.getRandomValues(new Uint8Array(20))]
          .map((byte) => byte.toString(16).padStart(2, "0")).join(""),
        info: info.toBase64(),
        path: `/load/${group}/${name}`,
        mtime_ms: 0,
      });
    }
  });
  for (const link of links.values()) link.close();
  return users;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Peak RSS (MiB) and CPU seconds of process `pid`, from /proc. */
async function processUsage(pid: number): Promise<{ rssMib: number; cpuS: number } | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name)
    const ticks = Number(stat[11]) + Number(stat[12]);
    return { rssMib: hwm / 1024, cpuS: ticks / 100 };
  } catch {
    return undefined;
  }
}

/** Holds the logged-in links and measures them. */
async function drive(port: number, users: User[], options: LoadOptions) {
  const links: { link: Link; user: User }[] = [];
  // members only: a user in no group would be asking about groups it may not see
  const members = users.filter((user) => user.groups.length > 0);
  if (members.length === 0) throw new Error("no user is a member of any group");
  await inTurn([...Array(options.connections).keys()], 32, async (i) => {
    const user = members[i % members.length];
    const link = await Link.open(port, user.address, user.identity);
    await link.expect({ type: "hello", version: PROTOCOL_VERSION });
    await link.expect({ type: "resume", token: user.token });
    links.push({ link, user });
  });
  const latencies: number[] = [];
  const perConnection: number[][] = links.map(() => []);
  const errors: Record<string, number> = {};
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  // an open loop spaces each connection's requests evenly; a closed loop sends the next
  // request the moment the previous one is answered
  const gapMs = options.rate ? (links.length * 1000) / options.rate : 0;
  await Promise.all(links.map(async ({ link, user }, index) => {
    let turn = index;
    let due = started + (gapMs * index) / links.length;
    while (!link.closed) {
      if (gapMs > 0) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        due += gapMs;
      }
      if (performance.now() >= deadline) break;
      const group = `g${user.groups[turn % user.groups.length]}`;
      const kind = turn++ % 3;
      const message = kind === 0
        ? { type: "list_groups" }
        : kind === 1
        ? { type: "list_files", group }
        : { type: "locate_file", group, name: `file${turn % Math.max(1, options.files)}.bin` };
      const sent = performance.now();
      const reply = await link.request(message);
      const took = performance.now() - sent;
      if (reply.ok) {
        latencies.push(took);
        perConnection[index].push(took);
      } else {
        const code = String((reply.error as { code?: string } | undefined)?.code);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const closed = links.filter(({ link }) => link.closed).length;
  for (const { link } of links) link.close();
  const sorted = Float64Array.from(latencies).sort();
  const medians = perConnection.map((list) =>
    list.length === 0 ? Infinity : percentile(Float64Array.from(list).sort(), 0.5)
  );
  return {
    elapsed,
    requests: latencies.length,
    sorted,
    errors,
    closed,
    worst: Math.max(0, ...medians.filter(Number.isFinite)),
    starved: medians.filter((median) => !Number.isFinite(median)).length,
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  await using temp = await TempDir.create("swarmshare-load-");
  let tracker: TrackerProcess | undefined;
  try {
    let port = options.port;
    if (port === undefined) {
      tracker = await TrackerProcess.start(`${temp.path}/tracker.db`, {
        extraArgs: [...options.plaintext ? ["--insecure-plaintext"] : [], ...options.trackerArgs],
      });
      port = tracker.port;
    }
    console.error(
      `load: ${options.users} users, ${options.groups} groups of ${options.members}, ` +
        `${options.files} files each`,
    );
    const users = await populate(port, options);
    const before = tracker && await processUsage(tracker.pid);
    console.error(`load: ${options.connections} connections for ${options.seconds} s`);
    const run = await drive(port, users, options);
    const after = tracker && await processUsage(tracker.pid);
    const round = (value: number) => Math.round(value * 10) / 10;
    return {
      connections: options.connections,
      seconds: round(run.elapsed),
      requests: run.requests,
      requests_per_s: Math.round(run.requests / run.elapsed),
      p50_ms: round(percentile(run.sorted, 0.5)),
      p99_ms: round(percentile(run.sorted, 0.99)),
      max_ms: round(run.sorted.at(-1) ?? 0),
      worst_connection_p50_ms: round(run.worst),
      starved_connections: run.starved,
      errors: run.errors,
      closed: run.closed,
      ...after
        ? {
          tracker_peak_rss_mib: Math.round(after.rssMib),
          tracker_cpu_s: round(after.cpuS - (before?.cpuS ?? 0)),
        }
        : {},
    };
  } finally {
    if (tracker) await tracker[Symbol.asyncDispose]();
  }
}

function parseArgs(args: string[]): LoadOptions & { json: boolean } {
  const options: LoadOptions & { json: boolean } = {
    connections: 1000,
    users: 100,
    groups: 100,
    members: 50,
    files: 20,
    seconds: 20,
    plaintext: false,
    trackerArgs: [],
    json: false,
  };
  const numeric = new Set(["connections", "users", "groups", "members", "files", "seconds"]);
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].replace(/^--/, "");
    if (flag === "json") options.json = true;
    else if (flag === "plaintext") options.plaintext = true;
    else if (flag === "tracker-arg") options.trackerArgs.push(args[++i] ?? "");
    else if (numeric.has(flag) || flag === "rate" || flag === "port") {
      const value = Number(args[++i]);
      if (!Number.isSafeInteger(value) || value < (flag === "files" ? 0 : 1)) {
        throw new Error(`--${flag} takes a positive whole number`);
      }
      (options as unknown as Record<string, number>)[flag] = value;
    } else throw new Error(`unknown option ${args[i]}`);
  }
  // connections go to users who are members of a group: group g's members are users g to
  // g + members - 1 (wrapping), so with few groups that is not every user
  const members = Math.min(options.users, options.groups + Math.max(1, options.members) - 1);
  if (options.connections / members > 120) {
    throw new Error(
      `at most 120 connections per member (each user is one address): ${members} members`,
    );
  }
  return options;
}

if (import.meta.main) {
  let options;
  try {
    options = parseArgs(Deno.args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const report = await runLoad(options);
  if (options.json) console.log(JSON.stringify(report));
  else {
    console.log(
      `${report.connections} connections, ${report.requests} requests in ${report.seconds} s: ` +
        `${report.requests_per_s}/s, p50 ${report.p50_ms} ms, p99 ${report.p99_ms} ms, ` +
        `max ${report.max_ms} ms, slowest connection's median ${report.worst_connection_p50_ms} ms, ` +
        `${report.starved_connections} connections never answered, ${report.closed} closed`,
    );
    console.log(`errors: ${JSON.stringify(report.errors)}`);
    if (report.tracker_peak_rss_mib !== undefined) {
      console.log(
        `tracker: peak RSS ${report.tracker_peak_rss_mib} MiB, ${report.tracker_cpu_s} CPU s during the run`,
      );
    }
  }
}
