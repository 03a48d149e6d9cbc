/**
 * `deno task loadtest` (also `deno task load`): issue 16's load generator (`--connections`
 * defaults to 1,000, as `deno task load` did). Each value of
 * `--connections`, `--rate` and `--trackers` (comma lists) makes one row, each on a fresh
 * tracker and directory; `--json` prints one JSON array of the rows, otherwise a table.
 *
 *   deno task loadtest --connections N[,N...] [--rate R|closed[,...]] [--seconds S]
 *     [--trackers K[,K...]] [--users U] [--groups G] [--members M] [--files F]
 *     [--mix TYPE[,TYPE...]] [--page N] [--active-groups N] [--seed auto|protocol|store] [--plaintext]
 *     [--tracker-args "ARGS"] [--tracker-deno-flags "FLAGS"]
 *     [--db-url postgres://... | --postgres] [--json]
 *
 * `--page N` asks listings in pages of at most N entries (the tracker's page otherwise), and
 * `--active-groups N` has each user's links ask about its first N groups only (all
 * otherwise): to compare directories of different sizes by the same page and working set.
 *
 * Several trackers (`--trackers 2`) share one PostgreSQL database: `--db-url` names an empty
 * one; without it the load starts a PostgreSQL server of its own for each run (`--postgres`
 * does so for one tracker too).
 *
 * Progress, and the tracker limits each run worked within, go to standard error. A bad
 * argument is one `error: ...` line and exit 2.
 *
 * @module
 */

import { parseArguments } from "../../lib/argv.ts";
import { errorMessage } from "../../lib/errors.ts";
import { splitWords } from "../../lib/shell_words.ts";
import { descriptorLimits } from "../processes.ts";
import type { Seeding } from "./directory.ts";
import { checkShape, type LoadOptions, type LoadRow, REQUEST_TYPES, runLoad } from "./load.ts";
import { isPostgresUrl } from "../../tracker/store.ts";

export const USAGE =
  `usage: deno task loadtest --connections N[,N...] [--rate R|closed[,...]] [--seconds S]
  [--trackers K[,K...]] [--users U] [--groups G] [--members M] [--files F]
  [--mix TYPE[,TYPE...]] [--page N] [--active-groups N] [--seed auto|protocol|store] [--plaintext]
  [--tracker-args "ARGS"] [--tracker-deno-flags "FLAGS"]
  [--db-url postgres://... | --postgres] [--json]`;

/** What the command line asks for: the runs, in order, and how to print them. */
export interface LoadPlan {
  runs: Omit<LoadOptions, "log" | "signal">[];
  json: boolean;
  help: boolean;
}

