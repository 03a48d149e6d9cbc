import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, readFrames } from "../lib/frame.ts";

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
  assert.ok(decoder.capacityBytes <= 64 * 1024, `${decoder.capacityBytes} bytes kept`);
  // what followed the large frame survives the shrink
  const small = encodeFrame({ after: true });
  const both = new Uint8Array(big.length + small.length);
  both.set(big);
  both.set(small, big.length);
  decoder.push(both.subarray(0, big.length + 3));
  decoder.next();
  decoder.push(both.subarray(big.length + 3));
  assert.deepEqual(decoder.next(), { after: true });
  assert.ok(decoder.capacityBytes <= 64 * 1024);
});
