/**
 * The download's disk writer (peer/piece_writer_worker.ts) driven through its messages: writes
 * at offsets, the whole-file SHA-1 in file order whatever the arrival order,
 * the few pieces it keeps in memory and hands back later, resume, and direct writes of whole
 * pieces (with the page cache taking over where direct I/O is refused).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import { isAllZero, type WriterReply, type WriterRequest } from "../peer/piece_writer_worker.ts";
import { pageAlignedMemory, PieceSlots, slotViews } from "../peer/piece_slots.ts";
import { seededRandom, TempDir } from "./harness.ts";

const PIECES = 12;
const LENGTH = PIECES * PIECE_LENGTH - 1000; // a short last piece

interface Fixture {
  bytes: Uint8Array;
  sha1: string;
}

function fixture(): Fixture {
  const random = seededRandom(42);
  const bytes = new Uint8Array(LENGTH);
  for (let i = 0; i < LENGTH; i += 4096) bytes[i] = Math.floor(random() * 256);
  return { bytes, sha1: createHash("sha1").update(bytes).digest("hex") };
}

/** The slot piece `index` travels in: not its index, so that a mix-up shows. */
const slotFor = (index: number) => (index + 5) % PIECES;
const pieceIn = (slot: number) => (slot - 5 + PIECES) % PIECES;

/** The worker with its replies queued, as the download sees it. */
class Writer implements Disposable {
  readonly #worker = new Worker(
    new URL("../peer/piece_writer_worker.ts", import.meta.url).href,
    { type: "module" },
  );
  readonly #replies: WriterReply[] = [];
  readonly #slots: Uint8Array[];
  #waiting?: () => void;

  /** `slots`: the download's slot memory, by default as a download makes it. */
  constructor(
    readonly data: Fixture,
    path: string,
    present: number[] = [],
    slots = new PieceSlots(PIECES).memory,
    /** The file the download opened, when it is not the one at `path` now. */
    fileIdentity?: { dev: number; ino: number },
    /** The part file is new: pieces of zeros may be left as holes. */
    holes = false,
  ) {
    this.#slots = slotViews(slots);
    this.#worker.onmessage = (event: MessageEvent<WriterReply>) => {
      this.#replies.push(event.data);
      this.#waiting?.();
    };
    const info = Deno.lstatSync(path);
    const identity = fileIdentity ?? { dev: info.dev, ino: info.ino! };
    this.#send({
      type: "open",
      path,
      identity,
      length: LENGTH,
      present,
      slots,
      maxKept: 8,
      holes,
    });
  }

  #send(request: WriterRequest): void {
    this.#worker.postMessage(request);
  }

  /** Puts piece `index` in its slot and sends it. */
  write(index: number): void {
    const slot = slotFor(index);
    const piece = this.data.bytes.subarray(index * PIECE_LENGTH, (index + 1) * PIECE_LENGTH);
    this.#slots[slot].set(piece);
    this.#send({ type: "write", index, slot });
  }

  finish(): void {
    this.#send({ type: "finish" });
  }

  /** The next `count` replies, in order. */
  async replies(count: number): Promise<WriterReply[]> {
    while (this.#replies.length < count) {
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
    return this.#replies.splice(0, count);
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
  }
}

/** A reply reduced to what the tests compare. */
function summary(reply: WriterReply): string {
  switch (reply.type) {
    case "written":
      if (reply.slot === undefined) return `written ${reply.index} (kept)`;
      return reply.slot === slotFor(reply.index)
        ? `written ${reply.index}`
        : `written ${reply.index} in slot ${reply.slot}`;
    case "released":
      return `released piece ${pieceIn(reply.slot)}`;
    case "finished":
      return `finished ${reply.sha1}`;
    case "failed":
      return `failed ${reply.message}`;
  }
}

/** Bytes in the whole pieces of the fixture: what can go to the disk directly. */
const WHOLE_PIECE_BYTES = (PIECES - 1) * PIECE_LENGTH;

