/**
 * `deno task fuzz`: the properties of tests/properties.ts (the ones `deno test` runs a few
 * hundred times each) run for millions of cases. Each property runs in a process of its own
 * (scripts/fuzz_property.ts) in batches of about a second, each batch with its own seed, so
 * that whatever goes wrong is reported with what replays it:
 *
 * - a property that fails: fast-check's shrunk counterexample, its seed and path;
 * - a batch that does not finish within `--hang-seconds`: killed, its seed and size;
 * - a process that grows past `--max-rss-mb` or dies: killed or reported, its last batch.
 *
 * Prints per property the cases run, the time and cases per second; exits 1 when anything
 * failed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PROPERTIES } from "../tests/properties.ts";
import type { FuzzEvent, FuzzFailure } from "./fuzz_property.ts";

const USAGE = `usage: deno task fuzz [--cases N] [--seconds S] [--only NAME,...] [--seed N]
                      [--path P] [--batch N] [--jobs N] [--hang-seconds S] [--max-rss-mb M]
                      [--list]
  --cases N         cases per property (default 1000000)
  --seconds S       at most S seconds per property (default: no limit)
  --only NAME,...   just these properties (--list shows them)
  --seed N          first batch's seed (default: random, printed); batch i uses N+i
  --path P          with --only NAME --seed N: replay the counterexample a failure printed
  --batch N         N cases per batch (default: as many as take about a second)
  --jobs N          properties run at once (default 1)
  --hang-seconds S  a batch taking longer is a hang: killed and reported (default 60)
  --max-rss-mb M    a run growing past M MiB resident is killed and reported (default 2048)`;

const CHILD = new URL("./fuzz_property.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
/** The child's JavaScript heap: far above what any property needs, so a leak shows. */
const CHILD_HEAP_MB = 1024;

/** How one property's run ended. */
type Verdict =
  | { kind: "ok" }
  | { kind: "failed"; failure: FuzzFailure }
  | { kind: "hang" | "memory" | "crash"; detail: string };

interface RunResult {
  name: string;
  cases: number;
  ms: number;
  verdict: Verdict;
  /** The last batch started: what replays a hang or a crash. */
  lastBatch?: { seed: number; size: number };
}

interface Options {
  cases: number;
  seconds: number;
  seed: number;
  path?: string;
  /** Cases per batch; 0: about a second's worth. */
  batch: number;
  hangSeconds: number;
  maxRssMb: number;
}

/** Resident memory of a process, MiB, or undefined where /proc cannot tell. */
async function residentMb(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Lines of a byte stream as they complete. */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let end: number;
    while ((end = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, end);
      pending = pending.slice(end + 1);
    }
  }
  if (pending) yield pending;
}

