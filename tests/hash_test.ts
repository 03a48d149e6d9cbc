/**
 * Unit tests of lib/hash.ts: the streaming per-piece and whole-file SHA-1 against one-shot
 * node:crypto digests of the same bytes, at every piece boundary.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UserError } from "../lib/errors.ts";
import { hashFile, sha1 } from "../lib/hash.ts";
import { CONTROL_LENGTH, type HashJob, type HashReply } from "../lib/hash_job.ts";
import { PIECE_LENGTH } from "../lib/pieces.ts";

/** Deterministic pseudo-random bytes (xorshift32), different for each seed. */
function randomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

const oneShot = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest();

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
        const hashes = await hashFile(path);
        assert.equal(hashes.length, size);
        const count = Math.ceil(size / PIECE_LENGTH);
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
      });
    }

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
      await assert.rejects(hashFile(path, controller.signal), /stop/);
    });

    await t.step("an abort while hashing stops the threads", async () => {
      const path = join(dir, "long");
      await Deno.writeFile(path, randomBytes(64 * PIECE_LENGTH, 6));
      const controller = new AbortController();
      const hashing = hashFile(path, controller.signal);
      controller.abort(new UserError("stopped midway"));
      await assert.rejects(hashing, /stopped midway/);
    });

    await t.step("a file shorter than announced: the reader says so, the other stops", async () => {
      const path = join(dir, "shrunk");
      await Deno.writeFile(path, randomBytes(3 * PIECE_LENGTH, 8));
      const length = 20 * PIECE_LENGTH; // as if it shrank after the stat
      const job = {
        path,
        length,
        control: new SharedArrayBuffer(CONTROL_LENGTH * 4),
        ring: new SharedArrayBuffer(8 * PIECE_LENGTH),
        digests: new SharedArrayBuffer(20 * 20),
      };
      const run = (role: HashJob["role"]) => {
        const worker = new Worker(new URL("../lib/hash_worker.ts", import.meta.url).href, {
          type: "module",
        });
        const reply = new Promise<HashReply>((resolve) => {
          worker.onmessage = (event) => resolve(event.data);
        }).finally(() => worker.terminate());
        worker.postMessage({ ...job, role } satisfies HashJob);
        return reply;
      };
      const [reader, whole] = await Promise.all([run("reader"), run("whole")]);
      assert.ok("error" in reader && /shrank/.test(reader.error), JSON.stringify(reader));
      assert.deepEqual(whole, { error: "stopped" });
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
