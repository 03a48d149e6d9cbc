import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { hashFile, readPieces } from "../lib/hash.ts";
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

Deno.test("readPieces yields every piece in order with its size", async () => {
  await using dir = await TempDir.create();
  const data = bytes(3 * PIECE_LENGTH + 5);
  const path = dir.join("f");
  await Deno.writeFile(path, data);
  const handle = await open(path, "r");
  try {
    const seen: [number, number, string][] = [];
    for await (const { index, data: piece } of readPieces(handle, data.length)) {
      seen.push([index, piece.length, sha1(piece).toString("hex")]);
    }
    assert.deepEqual(seen.map(([index, size]) => [index, size]), [
      [0, PIECE_LENGTH],
      [1, PIECE_LENGTH],
      [2, PIECE_LENGTH],
      [3, 5],
    ]);
    assert.equal(seen[3][2], sha1(data.subarray(3 * PIECE_LENGTH)).toString("hex"));
  } finally {
    await handle.close();
  }
});

Deno.test("a file shorter than announced is an error, not a short hash", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("f");
  await Deno.writeFile(path, bytes(1000));
  const handle = await open(path, "r");
  try {
    await assert.rejects(async () => {
      for await (const _ of readPieces(handle, 2000)) { /* drain */ }
    }, /shrank/);
  } finally {
    await handle.close();
  }
});
