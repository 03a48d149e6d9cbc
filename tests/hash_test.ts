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
  hashInRing,
  hashOpenFile,
  HELPER_MIN_PIECES,
  HelperThread,
  sha1,
  startHelper,
} from "../lib/hash.ts";
import { type FileIdentity, HashRing } from "../lib/hash_ring.ts";
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
const failingHelper = (after: "start" | "claimed read" | "claimed hash" | "claimed read, stuck") =>
  new URL(
    `./fixtures/hash_helper_that_fails.ts?after=${encodeURIComponent(after)}`,
    import.meta.url,
  );

/** What the helper compares with the file it opens (tests build rings by hand). */
async function identityOf(path: string): Promise<FileIdentity> {
  const { dev, ino } = await Deno.stat(path);
  return { dev, ino: ino! };
}

/** A test waits this long at most for another thread before failing instead of hanging. */
const THREAD_LIMIT_MS = 30_000;

/**
 * A ring on the file at `path` with helper `module` started on it, both stopped when the
 * block holding them ends. By default the ring covers the file's own length and identity.
 */
async function ringWithHelper(
  path: string,
  module: URL,
  { length, identity }: { length?: number; identity?: FileIdentity } = {},
) {
  const ring = HashRing.create(
    path,
    length ?? (await Deno.stat(path)).size,
    identity ?? await identityOf(path),
  );
  const helper = startHelper(ring, module);
  assert.ok(helper);
  return {
    ring,
    helper,
    [Symbol.dispose]() {
      ring.stop();
      helper.release();
    },
  };
}

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
    ["9 pieces and 3 bytes (more pieces than buffers)", 9 * PIECE_LENGTH + 3],
    ["40 pieces (the ring wraps five times)", 40 * PIECE_LENGTH],
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
      using job = await ringWithHelper(path, HELPER, { identity });
      const { ring, helper } = job;
      await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
      assert.deepEqual(ring.claims, { reads: 0, hashes: 0 });
      assertHashesOf(await hashInRing(file, ring, helper), bytes);
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
 * Does only what the main thread must, the whole-file hash, so that every read and piece hash
 * is left to the helper on `ring`; fails if the helper does not do them in time.
 */
async function hashBesideHelperAlone(ring: HashRing): Promise<FileHashes> {
  const deadline = Date.now() + THREAD_LIMIT_MS;
  const whole = createHash("sha1");
  for (let next = 0; next < ring.count;) {
    const epoch = ring.epoch;
    if (ring.isRead(next)) {
      whole.update(ring.piece(next));
      ring.markWholeDone(next++);
    } else {
      assert.ok(Date.now() < deadline, `the helper did not read piece ${next}`);
      await ring.changed(epoch, 1000);
    }
  }
  for (let index = Math.max(0, ring.count - ring.slotCount); index < ring.count;) {
    const epoch = ring.epoch;
    if (ring.isHashed(index)) index++;
    else {
      assert.ok(Date.now() < deadline, `the helper did not hash piece ${index}`);
      await ring.changed(epoch, 1000);
    }
  }
  assert.ok(ring.isAllClaimed);
  return { length: ring.memory.length, pieceHashes: ring.digests(), sha1: whole.digest("hex") };
}