/** Whether the file system under `dir` takes a direct write of a block from `memory`. */
function takesDirectWrite(dir: TempDir, memory: SharedArrayBuffer): boolean {
  const { O_CREAT, O_DIRECT, O_WRONLY } = fs.constants;
  if (O_DIRECT === undefined) return false;
  let fd: number | undefined;
  try {
    fd = fs.openSync(join(dir.path, "probe"), O_WRONLY | O_CREAT | O_DIRECT);
    fs.writeSync(fd, new Uint8Array(memory, 0, 4096), 0, 4096, 0);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes every piece in order and returns the writer's final reply. */
async function writeAll(writer: Writer): Promise<WriterReply> {
  for (let index = 0; index < PIECES; index++) writer.write(index);
  writer.finish();
  return (await writer.replies(PIECES + 1)).at(-1)!;
}

async function partFile(dir: TempDir): Promise<string> {
  const path = join(dir.path, "file.part");
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, LENGTH);
  return path;
}

Deno.test("isAllZero", () => {
  assert.equal(isAllZero(new Uint8Array(0)), true);
  assert.equal(isAllZero(new Uint8Array(PIECE_LENGTH)), true);
  for (const at of [0, 1, 3, 4, 4095, PIECE_LENGTH - 1]) {
    const bytes = new Uint8Array(PIECE_LENGTH);
    bytes[at] = 1;
    assert.equal(isAllZero(bytes), false, `a byte at ${at}`);
    // unaligned views and odd lengths too
    assert.equal(
      isAllZero(bytes.subarray(1, PIECE_LENGTH - 1)),
      at === 0 || at === PIECE_LENGTH - 1,
    );
  }
});

Deno.test("piece writer", async (t) => {
  const data = fixture();

  await t.step(
    "a new part file: pieces of zeros stay holes, the file and digest are right",
    async () => {
      await using dir = await TempDir.create();
      const path = await partFile(dir);
      const bytes = data.bytes.slice();
      bytes.fill(0, 2 * PIECE_LENGTH, 9 * PIECE_LENGTH);
      const zeros = { bytes, sha1: createHash("sha1").update(bytes).digest("hex") };
      {
        using writer = new Writer(zeros, path, [], undefined, undefined, true);
        assert.equal((await writeAll(writer)).type === "finished", true);
      }
      assert.deepEqual(await Deno.readFile(path), bytes);
      // seven pieces (3.5 MiB) never written: at most the other five take room on disk
      const allocated = (await Deno.stat(path)).blocks! * 512;
      assert.ok(allocated <= 5 * PIECE_LENGTH + 64 * 1024, `${allocated} bytes allocated`);
      // a resumed part file (holes false) may hold stale bytes: every piece is written there
      await Deno.writeFile(path, new Uint8Array(LENGTH).fill(7));
      {
        using writer = new Writer(zeros, path);
        await writeAll(writer);
      }
      assert.deepEqual(await Deno.readFile(path), bytes);
    },
  );

  await t.step("in order: every slot comes straight back, the digest matches", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    using writer = new Writer(data, path);
    for (let index = 0; index < PIECES; index++) writer.write(index);
    writer.finish();
    const replies = (await writer.replies(PIECES + 1)).map(summary);
    assert.deepEqual(replies, [
      ...Array.from({ length: PIECES }, (_, index) => `written ${index}`),
      `finished ${data.sha1}`,
    ]);
    assert.deepEqual(await Deno.readFile(path), data.bytes);
  });

  await t.step("just ahead of the hash: kept, then released once the hash passes", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    using writer = new Writer(data, path);
    writer.write(2);
    writer.write(1);
    writer.write(0);
    // piece 0 is reported written before the hash goes on over the kept ones: the download
    // (and the peers waiting for piece 0) hear of it without waiting for that
    assert.deepEqual((await writer.replies(5)).map(summary), [
      "written 2 (kept)",
      "written 1 (kept)",
      "written 0",
      "released piece 1",
      "released piece 2",
    ]);
    for (let index = 3; index < PIECES; index++) writer.write(index);
    writer.finish();
    const last = (await writer.replies(PIECES - 2)).map(summary).at(-1);
    assert.equal(last, `finished ${data.sha1}`);
    assert.deepEqual(await Deno.readFile(path), data.bytes);
  });

  await t.step("at most eight kept: the rest come back and are read from disk", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    using writer = new Writer(data, path);
    for (let index = PIECES - 1; index >= 1; index--) writer.write(index);
    const early = (await writer.replies(PIECES - 1)).map(summary);
    assert.deepEqual(early, [
      ...[11, 10, 9, 8, 7, 6, 5, 4].map((index) => `written ${index} (kept)`),
      "written 3",
      "written 2",
      "written 1",
    ]);
    writer.write(0);
    writer.finish();
    const rest = (await writer.replies(8 + 2)).map(summary);
    assert.equal(rest.filter((line) => line.startsWith("released")).length, 8);
    assert.equal(rest.at(-1), `finished ${data.sha1}`);
    assert.deepEqual(await Deno.readFile(path), data.bytes);
  });

  /**
   * Writes the fixture from slots in `slots` and checks the file, and that whole pieces went
   * directly exactly when `direct` says this file system takes them from that memory (the
   * short last piece always goes through the cache).
   */
  const writeFrom = async (
    slots: SharedArrayBuffer,
    direct: (dir: TempDir) => boolean,
  ) => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    const expected = direct(dir);
    using writer = new Writer(data, path, [], slots);
    assert.deepEqual(await writeAll(writer), {
      type: "finished",
      sha1: data.sha1,
      directBytes: expected ? WHOLE_PIECE_BYTES : 0,
    });
    assert.deepEqual(await Deno.readFile(path), data.bytes);
  };

  await t.step("whole pieces go to the disk directly where the file system takes it", () => {
    // the file system is asked with memory known to start on a page, made here
    const onAPage = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer;
    return writeFrom(
      pageAlignedMemory(PIECES * PIECE_LENGTH),
      (dir) => takesDirectWrite(dir, onAPage as SharedArrayBuffer),
    );
  });

  await t.step("where direct I/O refuses the memory, every write goes through the cache", () => {
    // a plain SharedArrayBuffer starts wherever the allocator put it, seldom on a page
    const slots = new SharedArrayBuffer(PIECES * PIECE_LENGTH);
    return writeFrom(slots, (dir) => takesDirectWrite(dir, slots));
  });

  await t.step("finishing with a piece missing fails and says which", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    using writer = new Writer(data, path);
    for (let index = 1; index < PIECES; index++) writer.write(index);
    await writer.replies(PIECES - 1);
    writer.finish();
    assert.deepEqual((await writer.replies(1)).map(summary), [
      "failed piece 0 was never written",
    ]);
  });

  await t.step("a part file swapped after the download opened it is refused", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    const opened = Deno.lstatSync(path);
    // someone replaces the part name with a link to another file before the writer opens it
    const victim = join(dir.path, "victim");
    await Deno.writeTextFile(victim, "precious");
    await Deno.remove(path);
    await Deno.symlink(victim, path);
    using writer = new Writer(data, path, [], undefined, { dev: opened.dev, ino: opened.ino! });
    const [reply] = (await writer.replies(1)).map(summary);
    assert.match(reply, /^failed /);
    assert.equal(await Deno.readTextFile(victim), "precious");
  });

  await t.step("resume: pieces already on disk are read back into the digest", async () => {
    await using dir = await TempDir.create();
    const path = await partFile(dir);
    const file = await Deno.open(path, { write: true });
    await file.write(data.bytes.subarray(0, 3 * PIECE_LENGTH));
    file.close();
    using writer = new Writer(data, path, [0, 1, 2]);
    for (let index = 3; index < PIECES; index++) writer.write(index);
    writer.finish();
    const replies = (await writer.replies(PIECES - 3 + 1)).map(summary);
    assert.equal(replies.at(-1), `finished ${data.sha1}`);
    assert.deepEqual(await Deno.readFile(path), data.bytes);
  });
});
