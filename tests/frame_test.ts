import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import {
  type ChunkSource,
  encodeFrame,
  FrameBudget,
  FrameDecoder,
  LARGE_FRAME_BYTES,
  MAX_FRAME_BYTES,
  readFrames,
} from "../lib/frame.ts";
import { chunksOf } from "../lib/transport.ts";

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks);
}

async function collect(stream: ReadableStream<Uint8Array>, max?: number) {
  const messages: Record<string, unknown>[] = [];
  for await (const message of readFrames(stream, max)) messages.push(message);
  return messages;
}

function rawFrame(body: string | Uint8Array, length?: number): Uint8Array {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const frame = new Uint8Array(4 + bytes.length);
  new DataView(frame.buffer).setUint32(0, length ?? bytes.length);
  frame.set(bytes, 4);
  return frame;
}

Deno.test("frame: round trips, whole and byte by byte", async (t) => {
  const messages = [{ id: 1, type: "hello", version: 1 }, { id: 2, text: "ünïcødé ✓" }, { id: 3 }];
  const bytes = new Uint8Array(messages.flatMap((m) => [...encodeFrame(m)]));

  await t.step("in one chunk", async () => {
    assert.deepEqual(await collect(streamOf(bytes)), messages);
  });
  await t.step("one byte at a time", async () => {
    const chunks = [...bytes].map((byte) => new Uint8Array([byte]));
    assert.deepEqual(await collect(streamOf(...chunks)), messages);
  });
  await t.step("in uneven chunks", async () => {
    const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 20), bytes.subarray(20)];
    assert.deepEqual(await collect(streamOf(...chunks)), messages);
  });
  await t.step("a header announces the body length, big-endian", () => {
    const frame = encodeFrame({ a: 1 });
    assert.deepEqual([...frame.subarray(0, 4)], [0, 0, 0, 7]);
    assert.equal(new TextDecoder().decode(frame.subarray(4)), '{"a":1}');
  });
});

Deno.test("frame: the size limit is enforced from the header, before the body", async (t) => {
  await t.step("decoder throws as soon as an oversized header is in", () => {
    const decoder = new FrameDecoder(100);
    decoder.push(rawFrame("", 101).subarray(0, 4));
    assert.throws(() => decoder.next(), ProtocolError);
  });
  await t.step("a frame at the limit is fine", () => {
    const decoder = new FrameDecoder(10);
    decoder.push(rawFrame('{"k":"12"}'));
    assert.deepEqual(decoder.next(), { k: "12" });
  });
  await t.step("default limit is 1 MiB", async () => {
    await assert.rejects(
      collect(streamOf(rawFrame("", MAX_FRAME_BYTES + 1).subarray(0, 4))),
      /exceeds/,
    );
  });
  await t.step("encoding a message over the limit throws", () => {
    assert.throws(() => encodeFrame({ big: "x".repeat(200) }, 100), ProtocolError);
  });
});

Deno.test("frame: garbage and truncated input are protocol errors", async (t) => {
  const cases: [string, Uint8Array][] = [
    ["not JSON", rawFrame("{nope")],
    ["not UTF-8", rawFrame(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))],
    ["JSON but not an object", rawFrame("[1,2,3]")],
    ["JSON null", rawFrame("null")],
    ["a string", rawFrame('"hello"')],
    ["truncated body", rawFrame('{"a":1}').subarray(0, 8)],
    ["truncated header", new Uint8Array([0, 0])],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, async () => {
      await assert.rejects(collect(streamOf(bytes)), ProtocolError);
    });
  }
  await t.step("an empty stream is simply no messages", async () => {
    assert.deepEqual(await collect(streamOf()), []);
  });
});

Deno.test("frame: a large frame's buffer is given back once it is read", () => {
  const decoder = new FrameDecoder();
  const big = encodeFrame({ blob: "x".repeat(900_000) });
  decoder.push(big);
  assert.ok(decoder.capacityBytes >= big.length);
  assert.equal((decoder.next()?.blob as string).length, 900_000);
  assert.ok(decoder.capacityBytes <= 4 * 1024, `${decoder.capacityBytes} bytes kept`);
  // what followed the large frame survives the shrink
  const small = encodeFrame({ after: true });
  const both = new Uint8Array(big.length + small.length);
  both.set(big);
  both.set(small, big.length);
  decoder.push(both.subarray(0, big.length + 3));
  decoder.next();
  decoder.push(both.subarray(big.length + 3));
  assert.deepEqual(decoder.next(), { after: true });
  assert.ok(decoder.capacityBytes <= 4 * 1024);
});

Deno.test("frame: a large frame gets its room at once, exactly, once its header is in", () => {
  const decoder = new FrameDecoder();
  const big = encodeFrame({ blob: "y".repeat(900_000) });
  decoder.push(big.subarray(0, 1000));
  assert.equal(decoder.incompleteFrameBytes, big.length);
  const grown: number[] = [];
  for (let at = 1000; at < big.length; at += 16 * 1024) {
    decoder.push(big.subarray(at, Math.min(big.length, at + 16 * 1024)));
    grown.push(decoder.capacityBytes);
  }
  // doubling on the way held up to twice the frame, and left the smaller buffers behind
  assert.deepEqual(new Set(grown), new Set([big.length]));
  assert.equal(decoder.incompleteFrameBytes, undefined, "complete: nothing is incomplete");
  assert.equal((decoder.next()?.blob as string).length, 900_000);
});

