/**
 * Unit tests of lib/pieces.ts: piece and block arithmetic at every size boundary, and past
 * 4 GiB where 32-bit arithmetic would wrap.
 */

import assert from "node:assert/strict";
import {
  BLOCK_LENGTH,
  blockCount,
  BLOCKS_PER_PIECE,
  blockSize,
  isPieceIndex,
  isServableRequest,
  isValidBlock,
  PIECE_HASH_LENGTH,
  PIECE_LENGTH,
  pieceCount,
  pieceOffset,
  pieceSize,
} from "../lib/pieces.ts";

const KiB = 1024;
const GiB = 2 ** 30;

Deno.test("protocol constants", () => {
  assert.equal(PIECE_LENGTH, 512 * KiB);
  assert.equal(BLOCK_LENGTH, 16 * KiB);
  assert.equal(BLOCKS_PER_PIECE, 32);
  assert.equal(PIECE_HASH_LENGTH, 20);
});

interface SizeCase {
  fileLength: number;
  count: number;
  /** Size of every piece, in order (only the first and last two for big files). */
  sizes: [index: number, size: number][];
}

const SIZE_CASES: SizeCase[] = [
  { fileLength: 0, count: 0, sizes: [] },
  { fileLength: 1, count: 1, sizes: [[0, 1]] },
  { fileLength: 524_287, count: 1, sizes: [[0, 524_287]] },
  { fileLength: 524_288, count: 1, sizes: [[0, 524_288]] },
  { fileLength: 524_289, count: 2, sizes: [[0, 524_288], [1, 1]] },
  { fileLength: 1_048_576, count: 2, sizes: [[0, 524_288], [1, 524_288]] },
  { fileLength: 1_048_577, count: 3, sizes: [[0, 524_288], [1, 524_288], [2, 1]] },
  { fileLength: 5 * GiB, count: 10_240, sizes: [[0, PIECE_LENGTH], [10_239, PIECE_LENGTH]] },
  {
    fileLength: 5 * GiB + 12_345,
    count: 10_241,
    sizes: [[0, PIECE_LENGTH], [8_192, PIECE_LENGTH], [10_239, PIECE_LENGTH], [10_240, 12_345]],
  },
];

Deno.test("pieceCount, pieceSize and isPieceIndex", async (t) => {
  for (const { fileLength, count, sizes } of SIZE_CASES) {
    await t.step(`file of ${fileLength} bytes`, () => {
      assert.equal(pieceCount(fileLength), count);
      for (const [index, size] of sizes) {
        assert.equal(pieceSize(fileLength, index), size, `piece ${index}`);
        assert.ok(isPieceIndex(fileLength, index));
      }
      if (count <= 3) {
        // the pieces add up to the file
        let total = 0;
        for (let index = 0; index < count; index++) total += pieceSize(fileLength, index);
        assert.equal(total, fileLength);
      }
      for (const bad of [-1, count, count + 1, 0.5, NaN, Infinity]) {
        assert.throws(() => pieceSize(fileLength, bad), RangeError, `piece ${bad}`);
        assert.equal(isPieceIndex(fileLength, bad), false, `isPieceIndex ${bad}`);
      }
    });
  }
});

Deno.test("pieceOffset is exact past 4 GiB", async (t) => {
  const cases: [index: number, offset: number][] = [
    [0, 0],
    [1, 524_288],
    [2, 1_048_576],
    [8_191, 4_294_443_008],
    [8_192, 4_294_967_296], // 2^32: a uint32 would wrap to 0 here
    [8_193, 4_295_491_584],
    [10_239, 5_368_184_832],
    [10_240, 5_368_709_120],
  ];
  for (const [index, offset] of cases) {
    await t.step(`piece ${index} at ${offset}`, () => {
      assert.equal(pieceOffset(index), offset);
      assert.equal(pieceOffset(index) % 2 ** 32 === pieceOffset(index), offset < 2 ** 32);
    });
  }
  await t.step("the last piece of a 5 GiB file ends exactly at the end", () => {
    const fileLength = 5 * GiB + 12_345;
    const last = pieceCount(fileLength) - 1;
    assert.equal(pieceOffset(last) + pieceSize(fileLength, last), fileLength);
  });
});

