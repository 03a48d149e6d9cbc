/**
 * The trackers a load runs against, and what they cost: start K instances on one store,
 * sample their memory and CPU from /proc, stop them. One instance runs on a SQLite file or a
 * PostgreSQL database; several share one PostgreSQL database (`--db-url`, or a server of the
 * load's own), each with its own port, and the load spreads its connections over `ports`.
 *
 * @module
 */

import { isPostgresUrl } from "../../tracker/store.ts";
import { connectionCap } from "../../lib/transport.ts";
import { descriptorLimits, TrackerProcess, within } from "../processes.ts";

/** Why `--trackers K` cannot run on `db`: one line, for `error: `; undefined when it can. */
export function severalTrackersRefusal(count: number, db: string): string | undefined {
  return count > 1 && !isPostgresUrl(db)
    ? `--trackers ${count} needs the PostgreSQL store: give --db-url postgres://... or ` +
      `install PostgreSQL (apt-get install postgresql) for a server of the load's own`
    : undefined;
}

/** How the trackers are started. */
export interface TrackerSetOptions {
  count: number;
  /** The SQLite file (K = 1) or the PostgreSQL URL every instance shares. */
  dbPath: string;
  plaintext: boolean;
  /** Connections the trackers must hold between them: sets their descriptor limit. */
  connections: number;
  /** More arguments for every tracker. */
  extraArgs: string[];
  /** `deno run`'s flags for every tracker instead of the usual ones (scripts/runtime_flags.ts). */
  denoFlags?: string[];
}

/** A process's memory and CPU as /proc tells it. */
export interface ProcessUsage {
  rssMib: number;
  /** Peak resident memory since start or since `resetPeak`. */
  hwmMib: number;
  /** User and system CPU, all threads. */
  cpuS: number;
  /** CPU of the main thread alone (the JavaScript thread). */
  mainThreadCpuS: number;
}

const CLOCK_TICKS_PER_S = 100;

/** User + system CPU seconds in a /proc stat line (fields 14 and 15). */
function cpuOfStat(text: string): number {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** Memory and CPU of process `pid`; undefined once it is gone. */
export async function processUsage(pid: number): Promise<ProcessUsage | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return {
      rssMib: kib("VmRSS") / 1024,
      hwmMib: kib("VmHWM") / 1024,
      cpuS: cpuOfStat(await Deno.readTextFile(`/proc/${pid}/stat`)),
      mainThreadCpuS: cpuOfStat(await Deno.readTextFile(`/proc/${pid}/task/${pid}/stat`)),
    };
  } catch {
    return undefined;
  }
}

/**
 * Starts a new peak for `pid`'s VmHWM (Linux's `clear_refs` 5), so that the peak measured is
 * the load's, not the directory building's (scrypt alone takes 64 MiB). False when the
 * kernel or permissions do not allow it.
 */
export async function resetPeak(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** The trackers of one load, disposable with `await using`. */
export class TrackerSet implements AsyncDisposable {
  private constructor(readonly processes: TrackerProcess[], readonly descriptorLimit: number) {}

  /** The ports, one per instance; connection i goes to `ports[i % ports.length]`. */
  get ports(): number[] {
    return this.processes.map((tracker) => tracker.port);
  }

  get pids(): number[] {
    return this.processes.map((tracker) => tracker.pid);
  }

  /**
   * The `ulimit -n` a tracker needs to hold `connections` logged-in links: its listener
   * holds half its descriptors less 64 (lib/transport.ts `connectionCap`), plus room for
   * connections still being opened. Throws when the hard limit is below it.
   */
  static descriptorsFor(connections: number): number {
    const hard = descriptorLimits().hard;
    let wanted = 1024;
    while (connectionCap(`Max open files ${wanted} ${wanted}`) < connections + 256) wanted *= 2;
    if (wanted > hard) {
      // the hard limit may still be enough without the doubling's slack
      wanted = hard;
      if (connectionCap(`Max open files ${hard} ${hard}`) < connections + 256) {
        throw new Error(
          `${connections} connections need the tracker's ulimit -n above ${
            2 * (connections + 256 + 64)
          }, and the hard limit is ${hard}`,
        );
      }
    }
    return wanted;
  }

  static async start(options: TrackerSetOptions): Promise<TrackerSet> {
    const refusal = severalTrackersRefusal(options.count, options.dbPath);
    if (refusal) throw new Error(refusal);
    // connection i goes to instance i % K: each holds its share
    const descriptorLimit = TrackerSet.descriptorsFor(
      Math.ceil(options.connections / options.count),
    );
    // started together: the first start of a database makes one identity all of them present
    const started = await Promise.allSettled(
      Array.from({ length: options.count }, () =>
        TrackerProcess.start(options.dbPath, {
          descriptorLimit,
          extraArgs: [...options.plaintext ? ["--insecure-plaintext"] : [], ...options.extraArgs],
          runtimeFlags: options.denoFlags,
        })),
    );
    const processes = started.flatMap((one) => one.status === "fulfilled" ? [one.value] : []);
    const failed = started.find((one) => one.status === "rejected");
    if (failed) {
      await Promise.all(processes.map((tracker) => tracker[Symbol.asyncDispose]()));
      throw failed.reason;
    }
    return new TrackerSet(processes, descriptorLimit);
  }

  /** Usage of every instance, summed (memory: the sum of each one's figure). */
  async usage(): Promise<ProcessUsage | undefined> {
    const each = await Promise.all(this.pids.map(processUsage));
    if (each.some((usage) => usage === undefined)) return undefined;
    return (each as ProcessUsage[]).reduce((sum, usage) => ({
      rssMib: sum.rssMib + usage.rssMib,
      hwmMib: sum.hwmMib + usage.hwmMib,
      cpuS: sum.cpuS + usage.cpuS,
      mainThreadCpuS: sum.mainThreadCpuS + usage.mainThreadCpuS,
    }));
  }

  /** Starts a new peak on every instance; false if any refused. */
  async resetPeaks(): Promise<boolean> {
    return (await Promise.all(this.pids.map(resetPeak))).every(Boolean);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // SIGTERM first, so a tracker exits as it would (a --cpu-prof profile is written then)
    await Promise.all(
      this.processes.map((tracker) =>
        within(tracker.stop(), "a tracker to stop", 10_000).catch(() => {})
      ),
    );
    await Promise.all(this.processes.map((tracker) => tracker[Symbol.asyncDispose]()));
  }
}
