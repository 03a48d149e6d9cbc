/**
 * `deno task bench`: Swarmshare's speed and memory as measured facts, beside the machine's
 * limits and, with `--anchor libtorrent`, beside libtorrent in the same run.
 *
 * Real programs only: the tracker and every peer are separate processes driven through the
 * shell contract (`--json`) on 127.0.0.1, in a temporary directory removed afterwards.
 *
 *   S1  one seeder to one downloader
 *   S2  three seeders to one downloader
 *   S3  one seeder to four downloaders starting together (they trade among themselves)
 *   U   upload_file of the file (hashing)
 *   C4, C8, C16, CA, CL, C2S  capped swarms (issue 14, scripts/bench_bounds.ts): every
 *       client's uplink capped, each run compared with its fluid lower bound
 *
 * Each download is timed from its `download_file` command to its completion event and its
 * SHA-1 checked. For every process: peak resident memory (VmHWM, over its whole life) and
 * the CPU seconds it spent during the timed phase (not starting up or hashing beforehand).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import {
  boundFormula,
  type CapOptions,
  CAPPED_SCENARIOS,
  type CappedSwarm,
  cappedSwarm,
  DEFAULT_DOWNLOADERS,
  fluidBound,
  isCapped,
  mostSent,
} from "./bench_bounds.ts";
import {
  type DownloadLine,
  freePort,
  type JsonReply,
  JsonShell,
  Program,
  runInterruptible,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./processes.ts";
import { hashPassword } from "../tracker/auth.ts";
import { openStore } from "../tracker/open_store.ts";

const MiB = 1 << 20;
const STEP_LIMIT_MS = 15 * 60_000;
const PYTHON = "/usr/bin/python3";
const ANCHOR_SCRIPT = new URL("./bench_libtorrent.py", import.meta.url).pathname;
const TCP_SCRIPT = new URL("./bench_tcp.ts", import.meta.url).pathname;
/** The scenarios run when none are named. */
const SCENARIOS = ["S1", "S2", "S3", "U"] as const;
type StandardScenario = typeof SCENARIOS[number];
type Scenario = StandardScenario | typeof CAPPED_SCENARIOS[number];
/** Capped swarms use this file size unless `--size` is given. */
const CAPPED_SIZE_MIB = 64;
/** The uplink of a capped swarm's clients unless `--uplink` is given. */
const DEFAULT_UPLINK_MIB = 8;
/** `swarmshare-plain`: the same programs with `--insecure-plaintext`, to show what TLS costs. */
type Engine = "swarmshare" | "swarmshare-plain" | "libtorrent" | "limit";

const USAGE = `usage: deno task bench [--size MiB | --quick] [--scenarios S1,S2,S3,U]
                       [--anchor libtorrent] [--plaintext] [--repeat N] [--json]
                       [--uplink MiB/s] [--downlink MiB/s] [--downloaders N]
  --size MiB      file size (default 1024, or 64 for capped swarms); --quick is --size 64
  --scenarios     which to run (default S1,S2,S3,U): S1 one seeder to one downloader, S2 three
                  seeders to one downloader, S3 one seeder to four downloaders, U upload hashing;
                  capped swarms (C: all six) C4, C8, C16 one sharer to 4, 8, 16 downloaders,
                  CA downloaders at a quarter of the sharer's uplink, CL half the downloaders
                  join when the others are half done, C2S two sharers (the second at a quarter)
  --uplink        every capped client's upload limit (default ${DEFAULT_UPLINK_MIB} MiB/s)
  --downlink      every capped client's download limit (default none)
  --downloaders   downloaders of CA, CL and C2S (default ${DEFAULT_DOWNLOADERS})
  --anchor        also run S1-S3 and the capped swarms with python3-libtorrent, one process
                  per peer
  --plaintext     also run S1-S3 and the capped swarms with --insecure-plaintext on every
                  Swarmshare program (engine swarmshare-plain): what encryption costs
  --repeat N      run each scenario N times (engines alternating) and report the median run
  --json          print one JSON array of rows instead of the table`;

/** Resources one process used. */
interface ProcessUsage {
  role: string;
  peakRssMiB: number;
  cpuSeconds: number;
}

/** One measured row. */
interface Row {
  scenario: string;
  engine: Engine;
  seconds: number;
  /** Per downloader, MB = 10^6 bytes. */
  mbPerSecond: number;
  usage: ProcessUsage[];
  note?: string;
  /**
   * The limit this run is compared with, measured beside it (U and the SHA-1 speed: the
   * machine's speed drifts by 10-40% within minutes, more than the margins that matter here).
   */
  besideLimit?: Row;
  /** What a capped swarm measures beyond time and resources. */
  capped?: CappedOutcome;
}

/** A capped swarm's run against its bound. `Row.seconds` is the last completion's. */
interface CappedOutcome {
  swarm: CappedSwarm;
  bound: { seconds: number; worked: string };
  /** The bound over the time to the last completion. */
  efficiency: number;
  /** Bytes each sharer sent over the file size, sharers in order. */
  sharerCopies: number[];
  /** Each downloader's time, from its own start to its completion. */
  downloaderSeconds: number[];
  /** Bytes each downloader sent to the others. */
  downloaderUploadBytes: number[];
  /** When the late joiners started (CL). */
  joinSeconds?: number;
  /** Anything that makes the run suspect: a client that sent more than its cap allows. */
  warnings: string[];
}

/** The limits measured beside some of `rows`. */
const besideLimitsOf = (rows: Row[]) =>
  rows.flatMap((row) => row.besideLimit ? [row.besideLimit] : []);

/** A row's speed as a fraction of its own limit, if it has one. */
const ofOwnLimit = (row: Row) =>
  row.besideLimit ? row.mbPerSecond / row.besideLimit.mbPerSecond : undefined;

// Measuring processes

const CLOCK_TICKS_PER_SECOND = 100;

/** Peak RSS and CPU time of a live process, from /proc. */
async function usageOf(pid: number, role: string): Promise<ProcessUsage> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const peakKiB = Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0);
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // fields after the command name, which is in parentheses and may contain spaces
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { role, peakRssMiB: peakKiB / 1024, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
}

