/**
 * The capped swarms of `deno task bench` (issue 14) and their fluid lower bounds: who takes
 * part, each client's caps, and the least time any protocol could need to bring the file to
 * every downloader under those caps. Pure arithmetic, no processes.
 *
 *   C4, C8, C16  one sharer and 4, 8, 16 downloaders starting together, every uplink equal
 *   CA           asymmetric, as at home: downloaders send at a quarter of the sharer's uplink
 *   CL           late joiners: half the downloaders start when the first half is half done
 *   C2S          two sharers, the second at a quarter of the first's uplink
 *
 * The fluid model lets every byte flow as a fluid: a client sends at most its uplink, receives
 * at most its downlink, and may forward what it received at once. Real swarms move whole
 * blocks, so they can only be slower: efficiency is the bound divided by the time the last
 * downloader completed, at most 1 (see `mostSent` for the one way a run can beat it a little).
 *
 * @module
 */

import { BUCKET_SECONDS } from "../peer/rate_limiter.ts";

const MiB = 1 << 20;

/** The capped scenarios, in the order the bench lists them. */
export const CAPPED_SCENARIOS = ["C4", "C8", "C16", "CA", "CL", "C2S"] as const;
/** One of `CAPPED_SCENARIOS`. */
export type CappedScenario = typeof CAPPED_SCENARIOS[number];

/** Whether `name` is a capped scenario. */
export function isCapped(name: string): name is CappedScenario {
  return (CAPPED_SCENARIOS as readonly string[]).includes(name);
}

/** The downloaders of CA, CL and C2S unless `--downloaders` says otherwise. */
export const DEFAULT_DOWNLOADERS = 8;

/** Who takes part in a capped swarm, and their caps in bytes per second (whole KiB/s). */
export interface CappedSwarm {
  scenario: CappedScenario;
  /** Each sharer's uplink. */
  sharerUplinks: number[];
  /** Each downloader's uplink. */
  downloaderUplink: number;
  /** Every client's downlink; undefined: none. */
  downlink?: number;
  downloaders: number;
  /** How many downloaders (the last ones) start once the others are half done: CL only. */
  lateJoiners: number;
}

/** The caps a run is asked for. */
export interface CapOptions {
  /** The full uplink (a sharer's, and every downloader's in C4-C16). Default 8 MiB/s. */
  uplinkBytesPerSecond: number;
  downlinkBytesPerSecond?: number;
  /** Downloaders of CA, CL and C2S. Default `DEFAULT_DOWNLOADERS`. */
  downloaders?: number;
}

/** A rate in whole KiB/s, at least 1, as the client's `--upload-limit-kib` takes it. */
const wholeKiB = (bytesPerSecond: number) => Math.max(1, Math.round(bytesPerSecond / 1024)) * 1024;

/**
 * The swarm of `scenario` under `options`.
 *
 * @example
 * ```ts
 * const swarm = cappedSwarm("CA", { uplinkBytesPerSecond: 8 * 2 ** 20 });
 * // one sharer at 8 MiB/s, 8 downloaders at 2 MiB/s
 * ```
 */
export function cappedSwarm(scenario: CappedScenario, options: CapOptions): CappedSwarm {
  const up = wholeKiB(options.uplinkBytesPerSecond);
  const quarter = wholeKiB(options.uplinkBytesPerSecond / 4);
  const downlink = options.downlinkBytesPerSecond === undefined
    ? undefined
    : wholeKiB(options.downlinkBytesPerSecond);
  const many = options.downloaders ?? DEFAULT_DOWNLOADERS;
  const swarm = (sharerUplinks: number[], downloaderUplink: number, downloaders: number) => ({
    scenario,
    sharerUplinks,
    downloaderUplink,
    downlink,
    downloaders,
    lateJoiners: 0,
  });
  switch (scenario) {
    case "C4":
      return swarm([up], up, 4);
    case "C8":
      return swarm([up], up, 8);
    case "C16":
      return swarm([up], up, 16);
    case "CA":
      return swarm([up], quarter, many);
    case "CL":
      if (many < 2) throw new RangeError("CL needs at least 2 downloaders");
      return { ...swarm([up], up, many), lateJoiners: Math.floor(many / 2) };
    case "C2S":
      return swarm([up, quarter], up, many);
  }
}

/** A bound worked out for one run. */
export interface Bound {
  seconds: number;
  /** The formula with the run's numbers (MiB, MiB/s, s) and each term's value. */
  worked: string;
}

const LEGEND = "S file size, N downloaders, u_s the sharer's uplink, u_d a downloader's uplink";

/**
 * The bound of a scenario as a formula, said once per scenario: symbols only, so it holds
 * for every size and cap. CL's depends on t1, the moment the late joiners started in a run.
 */
