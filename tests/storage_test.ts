import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import { partPathFor, PieceFile, promotePartFile, verifiedPieces } from "../peer/storage.ts";
import { TempDir } from "./harness.ts";

function piece(fill: number, length = PIECE_LENGTH): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

const sha1 = (data: Uint8Array) => new Uint8Array(createHash("sha1").update(data).digest());

Deno.test("storage: pieces written at offsets read back, and survive reopening", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("part");
  const length = 2 * PIECE_LENGTH + 100;
  const file = await PieceFile.openForWriting(path, length);
  await file.write(2 * PIECE_LENGTH, piece(3, 100));
  await file.write(0, piece(1));
  await file.sync();
  assert.equal((await Deno.stat(path)).size, length, "sized up front");
  assert.deepEqual(await file.readPiece(2), piece(3, 100));
  assert.deepEqual(await file.read(PIECE_LENGTH - 2, 4), new Uint8Array([1, 1, 0, 0]));
  await file.close();
  await file.close(); // closing twice is harmless

  const reopened = await PieceFile.openForWriting(path, length);
  try {
    assert.deepEqual(await reopened.readPiece(0), piece(1), "reopening keeps what was written");
  } finally {
    await reopened.close();
  }
  const reader = await PieceFile.openForReading(path, length);
  try {
    await assert.rejects(reader.read(length - 10, 20), /shorter than expected/);
  } finally {
    await reader.close();
  }
});

Deno.test("storage: verifiedPieces finds exactly the pieces whose data is right", async () => {
  await using dir = await TempDir.create();
  const length = 3 * PIECE_LENGTH;
  const expected = [piece(7), piece(8), piece(9)];
  const hashes = new Uint8Array(60);
  expected.forEach((data, i) => hashes.set(sha1(data), i * 20));
  const file = await PieceFile.openForWriting(dir.join("part"), length);
  try {
    await file.write(0, expected[0]);
    await file.write(2 * PIECE_LENGTH, piece(1)); // wrong data in piece 2
    assert.deepEqual(await verifiedPieces(file, hashes), [true, false, false]);
    await file.write(2 * PIECE_LENGTH, expected[2]);
    assert.deepEqual(await verifiedPieces(file, hashes), [true, false, true]);
  } finally {
    await file.close();
  }
});

Deno.test("storage: the part file sits hidden beside the destination and never overwrites", async () => {
  await using dir = await TempDir.create();
  const final = dir.join("movie.mkv");
  const part = partPathFor(final);
  assert.equal(part, dir.join(".movie.mkv.swarmshare-part"));
  await Deno.writeTextFile(part, "data");
  await promotePartFile(part, final);
  assert.equal(await Deno.readTextFile(final), "data");
  await Deno.writeTextFile(part, "newer");
  await assert.rejects(promotePartFile(part, final), /appeared while downloading/);
  assert.equal(await Deno.readTextFile(final), "data");
  assert.equal(await Deno.readTextFile(part), "newer", "the download is kept");
});