// Limits of the machine

function sha1Limit(bytes: number, scenario = "SHA-1 512 KiB"): Row {
  const buffer = crypto.getRandomValues(new Uint8Array(65536));
  const piece = new Uint8Array(512 * 1024);
  for (let at = 0; at < piece.length; at += buffer.length) piece.set(buffer, at);
  const rounds = Math.max(64, Math.round(bytes / piece.length));
  const started = performance.now();
  for (let i = 0; i < rounds; i++) createHash("sha1").update(piece).digest();
  const seconds = (performance.now() - started) / 1000;
  return limitRow(scenario, seconds, rounds * piece.length);
}

async function tcpLimit(bytes: number): Promise<Row> {
  await using receiver = new Program(["run", "-A", TCP_SCRIPT, "recv"], {
    executable: Deno.execPath(),
    waitLimitMs: STEP_LIMIT_MS,
  });
  const portLine = await receiver.stdout.until((line) => line.startsWith("port "), "the receiver");
  const sender = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TCP_SCRIPT, "send", portLine.split(" ")[1], String(bytes)],
    stdout: "null",
  });
  await sender.output();
  const result = await receiver.stdout.until((line) => line.startsWith("received "), "the count");
  const [, received, , seconds] = result.split(" ");
  return limitRow("loopback TCP", Number(seconds), Number(received));
}

async function diskLimit(dir: TempDir, bytes: number): Promise<Row> {
  const path = dir.join("disk-limit.bin");
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const block = new Uint8Array(MiB);
  for (let at = 0; at < block.length; at += chunk.length) block.set(chunk, at);
  const started = performance.now();
  {
    using file = await Deno.open(path, { write: true, create: true, truncate: true });
    for (let written = 0; written < bytes; written += block.length) {
      for (let at = 0; at < block.length;) at += await file.write(block.subarray(at));
    }
    await file.sync();
  }
  const seconds = (performance.now() - started) / 1000;
  await Deno.remove(path);
  return limitRow("disk write+fsync", seconds, bytes);
}

/** Usage over a timed phase: CPU seconds since `before`, peak memory overall. */
function since(before: ProcessUsage[], after: ProcessUsage[]): ProcessUsage[] {
  return after.map((usage) => ({
    ...usage,
    cpuSeconds: usage.cpuSeconds - (before.find((b) => b.role === usage.role)?.cpuSeconds ?? 0),
  }));
}

function limitRow(scenario: string, seconds: number, bytes: number): Row {
  return { scenario, engine: "limit", seconds, mbPerSecond: bytes / 1e6 / seconds, usage: [] };
}

// Fair starting conditions

/**
 * Puts the machine in the same state before every run: earlier downloads flushed and
 * removed, the page cache emptied where we may (root), and the shared file read back in.
 * Without this, one engine's dirty pages and cache pressure slow down the next one.
 */
async function settle(file: BenchFile, leftovers: string[]): Promise<void> {
  for (const path of leftovers.splice(0)) {
    await Deno.remove(path, { recursive: true }).catch(() => {});
  }
  await new Deno.Command("sync").output().catch(() => {});
  try {
    await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3");
  } catch {
    // not root: the cache stays as it is
  }
  using source = await Deno.open(file.path);
  const buffer = new Uint8Array(MiB);
  while (await source.read(buffer) !== null) { /* warm the cache */ }
}

// Swarmshare

interface Client {
  name: string;
  shell: JsonShell;
  home: string;
}

/**
 * Runs a command that hashes a password, waiting as the tracker says when one address has
 * used its attempts: it allows 30 a minute from one address, and every client of the bench is
 * on 127.0.0.1. The accounts are made in the store before the tracker starts
 * (`seedAccounts`), so only the logins count: 17 for C16, the largest swarm.
 */
async function passwordCommand(shell: JsonShell, command: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const reply = await shell.run(command);
    const wait = reply.error?.match(/too many attempts; try again in (\d+) s/);
    if (reply.ok || !wait || attempt === 3) {
      assert.equal(reply.ok, true, `"${command}" failed: ${reply.error}`);
      return;
    }
    console.error(
      `bench: the tracker throttles password attempts from 127.0.0.1; waiting ${wait[1]} s`,
    );
    await new Promise((resolve) => setTimeout(resolve, Number(wait[1]) * 1000));
  }
}

/**
 * Makes the accounts (password "pw") in a new tracker store at `db`, before its tracker
 * starts: through `create_user` they would count as password attempts, and C16's 17 accounts
 * and 17 logins passed the tracker's 30 a minute from 127.0.0.1, which cost every C16 run a
 * minute's wait.
 */
async function seedAccounts(db: string, names: string[]): Promise<void> {
  const passwordHash = await hashPassword("pw");
  const store = await openStore(db);
  try {
    for (const name of names) await store.createUser(name, passwordHash);
  } finally {
    await store.close();
  }
}

/** A tracker and clients, all members of group "bench"; the first owns it. */
async function swarmshareSwarm(
  dir: TempDir,
  scenario: string,
  names: string[],
  plaintext = false,
  /** The peer port and more arguments of the client at this index. */
  clientOptions: (index: number) => { peerPort?: number; extraArgs?: string[] } = () => ({}),
) {
  const root = dir.join(`swarmshare-${scenario}`);
  await Deno.mkdir(root);
  const extraArgs = plaintext ? ["--insecure-plaintext"] : [];
  await seedAccounts(`${root}/tracker.db`, names);
  const tracker = await TrackerProcess.start(`${root}/tracker.db`, { extraArgs });
  const clients: Client[] = [];
  const swarm = {
    tracker,
    clients,
    async usage(): Promise<ProcessUsage[]> {
      const usage = [await usageOf(tracker.pid, "tracker")];
      for (const client of clients) usage.push(await usageOf(client.shell.pid, client.name));
      return usage;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) await client.shell[Symbol.asyncDispose]();
      await tracker[Symbol.asyncDispose]();
    },
  };
  // a client that fails to start (a port in use) must not leave the others running
  try {
    for (const [index, name] of names.entries()) {
      const home = `${root}/${name}`;
      await Deno.mkdir(home);
      const own = clientOptions(index);
      const shell = JsonShell.start(tracker.port, {
        cwd: home,
        waitLimitMs: STEP_LIMIT_MS,
        peerPort: own.peerPort,
        extraArgs: [...extraArgs, ...own.extraArgs ?? []],
      });
      clients.push({ name, shell, home });
      await passwordCommand(shell, `login ${name} pw`);
    }
    await clients[0].shell.ok("create_group bench");
    for (const client of clients.slice(1)) {
      await client.shell.ok("join_group bench");
      await clients[0].shell.ok(`accept_request bench ${client.name}`);
    }
  } catch (error) {
    await swarm[Symbol.asyncDispose]();
    throw error;
  }
  return swarm;
}

