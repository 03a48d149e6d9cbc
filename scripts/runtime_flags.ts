/**
 * The V8 flags both programs run with, in every launch path: deno.json tasks (which repeat
 * them, checked by tests/build_test.ts), `deno compile` (which bakes them in), and the
 * drivers of tests, demo and benchmark. A smaller young generation keeps a busy peer's
 * resident memory well under 150 MiB at no measurable cost in speed (benchmark, S3).
 * `--optimize-for-size` makes V8 grow the heap more slowly between collections: without it a
 * downloader's peak crept up with the length of the download (S3, 256 MiB / 1 GiB / 2 GiB:
 * 105 / 116 / 120 MiB; with it 101 / 103 / 106). Over five interleaved rounds at 1 GiB it
 * made S2 ~9% slower while piece buffers were transferred between threads (S1 and S3: no
 * difference beyond run-to-run noise); since they are shared slots (peer/piece_slots.ts), two
 * more rounds showed no clear difference in S2 either, nor two rounds of S3 at 256 MiB
 * (2026-12-02: medians 3.04 / 3.44 s with it, 3.38 / 3.41 s without).
 *
 * @module
 */

/** Passed to `deno run` and `deno compile`. */
export const RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=4,--optimize-for-size"];
