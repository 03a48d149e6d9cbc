/**
 * Runs every property of tests/properties.ts for a few hundred cases with a fixed seed, so
 * `deno test` stays deterministic and takes seconds; `deno task fuzz` runs the same ones for
 * millions. A failure names the seed and path that replay it:
 * `deno task fuzz --only NAME --seed=SEED --path PATH`. `FUZZ_SEED` picks another seed.
 */

import fc from "fast-check";
import { PROPERTIES } from "./properties.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20_261_213);
const DEFAULT_RUNS = 500;

Deno.test(`properties of every decoder and parser (seed ${SEED})`, async (t) => {
  for (const property of PROPERTIES) {
    await t.step(`${property.name}: ${property.claim}`, async () => {
      await fc.assert(await property.build(), {
        seed: SEED,
        numRuns: property.testRuns ?? DEFAULT_RUNS,
      });
    });
  }
});
