import assert from "node:assert/strict";
import {
  BLOCK_LENGTH,
  blockCount,
  blockSize,
  isServableRequest,
  isValidBlock,
  PIECE_LENGTH,
  pieceCount,
  pieceOffset,
  pieceSize,
} from "../lib/pieces.ts";

Deno.test("piece math at the edges", () => {
  const cases: { length: number; pieces: number; last: number }[] = [
    { length: 0, pieces: 0, last: 0 },
    { length: 1, pieces: 1, last: 1 },
    { length: 524_287, pieces: 1, last: 524_287 },
    { length: 524_288, pieces: 1, last: 524_288 },
    { length: 524_289, pieces: 2, last: 1 },
    { length: 1_048_576, pieces: 2, last: 524_288 },
  ];
  for (const { length, pieces, last } of cases) {
    assert.equal(pieceCount(length), pieces, `count of ${length}`);
    if (pieces > 0) {
      assert.equal(pieceSize(length, pieces - 1), last, `last piece of ${length}`);
      if (pieces > 1) assert.equal(pieceSize(length, 0), PIECE_LENGTH);
    }
    assert.throws(() => pieceSize(length, pieces), RangeError);
  }
  assert.throws(() => pieceSize(10, -1), RangeError);
  assert.throws(() => pieceSize(10, 0.5), RangeError);
});

Deno.test("piece math past 4 GiB is exact", () => {
  const length = 5 * 2 ** 30 + 12_345;
  const count = pieceCount(length);
  assert.equal(count, 10_241);
  assert.equal(pieceOffset(count - 1), 10_240 * 524_288);
  assert.equal(pieceOffset(count - 1), 5_368_709_120);
  assert.equal(pieceSize(length, count - 1), 12_345);
  assert.equal(pieceOffset(8193) - 2 ** 32, PIECE_LENGTH);
  assert.equal(pieceOffset(8192), 4_294_967_296);
  assert.ok(isValidBlock(length, count - 1, 0, 12_345));
  assert.ok(isServableRequest(length, 9000, 16_384, 16_384));
});

Deno.test("blocks: 32 of 16 KiB in a full piece, a short last one", () => {
  assert.equal(blockCount(PIECE_LENGTH), 32);
  assert.equal(blockCount(1), 1);
  assert.equal(blockCount(16_385), 2);
  assert.equal(blockSize(16_385, 1), 1);
  assert.equal(blockSize(PIECE_LENGTH, 31), BLOCK_LENGTH);
});

Deno.test("block and request checks", () => {
  const length = PIECE_LENGTH + 20_000; // the second piece has a full block and a 3616-byte one
  assert.ok(isValidBlock(length, 0, 0, BLOCK_LENGTH));
  assert.ok(isValidBlock(length, 1, BLOCK_LENGTH, 3_616));
  assert.ok(!isValidBlock(length, 1, BLOCK_LENGTH, BLOCK_LENGTH), "past the end of the piece");
  assert.ok(!isValidBlock(length, 0, 100, BLOCK_LENGTH), "unaligned");
  assert.ok(!isValidBlock(length, 0, 0, 100), "short block");
  assert.ok(!isValidBlock(length, 2, 0, BLOCK_LENGTH), "no such piece");
  assert.ok(!isValidBlock(length, -1, 0, BLOCK_LENGTH));
  assert.ok(isServableRequest(length, 0, 100, 1000), "any range inside a piece can be served");
  assert.ok(!isServableRequest(length, 0, 0, BLOCK_LENGTH + 1), "more than a block");
  assert.ok(!isServableRequest(length, 0, 0, 0), "nothing");
  assert.ok(!isServableRequest(length, 1, 19_000, 2_000), "past the end of the file");
  assert.ok(!isServableRequest(length, 5, 0, 1));
});