async function runSwarmshare(
  dir: TempDir,
  scenario: Exclude<StandardScenario, "U">,
  file: BenchFile,
  plaintext = false,
): Promise<Row> {
  const seeders = scenario === "S2" ? 3 : 1;
  const downloaders = scenario === "S3" ? 4 : 1;
  const names = [
    ...Array.from({ length: seeders }, (_, i) => `seed${i + 1}`),
    ...Array.from({ length: downloaders }, (_, i) => `down${i + 1}`),
  ];
  await using swarm = await swarmshareSwarm(dir, scenario, names, plaintext);
  for (const seeder of swarm.clients.slice(0, seeders)) {
    await Deno.link(file.path, `${seeder.home}/${file.name}`);
    await seeder.shell.ok(`upload_file ${file.name} bench`);
  }
  const downloading = swarm.clients.slice(seeders);
  for (const client of downloading) await Deno.mkdir(`${client.home}/dl`);
  const before = await swarm.usage();
  const started = performance.now();
  const finished = downloading.map(async (client) => {
    await client.shell.ok(`download_file bench ${file.name} ${client.home}/dl`);
    // a failed download ends the run at once, rather than at the step time limit
    const event = await client.shell.event(["download_complete", "download_failed"]);
    if (event.event === "download_failed") {
      throw new Error(`${client.name}: the download failed: ${event.reason}`);
    }
    return { seconds: (performance.now() - started) / 1000, path: String(event.path) };
  });
  const results = await Promise.all(finished);
  const usage = since(before, await swarm.usage());
  for (const result of results) await checkSha1(result.path, file.sha1);
  const engine = plaintext ? "swarmshare-plain" : "swarmshare";
  return downloadRow(scenario, engine, file.size, results.map((r) => r.seconds), usage);
}

async function runUpload(dir: TempDir, file: BenchFile): Promise<Row> {
  await using swarm = await swarmshareSwarm(dir, "U", ["uploader"]);
  const [client] = swarm.clients;
  await Deno.link(file.path, `${client.home}/${file.name}`);
  const before = await swarm.usage();
  const started = performance.now();
  await client.shell.ok(`upload_file ${file.name} bench`);
  const seconds = (performance.now() - started) / 1000;
  return {
    scenario: "U",
    engine: "swarmshare",
    seconds,
    mbPerSecond: file.size / 1e6 / seconds,
    usage: since(before, await swarm.usage()),
  };
}

function downloadRow(
  scenario: string,
  engine: Engine,
  size: number,
  seconds: number[],
  usage: ProcessUsage[],
): Row {
  const perDownloader = seconds.map((s) => size / 1e6 / s);
  return {
    scenario,
    engine,
    seconds: Math.max(...seconds),
    mbPerSecond: perDownloader.reduce((a, b) => a + b, 0) / perDownloader.length,
    usage,
    note: seconds.length > 1
      ? `${seconds.length} downloaders, ${
        (perDownloader.reduce((a, b) => a + b, 0)).toFixed(0)
      } MB/s delivered in all`
      : undefined,
  };
}

async function checkSha1(path: string, expected: string): Promise<void> {
  const actual = await sha1OfFile(path);
  if (actual !== expected) throw new Error(`${path}: SHA-1 ${actual}, expected ${expected}`);
}

// libtorrent

