/**
 * What is too large is refused for itself alone (issue 13): a file over 1 TiB at
 * upload_file, before any hashing; an info dictionary over the limit at the tracker; a
 * reply that would not fit a frame becomes an error for that request, and the connection
 * goes on.
 */

import assert from "node:assert/strict";
import { FrameDecoder } from "../lib/frame.ts";
import type { Response } from "../lib/protocol.ts";
import { encodeInfo, parseInfo } from "../lib/metainfo.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, pieceCount } from "../lib/pieces.ts";
import type { ByteConn } from "../lib/transport.ts";
import { FrameWriter } from "../tracker/frame_writer.ts";
import { runScript, TempDir, TrackerProcess, within } from "./harness.ts";

Deno.test("upload_file refuses a file over 1 TiB at once, naming the limit", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const path = dir.join("huge.iso");
  // sparse: 1 TiB and one byte, no disk space taken
  using file = await Deno.open(path, { create: true, write: true });
  await file.truncate(MAX_FILE_BYTES + 1);
  const { stdout } = await runScript(tracker.port, [
    "create_user alice pw-alice",
    "login alice pw-alice",
    "create_group films",
    `upload_file ${path} films`,
    "list_files films",
  ]);
  assert.ok(
    stdout.some((line) =>
      line === `error: "${path}" is 1.00 TiB: files of up to 1 TiB can be shared`
    ),
    stdout.join("\n"),
  );
  assert.ok(stdout.includes(`no files shared in group "films"`), stdout.join("\n"));
});

Deno.test("an info dictionary for a file over 1 TiB is refused", () => {
  const length = MAX_FILE_BYTES + 1;
  const info = encodeInfo({
    name: "huge.iso",
    length,
    pieceHashes: new Uint8Array(pieceCount(length) * PIECE_HASH_LENGTH),
  });
  assert.throws(() => parseInfo(info), /over the 1099511627776-byte limit/);
  const fits = encodeInfo({
    name: "big.iso",
    length: MAX_FILE_BYTES,
    pieceHashes: new Uint8Array(pieceCount(MAX_FILE_BYTES) * PIECE_HASH_LENGTH),
  });
  assert.equal(parseInfo(fits).length, MAX_FILE_BYTES);
});

Deno.test("FrameWriter: a reply too large for a frame is an error for that request only", async () => {
  const written: Record<string, unknown>[] = [];
  const conn: ByteConn = {
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    read: () => Promise.resolve(null),
    write(bytes) {
      written.push(JSON.parse(new TextDecoder().decode(bytes.subarray(4))));
      return Promise.resolve(bytes.length);
    },
    close() {},
  };
  const writer = new FrameWriter(conn);
  await writer.reply({ id: 7, ok: true, data: "x".repeat(2 << 20) });
  await writer.reply({ id: 8, ok: true, data: null });
  assert.equal(written.length, 2);
  assert.equal(written[0].id, 7);
  assert.equal(written[0].ok, false);
  assert.match(
    (written[0].error as { message: string }).message,
    /^the reply is too large: frame of \d+ bytes exceeds the 1048576-byte limit$/,
  );
  assert.deepEqual(written[1], { id: 8, ok: true, data: null });
});

Deno.test("FrameWriter: a connection that takes a few bytes a write gets every frame whole", async () => {
  const bytes: number[] = [];
  const conn: ByteConn = {
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    read: () => Promise.resolve(null),
    write(chunk) {
      const taken = Math.min(chunk.length, 3);
      bytes.push(...chunk.subarray(0, taken));
      return Promise.resolve(taken);
    },
    close() {},
  };
  const writer = new FrameWriter(conn);
  const replies: Response[] = [
    { id: 1, ok: true, data: { text: "ünïcødé" } },
    { id: 2, ok: false, error: { code: "not_found", message: "no such file" } },
  ];
  for (const reply of replies) await writer.reply(reply);
  const decoder = new FrameDecoder();
  decoder.push(new Uint8Array(bytes));
  assert.deepEqual([decoder.next(), decoder.next(), decoder.next()], [...replies, undefined]);
});

Deno.test("FrameWriter: a far end that stops reading is closed, not waited on for ever", async () => {
  const closed = Promise.withResolvers<void>();
  const conn: ByteConn = {
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    read: () => Promise.resolve(null),
    // the kernel's buffer is full and stays so: a write never completes until the close
    write: () => closed.promise.then(() => Promise.reject(new Error("closed"))),
    close: () => closed.resolve(),
  };
  const writer = new FrameWriter(conn, { writeTimeoutMs: 20 });
  const reply = writer.reply({ id: 1, ok: true, data: "x".repeat(1000) });
  await within(closed.promise, "the stuck connection to be closed", 5_000);
  await assert.rejects(reply);
});
