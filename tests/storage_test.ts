/**
 * Unit tests of peer/storage.ts: positional piece I/O (also past 4 GiB, on a sparse file),
 * resume keeping a part file's content, verification of pieces on disk, and promoting a
 * part file without overwriting anything.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UserError } from "../lib/errors.ts";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import {
  equalBytes,
  exists,
  type FileIdentity,
  partPathFor,
  PieceFile,
  promotePartFile,
  verifiedPieces,
} from "../peer/storage.ts";

function bytesOf(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/**
 * Asserts two byte arrays are equal, naming the first difference: node:assert's diff of
 * megabyte arrays takes minutes, which would turn a failure into a hang.
 */
function assertBytes(actual: Uint8Array, expected: Uint8Array, message = ""): void {
  assert.ok(actual instanceof Uint8Array, `${message}: not a Uint8Array`);
  assert.equal(actual.length, expected.length, `${message}: length`);
  const at = actual.findIndex((byte, i) => byte !== expected[i]);
  assert.equal(at, -1, `${message}: first difference at byte ${at}`);
}

const sha1 = (bytes: Uint8Array) => new Uint8Array(createHash("sha1").update(bytes).digest());

function pieceHashesOf(content: Uint8Array): Uint8Array {
  const count = Math.ceil(content.length / PIECE_LENGTH);
  const hashes = new Uint8Array(count * 20);
  for (let i = 0; i < count; i++) {
    hashes.set(sha1(content.subarray(i * PIECE_LENGTH, (i + 1) * PIECE_LENGTH)), i * 20);
  }
  return hashes;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "swarmshare-storage-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("PieceFile reads and writes at offsets", async (t) => {
  await withTempDir(async (dir) => {
    const length = 2 * PIECE_LENGTH + 1000;

    await t.step("a new part file is created at its full length, zero-filled", async () => {
      const path = join(dir, "new.part");
      const file = await PieceFile.openForWriting(path, length);
      try {
        assert.equal(file.length, length);
        assert.equal(file.path, path);
        assert.equal((await Deno.stat(path)).size, length);
        assert.ok((await file.read(0, 100)).every((b) => b === 0));
      } finally {
        await file.close();
      }
    });

    await t.step("blocks written out of order land at their offsets", async () => {
      const path = join(dir, "blocks.part");
      const content = bytesOf(length, 1);
      const file = await PieceFile.openForWriting(path, length);
      try {
        // blocks of 16 KiB, the last piece short, written back to front
        const offsets = [];
        for (let at = 0; at < length; at += 16_384) offsets.push(at);
        for (const at of offsets.reverse()) {
          await file.write(at, content.subarray(at, Math.min(at + 16_384, length)));
        }
        assertBytes(await file.readPiece(0), content.subarray(0, PIECE_LENGTH));
        assertBytes(
          await file.readPiece(1),
          content.subarray(PIECE_LENGTH, 2 * PIECE_LENGTH),
        );
        assertBytes(await file.readPiece(2), content.subarray(2 * PIECE_LENGTH));
        assert.equal((await file.readPiece(2)).length, 1000);
        assertBytes(await file.read(12_345, 7), content.subarray(12_345, 12_352));
      } finally {
        await file.close();
      }
      assertBytes(await Deno.readFile(path), content);
    });

    await t.step("read fills a given buffer and returns a view of it", async () => {
      const path = join(dir, "blocks.part");
      const content = await Deno.readFile(path);
      const file = PieceFile.forReading(path, length);
      try {
        const buffer = new Uint8Array(PIECE_LENGTH);
        const piece = await file.readPiece(2, buffer);
        assert.equal(piece.buffer, buffer.buffer);
        assert.equal(piece.length, 1000);
        assertBytes(piece, content.subarray(2 * PIECE_LENGTH));
        const part = await file.read(100, 10, buffer);
        assertBytes(part, content.subarray(100, 110));
      } finally {
        await file.close();
      }
    });

    await t.step("read lands in a view of a larger buffer and nowhere else", async () => {
      const path = join(dir, "blocks.part");
      const content = await Deno.readFile(path);
      const file = PieceFile.forReading(path, length);
      try {
        const backing = new Uint8Array(40_000);
        const at = PIECE_LENGTH - 16_384;
        await file.read(at, 16_394, backing.subarray(20_000));
        assertBytes(backing.subarray(20_000, 36_394), content.subarray(at, at + 16_394));
        assert.ok(backing.subarray(0, 20_000).every((b) => b === 0));
        assert.ok(backing.subarray(36_394).every((b) => b === 0));
      } finally {
        await file.close();
      }
    });

    await t.step("reading past the end of a short file is a UserError", async () => {
      const path = join(dir, "short");
      await Deno.writeFile(path, bytesOf(100, 2));
      const file = PieceFile.forReading(path, PIECE_LENGTH);
      try {
        await assert.rejects(file.readPiece(0), UserError);
        await assert.rejects(file.read(50, 51), /shorter than expected/);
        assertBytes(await file.read(50, 50), bytesOf(100, 2).subarray(50));
      } finally {
        await file.close();
      }
    });

    await t.step("a file to serve takes a descriptor only from its first read", async () => {
      const descriptors = () => [...Deno.readDirSync("/proc/self/fd")].length;
      const before = descriptors();
      const files = Array.from(
        { length: 200 },
        () => PieceFile.forReading(join(dir, "blocks.part"), length),
      );
      assert.equal(descriptors(), before);
      await files[0].read(0, 10);
      assert.equal(descriptors(), before + 1);
      for (const file of files) await file.close();
      assert.equal(descriptors(), before);
      // a file gone since it was shared fails where it is read, as a UserError or the OS's
      const gone = PieceFile.forReading(join(dir, "no-such-file"), 100);
      await assert.rejects(gone.read(0, 10));
      await gone.close();
    });

    await t.step("close twice is harmless; renamedTo updates the path", async () => {
      const file = PieceFile.forReading(join(dir, "short"), 100);
      file.renamedTo(join(dir, "elsewhere"));
      assert.equal(file.path, join(dir, "elsewhere"));
      await file.close();
      await file.close();
    });
  });
});

