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

/** Passed to `deno run` and `deno compile` for the client (and `deno task dev`). */
export const RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=4,--optimize-for-size"];

/**
 * The tracker's flags: the same small young generation, without `--optimize-for-size`. A
 * tracker allocates little per request but holds thousands of connections' objects; with
 * `--optimize-for-size` V8 collected its old generation so often that the collector took
 * half its CPU (2026-12-04, 5,000 links in closed loop, `deno task loadtest
 * --tracker-deno-flags`: 259-285 CPU us a request with it, 110-133 without; semi-space 8 or
 * 16 MiB no better than 4). The price is a larger peak under full load (about 560 MiB at
 * 5,000 busy links, against 330), not idle memory (36-38 KiB a connection either way).
 */
export const TRACKER_RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=4"];