/** Runs one property in its own process, watching it for hangs and memory. */
async function runProperty(name: string, options: Options): Promise<RunResult> {
  const args = [
    "run",
    `--config=${CONFIG}`,
    `--v8-flags=--max-old-space-size=${CHILD_HEAP_MB}`,
    CHILD,
    name,
    String(options.seed),
    String(options.cases),
    String(options.seconds),
    String(options.batch),
    ...options.path === undefined ? [] : [options.path],
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" }, // its errors go into the report as plain text
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const result: RunResult = { name, cases: 0, ms: 0, verdict: { kind: "ok" } };
  const started = performance.now();
  let problem: Verdict | undefined;
  const kill = (verdict: Verdict) => {
    problem ??= verdict;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const rearm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(
      () => kill({ kind: "hang", detail: `no batch finished within ${options.hangSeconds} s` }),
      options.hangSeconds * 1000,
    );
  };
  const memory = setInterval(async () => {
    const mb = await residentMb(child.pid);
    if (mb !== undefined && mb > options.maxRssMb) {
      kill({ kind: "memory", detail: `${Math.round(mb)} MiB resident, over ${options.maxRssMb}` });
    }
  }, 500);
  rearm();
  try {
    for await (const line of linesOf(child.stdout)) {
      rearm();
      let event: FuzzEvent;
      try {
        event = JSON.parse(line);
      } catch {
        console.log(line); // the property printed something: pass it on
        continue;
      }
      if (event.event === "batch") {
        result.lastBatch = { seed: event.seed, size: event.size };
        result.cases = event.done;
      } else if (event.event === "failed") {
        result.cases = event.cases;
        problem ??= { kind: "failed", failure: event };
      } else if (event.event === "done") {
        result.cases = event.cases;
        result.ms = event.ms;
      } else if (event.event === "replayed" && !event.failed) {
        console.log(`${name}: the case at seed ${options.seed}, path ${options.path} passes now`);
      }
    }
    const status = await child.status;
    if (!problem && !status.success) {
      const tail = (await stderr).trim().split("\n").slice(-12).join("\n");
      const signal = status.signal ? ` (${status.signal})` : "";
      problem = { kind: "crash", detail: `exit ${status.code}${signal}${tail ? `\n${tail}` : ""}` };
    }
  } finally {
    clearTimeout(watchdog);
    clearInterval(memory);
  }
  await stderr.catch(() => "");
  if (result.ms === 0) result.ms = Math.round(performance.now() - started);
  result.verdict = problem ?? { kind: "ok" };
  return result;
}

function thousands(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function report(result: RunResult, seed: number): string {
  const rate = result.ms > 0 ? result.cases / (result.ms / 1000) : 0;
  const columns = [
    result.name.padEnd(28),
    thousands(result.cases).padStart(11),
    (result.ms / 1000).toFixed(1).padStart(8),
    thousands(rate).padStart(9),
    result.verdict.kind,
  ].join("  ");
  const verdict = result.verdict;
  if (verdict.kind === "ok") return columns;
  const lines = [columns];
  if (verdict.kind === "failed") {
    const { failure } = verdict;
    lines.push(
      `  failed after ${thousands(failure.cases)} cases, shrunk ${failure.shrinks} times to:`,
      `  ${failure.counterexample}`,
      `  ${failure.error.split("\n").slice(0, 12).join("\n  ")}`,
      `  replay: deno task fuzz --only ${result.name} --seed=${failure.seed} --path "${failure.path}"`,
    );
  } else {
    lines.push(`  ${verdict.kind}: ${verdict.detail.split("\n").join("\n  ")}`);
    const batch = result.lastBatch;
    if (batch) {
      lines.push(
        `  in the batch of ${thousands(batch.size)} cases from seed ${batch.seed}; replay: ` +
          `deno task fuzz --only ${result.name} --seed=${batch.seed} --cases ${batch.size} ` +
          `--batch ${batch.size}`,
      );
    } else {
      lines.push(`  before its first batch (seed ${seed})`);
    }
  }
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      cases: { type: "string" },
      seconds: { type: "string" },
      only: { type: "string" },
      seed: { type: "string" },
      path: { type: "string" },
      batch: { type: "string" },
      jobs: { type: "string", default: "1" },
      "hang-seconds": { type: "string", default: "60" },
      "max-rss-mb": { type: "string", default: "2048" },
      list: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const property of PROPERTIES) {
      console.log(`${property.name.padEnd(28)}  ${property.claim}`);
    }
    return 0;
  }
  const positive = (text: string | undefined, what: string, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!(value > 0)) throw new Error(`${what} must be a positive number, not "${text}"`);
    return value;
  };
  const names = values.only?.split(",") ?? PROPERTIES.map((property) => property.name);
  const unknown = names.filter((name) => !PROPERTIES.some((property) => property.name === name));
  if (unknown.length > 0) throw new Error(`no property named ${unknown.join(", ")}; see --list`);
  if (values.path !== undefined && (names.length !== 1 || values.seed === undefined)) {
    throw new Error("--path replays one case: give --only NAME and --seed N with it");
  }
  const options: Options = {
    cases: positive(values.cases, "--cases", values.seconds ? Number.MAX_SAFE_INTEGER : 1_000_000),
    seconds: positive(values.seconds, "--seconds", 1e9),
    seed: values.seed === undefined
      ? crypto.getRandomValues(new Int32Array(1))[0]
      : Number(values.seed) | 0,
    path: values.path,
    batch: values.batch === undefined ? 0 : Math.round(positive(values.batch, "--batch", 0)),
    hangSeconds: positive(values["hang-seconds"], "--hang-seconds", 60),
    maxRssMb: positive(values["max-rss-mb"], "--max-rss-mb", 2048),
  };
  const jobs = positive(values.jobs, "--jobs", 1);
  console.log(`seed ${options.seed}; ${names.length} properties`);
  console.log(
    [
      "property".padEnd(28),
      "cases".padStart(11),
      "seconds".padStart(8),
      "cases/s".padStart(9),
      "result",
    ].join("  "),
  );
  const queue = [...names];
  let failed = 0;
  let total = 0;
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const result = await runProperty(name, options);
      total += result.cases;
      if (result.verdict.kind !== "ok") failed++;
      console.log(report(result, options.seed));
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, names.length) }, worker));
  console.log(
    `${thousands(total)} cases; ${names.length - failed} properties held, ${failed} did not`,
  );
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
}
