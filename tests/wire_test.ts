import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import {
  allocatePiece,
  type ByteSource,
  decodeHandshake,
  encodeHandshake,
  encodeMessage,
  MessageId,
  PIECE_HEADER_LENGTH,
  REQUEST_MESSAGE_LENGTH,
  type WireMessage,
  WireReader,
  writeRequest,
} from "../lib/wire.ts";
import { within } from "./harness.ts";

/** Hands out `bytes` in chunks of the sizes `chunkSize` picks, then end of stream. */
function source(bytes: Uint8Array, chunkSize: () => number = () => bytes.length): ByteSource {
  let at = 0;
  return {
    read(into) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(into.length, Math.max(1, chunkSize()), bytes.length - at);
      into.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function readAll(reader: WireReader): Promise<WireMessage[]> {
  const messages: WireMessage[] = [];
  for (let message = await reader.next(); message; message = await reader.next()) {
    // blocks and payloads are views into the reader's buffer: copy before reading on
    if (message.type === "piece") messages.push({ ...message, block: message.block.slice() });
    else if (message.type === "bitfield") messages.push({ ...message, bits: message.bits.slice() });
    else if (message.type === "extended") {
      messages.push({ ...message, payload: message.payload.slice() });
    } else messages.push(message);
  }
  return messages;
}

const EVERY_MESSAGE: WireMessage[] = [
  { type: "keep_alive" },
  { type: "choke" },
  { type: "unchoke" },
  { type: "interested" },
  { type: "not_interested" },
  { type: "have", index: 4_000_000_000 },
  { type: "bitfield", bits: new Uint8Array([0b1010_0000, 0xff, 0x80]) },
  { type: "request", index: 7, begin: 16_384, length: 16_384 },
  {
    type: "piece",
    index: 7,
    begin: 16_384,
    block: Uint8Array.from({ length: 16_384 }, (_, i) => i & 0xff),
  },
  { type: "piece", index: 0, begin: 0, block: new Uint8Array([42]) },
  { type: "cancel", index: 7, begin: 16_384, length: 16_384 },
  { type: "port", port: 6881 },
  { type: "extended", extId: 0, payload: new TextEncoder().encode("d1:pi6881ee") },
  { type: "extended", extId: 3, payload: new Uint8Array() },
];

function seeded(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

Deno.test("wire: every message round trips, whole, byte by byte and in random chunks", async () => {
  const bytes = concat(EVERY_MESSAGE.map(encodeMessage));
  const random = seeded(7);
  for (const chunk of [() => bytes.length, () => 1, () => Math.floor(random() * 40_000)]) {
    // a small initial buffer forces the reader to compact and grow along the way
    assert.deepEqual(await readAll(new WireReader(source(bytes, chunk), {}, 64)), EVERY_MESSAGE);
  }
});

Deno.test("wire: handshake with the BEP 10 bit, and what is not a handshake", async () => {
  const infoHash = new Uint8Array(20).fill(0xab);
  const peerId = new TextEncoder().encode("-SW0100-abcdefghijkl");
  const bytes = encodeHandshake(infoHash, peerId);
  assert.equal(bytes.length, 68);
  assert.equal(bytes[0], 19);
  assert.equal(new TextDecoder().decode(bytes.subarray(1, 20)), "BitTorrent protocol");
  assert.equal(bytes[25], 0x10);
  assert.deepEqual(decodeHandshake(bytes), { infoHash, peerId, supportsExtensions: true });
  const reader = new WireReader(
    source(concat([bytes, encodeMessage({ type: "unchoke" })]), () => 5),
  );
  assert.deepEqual(await reader.readHandshake(), { infoHash, peerId, supportsExtensions: true });
  assert.deepEqual(await reader.next(), { type: "unchoke" });

  const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\n".repeat(5));
  await assert.rejects(new WireReader(source(garbage)).readHandshake(), ProtocolError);
  await assert.rejects(
    new WireReader(source(bytes.subarray(0, 40))).readHandshake(),
    ProtocolError,
  );
  assert.throws(() => encodeHandshake(new Uint8Array(19), peerId), RangeError);
});

function frame(id: number, body: number[] | Uint8Array, length?: number): Uint8Array {
  const bytes = new Uint8Array(5 + body.length);
  new DataView(bytes.buffer).setUint32(0, length ?? 1 + body.length);
  bytes[4] = id;
  bytes.set(body, 5);
  return bytes;
}

Deno.test("wire: lengths are checked from the header, before the body is awaited", async (t) => {
  const cases: [string, Uint8Array][] = [
    ["a piece block over 16 KiB", frame(MessageId.piece, [], 9 + 16_385)],
    ["a piece with no block", frame(MessageId.piece, [0, 0, 0, 0, 0, 0, 0, 0])],
    ["a bitfield over the limit", frame(MessageId.bitfield, [], 2 + (1 << 20))],
    ["an extended message over the limit", frame(MessageId.extended, [], 2 + (1 << 16))],
    ["an unknown id over the limit", frame(99, [], 2 + (1 << 16))],
    ["have of length 4", frame(MessageId.have, [0, 0, 0])],
    ["request of length 12", frame(MessageId.request, new Array(11).fill(0))],
    ["choke with a body", frame(MessageId.choke, [1])],
    ["a 4 GiB length", frame(MessageId.piece, [], 0xffff_ffff)],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, async () => {
      // only the header is there: a reader that waited for the body would hang, not throw
      const headerOnly = bytes.subarray(0, Math.min(bytes.length, 5));
      let sourceEnded = false;
      const reader = new WireReader({
        read: (into) => {
          if (sourceEnded) return new Promise(() => {}); // never answers
          sourceEnded = true;
          into.set(headerOnly);
          return Promise.resolve(headerOnly.length);
        },
      });
      await assert.rejects(within(reader.next(), "the reader to refuse the header"), ProtocolError);
    });
  }
});

Deno.test("wire: truncation inside a message is an error; between messages it is the end", async () => {
  const have = encodeMessage({ type: "have", index: 1 });
  assert.equal(await new WireReader(source(new Uint8Array())).next(), null);
  const whole = new WireReader(source(have));
  assert.deepEqual(await whole.next(), { type: "have", index: 1 });
  assert.equal(await whole.next(), null);
  for (const cut of [2, 4, 6]) {
    await assert.rejects(
      new WireReader(source(have.subarray(0, cut))).next(),
      /closed inside a message/,
    );
  }
});

Deno.test("wire: unknown ids are skipped within their limit", async () => {
  const bytes = concat([frame(42, [1, 2, 3]), encodeMessage({ type: "choke" })]);
  assert.deepEqual(await readAll(new WireReader(source(bytes))), [
    { type: "unknown", id: 42 },
    { type: "choke" },
  ]);
});

Deno.test("wire: batched requests and a piece buffer filled in place", async () => {
  const batch = new Uint8Array(3 * REQUEST_MESSAGE_LENGTH);
  for (let i = 0; i < 3; i++) {
    writeRequest(batch, i * REQUEST_MESSAGE_LENGTH, i, i * 16_384, 16_384);
  }
  assert.deepEqual(
    await readAll(new WireReader(source(batch))),
    [0, 1, 2].map((i) => ({
      type: "request",
      index: i,
      begin: i * 16_384,
      length: 16_384,
    })),
  );

  const message = allocatePiece(9, 32_768, 4);
  message.set([1, 2, 3, 4], PIECE_HEADER_LENGTH);
  assert.deepEqual(await readAll(new WireReader(source(message))), [
    { type: "piece", index: 9, begin: 32_768, block: new Uint8Array([1, 2, 3, 4]) },
  ]);
  assert.deepEqual([...message.subarray(0, 5)], [0, 0, 0, 13, MessageId.piece]);
});

Deno.test("wire: random garbage is a ProtocolError or a clean end, never a crash", async () => {
  const random = seeded(99);
  for (let round = 0; round < 300; round++) {
    const bytes = Uint8Array.from(
      { length: Math.floor(random() * 64) },
      () => Math.floor(random() * 256),
    );
    // small ids and lengths so that some garbage parses as messages
    if (bytes.length > 4) bytes.set([0, 0, 0, Math.floor(random() * 20)], 0);
    try {
      await readAll(new WireReader(source(bytes, () => 3)));
    } catch (error) {
      assert.ok(error instanceof ProtocolError, String(error));
    }
  }
});

Deno.test("wire: limits can be tightened once the torrent is known", async () => {
  const bitfield = encodeMessage({ type: "bitfield", bits: new Uint8Array(3) });
  const loose = new WireReader(source(bitfield));
  assert.equal((await loose.next())?.type, "bitfield");
  const tight = new WireReader(source(bitfield));
  tight.limit({ maxBitfieldBytes: 2 });
  await assert.rejects(tight.next(), ProtocolError);
});