Deno.test("PieceFile offsets past 4 GiB are exact (sparse file)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big.part");
    const length = 5 * 2 ** 30 + 12_345;
    const file = await PieceFile.openForWriting(path, length);
    try {
      const block = bytesOf(16_384, 3);
      const beyond = 2 ** 32 + 16_384; // piece 8192, block 1: wraps to 16384 in 32 bits
      await file.write(beyond, block);
      await file.write(length - 5, new Uint8Array([1, 2, 3, 4, 5]));
      assertBytes(await file.read(beyond, 16_384), block);
      assert.ok((await file.read(16_384, 16_384)).every((b) => b === 0), "no wrap to 16 KiB");
      const piece = await file.readPiece(8192);
      assertBytes(piece.subarray(16_384, 32_768), block);
      const last = await file.readPiece(10_240);
      assert.equal(last.length, 12_345);
      assert.deepEqual([...last.subarray(12_340)], [1, 2, 3, 4, 5]);
    } finally {
      await file.close();
    }
  });
});

Deno.test("openForWriting never writes through a link or into another's file", async (t) => {
  await withTempDir(async (dir) => {
    const victim = join(dir, "victim.txt");
    await Deno.writeTextFile(victim, "precious");

    await t.step("a symlink at the part name: refused, its target untouched", async () => {
      const path = join(dir, "link.part");
      await Deno.symlink(victim, path);
      await assert.rejects(PieceFile.openForWriting(path, 100), /symbolic link/);
      assert.equal(await Deno.readTextFile(victim), "precious");
    });

    await t.step("a dangling symlink: refused, nothing created where it points", async () => {
      const path = join(dir, "dangling.part");
      const target = join(dir, "would-be-created");
      await Deno.symlink(target, path);
      await assert.rejects(PieceFile.openForWriting(path, 100), /symbolic link/);
      assert.equal(await exists(target), false);
    });

    await t.step("a hard link to another file: refused, untouched", async () => {
      const path = join(dir, "hard.part");
      await Deno.link(victim, path);
      await assert.rejects(PieceFile.openForWriting(path, 100), /other names/);
      assert.equal(await Deno.readTextFile(victim), "precious");
    });

    await t.step("a directory at the part name: refused", async () => {
      const path = join(dir, "dir.part");
      await Deno.mkdir(path);
      await assert.rejects(PieceFile.openForWriting(path, 100));
    });

    await t.step("a new part file records which file it is", async () => {
      const path = join(dir, "new.part");
      const file = await PieceFile.openForWriting(path, 100);
      await file.close();
      const info = await Deno.lstat(path);
      assert.deepEqual(file.identity, { dev: info.dev, ino: info.ino });
    });
  });
});

