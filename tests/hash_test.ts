/**
 * Unit tests of lib/hash.ts and its helper thread: the streaming per-piece and whole-file
 * SHA-1 against one-shot node:crypto digests of the same bytes, at every piece boundary, with
 * the main thread alone, with a helper, and with a helper that dies midway.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UserError } from "../lib/errors.ts";
import { within } from "../scripts/processes.ts";
import {
  type FileHashes,
  hashFile,
  type HashingSetup,
  hashInJob,
  hashOpenFile,
  HELPER_MIN_PIECES,
  HelperThread,
  sha1,
  startHelper,
} from "../lib/hash.ts";
import { type FileIdentity, HashJob, PieceReader, residentPieceBuffer } from "../lib/hash_job.ts";
import { PIECE_LENGTH } from "../lib/pieces.ts";

/** Deterministic pseudo-random bytes (xorshift32, a word at a time), different per seed. */
function randomBytes(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

const oneShot = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest();

const HELPER = new URL("../lib/hash_worker.ts", import.meta.url);
/** Helpers that fail on purpose: tests/fixtures/hash_helper_that_fails.ts. */
const failingHelper = (after: "start" | "claimed" | "claimed, stuck") =>
  new URL(
    `./fixtures/hash_helper_that_fails.ts?after=${encodeURIComponent(after)}`,
    import.meta.url,
  );

/** What the helper compares with the file it opens (tests build jobs by hand). */
async function identityOf(path: string): Promise<FileIdentity> {
  const { dev, ino } = await Deno.stat(path);
  return { dev, ino: ino! };
}

/** A test waits this long at most for another thread before failing instead of hanging. */
const THREAD_LIMIT_MS = 30_000;

/**
 * A job on the file at `path` with helper `module` started on it, both stopped when the
 * block holding them ends. By default the job covers the file's own length and identity.
 */
async function jobWithHelper(
  path: string,
  module: URL,
  { length, identity }: { length?: number; identity?: FileIdentity } = {},
) {
  const job = HashJob.create(
    path,
    length ?? (await Deno.stat(path)).size,
    identity ?? await identityOf(path),
  );
  const helper = startHelper(job, module);
  assert.ok(helper);
  return {
    job,
    helper,
    [Symbol.dispose]() {
      job.stop();
      helper.release();
    },
  };
}

/** A reader of the `length`-byte file open as `file`, with a buffer of its own. */
const readerOf = (file: Deno.FsFile, length: number) =>
  new PieceReader(file, length, new Uint8Array(PIECE_LENGTH));

/** Asserts that `hashes` are those of `bytes`, piece by piece and whole. */
function assertHashesOf(hashes: FileHashes, bytes: Uint8Array): void {
  assert.equal(hashes.length, bytes.length);
  const count = Math.ceil(bytes.length / PIECE_LENGTH);
  assert.equal(hashes.pieceHashes.length, count * 20);
  for (let index = 0; index < count; index++) {
    const piece = bytes.subarray(index * PIECE_LENGTH, (index + 1) * PIECE_LENGTH);
    assert.deepEqual(
      hashes.pieceHashes.subarray(index * 20, index * 20 + 20),
      new Uint8Array(oneShot(piece)),
      `piece ${index} of ${count}`,
    );
  }
  assert.equal(hashes.sha1, oneShot(bytes).toString("hex"));
  assert.match(hashes.sha1, /^[0-9a-f]{40}$/);
}

Deno.test("sha1 of known inputs", async (t) => {
  await t.step("empty", () => {
    assert.equal(sha1(new Uint8Array(0)).toHex(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });
  await t.step('"abc" (FIPS 180 test vector)', () => {
    assert.equal(
      sha1(new TextEncoder().encode("abc")).toHex(),
      "a9993e364706816aba3e25717850c26c9cd0d89d",
    );
  });
  await t.step("returns 20 bytes", () => {
    assert.equal(sha1(randomBytes(1000, 3)).length, 20);
  });
});

Deno.test("hashFile equals one-shot SHA-1 of the same bytes", async (t) => {
  const sizes: [string, number][] = [
    ["0 bytes", 0],
    ["1 byte", 1],
    ["524287 bytes (a piece less one)", PIECE_LENGTH - 1],
    ["524288 bytes (one piece)", PIECE_LENGTH],
    ["524289 bytes (a piece and one)", PIECE_LENGTH + 1],
    ["2.5 pieces", 2 * PIECE_LENGTH + PIECE_LENGTH / 2],
    ["9 pieces and 3 bytes", 9 * PIECE_LENGTH + 3],
    ["40 pieces", 40 * PIECE_LENGTH],
  ];
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  try {
    for (const [name, size] of sizes) {
      await t.step(name, async () => {
        const bytes = randomBytes(size, size + 1);
        const path = join(dir, `file-${size}`);
        await Deno.writeFile(path, bytes);
        assertHashesOf(await hashFile(path), bytes);
        assertHashesOf(await hashFile(path, { helper: null }), bytes);
        assertHashesOf(await hashFile(path, { helper: HELPER }), bytes);
      });
    }

    await t.step(`${HELPER_MIN_PIECES + 3} pieces: a helper by default`, async () => {
      const bytes = randomBytes((HELPER_MIN_PIECES + 3) * PIECE_LENGTH - 7, 11);
      const path = join(dir, "large");
      await Deno.writeFile(path, bytes);
      assertHashesOf(await hashFile(path), bytes);
      // the main thread is alone when the helper gives up at once
      assertHashesOf(await hashFile(path, { helper: failingHelper("start") }), bytes);
      // or cannot start at all
      const missing = new URL("./fixtures/no_such_helper.ts", import.meta.url);
      assertHashesOf(await hashFile(path, { helper: missing }), bytes);
    });

    await t.step("a helper never mixes in a file put in place of the one opened", async () => {
      const bytes = randomBytes(12 * PIECE_LENGTH, 12);
      const path = join(dir, "replaced");
      await Deno.writeFile(path, bytes);
      using file = await Deno.open(path);
      const identity = await identityOf(path);
      // same size, other bytes, renamed over the path before the helper opens it
      const other = join(dir, "other");
      await Deno.writeFile(other, randomBytes(bytes.length, 13));
      await Deno.rename(other, path);
      using started = await jobWithHelper(path, HELPER, { identity });
      const { job, helper } = started;
      await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
      assert.equal(job.claimed, 0);
      assertHashesOf(await hashInJob(readerOf(file, bytes.length), job, helper), bytes);
    });

    await t.step("a named pipe is refused without waiting for a writer", async () => {
      const fifo = join(dir, "fifo");
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(made.success, "mkfifo");
      await assert.rejects(within(hashFile(fifo), "hashFile of a fifo"), /not a regular file/);
    });

    await t.step("files differing in one byte of the last piece hash differently", async () => {
      const bytes = randomBytes(PIECE_LENGTH + 10, 99);
      const a = join(dir, "a");
      const b = join(dir, "b");
      await Deno.writeFile(a, bytes);
      bytes[bytes.length - 1] ^= 1;
      await Deno.writeFile(b, bytes);
      const [ha, hb] = [await hashFile(a), await hashFile(b)];
      assert.deepEqual(ha.pieceHashes.subarray(0, 20), hb.pieceHashes.subarray(0, 20));
      assert.notDeepEqual(ha.pieceHashes.subarray(20), hb.pieceHashes.subarray(20));
      assert.notEqual(ha.sha1, hb.sha1);
    });

    await t.step("an aborted signal stops hashing", async () => {
      const path = join(dir, "aborted");
      await Deno.writeFile(path, randomBytes(2 * PIECE_LENGTH, 5));
      const controller = new AbortController();
      controller.abort(new UserError("stop"));
      await assert.rejects(hashFile(path, { signal: controller.signal }), /stop/);
    });

    await t.step("an abort after the call stops even a short hashing", async () => {
      const path = join(dir, "short");
      await Deno.writeFile(path, randomBytes(PIECE_LENGTH / 4, 6));
      const controller = new AbortController();
      const hashing = hashFile(path, { signal: controller.signal });
      controller.abort(new UserError("stopped midway"));
      await assert.rejects(hashing, /stopped midway/);
    });

    await t.step("a file shorter than announced is an error (main thread reading)", async () => {
      const path = join(dir, "shrunk");
      await Deno.writeFile(path, randomBytes(3 * PIECE_LENGTH, 8));
      using file = await Deno.open(path);
      // as if it shrank after the stat
      const shrunk = { ...await file.stat(), size: 20 * PIECE_LENGTH };
      const hashing = hashOpenFile(file, path, shrunk, { helper: null });
      await assert.rejects(hashing, (error) => {
        assert.ok(error instanceof UserError);
        assert.match(error.message, /shrank/);
        return true;
      });
    });

    await t.step("a directory is refused", async () => {
      await assert.rejects(hashFile(dir), /not a regular file/);
    });

    await t.step("a missing file is refused", async () => {
      await assert.rejects(hashFile(join(dir, "missing")));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Does only what the main thread must, the whole-file hash, so that every piece hash is left
 * to the helper on `job`; fails if the helper does not do them in time.
 */
async function hashBesideHelperAlone(job: HashJob): Promise<FileHashes> {
  const deadline = Date.now() + THREAD_LIMIT_MS;
  const whole = createHash("sha1");
  {
    using file = await Deno.open(job.memory.path);
    const reader = readerOf(file, job.memory.length);
    for (let index = 0; index < job.count; index++) whole.update(reader.read(index));
  }
  for (let index = 0; index < job.count;) {
    const epoch = job.epoch;
    if (job.isHashed(index)) index++;
    else {
      assert.ok(Date.now() < deadline, `the helper did not hash piece ${index}`);
      await job.changed(epoch, 1000);
    }
  }
  assert.equal(job.claimed, job.count);
  return { length: job.memory.length, pieceHashes: job.digests(), sha1: whole.digest("hex") };
}

Deno.test("the helper alone hashes every piece", async () => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  const bytes = randomBytes(20 * PIECE_LENGTH + 5, 21);
  const path = join(dir, "file");
  await Deno.writeFile(path, bytes);
  const job = HashJob.create(path, bytes.length, await identityOf(path));
  const helper = new Worker(HELPER.href, { type: "module" });
  try {
    helper.postMessage(job.memory);
    assertHashesOf(await hashBesideHelperAlone(job), bytes);
    // every change was one claim or one hash: no piece was hashed twice
    assert.equal(job.epoch, 2 * job.count);
  } finally {
    job.stop();
    helper.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The main thread's part of the file at `path` (holding `bytes`), which the kept `thread` was
 * lent for as `lent`; then the end of the loan.
 */
async function finishLoan(
  thread: HelperThread,
  lent: Required<HashingSetup>,
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  using file = await Deno.open(path);
  const reader = new PieceReader(file, bytes.length, lent.buffer);
  const hashing = hashInJob(reader, lent.job, lent.helper);
  assertHashesOf(await within(hashing, "hashing", THREAD_LIMIT_MS), bytes);
  lent.helper.release();
  await within(thread.whenFree(), "the file to be over", THREAD_LIMIT_MS);
}

Deno.test("a kept helper thread", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  try {
    await t.step("works on one file after another, by itself", async () => {
      using thread = new HelperThread(HELPER);
      const buffers = new Set<Uint8Array>();
      for (const [pieces, seed] of [[20, 31], [3, 32], [11, 33]]) {
        const bytes = randomBytes(pieces * PIECE_LENGTH - seed, seed);
        const path = join(dir, `file-${seed}`);
        await Deno.writeFile(path, bytes);
        const identity = await identityOf(path);
        assert.ok(thread.isFree);
        const lent = thread.lend(path, bytes.length, identity);
        assert.ok(lent);
        assert.equal(thread.lend(path, bytes.length, identity), undefined, "one file at a time");
        // the main thread's part of each file goes through the same kept buffer
        buffers.add(lent.buffer);
        assertHashesOf(await hashBesideHelperAlone(lent.job), bytes);
        lent.job.stop();
        lent.helper.release();
        await within(thread.whenFree(), "the thread to leave the file", THREAD_LIMIT_MS);
      }
      assert.equal(buffers.size, 1);
    });

    await t.step("is used by hashFile when it is free", async () => {
      using thread = new HelperThread(HELPER);
      const bytes = randomBytes((HELPER_MIN_PIECES + 2) * PIECE_LENGTH, 34);
      const path = join(dir, "big");
      await Deno.writeFile(path, bytes);
      for (let round = 1; round <= 2; round++) {
        assertHashesOf(await hashFile(path, { helperThread: thread }), bytes);
        assert.equal(thread.filesTaken, round);
        await within(thread.whenFree(), "the thread to leave the file", THREAD_LIMIT_MS);
      }
      // told to use no helper
      assertHashesOf(await hashFile(path, { helperThread: thread, helper: null }), bytes);
      assert.equal(thread.filesTaken, 2);
      // too small to be worth starting a helper for, but the kept one costs nothing
      const small = join(dir, "small");
      await Deno.writeFile(small, bytes.subarray(0, 3 * PIECE_LENGTH));
      assertHashesOf(
        await hashFile(small, { helperThread: thread }),
        bytes.subarray(0, 3 * PIECE_LENGTH),
      );
      assert.equal(thread.filesTaken, 3);
    });

    await t.step(
      "that gives up on a file leaves it to the main thread, and takes the next",
      async () => {
        using thread = new HelperThread(failingHelper("claimed"));
        const bytes = randomBytes((HELPER_MIN_PIECES + 1) * PIECE_LENGTH + 9, 35);
        const path = join(dir, "given-up");
        await Deno.writeFile(path, bytes);
        const identity = await identityOf(path);
        for (let round = 0; round < 2; round++) {
          assert.ok(thread.isFree, `free for round ${round}`);
          const lent = thread.lend(path, bytes.length, identity);
          assert.ok(lent);
          // it claims the first piece and gives up on it
          await within(lent.helper.failed, "the helper to give up", THREAD_LIMIT_MS);
          assert.equal(lent.job.claimed, 1);
          await finishLoan(thread, lent, path, bytes);
        }
      },
    );

    await t.step("that cannot start leaves hashFile to start one of its own", async () => {
      using thread = new HelperThread(new URL("./fixtures/no_such_helper.ts", import.meta.url));
      const bytes = randomBytes((HELPER_MIN_PIECES + 1) * PIECE_LENGTH, 36);
      const path = join(dir, "unstarted");
      await Deno.writeFile(path, bytes);
      assertHashesOf(await hashFile(path, { helperThread: thread }), bytes);
      await within(thread.whenFree(), "the thread to be found dead", THREAD_LIMIT_MS);
      assert.equal(thread.isFree, false, "a thread that failed to start takes no more files");
      assertHashesOf(await hashFile(path, { helperThread: thread }), bytes);
    });

    await t.step("disposed while at work, leaves the file to the main thread", async () => {
      const thread = new HelperThread(HELPER);
      const bytes = randomBytes(12 * PIECE_LENGTH + 1, 37);
      const path = join(dir, "disposed");
      await Deno.writeFile(path, bytes);
      const identity = await identityOf(path);
      const lent = thread.lend(path, bytes.length, identity);
      assert.ok(lent);
      thread[Symbol.dispose]();
      assert.equal(thread.isFree, false);
      assert.equal(thread.lend(path, bytes.length, identity), undefined);
      await within(lent.helper.failed, "the helper to be let go", THREAD_LIMIT_MS);
      await finishLoan(thread, lent, path, bytes);
    });

    await t.step("is not lent again before the main thread is off the file", async () => {
      using thread = new HelperThread(HELPER);
      const bytes = randomBytes(3 * PIECE_LENGTH, 38);
      const path = join(dir, "main-part");
      await Deno.writeFile(path, bytes);
      const identity = await identityOf(path);
      const lent = thread.lend(path, bytes.length, identity);
      assert.ok(lent);
      // the helper hashes every piece and leaves; the main thread's buffer is still in use
      assertHashesOf(await hashBesideHelperAlone(lent.job), bytes);
      await within(lent.helper.left, "the helper to leave", THREAD_LIMIT_MS);
      assert.equal(thread.isFree, false);
      assert.equal(thread.lend(path, bytes.length, identity), undefined);
      lent.helper.release();
      await within(thread.whenFree(), "the file to be over", THREAD_LIMIT_MS);
      assert.ok(thread.isFree);
    });

    await t.step("after disposal takes no file", () => {
      const thread = new HelperThread(HELPER);
      thread[Symbol.dispose]();
      assert.equal(thread.isFree, false);
      assert.equal(thread.lend(join(dir, "none"), 1, { dev: 0, ino: 0 }), undefined);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the main thread hashes what its helper left", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  const bytes = randomBytes(12 * PIECE_LENGTH + 5, 31);
  const path = join(dir, "file");
  await Deno.writeFile(path, bytes);
  try {
    await t.step("a piece it claimed and gave up", async () => {
      using started = await jobWithHelper(path, failingHelper("claimed"));
      const { job, helper } = started;
      using file = await Deno.open(path);
      await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
      // piece 0 is claimed and not hashed: the main thread cannot finish without it
      assert.equal(job.claimed, 1);
      assert.ok(!job.isHashed(0));
      const hashing = hashInJob(readerOf(file, bytes.length), job, helper);
      assertHashesOf(await within(hashing, "hashing", THREAD_LIMIT_MS), bytes);
    });

    await t.step("the helper read past the end: the main thread says the file shrank", async () => {
      // the real helper, on a job of 5 pieces over a 3-piece file: it hashes all it can
      // claim and gives up on piece 3; the main thread reads as far and fails the same way
      const short = join(dir, "short");
      await Deno.writeFile(short, bytes.subarray(0, 3 * PIECE_LENGTH));
      using started = await jobWithHelper(short, HELPER, { length: 5 * PIECE_LENGTH });
      const { job, helper } = started;
      using file = await Deno.open(short);
      await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
      assert.equal(job.claimed, 4);
      assert.deepEqual([0, 1, 2, 3].map((index) => job.isHashed(index)), [true, true, true, false]);
      await assert.rejects(
        within(
          hashInJob(readerOf(file, 5 * PIECE_LENGTH), job, helper),
          "hashing",
          THREAD_LIMIT_MS,
        ),
        (error) => error instanceof UserError && /shrank/.test(error.message),
      );
    });

    /** A job on a one-piece file whose helper has claimed the piece and will never hash it. */
    const stuckHelper = async () => {
      const onePiece = join(dir, "one-piece");
      await Deno.writeFile(onePiece, bytes.subarray(0, PIECE_LENGTH));
      const started = await jobWithHelper(onePiece, failingHelper("claimed, stuck"));
      const { job } = started;
      for (let epoch = job.epoch; job.claimed === 0; epoch = job.epoch) {
        await within(job.changed(epoch, 1000), "the helper's claim", THREAD_LIMIT_MS);
      }
      const file = await Deno.open(onePiece);
      return {
        ...started,
        reader: readerOf(file, PIECE_LENGTH),
        [Symbol.dispose]() {
          file.close();
          started[Symbol.dispose]();
        },
      };
    };

    await t.step("a piece claimed by a helper that hashes nothing any more", async () => {
      using stuck = await stuckHelper();
      // the main thread reads the piece, finds it claimed, waits, and hashes it itself
      const hashing = hashInJob(stuck.reader, stuck.job, stuck.helper);
      assertHashesOf(
        await within(hashing, "hashing", THREAD_LIMIT_MS),
        bytes.subarray(0, PIECE_LENGTH),
      );
    });

    await t.step("an abort while waiting for the helper ends the hashing", async () => {
      using stuck = await stuckHelper();
      const controller = new AbortController();
      const hashing = hashInJob(stuck.reader, stuck.job, stuck.helper, controller.signal);
      controller.abort(new UserError("given up"));
      await assert.rejects(within(hashing, "the abort", THREAD_LIMIT_MS), /given up/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceReader", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  const bytes = randomBytes(3 * PIECE_LENGTH + 100, 41);
  const path = join(dir, "file");
  await Deno.writeFile(path, bytes);
  const pieceOf = (index: number) =>
    bytes.subarray(index * PIECE_LENGTH, Math.min(bytes.length, (index + 1) * PIECE_LENGTH));
  try {
    await t.step("reads pieces in order, out of order and again, into its buffer", async () => {
      using file = await Deno.open(path);
      const buffer = residentPieceBuffer();
      const reader = new PieceReader(file, bytes.length, buffer);
      for (const index of [0, 1, 3, 2, 0, 0, 3]) {
        const piece = reader.read(index);
        assert.deepEqual(piece, pieceOf(index), `piece ${index}`);
        assert.equal(piece.buffer, buffer.buffer);
      }
      assert.equal(reader.read(3).length, 100, "the last piece is cut to its size");
    });

    await t.step("says the file shrank when a piece ends early", async () => {
      using file = await Deno.open(path);
      const reader = new PieceReader(file, bytes.length + PIECE_LENGTH, residentPieceBuffer());
      assert.deepEqual(reader.read(2), pieceOf(2));
      assert.throws(
        () => reader.read(3),
        (error) => error instanceof UserError && /shrank/.test(error.message),
      );
      // and reads on where it is asked to after that
      assert.deepEqual(reader.read(1), pieceOf(1));
    });

    await t.step("refuses a buffer shorter than a piece of the file", async () => {
      using file = await Deno.open(path);
      assert.throws(() => new PieceReader(file, bytes.length, new Uint8Array(1000)), RangeError);
      // a file shorter than a piece needs only its own length
      assert.ok(new PieceReader(file, 1000, new Uint8Array(1000)));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("residentPieceBuffer is a piece of zeros", () => {
  const buffer = residentPieceBuffer();
  assert.equal(buffer.length, PIECE_LENGTH);
  assert.ok(buffer.every((byte) => byte === 0));
});

Deno.test("HashJob hands out each piece hash once, in order", () => {
  const job = HashJob.create("unused", 3 * PIECE_LENGTH + 1);
  assert.equal(job.count, 4);
  assert.ok(!job.claim(1), "not before piece 0");
  assert.ok(job.claim(0));
  assert.ok(!job.claim(0), "not twice");
  assert.equal(job.claimNext(), 1);
  assert.ok(job.claim(2));
  assert.equal(job.claimNext(), 3);
  assert.equal(job.claimNext(), -1);
  assert.ok(!job.claim(4), "not past the end");
  assert.equal(job.claimed, 4);
  assert.equal(job.epoch, 4, "one change per claim");

  const piece = randomBytes(PIECE_LENGTH, 9);
  assert.ok(!job.isHashed(2));
  job.hashPiece(2, piece);
  assert.ok(job.isHashed(2) && !job.isHashed(1));
  assert.deepEqual(job.digests().subarray(40, 60), new Uint8Array(oneShot(piece)));
  assert.equal(job.epoch, 5);
  assert.ok(!job.isStopped);
  job.stop();
  assert.ok(job.isStopped);
  assert.equal(job.epoch, 6);
});

Deno.test("HashJob of an empty file has nothing to claim", () => {
  const job = HashJob.create("unused", 0);
  assert.equal(job.count, 0);
  assert.equal(job.claimNext(), -1);
  assert.equal(job.digests().length, 0);
});

Deno.test("hashInJob beside a helper hashes every piece once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  try {
    const bytes = randomBytes(40 * PIECE_LENGTH + 17, 51);
    const path = join(dir, "file");
    await Deno.writeFile(path, bytes);
    using started = await jobWithHelper(path, HELPER);
    const { job, helper } = started;
    using file = await Deno.open(path);
    const hashing = hashInJob(readerOf(file, bytes.length), job, helper);
    assertHashesOf(await within(hashing, "hashing", THREAD_LIMIT_MS), bytes);
    assert.equal(job.epoch, 2 * job.count, "one claim and one hash per piece");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
