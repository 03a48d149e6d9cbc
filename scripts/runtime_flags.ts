/**
 * The V8 flags both programs run with, in every launch path: deno.json tasks (which repeat
 * them, checked by tests/build_test.ts), `deno compile` (which bakes them in), and the
 * drivers of tests, demo and benchmark. A smaller young generation keeps a busy peer's
 * resident memory well under 150 MiB at no measurable cost in speed (benchmark, S3).
 *
 * @module
 */

/** Passed to `deno run` and `deno compile`. */
export const RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=4"];