Deno.test("FrameBudget: first come, first served, never more than its total", async () => {
  const budget = new FrameBudget(100);
  const order: string[] = [];
  assert.equal(await budget.acquire(60), 60);
  const b = budget.acquire(60).then((share) => order.push(`b ${share}`));
  // a small one does not pass the one waiting before it
  const c = budget.acquire(10).then((share) => order.push(`c ${share}`));
  // more than the whole budget waits for all of it
  const d = budget.acquire(500).then((share) => order.push(`d ${share}`));
  await Promise.resolve();
  assert.deepEqual(order, []);
  assert.equal(budget.waiting, 3);
  budget.release(60);
  await b;
  await c;
  assert.deepEqual(order, ["b 60", "c 10"]);
  assert.equal(budget.availableBytes, 30);
  budget.release(60);
  budget.release(10);
  await d;
  assert.deepEqual(order, ["b 60", "c 10", "d 100"]);
  assert.equal(budget.availableBytes, 0);
  budget.release(100);
  assert.equal(budget.availableBytes, 100);
});

/** A stream that hands out `chunks` one per pull and counts the pulls. */
function countedStream(chunks: Uint8Array[]) {
  const stream = {
    pulls: 0,
    readable: new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks[stream.pulls++];
        if (chunk) controller.enqueue(chunk);
        else controller.close();
      },
    }, { highWaterMark: 0 }),
  };
  return stream;
}

Deno.test("readFrames: a large frame's body is read only with its share of the budget", async () => {
  const big = encodeFrame({ blob: "z".repeat(2 * LARGE_FRAME_BYTES) });
  const chunked = (frame: Uint8Array) =>
    Array.from(
      { length: Math.ceil(frame.length / 16_384) },
      (_, i) => frame.subarray(i * 16_384, (i + 1) * 16_384),
    );
  const budget = new FrameBudget(big.length);
  const first = countedStream([...chunked(big), encodeFrame({ after: 1 })]);
  const second = countedStream(chunked(big));
  const firstFrames = readFrames(first.readable, MAX_FRAME_BYTES, { budget });
  const secondFrames = readFrames(second.readable, MAX_FRAME_BYTES, { budget });
  const one = await firstFrames.next();
  assert.equal((one.value as { blob: string }).blob.length, 2 * LARGE_FRAME_BYTES);
  // the first frame is being handled: its share is held, so the second reads its header's
  // chunk and then waits, its body unread
  const waiting = secondFrames.next();
  for (let turn = 0; budget.waiting === 0 && turn < 100; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(budget.waiting, 1, "the second reader waits for its share");
  assert.equal(second.pulls, 1);
  // asking for the next frame says the first was handled: its share goes to the second
  const after = await firstFrames.next();
  assert.deepEqual(after.value, { after: 1 });
  const two = await waiting;
  assert.equal((two.value as { blob: string }).blob.length, 2 * LARGE_FRAME_BYTES);
  assert.equal(budget.availableBytes, 0);
  assert.equal((await secondFrames.next()).done, true);
  assert.equal(budget.availableBytes, big.length, "given back when the reader ends");
  assert.equal((await firstFrames.next()).done, true);
});

Deno.test("readFrames: from a chunk source, as from a stream", async (t) => {
  const messages = [{ id: 1, type: "hello" }, { id: 2, text: "ünïcødé ✓" }];
  const bytes = new Uint8Array(messages.flatMap((m) => [...encodeFrame(m)]));
  const read = async (source: ChunkSource) => {
    const got: Record<string, unknown>[] = [];
    for await (const message of readFrames(source)) got.push(message);
    return got;
  };

  await t.step("chunks handed out by the connection itself", async () => {
    const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 20), bytes.subarray(20)];
    assert.deepEqual(await read({ readChunk: () => Promise.resolve(chunks.shift() ?? null) }), [
      ...messages,
    ]);
  });

  await t.step("a connection that only reads into a buffer: chunksOf reads for it", async () => {
    let at = 0;
    const conn = {
      read(into: Uint8Array) {
        if (at === bytes.length) return Promise.resolve(null);
        const count = Math.min(5, into.length, bytes.length - at);
        into.set(bytes.subarray(at, at + count));
        at += count;
        return Promise.resolve(count);
      },
      write: () => Promise.resolve(0),
      close() {},
      remoteAddr: { hostname: "127.0.0.1", port: 1 },
    };
    assert.deepEqual(await read(chunksOf(conn, 8)), messages);
  });

  await t.step("a source that ends inside a frame is a protocol error", async () => {
    const chunks = [bytes.subarray(0, bytes.length - 1)];
    await assert.rejects(
      () => read({ readChunk: () => Promise.resolve(chunks.shift() ?? null) }),
      ProtocolError,
    );
  });
});