Deno.test("blockCount and blockSize", async (t) => {
  const cases: [pieceSize: number, blocks: number, lastBlock: number][] = [
    [0, 0, 0],
    [1, 1, 1],
    [16_383, 1, 16_383],
    [16_384, 1, 16_384],
    [16_385, 2, 1],
    [12_345, 1, 12_345],
    [524_287, 32, 16_383],
    [524_288, 32, 16_384],
  ];
  for (const [size, blocks, lastBlock] of cases) {
    await t.step(`piece of ${size} bytes`, () => {
      assert.equal(blockCount(size), blocks);
      if (blocks === 0) return;
      for (let block = 0; block < blocks - 1; block++) {
        assert.equal(blockSize(size, block), BLOCK_LENGTH, `block ${block}`);
      }
      assert.equal(blockSize(size, blocks - 1), lastBlock);
      let total = 0;
      for (let block = 0; block < blocks; block++) total += blockSize(size, block);
      assert.equal(total, size);
    });
  }

  await t.step("a block outside the piece is a RangeError, not a negative size", () => {
    for (const block of [-1, 32, 1.5, Number.NaN]) {
      assert.throws(() => blockSize(PIECE_LENGTH, block), RangeError, `block ${block}`);
    }
    assert.throws(() => blockSize(16_385, 2), RangeError);
  });
});

interface RequestCase {
  name: string;
  fileLength: number;
  index: number;
  begin: number;
  length: number;
  /** Whole block as we hand them out. */
  valid: boolean;
  /** May be served to a peer. */
  servable: boolean;
}

const REQUEST_CASES: RequestCase[] = [
  // lengths off the wire are integers; one computed elsewhere may not be
  {
    name: "fractional length",
    fileLength: PIECE_LENGTH,
    index: 0,
    begin: 0,
    length: 100.5,
    valid: false,
    servable: false,
  },
  // empty file: nothing at all
  {
    name: "empty file",
    fileLength: 0,
    index: 0,
    begin: 0,
    length: 1,
    valid: false,
    servable: false,
  },
  // 1 byte
  {
    name: "1: the byte",
    fileLength: 1,
    index: 0,
    begin: 0,
    length: 1,
    valid: true,
    servable: true,
  },
  {
    name: "1: too long",
    fileLength: 1,
    index: 0,
    begin: 0,
    length: 2,
    valid: false,
    servable: false,
  },
  {
    name: "1: piece 1",
    fileLength: 1,
    index: 1,
    begin: 0,
    length: 1,
    valid: false,
    servable: false,
  },
  {
    name: "1: zero length",
    fileLength: 1,
    index: 0,
    begin: 0,
    length: 0,
    valid: false,
    servable: false,
  },
  // 524287: one piece, 32 blocks, the last 16383
  ...edgesOfPiece("524287", 524_287, 0, 524_287),
  // exactly one piece
  ...edgesOfPiece("524288", 524_288, 0, 524_288),
  {
    name: "524288: piece 1",
    fileLength: 524_288,
    index: 1,
    begin: 0,
    length: 1,
    valid: false,
    servable: false,
  },
  // one piece and one byte
  ...edgesOfPiece("524289 p0", 524_289, 0, 524_288),
  {
    name: "524289: the lone byte",
    fileLength: 524_289,
    index: 1,
    begin: 0,
    length: 1,
    valid: true,
    servable: true,
  },
  {
    name: "524289: full block of 1-byte piece",
    fileLength: 524_289,
    index: 1,
    begin: 0,
    length: BLOCK_LENGTH,
    valid: false,
    servable: false,
  },
  // two pieces exactly
  ...edgesOfPiece("1048576 p0", 1_048_576, 0, 524_288),
  ...edgesOfPiece("1048576 p1", 1_048_576, 1, 524_288),
  {
    name: "1048576: piece 2",
    fileLength: 1_048_576,
    index: 2,
    begin: 0,
    length: 1,
    valid: false,
    servable: false,
  },
  // 5 GiB and a bit: pieces past 4 GiB
  ...edgesOfPiece("5GiB p8192", 5 * GiB + 12_345, 8_192, PIECE_LENGTH),
  ...edgesOfPiece("5GiB last", 5 * GiB + 12_345, 10_240, 12_345),
  {
    name: "5GiB: past the last piece",
    fileLength: 5 * GiB + 12_345,
    index: 10_241,
    begin: 0,
    length: 1,
    valid: false,
    servable: false,
  },
];