Deno.test("openForWriting keeps existing content (resume)", async (t) => {
  await withTempDir(async (dir) => {
    const length = PIECE_LENGTH + 5000;
    const content = bytesOf(length, 4);

    await t.step("a part file of the right length is kept byte for byte", async () => {
      const path = join(dir, "resume.part");
      await Deno.writeFile(path, content);
      const file = await PieceFile.openForWriting(path, length);
      try {
        assertBytes(await file.read(0, length), content);
        await file.write(10, new Uint8Array([0xaa]));
      } finally {
        await file.close();
      }
      const expected = content.slice();
      expected[10] = 0xaa;
      assertBytes(await Deno.readFile(path), expected);
    });

    await t.step("a short part file is extended with zeros, its start kept", async () => {
      const path = join(dir, "short.part");
      await Deno.writeFile(path, content.subarray(0, 1000));
      const file = await PieceFile.openForWriting(path, length);
      await file.close();
      const onDisk = await Deno.readFile(path);
      assert.equal(onDisk.length, length);
      assertBytes(onDisk.subarray(0, 1000), content.subarray(0, 1000));
      assert.ok(onDisk.subarray(1000).every((b) => b === 0));
    });

    await t.step("a long part file is cut to the length", async () => {
      const path = join(dir, "long.part");
      await Deno.writeFile(path, new Uint8Array([...content, 1, 2, 3]));
      const file = await PieceFile.openForWriting(path, length);
      await file.close();
      assertBytes(await Deno.readFile(path), content);
    });
  });
});

Deno.test("verifiedPieces finds exactly the pieces holding the right data", async (t) => {
  await withTempDir(async (dir) => {
    const length = 3 * PIECE_LENGTH + 777;
    const content = bytesOf(length, 5);
    const hashes = pieceHashesOf(content);
    const check = async (name: string, writes: [number, Uint8Array][], expected: boolean[]) => {
      await t.step(name, async () => {
        const path = join(dir, `${name.replaceAll(" ", "_")}.part`);
        const file = await PieceFile.openForWriting(path, length);
        try {
          for (const [at, data] of writes) await file.write(at, data);
          assert.deepEqual(await verifiedPieces(file, hashes), expected);
        } finally {
          await file.close();
        }
      });
    };
    const piece = (i: number) => content.subarray(i * PIECE_LENGTH, (i + 1) * PIECE_LENGTH);
    const at = (i: number) => i * PIECE_LENGTH;

    await check("empty part file", [], [false, false, false, false]);
    await check("all pieces", [[0, content]], [true, true, true, true]);
    await check("pieces 0 and 3", [[at(0), piece(0)], [at(3), piece(3)]], [
      true,
      false,
      false,
      true,
    ]);
    await check("one flipped byte in piece 1", [
      [0, content],
      [at(1) + 12_345, new Uint8Array([content[at(1) + 12_345] ^ 0x01])],
    ], [true, false, true, true]);
    await check("piece 2 data written at piece 1", [[at(1), piece(2)]], [
      false,
      false,
      false,
      false,
    ]);
    await check("last byte of the file missing", [[0, content.subarray(0, length - 1)]], [
      true,
      true,
      true,
      content[length - 1] === 0,
    ]);

    await t.step("a piece of zeros verifies on a fresh part file", async () => {
      const zeros = new Uint8Array(PIECE_LENGTH + 10);
      zeros.set(bytesOf(10, 6), PIECE_LENGTH);
      const file = await PieceFile.openForWriting(join(dir, "zeros.part"), zeros.length);
      try {
        assert.deepEqual(await verifiedPieces(file, pieceHashesOf(zeros)), [true, false]);
      } finally {
        await file.close();
      }
    });

    await t.step("an empty file has no pieces", async () => {
      const file = await PieceFile.openForWriting(join(dir, "empty.part"), 0);
      try {
        assert.deepEqual(await verifiedPieces(file, new Uint8Array(0)), []);
      } finally {
        await file.close();
      }
    });
  });
});

Deno.test("partPathFor", async (t) => {
  const cases: [string, string][] = [
    ["/home/a/movie.mkv", "/home/a/.movie.mkv.swarmshare-part"],
    ["movie.mkv", ".movie.mkv.swarmshare-part"],
    ["dir/sub/file", "dir/sub/.file.swarmshare-part"],
    ["/x/.hidden", "/x/..hidden.swarmshare-part"],
  ];
  for (const [finalPath, partPath] of cases) {
    await t.step(finalPath, () => assert.equal(partPathFor(finalPath), partPath));
  }
});

