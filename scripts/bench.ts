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
 *
 * Each download is timed from its `download_file` command to its completion event and its
 * SHA-1 checked. For every process: peak resident memory (VmHWM, over its whole life) and
 * the CPU seconds it spent during the timed phase (not starting up or hashing beforehand).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import {
  JsonShell,
  Program,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  writeRandomFile,
} from "./processes.ts";

const MiB = 1 << 20;
const STEP_LIMIT_MS = 15 * 60_000;
const PYTHON = "/usr/bin/python3";
const ANCHOR_SCRIPT = new URL("./bench_libtorrent.py", import.meta.url).pathname;
const TCP_SCRIPT = new URL("./bench_tcp.ts", import.meta.url).pathname;
const SCENARIOS = ["S1", "S2", "S3", "U"] as const;
type Scenario = typeof SCENARIOS[number];
/** `swarmshare-plain`: the same programs with `--insecure-plaintext`, to show what TLS costs. */
type Engine = "swarmshare" | "swarmshare-plain" | "libtorrent" | "limit";

const USAGE = `usage: deno task bench [--size MiB | --quick] [--scenarios S1,S2,S3,U]
                       [--anchor libtorrent] [--plaintext] [--repeat N] [--json]
  --size MiB      file size (default 1024); --quick is --size 64
  --scenarios     which to run (default all): S1 one seeder to one downloader, S2 three
                  seeders to one downloader, S3 one seeder to four downloaders, U upload hashing
  --anchor        also run S1-S3 with python3-libtorrent, one process per peer
  --plaintext     also run S1-S3 with --insecure-plaintext on every Swarmshare program
                  (engine swarmshare-plain): what encryption costs, in the same run
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

/** A tracker and clients, all members of group "bench"; the first owns it. */
async function swarmshareSwarm(
  dir: TempDir,
  scenario: string,
  names: string[],
  plaintext = false,
) {
  const root = dir.join(`swarmshare-${scenario}`);
  await Deno.mkdir(root);
  const extraArgs = plaintext ? ["--insecure-plaintext"] : [];
  const tracker = await TrackerProcess.start(`${root}/tracker.db`, { extraArgs });
  const clients: Client[] = [];
  for (const name of names) {
    const home = `${root}/${name}`;
    await Deno.mkdir(home);
    const shell = JsonShell.start(tracker.port, {
      cwd: home,
      waitLimitMs: STEP_LIMIT_MS,
      extraArgs,
    });
    clients.push({ name, shell, home });
    await shell.ok(`create_user ${name} pw`);
    await shell.ok(`login ${name} pw`);
  }
  await clients[0].shell.ok("create_group bench");
  for (const client of clients.slice(1)) {
    await client.shell.ok("join_group bench");
    await clients[0].shell.ok(`accept_request bench ${client.name}`);
  }
  return {
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
}

async function runSwarmshare(
  dir: TempDir,
  scenario: Exclude<Scenario, "U">,
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

async function makeTorrent(file: BenchFile, dir: TempDir): Promise<string> {
  const torrent = dir.join("bench.torrent");
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args: [ANCHOR_SCRIPT, "make-torrent", file.path, torrent],
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`making the torrent failed: ${new TextDecoder().decode(stderr)}`);
  return torrent;
}

function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => listener.addr.port);
  for (const listener of listeners) listener.close();
  return ports;
}

async function runLibtorrent(
  dir: TempDir,
  scenario: Exclude<Scenario, "U">,
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
      const program = new Program(
        [
          ANCHOR_SCRIPT,
          "peer",
          torrent,
          home,
          String(ports[i]),
          seeding ? "seed" : "leech",
          ...others.map(String),
        ],
        { executable: PYTHON, stdin: true, waitLimitMs: STEP_LIMIT_MS },
      );
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
    const versusAnchor = row.engine.startsWith("swarmshare") && anchor
      ? `${(row.mbPerSecond / anchor.mbPerSecond).toFixed(2)}x`
      : "";
    // every U run has the SHA-1 speed measured beside it
    const limit = row.besideLimit?.mbPerSecond ?? tightest;
    const versusLimit = row.engine !== "limit" && limit
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
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => line[i].length))
  );
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  }
  for (const row of rows) if (row.note) console.log(`${row.scenario} ${row.engine}: ${row.note}`);
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
  }));
}

// Main

interface BenchOptions {
  sizeMiB: number;
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
      anchor: { type: "string" },
      plaintext: { type: "boolean", default: false },
      repeat: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  const sizeMiB = values.quick ? 64 : Number(values.size ?? 1024);
  if (!Number.isFinite(sizeMiB) || sizeMiB <= 0) {
    throw new Error("--size must be a positive number of MiB");
  }
  const scenarios = values.scenarios.split(",").map((name) => name.trim().toUpperCase());
  for (const name of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`unknown scenario "${name}"`);
    }
  }
  if (values.anchor !== undefined && values.anchor !== "libtorrent") {
    throw new Error(`the only anchor is libtorrent, not "${values.anchor}"`);
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    throw new Error("--repeat must be a whole number of runs, at least 1");
  }
  return {
    sizeMiB,
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

  const rows: Row[] = [
    sha1Limit(Math.min(size, 512 * MiB)),
    await tcpLimit(size),
    await diskLimit(dir, size),
  ];
  let torrent: string | undefined;
  if (options.anchor) {
    if (await hasLibtorrent()) {
      torrent = await makeTorrent(file, dir);
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
    for (let round = 1; round <= options.repeat; round++) {
      say(`bench: ${scenario}${options.repeat > 1 ? ` (${round}/${options.repeat})` : ""}...`);
      await settle(file, leftovers);
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
      if (torrent) {
        runs.push(await runLibtorrent(dir, scenario, file, torrent));
        leftovers.push(dir.join(`libtorrent-${scenario}`));
        await settle(file, leftovers);
      }
      runs.push(await runSwarmshare(dir, scenario, file));
      leftovers.push(dir.join(`swarmshare-${scenario}`));
      if (options.plaintext) {
        await settle(file, leftovers);
        runs.push(await runSwarmshare(dir, scenario, file, true));
        leftovers.push(dir.join(`swarmshare-${scenario}`));
      }
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

if (import.meta.main) Deno.exit(await main(Deno.args));