Deno.test("the helper alone reads and hashes every piece", async () => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  const bytes = randomBytes(20 * PIECE_LENGTH + 5, 21);
  const path = join(dir, "file");
  await Deno.writeFile(path, bytes);
  const ring = HashRing.create(path, bytes.length, await identityOf(path));
  const helper = new Worker(HELPER.href, { type: "module" });
  try {
    helper.postMessage(ring.memory);
    assertHashesOf(await hashBesideHelperAlone(ring), bytes);
  } finally {
    ring.stop();
    helper.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a kept helper thread", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  try {
    await t.step("works on one file after another, by itself", async () => {
      using thread = new HelperThread(HELPER);
      const rings = new Set<SharedArrayBuffer>();
      for (const [pieces, seed] of [[20, 31], [3, 32], [11, 33]]) {
        const bytes = randomBytes(pieces * PIECE_LENGTH - seed, seed);
        const path = join(dir, `file-${seed}`);
        await Deno.writeFile(path, bytes);
        const identity = await identityOf(path);
        assert.ok(thread.isFree);
        const lent = thread.lend(path, bytes.length, identity);
        assert.ok(lent);
        assert.equal(thread.lend(path, bytes.length, identity), undefined, "one file at a time");
        // each file in the memory the one before used, a larger file before a smaller one
        rings.add(lent.ring.memory.ring);
        assertHashesOf(await hashBesideHelperAlone(lent.ring), bytes);
        lent.ring.stop();
        lent.helper.release();
        await within(thread.whenFree(), "the thread to leave the file", THREAD_LIMIT_MS);
      }
      assert.equal(rings.size, 1);
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
        using thread = new HelperThread(failingHelper("claimed hash"));
        const bytes = randomBytes((HELPER_MIN_PIECES + 1) * PIECE_LENGTH + 9, 35);
        const path = join(dir, "given-up");
        await Deno.writeFile(path, bytes);
        for (let round = 0; round < 2; round++) {
          assert.ok(thread.isFree, `free for round ${round}`);
          assertHashesOf(await hashFile(path, { helperThread: thread }), bytes);
          await within(thread.whenFree(), "the thread to leave the file", THREAD_LIMIT_MS);
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

    await t.step("disposed while at work, finishes the file first", async () => {
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
      // every read and piece hash is still the helper's to do
      assertHashesOf(await hashBesideHelperAlone(lent.ring), bytes);
      lent.ring.stop();
      await within(thread.whenFree(), "the thread to leave the file", THREAD_LIMIT_MS);
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

Deno.test("the main thread finishes a step its helper left unfinished", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-hash-" });
  const bytes = randomBytes(12 * PIECE_LENGTH + 5, 31);
  const path = join(dir, "file");
  await Deno.writeFile(path, bytes);
  try {
    for (const after of ["claimed read", "claimed hash"] as const) {
      await t.step(after, async () => {
        using job = await ringWithHelper(path, failingHelper(after));
        const { ring, helper } = job;
        using file = await Deno.open(path);
        await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
        // piece 0 is claimed and not done: the main thread cannot finish without it
        const claims = ring.claims;
        if (after === "claimed read") {
          assert.deepEqual(claims, { reads: 1, hashes: 0 });
          assert.ok(!ring.isRead(0));
        } else {
          assert.deepEqual(claims, { reads: 1, hashes: 1 });
          assert.ok(ring.isRead(0) && !ring.isHashed(0));
        }
        assertHashesOf(await hashInRing(file, ring, helper), bytes);
      });
    }

    await t.step("the helper read past the end: the main thread says the file shrank", async () => {
      // the real helper, on a ring that claims 5 pieces of a 3-piece file: with no whole-file
      // hash running the ring's 8 slots never come free, so it reads until the end alone
      const short = join(dir, "short");
      await Deno.writeFile(short, bytes.subarray(0, 3 * PIECE_LENGTH));
      using job = await ringWithHelper(short, HELPER, { length: 5 * PIECE_LENGTH });
      const { ring, helper } = job;
      using file = await Deno.open(short);
      await within(helper.failed, "the helper to give up", THREAD_LIMIT_MS);
      assert.deepEqual(ring.claims, { reads: 4, hashes: 3 });
      await assert.rejects(hashInRing(file, ring, helper), /shrank/);
    });

    await t.step("an abort while waiting for a stuck helper ends the wait", async () => {
      using job = await ringWithHelper(path, failingHelper("claimed read, stuck"));
      const { ring, helper } = job;
      using file = await Deno.open(path);
      // the helper holds piece 0's read for good: without the abort this never ends
      for (let epoch = ring.epoch; ring.claims.reads === 0; epoch = ring.epoch) {
        await within(ring.changed(epoch, 20), "the helper's claim", THREAD_LIMIT_MS);
      }
      const controller = new AbortController();
      const hashing = hashInRing(file, ring, helper, controller.signal);
      controller.abort(new UserError("given up"));
      await assert.rejects(within(hashing, "the abort", THREAD_LIMIT_MS), /given up/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
