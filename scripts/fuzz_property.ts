/**
 * Runs one property of tests/properties.ts for `deno task fuzz`, in a process of its own so
 * that a case that crashes, hangs or eats memory takes down only this run and the parent
 * (scripts/fuzz.ts) can say which batch did it. Speaks one JSON object per line on stdout:
 *
 * - `{"event":"batch","seed":S,"size":N,"done":D}` before each batch of N cases (seed S);
 * - `{"event":"failed",...}` with fast-check's shrunk counterexample, seed and path;
 * - `{"event":"done","cases":D,"ms":T}` when the budget is spent without a failure.
 *
 * Usage: fuzz_property.ts NAME SEED CASES SECONDS BATCH [PATH]. BATCH is the cases per batch,
 * 0 to size batches to about a second each; with PATH it replays that one counterexample
 * (seed and path as a failure reported them).
 *
 * @module
 */

import fc from "fast-check";
import { PROPERTIES } from "../tests/properties.ts";

/** What a failed run reports. */
export interface FuzzFailure {
  event: "failed";
  seed: number;
  path: string;
  /** Cases run before this batch, plus the batch's until the failure. */
  cases: number;
  shrinks: number;
  counterexample: string;
  error: string;
}

/** A line of this program's output. */
export type FuzzEvent =
  | { event: "batch"; seed: number; size: number; done: number }
  | FuzzFailure
  | { event: "done"; cases: number; ms: number }
  | { event: "replayed"; failed: boolean };

/** Batches aim at about this long, so the parent hears often and a hang is found soon. */
const BATCH_TARGET_MS = 1000;
const LONGEST_COUNTEREXAMPLE = 4000;

function say(event: FuzzEvent): void {
  console.log(JSON.stringify(event));
}

function failureOf(details: fc.RunDetails<unknown[]>, seed: number, before: number): FuzzFailure {
  const shown = fc.stringify(details.counterexample);
  const error = details.errorInstance;
  return {
    event: "failed",
    seed,
    path: details.counterexamplePath ?? "",
    cases: before + details.numRuns,
    shrinks: details.numShrinks,
    counterexample: shown.length > LONGEST_COUNTEREXAMPLE
      ? `${shown.slice(0, LONGEST_COUNTEREXAMPLE)}... (${shown.length} characters)`
      : shown,
    error: error instanceof Error ? (error.stack ?? String(error)) : String(error),
  };
}

async function main(args: string[]): Promise<number> {
  const [name, seedText, casesText, secondsText, batchText, path] = args;
  const named = PROPERTIES.find((property) => property.name === name);
  if (!named) {
    console.error(`no property named "${name}"`);
    return 2;
  }
  const property = await named.build();
  const seed = Number(seedText) | 0;
  if (path !== undefined) {
    const details = await fc.check(property, { seed, path, endOnFailure: true });
    if (details.failed) say(failureOf(details, seed, 0));
    say({ event: "replayed", failed: details.failed });
    return 0;
  }
  const cases = Number(casesText);
  const fixedBatch = Number(batchText);
  const deadline = performance.now() + Number(secondsText) * 1000;
  const started = performance.now();
  let done = 0;
  let size = fixedBatch || 10;
  for (let batch = 0; done < cases && performance.now() < deadline; batch++) {
    const batchSeed = (seed + batch) | 0;
    size = Math.max(1, Math.min(size, cases - done));
    say({ event: "batch", seed: batchSeed, size, done });
    const batchStarted = performance.now();
    const details = await fc.check(property, { seed: batchSeed, numRuns: size });
    if (details.failed) {
      say(failureOf(details, batchSeed, done));
      return 1;
    }
    done += details.numRuns;
    const msPerCase = Math.max(performance.now() - batchStarted, 1) / Math.max(size, 1);
    const left = Math.max(deadline - performance.now(), 0);
    if (fixedBatch) continue;
    size = Math.round(Math.min(BATCH_TARGET_MS, left) / msPerCase);
    size = Math.min(Math.max(size, 1), 2 * details.numRuns + 10, 1_000_000);
  }
  say({ event: "done", cases: done, ms: Math.round(performance.now() - started) });
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