async function hasLibtorrent(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(PYTHON, {
      args: ["-c", "import libtorrent"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

async function makeTorrent(file: BenchFile, dir: TempDir, name = "bench.torrent"): Promise<string> {
  const torrent = dir.join(name);
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args: [ANCHOR_SCRIPT, "make-torrent", file.path, torrent],
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`making the torrent failed: ${new TextDecoder().decode(stderr)}`);
  return torrent;
}

function freePorts(count: number): number[] {
  return Array.from({ length: count }, freePort);
}

/** One libtorrent peer process (bench_libtorrent.py peer ...), dialling `others`. */
function anchorPeer(
  torrent: string,
  home: string,
  port: number,
  seeding: boolean,
  others: number[],
  extraArgs: string[],
  waitLimitMs: number,
): Program {
  return new Program(
    [
      ANCHOR_SCRIPT,
      "peer",
      torrent,
      home,
      String(port),
      seeding ? "seed" : "leech",
      ...others.map(String),
      ...extraArgs,
    ],
    { executable: PYTHON, stdin: true, waitLimitMs },
  );
}

async function runLibtorrent(
  dir: TempDir,
  scenario: Exclude<StandardScenario, "U">,
  file: BenchFile,
  torrent: string,
): Promise<Row> {
  const seeders = scenario === "S2" ? 3 : 1;
  const downloaders = scenario === "S3" ? 4 : 1;
  const root = dir.join(`libtorrent-${scenario}`);
  await Deno.mkdir(root);
  const ports = freePorts(seeders + downloaders);
  const peers: { role: string; program: Program; home: string }[] = [];
  try {
    for (let i = 0; i < seeders + downloaders; i++) {
      const seeding = i < seeders;
      const role = seeding ? `seed${i + 1}` : `down${i - seeders + 1}`;
      const home = `${root}/${role}`;
      await Deno.mkdir(home);
      if (seeding) await Deno.link(file.path, `${home}/${file.name}`);
      // seeders wait to be called; downloaders call the seeders and each other
      const others = seeding ? [] : ports.filter((_, j) => j !== i);
      const program = anchorPeer(torrent, home, ports[i], seeding, others, [], STEP_LIMIT_MS);
      peers.push({ role, program, home });
      await program.stdout.until((line) => line.includes('"ready"'), `${role} to be ready`);
    }
    const downloading = peers.slice(seeders);
    const before: ProcessUsage[] = [];
    for (const peer of peers) before.push(await usageOf(peer.program.pid, peer.role));
    const started = performance.now();
    for (const peer of downloading) await peer.program.write("go\n");
    const seconds = await Promise.all(downloading.map(async (peer) => {
      await peer.program.stdout.until(
        (line) => line.includes('"finished"'),
        `${peer.role} to finish`,
      );
      return (performance.now() - started) / 1000;
    }));
    const usage: ProcessUsage[] = [];
    for (const peer of peers) usage.push(await usageOf(peer.program.pid, peer.role));
    usage.splice(0, usage.length, ...since(before, usage));
    for (const peer of downloading) await checkSha1(`${peer.home}/${file.name}`, file.sha1);
    return downloadRow(scenario, "libtorrent", file.size, seconds, usage);
  } finally {
    for (const peer of peers) await peer.program[Symbol.asyncDispose]();
  }
}

// Capped swarms (issue 14)

/** One downloader of a capped run: when it started and completed, from the run's start. */
interface CappedTiming {
  role: string;
  startS: number;
  endS?: number;
}

/** The sharers' and downloaders' roles, in order: seed1.., then down1.. */
function cappedRoles(swarm: CappedSwarm): string[] {
  return [
    ...swarm.sharerUplinks.map((_, i) => `seed${i + 1}`),
    ...Array.from({ length: swarm.downloaders }, (_, i) => `down${i + 1}`),
  ];
}

/** The uplink of the client at `index` of `cappedRoles`. */
function uplinkAt(swarm: CappedSwarm, index: number): number {
  return swarm.sharerUplinks[index] ?? swarm.downloaderUplink;
}

/**
 * A capped run's row: times, the bound with this run's join moment, the copies each sharer
 * sent and what each downloader sent (`sentBytes` by role), and a warning for any client that
 * sent more than its cap allows (the cap did not hold, so the bound does not apply).
 */
function cappedRow(
  engine: Engine,
  swarm: CappedSwarm,
  size: number,
  timings: CappedTiming[],
  sentBytes: Map<string, number>,
  usage: ProcessUsage[],
  joinSeconds?: number,
): Row {
  const lastS = Math.max(...timings.map((timing) => timing.endS!));
  const own = timings.map((timing) => timing.endS! - timing.startS);
  const bound = fluidBound(swarm, size, joinSeconds);
  const warnings: string[] = [];
  for (const [index, role] of cappedRoles(swarm).entries()) {
    const sent = sentBytes.get(role) ?? 0;
    const most = mostSent(uplinkAt(swarm, index), lastS);
    if (sent > most) {
      warnings.push(
        `${swarm.scenario} ${engine}: ${role} sent ${(sent / MiB).toFixed(1)} MiB in ${
          lastS.toFixed(2)
        } s, more than its cap of ${(uplinkAt(swarm, index) / MiB).toFixed(2)} MiB/s allows`,
      );
    }
  }
  return {
    ...downloadRow(swarm.scenario, engine, size, own, usage),
    seconds: lastS,
    capped: {
      swarm,
      bound,
      efficiency: bound.seconds / lastS,
      sharerCopies: swarm.sharerUplinks.map((_, i) => (sentBytes.get(`seed${i + 1}`) ?? 0) / size),
      downloaderSeconds: own,
      downloaderUploadBytes: timings.map((timing) => sentBytes.get(timing.role) ?? 0),
      joinSeconds: swarm.lateJoiners > 0 ? joinSeconds : undefined,
      warnings,
    },
  };
}

/** Caps as the client takes them: whole KiB/s. */
function clientLimitArgs(swarm: CappedSwarm, index: number): string[] {
  return [
    "--upload-limit-kib",
    String(uplinkAt(swarm, index) / 1024),
    ...swarm.downlink === undefined ? [] : ["--download-limit-kib", String(swarm.downlink / 1024)],
  ];
}

/**
 * A capped swarm of Swarmshare clients. What each client sent is read from the downloaders'
 * completion events, which give the bytes each peer (by serving address) delivered: every
 * client serves on a port chosen here so its address is known. Those are the bytes the
 * downloaders kept (a block that came twice in the endgame counts once).
 */
async function runSwarmshareCapped(
  dir: TempDir,
  swarm: CappedSwarm,
  file: BenchFile,
  plaintext = false,
): Promise<Row> {
  const roles = cappedRoles(swarm);
  const ports = roles.map(() => freePort());
  const sharers = swarm.sharerUplinks.length;
  await using clients = await swarmshareSwarm(
    dir,
    swarm.scenario,
    roles,
    plaintext,
    (index) => ({ peerPort: ports[index], extraArgs: clientLimitArgs(swarm, index) }),
  );
  for (const sharer of clients.clients.slice(0, sharers)) {
    await Deno.link(file.path, `${sharer.home}/${file.name}`);
    await sharer.shell.ok(`upload_file ${file.name} bench`);
  }
  const downloading = clients.clients.slice(sharers);
  for (const client of downloading) await Deno.mkdir(`${client.home}/dl`);
  const early = downloading.slice(0, downloading.length - swarm.lateJoiners);
  const late = downloading.slice(early.length);
  const timings = new Map<Client, CappedTiming>();
  const completions = new Map<Client, JsonReply>();
  const before = await clients.usage();
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const start = async (client: Client) => {
    timings.set(client, { role: client.name, startS: elapsed() });
    await client.shell.ok(`download_file bench ${file.name} ${client.home}/dl`);
  };
  const complete = async (client: Client) => {
    // a failed download ends the run at once, rather than at the step time limit
    const event = await client.shell.event(["download_complete", "download_failed"]);
    if (event.event === "download_failed") {
      throw new Error(`${client.name}: the download failed: ${event.reason}`);
    }
    // seen complete while polling: that was its time, not now
    timings.get(client)!.endS ??= elapsed();
    completions.set(client, event);
  };
  let joinSeconds: number | undefined;
  if (late.length === 0) {
    await Promise.all(downloading.map((client) => start(client).then(() => complete(client))));
  } else {
    await Promise.all(early.map(start));
    await halfDone(early, file.name, (client) => timings.get(client)!.endS ??= elapsed());
    joinSeconds = elapsed();
    await Promise.all(late.map(start));
    await Promise.all(downloading.map(complete));
  }
  const usage = since(before, await clients.usage());
  for (const event of completions.values()) await checkSha1(String(event.path), file.sha1);
  const roleAt = new Map(ports.map((port, index) => [`127.0.0.1:${port}`, roles[index]]));
  const sent = new Map<string, number>();
  for (const event of completions.values()) {
    for (const { peer, bytes } of event.peers as { peer: string; bytes: number }[]) {
      const role = roleAt.get(peer) ?? `unknown peer ${peer}`;
      sent.set(role, (sent.get(role) ?? 0) + bytes);
    }
  }
  const row = cappedRow(
    plaintext ? "swarmshare-plain" : "swarmshare",
    swarm,
    file.size,
    downloading.map((client) => timings.get(client)!),
    sent,
    usage,
    joinSeconds,
  );
  for (const [role, bytes] of sent) {
    if (role.startsWith("unknown")) {
      row.capped!.warnings.push(`${swarm.scenario}: ${(bytes / MiB).toFixed(1)} MiB from ${role}`);
    }
  }
  return row;
}

/**
 * Resolves once every one of `clients` has at least half the pieces of `name` (asking
 * `show_downloads` in turn); `completed` is told of one seen complete meanwhile.
 */
async function halfDone(
  clients: Client[],
  name: string,
  completed: (client: Client) => void,
): Promise<void> {
  await within(
    (async () => {
      while (true) {
        let half = true;
        for (const client of clients) {
          const lines = await client.shell.ok("show_downloads") as DownloadLine[];
          const line = lines.find((download) => download.name === name);
          if (line?.state === "F") {
            throw new Error(`${client.name}: the download failed: ${line.reason}`);
          }
          if (line?.state === "C") completed(client);
          else if (!line || line.pieces_done * 2 < line.pieces_total) half = false;
        }
        if (half) return;
        // pace the polling so it does not take the clients' time; it waits for a state
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    "the first downloaders to be half done",
    STEP_LIMIT_MS,
  );
}

/** Wakes everyone waiting for a change, each time something changes. */
class Changes {
  #waiters: (() => void)[] = [];

  /** Resolves at the next change. */
  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** A libtorrent peer of a capped run, its output read as it comes. */
class AnchorPeer implements AsyncDisposable {
  ready = false;
  pieces = 0;
  total = 0;
  finishedAt?: number;
  uploaded?: number;
  ended = false;
  readonly #reading: Promise<void>;

  constructor(
    readonly role: string,
    readonly program: Program,
    readonly home: string,
    readonly changes: Changes,
  ) {
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    try {
      while (true) {
        const line = await this.program.stdout.next(`the output of ${this.role}`);
        if (line === undefined) break;
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          continue; // not one of its reports (a library's warning)
        }
        if (event.event === "ready") this.ready = true;
        if (event.event === "progress") [this.pieces, this.total] = [event.pieces, event.total];
        if (event.event === "finished") this.finishedAt = performance.now();
        if (event.event === "report") this.uploaded = event.uploaded;
        this.changes.notify();
      }
    } catch {
      // a silent peer: whoever waits on it times out and says what for
    } finally {
      this.ended = true;
      this.changes.notify();
    }
  }

  get isHalfDone(): boolean {
    return this.finishedAt !== undefined || (this.total > 0 && this.pieces * 2 >= this.total);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.program[Symbol.asyncDispose]();
    await this.#reading;
  }
}

/** Resolves once `holds()` is true for every peer; rejects if one ended first. */
async function everyPeer(
  peers: AnchorPeer[],
  changes: Changes,
  holds: (peer: AnchorPeer) => boolean,
  what: string,
): Promise<void> {
  await within(
    (async () => {
      while (!peers.every(holds)) {
        const ended = peers.find((peer) => peer.ended && !holds(peer));
        if (ended) {
          throw new Error(
            `${ended.role} ended before ${what}: ${ended.program.stderr.all.join("\n")}`,
          );
        }
        await changes.next();
      }
    })(),
    what,
    STEP_LIMIT_MS,
  );
}

/** A capped swarm of libtorrent peers; each says what it sent (payload, its own count). */
async function runLibtorrentCapped(
  dir: TempDir,
  swarm: CappedSwarm,
  file: BenchFile,
  torrent: string,
): Promise<Row> {
  const roles = cappedRoles(swarm);
  const sharers = swarm.sharerUplinks.length;
  const root = dir.join(`libtorrent-${swarm.scenario}`);
  await Deno.mkdir(root);
  const ports = freePorts(roles.length);
  const changes = new Changes();
  const peers: AnchorPeer[] = [];
  try {
    for (const [i, role] of roles.entries()) {
      const seeding = i < sharers;
      const home = `${root}/${role}`;
      await Deno.mkdir(home);
      if (seeding) await Deno.link(file.path, `${home}/${file.name}`);
      const limits = [
        "--up",
        String(uplinkAt(swarm, i)),
        ...swarm.downlink === undefined ? [] : ["--down", String(swarm.downlink)],
      ];
      const others = seeding ? [] : ports.filter((_, j) => j !== i);
      // the reader waits as long as the peer is silent; every wait on it has its own limit
      const program = anchorPeer(
        torrent,
        home,
        ports[i],
        seeding,
        others,
        [...limits, "--progress"],
        24 * 3600_000,
      );
      const peer = new AnchorPeer(role, program, home, changes);
      peers.push(peer);
      await everyPeer([peer], changes, (p) => p.ready, `${role} to be ready`);
    }
    const downloading = peers.slice(sharers);
    const early = downloading.slice(0, downloading.length - swarm.lateJoiners);
    const late = downloading.slice(early.length);
    const before: ProcessUsage[] = [];
    for (const peer of peers) before.push(await usageOf(peer.program.pid, peer.role));
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const timings = new Map<AnchorPeer, CappedTiming>();
    const start = async (peer: AnchorPeer) => {
      timings.set(peer, { role: peer.role, startS: elapsed() });
      await peer.program.write("go\n");
    };
    for (const peer of early) await start(peer);
    let joinSeconds: number | undefined;
    if (late.length > 0) {
      await everyPeer(early, changes, (peer) => peer.isHalfDone, "the first half to be half done");
      joinSeconds = elapsed();
      for (const peer of late) await start(peer);
    }
    await everyPeer(
      downloading,
      changes,
      (peer) => peer.finishedAt !== undefined,
      "every downloader to finish",
    );
    for (const peer of downloading) timings.get(peer)!.endS = (peer.finishedAt! - started) / 1000;
    const usage: ProcessUsage[] = [];
    for (const peer of peers) usage.push(await usageOf(peer.program.pid, peer.role));
    for (const peer of peers) await peer.program.write("report\n");
    await everyPeer(peers, changes, (peer) => peer.uploaded !== undefined, "every peer's report");
    for (const peer of downloading) await checkSha1(`${peer.home}/${file.name}`, file.sha1);
    return cappedRow(
      "libtorrent",
      swarm,
      file.size,
      downloading.map((peer) => timings.get(peer)!),
      new Map(peers.map((peer) => [peer.role, peer.uploaded!])),
      since(before, usage),
      joinSeconds,
    );
  } finally {
    for (const peer of peers) await peer[Symbol.asyncDispose]();
  }
}

// Output

interface BenchFile {
  path: string;
  name: string;
  size: number;
  sha1: string;
}

function peakOf(usage: ProcessUsage[], prefix: string): number | undefined {
  const matching = usage.filter((u) => u.role.startsWith(prefix)).map((u) => u.peakRssMiB);
  return matching.length ? Math.max(...matching) : undefined;
}

function printTable(rows: Row[]): void {
  // a limit measured beside one run is that run's alone
  const beside = new Set(besideLimitsOf(rows));
  const limits = rows.filter((row) => row.engine === "limit" && !beside.has(row));
  const tightest = limits.length ? Math.min(...limits.map((row) => row.mbPerSecond)) : undefined;
  const header = [
    "scenario",
    "engine",
    "seconds",
    "MB/s",
    "vs anchor",
    "vs limit",
    "peak RSS MiB (seed/down/tracker)",
    "CPU s",
  ];
  const lines = rows.map((row) => {
    const anchor = rows.find((other) =>
      other.scenario === row.scenario && other.engine === "libtorrent"
    );
    // a capped swarm is judged by its last completion, as its efficiency is
    const versusAnchor = row.engine.startsWith("swarmshare") && anchor
      ? `${
        (row.capped ? anchor.seconds / row.seconds : row.mbPerSecond / anchor.mbPerSecond).toFixed(
          2,
        )
      }x`
      : "";
    // every U run has the SHA-1 speed measured beside it; a capped swarm has its bound instead
    const limit = row.besideLimit?.mbPerSecond ?? tightest;
    const versusLimit = row.engine !== "limit" && limit && !row.capped
      ? `${(row.mbPerSecond / limit).toFixed(2)}`
      : "";
    const rss = row.usage.length
      ? [
        peakOf(row.usage, "seed") ?? peakOf(row.usage, "uploader"),
        peakOf(row.usage, "down"),
        peakOf(row.usage, "tracker"),
      ]
        .map((value) => value === undefined ? "-" : value.toFixed(0)).join("/")
      : "";
    const cpu = row.usage.length
      ? row.usage.reduce((sum, u) => sum + u.cpuSeconds, 0).toFixed(1)
      : "";
    return [
      row.scenario,
      row.engine,
      row.seconds.toFixed(2),
      row.mbPerSecond.toFixed(0),
      versusAnchor,
      versusLimit,
      rss,
      cpu,
    ];
  });
  printColumns(header, lines);
  for (const row of rows) if (row.note) console.log(`${row.scenario} ${row.engine}: ${row.note}`);
  printCappedTable(rows.filter((row) => row.capped));
}

function printColumns(header: string[], lines: string[][]): void {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => line[i].length))
  );
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  }
}

/** Smallest, median and largest of `values`, as "a/b/c". */
function spread(values: number[], digits: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2
    ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return [sorted[0], median, sorted.at(-1)!].map((value) => value.toFixed(digits)).join("/");
}

/** The capped swarms against their bounds; each bound's formula once per scenario. */
function printCappedTable(rows: Row[]): void {
  if (rows.length === 0) return;
  const mibs = (bytes: number) => String(Number((bytes / MiB).toFixed(2)));
  console.log(
    "\ncapped swarms: efficiency = fluid lower bound / time to the last completion; " +
      "sharer copies = bytes a sharer sent / file size",
  );
  printColumns(
    [
      "scenario",
      "engine",
      "up MiB/s (sharers/down)",
      "down MiB/s",
      "last s",
      "bound s",
      "efficiency",
      "sharer copies",
      "downloader sent MiB (min/med/max)",
      "downloader s (min/med/max)",
    ],
    rows.map((row) => {
      const capped = row.capped!;
      const { swarm } = capped;
      return [
        row.scenario,
        row.engine,
        `${swarm.sharerUplinks.map(mibs).join("+")}/${mibs(swarm.downloaderUplink)}`,
        swarm.downlink === undefined ? "none" : mibs(swarm.downlink),
        row.seconds.toFixed(2),
        capped.bound.seconds.toFixed(2),
        capped.efficiency.toFixed(2),
        capped.sharerCopies.map((copies) => copies.toFixed(2)).join("+"),
        spread(capped.downloaderUploadBytes.map((bytes) => bytes / MiB), 1),
        spread(capped.downloaderSeconds, 2),
      ];
    }),
  );
  for (const scenario of new Set(rows.map((row) => row.scenario))) {
    const ofScenario = rows.filter((row) => row.scenario === scenario);
    console.log(`${scenario} bound: ${boundFormula(ofScenario[0].capped!.swarm)}`);
    for (const row of ofScenario) {
      const capped = row.capped!;
      const joined = capped.joinSeconds === undefined
        ? ""
        : `; the late joiners started at ${capped.joinSeconds.toFixed(2)} s`;
      console.log(
        `  ${row.engine}: ${capped.bound.worked}${joined}; each downloader s: ${
          capped.downloaderSeconds.map((s) => s.toFixed(2)).join(" ")
        }; sent MiB: ${capped.downloaderUploadBytes.map((b) => (b / MiB).toFixed(1)).join(" ")}`,
      );
    }
  }
}

function jsonRows(rows: Row[]) {
  return rows.map((row) => ({
    scenario: row.scenario,
    engine: row.engine,
    seconds: Number(row.seconds.toFixed(3)),
    mb_s: Number(row.mbPerSecond.toFixed(1)),
    peak_rss_mib: row.usage.length
      ? Number(
        Math.max(...row.usage.filter((u) => u.role !== "tracker").map((u) => u.peakRssMiB)).toFixed(
          1,
        ),
      )
      : null,
    cpu_s: row.usage.length
      ? Number(row.usage.reduce((sum, u) => sum + u.cpuSeconds, 0).toFixed(2))
      : null,
    ...row.capped ? cappedJson(row.capped) : {},
  }));
}

/** What a capped swarm's row adds to the JSON. */
function cappedJson(capped: CappedOutcome) {
  return {
    bound_s: Number(capped.bound.seconds.toFixed(3)),
    efficiency: Number(capped.efficiency.toFixed(3)),
    sharer_copies: capped.sharerCopies.map((copies) => Number(copies.toFixed(4))),
    downloader_seconds: capped.downloaderSeconds.map((seconds) => Number(seconds.toFixed(3))),
    downloader_upload_bytes: capped.downloaderUploadBytes,
    late_join_s: capped.joinSeconds === undefined ? null : Number(capped.joinSeconds.toFixed(3)),
    bound: capped.bound.worked,
  };
}

// Main

interface BenchOptions {
  sizeMiB: number;
  /** The file size of the capped swarms. */
  cappedSizeMiB: number;
  caps: CapOptions;
  scenarios: Scenario[];
  anchor: boolean;
  plaintext: boolean;
  repeat: number;
  json: boolean;
}

function parseOptions(args: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string" },
      quick: { type: "boolean", default: false },
      scenarios: { type: "string", default: SCENARIOS.join(",") },
      uplink: { type: "string", default: String(DEFAULT_UPLINK_MIB) },
      downlink: { type: "string" },
      downloaders: { type: "string", default: String(DEFAULT_DOWNLOADERS) },
      anchor: { type: "string" },
      plaintext: { type: "boolean", default: false },
      repeat: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  const givenSizeMiB = values.quick
    ? 64
    : values.size === undefined
    ? undefined
    : Number(values.size);
  if (givenSizeMiB !== undefined && !(Number.isFinite(givenSizeMiB) && givenSizeMiB > 0)) {
    throw new Error("--size must be a positive number of MiB");
  }
  // "C" names every capped swarm
  const scenarios = values.scenarios.split(",").map((name) => name.trim().toUpperCase())
    .flatMap((name) => name === "C" ? [...CAPPED_SCENARIOS] : [name]);
  for (const name of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(name) && !isCapped(name)) {
      throw new Error(`unknown scenario "${name}"`);
    }
  }
  const rate = (text: string | undefined, flag: string) => {
    if (text === undefined) return undefined;
    const mib = Number(text);
    // the clients take whole KiB/s
    if (!Number.isFinite(mib) || mib * 1024 < 1 || mib > 16 * 1024) {
      throw new Error(`${flag} must be a number of MiB/s from 1/1024 to 16384, not "${text}"`);
    }
    return mib * MiB;
  };
  const downloaders = Number(values.downloaders);
  if (!Number.isInteger(downloaders) || downloaders < 1 || downloaders > 64) {
    throw new Error("--downloaders must be a whole number from 1 to 64");
  }
  if (downloaders < 2 && scenarios.includes("CL")) {
    throw new Error("CL needs --downloaders 2 at least: half of them join late");
  }
  if (values.anchor !== undefined && values.anchor !== "libtorrent") {
    throw new Error(`the only anchor is libtorrent, not "${values.anchor}"`);
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    throw new Error("--repeat must be a whole number of runs, at least 1");
  }
  return {
    // the machine's limits are measured with the size of the scenarios that compare with them
    sizeMiB: givenSizeMiB ?? (scenarios.every(isCapped) ? CAPPED_SIZE_MIB : 1024),
    cappedSizeMiB: givenSizeMiB ?? CAPPED_SIZE_MIB,
    caps: {
      uplinkBytesPerSecond: rate(values.uplink, "--uplink")!,
      downlinkBytesPerSecond: rate(values.downlink, "--downlink"),
      downloaders,
    },
    scenarios: scenarios as Scenario[],
    anchor: values.anchor === "libtorrent",
    plaintext: values.plaintext,
    repeat,
    json: values.json,
  };
}

/**
 * Per engine, the median run (the faster of the two middle runs of an even count): by time,
 * or by the fraction of its own limit for a run that has one. Every run's figure is said, so
 * the spread is on record.
 */
function medianRuns(runs: Row[], say: (line: string) => void): Row[] {
  const engines = [...new Set(runs.map((row) => row.engine))];
  return engines.map((engine) => {
    const rows = runs.filter((row) => row.engine === engine);
    const byLimit = rows.every((row) => ofOwnLimit(row) !== undefined);
    // fastest first
    rows.sort((a, b) => byLimit ? ofOwnLimit(b)! - ofOwnLimit(a)! : a.seconds - b.seconds);
    if (rows.length > 1) {
      const times = rows.map((row) => row.seconds.toFixed(2)).join(", ");
      const ratios = byLimit
        ? `; ${rows.map((row) => ofOwnLimit(row)!.toFixed(2)).join(", ")} of the limit beside each`
        : "";
      say(
        `bench: ${rows[0].scenario} ${engine}: median of ${rows.length} runs (${times} s${ratios})`,
      );
    }
    return rows[Math.floor((rows.length - 1) / 2)];
  });
}

async function bench(options: BenchOptions): Promise<Row[]> {
  const say = (line: string) => options.json ? console.error(line) : console.log(line);
  await using dir = await TempDir.create("swarmshare-bench-");
  const size = Math.round(options.sizeMiB * MiB);
  say(
    `bench: ${
      (size / MiB).toFixed(0)
    } MiB file, ${navigator.hardwareConcurrency} cores, in ${dir.path}`,
  );
  const file: BenchFile = { path: dir.join("bench.bin"), name: "bench.bin", size, sha1: "" };
  file.sha1 = await writeRandomFile(file.path, size);
  // capped swarms share the file when they ask for the same size, else have their own
  const cappedSize = Math.round(options.cappedSizeMiB * MiB);
  let cappedFile = file;
  if (options.scenarios.some(isCapped) && cappedSize !== size) {
    say(`bench: ${(cappedSize / MiB).toFixed(0)} MiB file for the capped swarms`);
    cappedFile = { path: dir.join("capped.bin"), name: "capped.bin", size: cappedSize, sha1: "" };
    cappedFile.sha1 = await writeRandomFile(cappedFile.path, cappedSize);
  }

  const rows: Row[] = [
    sha1Limit(Math.min(size, 512 * MiB)),
    await tcpLimit(size),
    await diskLimit(dir, size),
  ];
  let torrent: string | undefined;
  let cappedTorrent: string | undefined;
  if (options.anchor) {
    if (await hasLibtorrent()) {
      torrent = await makeTorrent(file, dir);
      cappedTorrent = cappedFile === file
        ? torrent
        : await makeTorrent(cappedFile, dir, "capped.torrent");
    } else {
      say(
        "bench: python3-libtorrent is not installed (apt-get install python3-libtorrent); no anchor",
      );
    }
  }
  const leftovers: string[] = [];
  // U is compared with the SHA-1 limit, so it runs next to the limits on an equally quiet
  // machine: after a swarm the kernel is still busy releasing the gigabytes it cached
  const runOrder = [...options.scenarios].sort((a, b) => Number(b === "U") - Number(a === "U"));
  const scenarioRows: Row[] = [];
  for (const scenario of runOrder) {
    const runs: Row[] = [];
    // libtorrent (when anchored), then Swarmshare, then Swarmshare in clear (--plaintext),
    // each run's directory cleared before the next starts
    const eachEngine = async (engines: {
      anchor?: () => Promise<Row>;
      swarmshare: (plaintext: boolean) => Promise<Row>;
    }): Promise<Row[]> => {
      const benchFile = isCapped(scenario) ? cappedFile : file;
      const rows: Row[] = [];
      if (engines.anchor) {
        rows.push(await engines.anchor());
        leftovers.push(dir.join(`libtorrent-${scenario}`));
        await settle(benchFile, leftovers);
      }
      rows.push(await engines.swarmshare(false));
      leftovers.push(dir.join(`swarmshare-${scenario}`));
      if (options.plaintext) {
        await settle(benchFile, leftovers);
        rows.push(await engines.swarmshare(true));
        leftovers.push(dir.join(`swarmshare-${scenario}`));
      }
      return rows;
    };
    for (let round = 1; round <= options.repeat; round++) {
      say(`bench: ${scenario}${options.repeat > 1 ? ` (${round}/${options.repeat})` : ""}...`);
      await settle(isCapped(scenario) ? cappedFile : file, leftovers);
      if (scenario === "U") {
        // the faster of one measurement just before and one just after: a single one, caught
        // in a slow moment, once put a run at 1.20 of the limit
        const before = sha1Limit(Math.min(size, 512 * MiB), "SHA-1 beside U");
        const run = await runUpload(dir, file);
        const after = sha1Limit(Math.min(size, 512 * MiB), "SHA-1 beside U");
        const besideLimit = before.mbPerSecond >= after.mbPerSecond ? before : after;
        runs.push({ ...run, besideLimit });
        leftovers.push(dir.join("swarmshare-U"));
        continue;
      }
      if (isCapped(scenario)) {
        const swarm = cappedSwarm(scenario, options.caps);
        // the table says the formula below itself
        if (round === 1 && options.json) say(`bench: ${scenario} bound: ${boundFormula(swarm)}`);
        const capped = await eachEngine({
          anchor: cappedTorrent
            ? () => runLibtorrentCapped(dir, swarm, cappedFile, cappedTorrent)
            : undefined,
          swarmshare: (plaintext) => runSwarmshareCapped(dir, swarm, cappedFile, plaintext),
        });
        for (const row of capped) {
          for (const warning of row.capped!.warnings) say(`bench: ${warning}`);
        }
        runs.push(...capped);
        continue;
      }
      runs.push(
        ...await eachEngine({
          anchor: torrent ? () => runLibtorrent(dir, scenario, file, torrent) : undefined,
          swarmshare: (plaintext) => runSwarmshare(dir, scenario, file, plaintext),
        }),
      );
    }
    scenarioRows.push(...medianRuns(runs, say));
  }
  // the table keeps the order asked for, after the limits (with those measured beside a run)
  const rank = (row: Row) => options.scenarios.indexOf(row.scenario as Scenario);
  scenarioRows.sort((a, b) => rank(a) - rank(b));
  return [...rows, ...besideLimitsOf(scenarioRows), ...scenarioRows];
}

async function main(args: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  try {
    const rows = await bench(options);
    if (options.json) console.log(JSON.stringify(jsonRows(rows)));
    else printTable(rows);
    return 0;
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) await runInterruptible("bench", () => main(Deno.args));