/** The boundary requests of piece `index` of `size` bytes. */
function edgesOfPiece(
  label: string,
  fileLength: number,
  index: number,
  size: number,
): RequestCase[] {
  const lastBegin = (Math.ceil(size / BLOCK_LENGTH) - 1) * BLOCK_LENGTH;
  const lastLength = size - lastBegin;
  const c = (name: string, begin: number, length: number, valid: boolean, servable: boolean) => ({
    name: `${label}: ${name}`,
    fileLength,
    index,
    begin,
    length,
    valid,
    servable,
  });
  const cases = [
    c("first block", 0, Math.min(BLOCK_LENGTH, size), true, true),
    c("last block", lastBegin, lastLength, true, true),
    c("last block one byte longer", lastBegin, lastLength + 1, false, false),
    c("one byte at the end", size - 1, 1, size === 1, true),
    c("one byte past the end", size, 1, false, false),
    c("unaligned small request", 1, 100, false, true),
    c("a block longer than 16 KiB", 0, BLOCK_LENGTH + 1, false, false),
    c("negative begin", -BLOCK_LENGTH, BLOCK_LENGTH, false, false),
    c("fractional begin", 0.5, 100, false, false),
    c("zero length", 0, 0, false, false),
    c("negative length", 0, -1, false, false),
  ];
  if (size > BLOCK_LENGTH) {
    cases.push(
      c("second block", BLOCK_LENGTH, BLOCK_LENGTH, true, true),
      c("a short full-piece block", BLOCK_LENGTH, 100, false, true),
      c("spanning two blocks", BLOCK_LENGTH / 2, BLOCK_LENGTH, false, true),
    );
  }
  if (lastLength < BLOCK_LENGTH) {
    cases.push(c("last block padded to 16 KiB", lastBegin, BLOCK_LENGTH, false, false));
  }
  return cases;
}

Deno.test("isValidBlock and isServableRequest", async (t) => {
  for (const { name, fileLength, index, begin, length, valid, servable } of REQUEST_CASES) {
    await t.step(`${name} (${index}, ${begin}, ${length})`, () => {
      assert.equal(isValidBlock(fileLength, index, begin, length), valid, "isValidBlock");
      assert.equal(isServableRequest(fileLength, index, begin, length), servable, "servable");
    });
  }

  await t.step(
    "every block of every piece of 2.5 pieces is valid, and nothing else aligned",
    () => {
      const fileLength = 2 * PIECE_LENGTH + PIECE_LENGTH / 2;
      let blocks = 0;
      for (let index = 0; index < pieceCount(fileLength); index++) {
        const size = pieceSize(fileLength, index);
        for (let block = 0; block < blockCount(size); block++) {
          const begin = block * BLOCK_LENGTH;
          assert.ok(isValidBlock(fileLength, index, begin, blockSize(size, block)));
          assert.ok(isServableRequest(fileLength, index, begin, blockSize(size, block)));
          blocks++;
        }
        assert.equal(isValidBlock(fileLength, index, blockCount(size) * BLOCK_LENGTH, 1), false);
      }
      assert.equal(blocks, 80);
    },
  );
});