export function boundFormula(swarm: CappedSwarm): string {
  const down = swarm.downlink === undefined ? "" : ", S/d";
  if (swarm.sharerUplinks.length === 2) {
    return `max(S/(u_s1 + u_s2), N·S/(u_s1 + u_s2 + N·u_d)${down}) ` +
      `(${LEGEND}, u_s1 and u_s2 the sharers' uplinks${downLegend(swarm)})`;
  }
  if (swarm.lateJoiners > 0) {
    return `max(S/u_s, t1 + L·S/(u_s + N·u_d), ` +
      `t1 + (N·S - (u_s + (N - L)·u_d)·t1)/(u_s + N·u_d)${swarm.downlink ? ", t1 + S/d" : ""}) ` +
      `(${LEGEND}, L late joiners, t1 the moment they started${downLegend(swarm)}): ` +
      "every byte leaves the sharer once; the late joiners' L·S bytes can only be sent after " +
      "t1, by every uplink at most; of the N·S bytes all downloaders receive, at most " +
      "(u_s + (N - L)·u_d)·t1 could be sent before t1";
  }
  return `max(S/u_s, N·S/(u_s + N·u_d)${down}) (${LEGEND}${downLegend(swarm)})`;
}

const downLegend = (swarm: CappedSwarm) => swarm.downlink === undefined ? "" : ", d the downlink";

/** A number for people: at most two decimals, no trailing zeros. */
const short = (value: number) => String(Number(value.toFixed(2)));

/**
 * The fluid lower bound of one run: `sizeBytes` to every downloader of `swarm`, the late
 * joiners (if any) starting `joinSeconds` after the others.
 *
 * Each term is a time no schedule can beat: the file leaves the sharers at least once
 * (S/u_s); the downloaders receive N·S bytes in all, which every uplink together sends at
 * most at u_s + N·u_d (before t1 without the late joiners' uplinks: they have nothing yet to
 * send, and are not there); the late joiners' bytes all flow after t1; a downloader receives
 * at most at its downlink.
 */
export function fluidBound(swarm: CappedSwarm, sizeBytes: number, joinSeconds = 0): Bound {
  const size = sizeBytes / MiB;
  const sharers = swarm.sharerUplinks.map((rate) => rate / MiB);
  const sharing = sharers.reduce((sum, rate) => sum + rate, 0);
  const peer = swarm.downloaderUplink / MiB;
  const n = swarm.downloaders;
  const late = swarm.lateJoiners;
  const t1 = late > 0 ? joinSeconds : 0;
  const all = sharing + n * peer;
  const sharersText = sharers.length === 1 ? short(sharing) : `(${sharers.map(short).join(" + ")})`;
  const allText = `${sharers.map(short).join(" + ")} + ${n}·${short(peer)}`;
  const terms: [string, number][] = [[`${short(size)}/${sharersText}`, size / sharing]];
  if (late > 0) {
    const early = sharing + (n - late) * peer;
    terms.push([`${short(t1)} + ${late}·${short(size)}/(${allText})`, t1 + (late * size) / all]);
    terms.push([
      `${short(t1)} + (${n}·${short(size)} - (${sharers.map(short).join(" + ")} + ${n - late}·${
        short(peer)
      })·${short(t1)})/(${allText})`,
      t1 + (n * size - early * t1) / all,
    ]);
  } else {
    terms.push([`${n}·${short(size)}/(${allText})`, (n * size) / all]);
  }
  if (swarm.downlink !== undefined) {
    const down = swarm.downlink / MiB;
    terms.push([
      `${t1 > 0 ? `${short(t1)} + ` : ""}${short(size)}/${short(down)}`,
      t1 + size / down,
    ]);
  }
  const seconds = Math.max(...terms.map(([, value]) => value));
  const worked = `max(${terms.map(([text]) => text).join(", ")}) = max(${
    terms.map(([, value]) => value.toFixed(2)).join(", ")
  }) = ${seconds.toFixed(2)} s`;
  return { seconds, worked };
}

/**
 * The most a client capped at `bytesPerSecond` may have sent in `seconds`, with a margin: the
 * limiter's bucket starts full and holds `BUCKET_SECONDS` worth (peer/rate_limiter.ts), so a
 * client may send that much beyond its rate. A run can beat its bound by that burst (at most
 * 3% at 64 MiB and 8 MiB/s), which is why an efficiency a little above 1 is not an error.
 * Above this, the cap did not hold.
 */
export function mostSent(bytesPerSecond: number, seconds: number): number {
  return bytesPerSecond * (seconds + BUCKET_SECONDS) * 1.05;
}
