import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hashFile } from "../lib/hash.ts";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import { TempDir } from "./harness.ts";

function bytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + (i >> 9)) & 0xff);
}

const sha1 = (data: Uint8Array) => createHash("sha1").update(data).digest();

Deno.test("streaming SHA-1 equals one-shot SHA-1, per piece and whole", async (t) => {
  await using dir = await TempDir.create();
  for (const length of [0, 1, 524_287, 524_288, 524_289, 2.5 * PIECE_LENGTH]) {
    await t.step(`${length} bytes`, async () => {
      const data = bytes(length);
      const path = dir.join(`f${length}`);
      await Deno.writeFile(path, data);
      const hashes = await hashFile(path);
      assert.equal(hashes.length, length);
      assert.equal(hashes.sha1, sha1(data).toString("hex"));
      const count = Math.ceil(length / PIECE_LENGTH);
      assert.equal(hashes.pieceHashes.length, count * 20);
      for (let index = 0; index < count; index++) {
        const piece = data.subarray(index * PIECE_LENGTH, (index + 1) * PIECE_LENGTH);
        assert.deepEqual(
          hashes.pieceHashes.subarray(index * 20, index * 20 + 20),
          new Uint8Array(sha1(piece)),
        );
      }
    });
  }
});

Deno.test("a file that is not there is an error, and nothing is left running", async () => {
  await assert.rejects(hashFile("/nonexistent/swarmshare-file"));
});