/** The file a path names, as the download records it when it opens the part file. */
async function identityOf(path: string): Promise<FileIdentity> {
  const info = await Deno.lstat(path);
  return { dev: info.dev, ino: info.ino! };
}

Deno.test("promotePartFile", async (t) => {
  await withTempDir(async (dir) => {
    await t.step("moves the part file to the final name", async () => {
      const finalPath = join(dir, "done.bin");
      const partPath = partPathFor(finalPath);
      await Deno.writeFile(partPath, bytesOf(1000, 7));
      await promotePartFile(partPath, finalPath, await identityOf(partPath));
      assertBytes(await Deno.readFile(finalPath), bytesOf(1000, 7));
      assert.equal(await exists(partPath), false);
    });

    await t.step("refuses to overwrite a file that appeared meanwhile", async () => {
      const finalPath = join(dir, "taken.bin");
      const partPath = partPathFor(finalPath);
      await Deno.writeFile(partPath, bytesOf(1000, 8));
      await Deno.writeTextFile(finalPath, "someone else's file");
      await assert.rejects(
        promotePartFile(partPath, finalPath, await identityOf(partPath)),
        (error: unknown) => {
          assert.ok(error instanceof UserError);
          assert.match(error.message, /appeared while downloading/);
          assert.ok(error.message.includes(partPath), "the message says where the download is");
          return true;
        },
      );
      assert.equal(await Deno.readTextFile(finalPath), "someone else's file");
      assertBytes(await Deno.readFile(partPath), bytesOf(1000, 8));
    });

    await t.step("refuses to replace even a dangling symlink (no check-then-rename)", async () => {
      const finalPath = join(dir, "link.bin");
      const partPath = partPathFor(finalPath);
      await Deno.writeFile(partPath, bytesOf(10, 3));
      await Deno.symlink(join(dir, "nowhere"), finalPath);
      await assert.rejects(
        promotePartFile(partPath, finalPath, await identityOf(partPath)),
        /appeared while downloading/,
      );
      assert.equal(await Deno.readLink(finalPath), join(dir, "nowhere"));
      assert.ok(await exists(partPath));
    });

    await t.step("refuses a part name that is no longer the file written", async () => {
      const finalPath = join(dir, "swapped.bin");
      const partPath = partPathFor(finalPath);
      await Deno.writeFile(partPath, bytesOf(10, 4));
      const written = await identityOf(partPath);
      // the part name now points elsewhere: a symlink to another file, then another file
      // (the written file lives on elsewhere, as it does while the download holds it open:
      // its inode number cannot be reused)
      const other = join(dir, "victim.txt");
      await Deno.writeTextFile(other, "not the download");
      await Deno.rename(partPath, join(dir, "moved-away.bin"));
      await Deno.symlink(other, partPath);
      await assert.rejects(promotePartFile(partPath, finalPath, written), /was replaced/);
      await Deno.remove(partPath);
      await Deno.writeTextFile(partPath, "an impostor");
      await assert.rejects(promotePartFile(partPath, finalPath, written), /was replaced/);
      assert.equal(await exists(finalPath), false, "the final name was not given");
      assert.equal(await Deno.readTextFile(other), "not the download");
    });

    await t.step("refuses to replace a directory or an empty file", async () => {
      for (
        const make of [
          (p: string) => Deno.mkdir(p),
          (p: string) => Deno.writeFile(p, new Uint8Array(0)),
        ]
      ) {
        const finalPath = join(dir, `occupied-${crypto.randomUUID()}`);
        const partPath = partPathFor(finalPath);
        await Deno.writeFile(partPath, bytesOf(10, 9));
        await make(finalPath);
        await assert.rejects(
          promotePartFile(partPath, finalPath, await identityOf(partPath)),
          UserError,
        );
        assert.ok(await exists(partPath));
      }
    });
  });
});

Deno.test("equalBytes and exists", async (t) => {
  await t.step("equalBytes", () => {
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])), false);
    assert.equal(equalBytes(new Uint8Array(0), new Uint8Array(0)), true);
  });
  await t.step("exists", async () => {
    await withTempDir(async (dir) => {
      assert.equal(await exists(dir), true);
      assert.equal(await exists(join(dir, "nothing")), false);
    });
  });
});