const SPECS = {
  connections: { type: "string" },
  rate: { type: "string" },
  seconds: { type: "string" },
  trackers: { type: "string" },
  users: { type: "string" },
  groups: { type: "string" },
  members: { type: "string" },
  files: { type: "string" },
  mix: { type: "string" },
  page: { type: "string" },
  "active-groups": { type: "string" },
  seed: { type: "string" },
  plaintext: { type: "boolean" },
  "tracker-args": { type: "string" },
  "tracker-deno-flags": { type: "string" },
  json: { type: "boolean" },
  "db-url": { type: "string" },
  postgres: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** A whole number of at least `least`, or an error naming the option and the value. */
function wholeNumber(option: string, text: string, least: number): number {
  const value = /^\d+$/.test(text.replaceAll("_", "")) ? Number(text.replaceAll("_", "")) : NaN;
  if (!Number.isSafeInteger(value) || value < least) {
    throw new Error(`--${option} takes a whole number of at least ${least}, not "${text}"`);
  }
  return value;
}

function list<T>(option: string, text: string, item: (part: string) => T): T[] {
  const parts = text.split(",");
  if (parts.some((part) => part === "")) {
    throw new Error(`--${option} has an empty item: "${text}"`);
  }
  return parts.map(item);
}

/** How many runs the comma lists make. */
function connectionsCount(
  values: { connections?: string; rate?: string; trackers?: string },
): number {
  return ["connections", "rate", "trackers"]
    .map((key) => (values[key as keyof typeof values] ?? "").split(",").length)
    .reduce((product, count) => product * count, 1);
}

/** Reads the command line; throws with one sentence naming the bad argument. */
export function parsePlan(args: string[]): LoadPlan {
  const { values, positionals } = parseArguments(args, SPECS);
  if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
  if (values.help) return { runs: [], json: false, help: true };
  const connections = list(
    "connections",
    values.connections ?? "1000",
    (part) => wholeNumber("connections", part, 1),
  );
  const rates = list(
    "rate",
    values.rate ?? "closed",
    (part) => part === "closed" ? undefined : wholeNumber("rate", part, 1),
  );
  const trackers = list(
    "trackers",
    values.trackers ?? "1",
    (part) => wholeNumber("trackers", part, 1),
  );
  const dbUrl = values["db-url"];
  if (dbUrl !== undefined && !isPostgresUrl(dbUrl)) {
    throw new Error(`--db-url takes a postgres:// URL, not "${dbUrl}"`);
  }
  if (dbUrl !== undefined && values.postgres) {
    throw new Error("--db-url and --postgres cannot go together");
  }
  if (dbUrl !== undefined && connectionsCount(values) > 1) {
    throw new Error(
      "--db-url names one database: give one run (a single --connections, --rate and --trackers)",
    );
  }
  const seed = values.seed ?? "auto";
  if (!["auto", "protocol", "store"].includes(seed)) {
    throw new Error(`--seed is auto, protocol or store, not "${seed}"`);
  }
  const mix = list("mix", values.mix ?? REQUEST_TYPES.join(","), (part) => {
    const type = REQUEST_TYPES.find((known) => known === part);
    if (!type) throw new Error(`--mix takes ${REQUEST_TYPES.join(", ")}, not "${part}"`);
    return type;
  });
  const shape = {
    mix,
    seconds: wholeNumber("seconds", values.seconds ?? "20", 1),
    users: wholeNumber("users", values.users ?? "100", 1),
    groups: wholeNumber("groups", values.groups ?? "100", 1),
    members: wholeNumber("members", values.members ?? "50", 1),
    files: wholeNumber("files", values.files ?? "20", 0),
    page: values.page === undefined ? undefined : wholeNumber("page", values.page, 1),
    activeGroups: values["active-groups"] === undefined
      ? undefined
      : wholeNumber("active-groups", values["active-groups"], 1),
    seeding: seed as Seeding | "auto",
    plaintext: values.plaintext ?? false,
    trackerArgs: splitWords(values["tracker-args"] ?? ""),
    trackerDenoFlags: values["tracker-deno-flags"] === undefined
      ? undefined
      : splitWords(values["tracker-deno-flags"]),
    dbUrl,
    postgres: values.postgres ?? false,
  };
  const runs = trackers.flatMap((count) =>
    connections.flatMap((n) =>
      rates.map((rate) => ({ ...shape, connections: n, rate, trackers: count }))
    )
  );
  for (const run of runs) checkShape(run);
  return { runs, json: values.json ?? false, help: false };
}

/** The rows as a table: one line per run, then one per request type. */
export function table(rows: LoadRow[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const offered = row.offered_rate === null ? "closed loop" : `offered ${row.offered_rate}/s`;
    lines.push(
      `${row.connections} connections, ${row.trackers} tracker(s), ${offered}, ${row.groups} ` +
        `groups, ${row.memberships} memberships, ${row.files_per_group} files a group` +
        `${row.page_limit === null ? "" : `, pages of ${row.page_limit}`}` +
        `${row.active_groups === null ? "" : `, ${row.active_groups} groups in use a user`}` +
        ` (${row.seeding}): ${row.requests_per_s} requests/s, p50 ${row.p50_ms} ms, p99 ` +
        `${row.p99_ms} ms, max ${row.max_ms} ms`,
    );
    for (const [type, summary] of Object.entries(row.by_type)) {
      lines.push(
        `  ${type.padEnd(12)} ${summary.requests_per_s}/s, p50 ${summary.p50_ms} ms, p99 ` +
          `${summary.p99_ms} ms, max ${summary.max_ms} ms`,
      );
    }
    lines.push(
      `  tracker: peak RSS ${row.tracker_peak_rss_mib} MiB, ${row.tracker_cpu_s} CPU s in ` +
        `${row.seconds} s (main thread ${row.tracker_main_thread_cpu_s}); idle ` +
        `${row.idle_kib_per_connection} KiB per logged-in connection (each of the second ` +
        `half: ${row.idle_kib_per_added_connection} KiB); load generator ` +
        `${row.loadgen_cpu_s} CPU s`,
      `  slowest connection's median ${row.worst_connection_p50_ms} ms, ${row.starved_connections} ` +
        `never answered, ${row.closed} closed, errors ${JSON.stringify(row.errors)}`,
    );
  }
  return lines;
}

async function main(args: string[]): Promise<number> {
  let plan: LoadPlan;
  try {
    plan = parsePlan(args);
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 2;
  }
  if (plan.help) {
    console.log(USAGE);
    return 0;
  }
  const most = Math.max(...plan.runs.map((run) => run.connections));
  const own = descriptorLimits().soft;
  if (own < most + 256) {
    console.error(
      `error: this process may open ${own} descriptors and ${most} connections need ${
        most + 256
      }: raise ulimit -n`,
    );
    return 2;
  }
  const aborting = new AbortController();
  const stop = () => aborting.abort();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
  const rows: LoadRow[] = [];
  try {
    for (const run of plan.runs) {
      if (aborting.signal.aborted) break;
      rows.push(
        await runLoad({ ...run, log: (line) => console.error(line), signal: aborting.signal }),
      );
    }
  } catch (error) {
    // stopped by a signal: the rows measured so far are printed, as when it ends a run
    if (!aborting.signal.aborted) {
      console.error(`error: ${errorMessage(error)}`);
      return 1;
    }
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
  }
  if (plan.json) console.log(JSON.stringify(rows));
  else for (const line of table(rows)) console.log(line);
  return aborting.signal.aborted ? 130 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
