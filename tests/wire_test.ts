/**
 * Unit tests of lib/wire.ts: every message through encodeMessage and WireReader fed in
 * every way (whole, byte by byte, seeded random chunks), the handshake, truncation at every
 * offset, length limits checked before the body is read, and the batch encoders.
 */

import { concatBytes } from "../lib/bytes.ts";
import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import { BLOCK_LENGTH } from "../lib/pieces.ts";
import {
  allocatePiece,
  BLOCK_ALIGNMENT,
  type ByteSource,
  decodeHandshake,
  encodeCancel,
  encodeHandshake,
  encodeHave,
  encodeMessage,
  encodePiece,
  encodeRequest,
  framePieceRun,
  HANDSHAKE_LENGTH,
  MessageId,
  PIECE_HEADER_LENGTH,
  REQUEST_MESSAGE_LENGTH,
  type WireLimits,
  type WireMessage,
  WireReader,
  writePieceHeader,
  writeRequest,
} from "../lib/wire.ts";
import { seededRandom } from "./harness.ts";

/** A ByteSource handing out `bytes` in chunks of `chunkSize()` bytes, then end of stream. */
class FakeSource implements ByteSource {
  at = 0;
  reads = 0;
  constructor(readonly bytes: Uint8Array, readonly chunkSize: () => number = () => Infinity) {}
  read(into: Uint8Array): Promise<number | null> {
    this.reads++;
    if (this.at >= this.bytes.length) return Promise.resolve(null);
    const n = Math.min(into.length, Math.max(1, this.chunkSize()), this.bytes.length - this.at);
    into.set(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return Promise.resolve(n);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts);
}

/** A message with its byte fields copied out of the reader's buffer. */
function detach(message: WireMessage): WireMessage {
  switch (message.type) {
    case "bitfield":
      return { ...message, bits: message.bits.slice() };
    case "piece":
      return { ...message, block: message.block.slice() };
    case "extended":
      return { ...message, payload: message.payload.slice() };
    default:
      return message;
  }
}

/** Every message the reader yields until a clean end. */
async function readAll(reader: WireReader): Promise<WireMessage[]> {
  const messages: WireMessage[] = [];
  for (let message; (message = await reader.next()) !== null;) messages.push(detach(message));
  return messages;
}

function bytesOf(length: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length }, () => Math.floor(random() * 256));
}

/** One of every message kind, with edge values. */
const EVERY_MESSAGE: WireMessage[] = [
  { type: "keep_alive" },
  { type: "choke" },
  { type: "unchoke" },
  { type: "interested" },
  { type: "not_interested" },
  { type: "have", index: 0 },
  { type: "have", index: 0xffff_ffff },
  { type: "have", index: 8193 },
  { type: "bitfield", bits: new Uint8Array(0) },
  { type: "bitfield", bits: new Uint8Array([0xff, 0x80]) },
  { type: "bitfield", bits: bytesOf(1250, 1) },
  { type: "request", index: 3, begin: 16_384, length: 16_384 },
  { type: "request", index: 0xffff_ffff, begin: 0xffff_fffe, length: 0xffff_fffd },
  { type: "cancel", index: 10_240, begin: 507_904, length: 12_345 },
  { type: "piece", index: 8192, begin: 0, block: bytesOf(BLOCK_LENGTH, 2) },
  { type: "piece", index: 1, begin: 507_904, block: bytesOf(1, 3) },
  { type: "piece", index: 2, begin: 16_384, block: bytesOf(12_345, 4) },
  { type: "port", port: 6881 },
  { type: "port", port: 65_535 },
  { type: "port", port: 0 },
  { type: "extended", extId: 0, payload: new TextEncoder().encode("d1:md6:ticketi1eee") },
  { type: "extended", extId: 255, payload: new Uint8Array(0) },
  { type: "extended", extId: 3, payload: bytesOf(65_535, 5) },
  { type: "unknown", id: 13 },
  { type: "unknown", id: 255 },
  { type: "keep_alive" },
];

/** The ids and lengths the encoders must write, from BEP 3 / BEP 10 directly. */
const EXPECTED_HEADERS: Record<string, [length: number, id?: number]> = {
  keep_alive: [0],
  choke: [1, 0],
  unchoke: [1, 1],
  interested: [1, 2],
  not_interested: [1, 3],
  have: [5, 4],
  request: [13, 6],
  cancel: [13, 8],
  port: [3, 9],
};

Deno.test("encodeMessage writes the BEP 3 layout", async (t) => {
  for (const message of EVERY_MESSAGE) {
    await t.step(message.type, () => {
      const bytes = encodeMessage(message);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const length = view.getUint32(0);
      assert.equal(bytes.length, 4 + length);
      const expected = EXPECTED_HEADERS[message.type];
      if (expected) {
        assert.equal(length, expected[0]);
        if (expected[1] !== undefined) assert.equal(bytes[4], expected[1]);
      }
      switch (message.type) {
        case "have":
          assert.equal(view.getUint32(5), message.index);
          break;
        case "bitfield":
          assert.equal(bytes[4], 5);
          assert.deepEqual(bytes.subarray(5), message.bits);
          break;
        case "request":
        case "cancel":
          assert.deepEqual(
            [view.getUint32(5), view.getUint32(9), view.getUint32(13)],
            [message.index, message.begin, message.length],
          );
          break;
        case "piece":
          assert.equal(bytes[4], 7);
          assert.equal(length, 9 + message.block.length);
          assert.deepEqual([view.getUint32(5), view.getUint32(9)], [message.index, message.begin]);
          assert.deepEqual(bytes.subarray(13), message.block);
          break;
        case "port":
          assert.equal(view.getUint16(5), message.port);
          break;
        case "extended":
          assert.equal(bytes[4], 20);
          assert.equal(bytes[5], message.extId);
          assert.deepEqual(bytes.subarray(6), message.payload);
          break;
        case "unknown":
          assert.deepEqual([length, bytes[4]], [1, message.id]);
          break;
      }
    });
  }
});

Deno.test("every message kind round trips through WireReader", async (t) => {
  const stream = concat(EVERY_MESSAGE.map(encodeMessage));
  const feeds: [string, () => ByteSource, number?][] = [
    ["all at once", () => new FakeSource(stream)],
    ["one byte at a time", () => new FakeSource(stream, () => 1)],
    ["one byte at a time into a tiny buffer", () => new FakeSource(stream, () => 1), 8],
    ["two bytes at a time", () => new FakeSource(stream, () => 2)],
    ...[1, 2, 3, 42, 1234].map((seed): [string, () => ByteSource, number] => {
      const random = seededRandom(seed);
      return [
        `random chunks of 1..40000 bytes, seed ${seed}`,
        () => new FakeSource(stream, () => 1 + Math.floor(random() * 40_000)),
        [16, 1024, 1 << 18][seed % 3],
      ];
    }),
    ...[7, 8].map((seed): [string, () => ByteSource] => {
      const random = seededRandom(seed);
      return [
        `random chunks of 1..20 bytes, seed ${seed}`,
        () => new FakeSource(stream, () => 1 + Math.floor(random() * 20)),
      ];
    }),
  ];
  for (const [name, makeSource, initialBytes] of feeds) {
    await t.step(name, async () => {
      const reader = new WireReader(makeSource(), {}, initialBytes);
      assert.deepEqual(await readAll(reader), EVERY_MESSAGE);
      // and the end stays the end
      assert.equal(await reader.next(), null);
    });
  }

  await t.step("each message alone, one byte at a time", async () => {
    for (const message of EVERY_MESSAGE) {
      const reader = new WireReader(new FakeSource(encodeMessage(message), () => 1), {}, 4);
      assert.deepEqual(await readAll(reader), [message], message.type);
    }
  });

  await t.step("an unknown message's body is skipped, the next message still reads", async () => {
    const unknown = new Uint8Array([0, 0, 0, 4, 42, 0xde, 0xad, 0xbe]);
    const reader = new WireReader(
      new FakeSource(concat([unknown, encodeMessage({ type: "have", index: 9 })]), () => 3),
    );
    assert.deepEqual(await readAll(reader), [{ type: "unknown", id: 42 }, {
      type: "have",
      index: 9,
    }]);
  });
});

Deno.test("piece message block view", async (t) => {
  await t.step("is the block's bytes, a view into the reader's buffer", async () => {
    const block = bytesOf(BLOCK_LENGTH, 9);
    const reader = new WireReader(
      new FakeSource(encodeMessage({ type: "piece", index: 5, begin: 32_768, block })),
    );
    const message = await reader.next();
    assert.ok(message?.type === "piece");
    assert.equal(message.index, 5);
    assert.equal(message.begin, 32_768);
    assert.equal(message.block.length, BLOCK_LENGTH);
    assert.deepEqual(message.block, block);
    // a view, not a copy: the buffer behind it is the reader's, larger than the block; moved
    // back over its 13-byte header to start on 8
    assert.ok(message.block.buffer.byteLength > message.block.byteLength);
    assert.equal(message.block.byteOffset, PIECE_HEADER_LENGTH - PIECE_HEADER_LENGTH % 8);
  });

  await t.step("starts on 8 bytes wherever the message lies, and spares what follows", async () => {
    // a piece and a have take 1023 bytes, 7 mod 8: each block starts at another offset mod 8
    const blocks = Array.from({ length: 8 }, (_, i) => bytesOf(1001, 30 + i));
    const sent: WireMessage[] = blocks.flatMap((block, i) => [
      { type: "piece", index: i, begin: 16_384 * i, block },
      { type: "have", index: 100 + i },
    ]);
    const encoded = sent.map(encodeMessage);
    // where each block starts in the stream, mod 8: all eight residues
    let at = 0;
    const residues = new Set<number>();
    for (const bytes of encoded) {
      if (bytes[4] === MessageId.piece) residues.add((at + PIECE_HEADER_LENGTH) % 8);
      at += bytes.length;
    }
    assert.equal(residues.size, 8);
    const reader = new WireReader(new FakeSource(concat(encoded), () => 3000));
    for (const expected of sent) {
      const message = await reader.next();
      assert.ok(message);
      if (message.type === "piece") assert.equal(message.block.byteOffset % BLOCK_ALIGNMENT, 0);
      assert.deepEqual(detach(message), expected);
    }
    assert.equal(await reader.next(), null);
  });

  await t.step("consecutive pieces each carry their own bytes", async () => {
    const blocks = [bytesOf(BLOCK_LENGTH, 10), bytesOf(BLOCK_LENGTH, 11), bytesOf(100, 12)];
    const stream = concat(
      blocks.map((block, i) => encodeMessage({ type: "piece", index: i, begin: 0, block })),
    );
    const reader = new WireReader(new FakeSource(stream, () => 5000), {}, 20_000);
    for (let i = 0; i < blocks.length; i++) {
      const message = await reader.next();
      assert.ok(message?.type === "piece");
      assert.equal(message.index, i);
      assert.deepEqual(message.block, blocks[i], `block ${i}`);
    }
    assert.equal(await reader.next(), null);
  });
});

Deno.test("handshake", async (t) => {
  const infoHash = bytesOf(20, 20);
  const peerId = new TextEncoder().encode("-SW0100-abcdefghijkl");

  await t.step("encodes the BEP 3 layout with the BEP 10 bit", () => {
    const bytes = encodeHandshake(infoHash, peerId);
    assert.equal(bytes.length, HANDSHAKE_LENGTH);
    assert.equal(bytes[0], 19);
    assert.equal(new TextDecoder().decode(bytes.subarray(1, 20)), "BitTorrent protocol");
    assert.deepEqual([...bytes.subarray(20, 28)], [0, 0, 0, 0, 0, 0x10, 0, 0]);
    assert.deepEqual(bytes.subarray(28, 48), infoHash);
    assert.deepEqual(bytes.subarray(48, 68), peerId);
  });

  await t.step("decodes what it encodes", () => {
    assert.deepEqual(decodeHandshake(encodeHandshake(infoHash, peerId)), {
      infoHash,
      peerId,
      supportsExtensions: true,
    });
  });

  await t.step("reads the BEP 10 bit alone among the reserved bits", () => {
    const cases: [reserved: number[], extensions: boolean][] = [
      [[0, 0, 0, 0, 0, 0, 0, 0], false],
      [[0, 0, 0, 0, 0, 0x10, 0, 0], true],
      [[0, 0, 0, 0, 0, 0x10, 0, 0x05], true], // also DHT and fast extension bits
      [[0, 0, 0, 0, 0, 0xef, 0, 0], false], // every bit of byte 5 but 0x10
      [[0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff], false],
      [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], true],
    ];
    for (const [reserved, extensions] of cases) {
      const bytes = encodeHandshake(infoHash, peerId);
      bytes.set(reserved, 20);
      assert.equal(decodeHandshake(bytes).supportsExtensions, extensions, `${reserved}`);
    }
  });

  await t.step("decoded ids are copies, not views of the input", () => {
    const bytes = encodeHandshake(infoHash, peerId);
    const handshake = decodeHandshake(bytes);
    bytes.fill(0);
    assert.deepEqual(handshake.infoHash, infoHash);
    assert.deepEqual(handshake.peerId, peerId);
  });

  await t.step("encode refuses ids that are not 20 bytes", () => {
    assert.throws(() => encodeHandshake(new Uint8Array(19), peerId), RangeError);
    assert.throws(() => encodeHandshake(infoHash, new Uint8Array(21)), RangeError);
  });

  await t.step("decode refuses what is not a handshake", () => {
    const good = encodeHandshake(infoHash, peerId);
    const spoil = (f: (bytes: Uint8Array) => void) => {
      const bytes = good.slice();
      f(bytes);
      return bytes;
    };
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["one byte short", good.subarray(0, 67)],
      ["one byte long", concat([good, new Uint8Array(1)])],
      ["wrong protocol length", spoil((b) => b[0] = 18)],
      ["lowercase protocol name", spoil((b) => b[1] = "b".charCodeAt(0))],
      ["last letter of the name", spoil((b) => b[19] = 0x60)],
      ["all zeros", new Uint8Array(68)],
      ["seeded garbage", bytesOf(68, 68)],
      ["HTTP", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n".padEnd(68, " "))],
    ];
    for (const [name, bytes] of cases) {
      assert.throws(() => decodeHandshake(bytes), ProtocolError, name);
    }
  });

  await t.step("WireReader reads a handshake then messages, one byte at a time", async () => {
    const messages: WireMessage[] = [
      { type: "bitfield", bits: new Uint8Array([0xa0]) },
      { type: "interested" },
    ];
    const stream = concat([encodeHandshake(infoHash, peerId), ...messages.map(encodeMessage)]);
    const reader = new WireReader(new FakeSource(stream, () => 1), {}, 16);
    const handshake = await reader.readHandshake();
    assert.deepEqual(handshake, { infoHash, peerId, supportsExtensions: true });
    assert.deepEqual(await readAll(reader), messages);
  });

  await t.step("WireReader refuses a garbage or truncated handshake", async () => {
    await assert.rejects(
      new WireReader(new FakeSource(bytesOf(100, 7))).readHandshake(),
      (error: unknown) => error instanceof ProtocolError && /not a BitTorrent/.test(error.message),
    );
    for (const length of [0, 1, 20, 67]) {
      const bytes = encodeHandshake(infoHash, peerId).subarray(0, length);
      await assert.rejects(
        new WireReader(new FakeSource(bytes, () => 1)).readHandshake(),
        (error: unknown) =>
          error instanceof ProtocolError && /closed during handshake/.test(error.message),
        `${length} bytes`,
      );
    }
  });
});

Deno.test("truncated input", async (t) => {
  const messages: WireMessage[] = [
    { type: "have", index: 1 },
    { type: "keep_alive" },
    { type: "piece", index: 0, begin: 0, block: bytesOf(40, 40) },
    { type: "choke" },
    { type: "extended", extId: 1, payload: bytesOf(7, 41) },
  ];
  const encoded = messages.map(encodeMessage);
  const stream = concat(encoded);
  const boundaries = new Map<number, number>([[0, 0]]);
  let at = 0;
  for (let i = 0; i < encoded.length; i++) boundaries.set(at += encoded[i].length, i + 1);

  await t.step("ends cleanly at every boundary and inside a message everywhere else", async () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const chunk of [1, 1000]) {
        const reader = new WireReader(new FakeSource(stream.subarray(0, cut), () => chunk));
        const complete = boundaries.get(cut);
        if (complete !== undefined) {
          assert.deepEqual(await readAll(reader), messages.slice(0, complete), `cut ${cut}`);
        } else {
          const read: WireMessage[] = [];
          await assert.rejects(
            async () => {
              for (let m; (m = await reader.next()) !== null;) read.push(detach(m));
            },
            (error: unknown) =>
              error instanceof ProtocolError && /closed inside a message/.test(error.message),
            `cut ${cut}`,
          );
          // the whole messages before the cut still came out
          const whole = [...boundaries.keys()].filter((b) => b < cut).length - 1;
          assert.deepEqual(read, messages.slice(0, whole), `messages before cut ${cut}`);
        }
      }
    }
  });

  await t.step("a source returning 0 bytes counts as the end", async () => {
    let reads = 0;
    const zero: ByteSource = {
      read: () => {
        // reading again after a 0 would spin forever on a closed socket
        if (reads++ > 0) return Promise.reject(new Error("read again after it returned 0"));
        return Promise.resolve(0);
      },
    };
    assert.equal(await new WireReader(zero).next(), null);
  });
});

/** A length prefix and id, then end of stream: the body never comes. */
function headerOnly(length: number, id: number): Uint8Array {
  const bytes = new Uint8Array(5);
  new DataView(bytes.buffer).setUint32(0, length);
  bytes[4] = id;
  return bytes;
}

/** Header and body of `length - 1` zero bytes. */
function withBody(length: number, id: number): Uint8Array {
  const bytes = new Uint8Array(4 + length);
  bytes.set(headerOnly(length, id));
  return bytes;
}

async function refusedLength(
  bytes: Uint8Array,
  limits: Partial<WireLimits> = {},
  message = /outside|has length/,
): Promise<void> {
  const source = new FakeSource(bytes, () => 1);
  await assert.rejects(
    new WireReader(source, limits, 64).next(),
    (error: unknown) => error instanceof ProtocolError && message.test(error.message),
  );
}

Deno.test("length limits are checked from the 5-byte header, before the body", async (t) => {
  // The body never arrives: if the reader waited for it we would see "closed inside a
  // message" instead of the length refusal.
  const cases: [string, number, number, Partial<WireLimits>?][] = [
    ["piece one byte past a 16 KiB block", 9 + BLOCK_LENGTH + 1, MessageId.piece],
    ["piece with a 4 GiB prefix", 0xffff_ffff, MessageId.piece],
    ["piece without a block", 9, MessageId.piece],
    ["piece with only an index", 5, MessageId.piece],
    ["bitfield past the default 1 MiB", 1 + (1 << 20) + 1, MessageId.bitfield],
    ["bitfield past a set limit", 1 + 100 + 1, MessageId.bitfield, { maxBitfieldBytes: 100 }],
    ["extended past the default 64 KiB", 1 + (1 << 16) + 1, MessageId.extended],
    ["extended past a set limit", 1 + 10 + 1, MessageId.extended, { maxExtendedBytes: 10 }],
    ["extended without its ext id", 1, MessageId.extended],
    ["unknown id past the default 64 KiB", 1 + (1 << 16) + 1, 42],
    ["unknown id past a set limit", 1 + 8 + 1, 99, { maxUnknownBytes: 8 }],
    ["unknown id with a 4 GiB prefix", 0xffff_ffff, 200],
  ];
  for (const [name, length, id, limits] of cases) {
    await t.step(name, () => refusedLength(headerOnly(length, id), limits, /outside/));
  }

  await t.step("the same messages at their limits are read", async () => {
    const atLimit: [number, number, Partial<WireLimits>, WireMessage["type"]][] = [
      [9 + BLOCK_LENGTH, MessageId.piece, {}, "piece"],
      [10, MessageId.piece, {}, "piece"],
      [1 + 100, MessageId.bitfield, { maxBitfieldBytes: 100 }, "bitfield"],
      [1 + (1 << 20), MessageId.bitfield, {}, "bitfield"],
      [1 + 10, MessageId.extended, { maxExtendedBytes: 10 }, "extended"],
      [2, MessageId.extended, {}, "extended"],
      [1 + 8, 99, { maxUnknownBytes: 8 }, "unknown"],
      [1 + (1 << 16), 42, {}, "unknown"],
    ];
    for (const [length, id, limits, type] of atLimit) {
      const reader = new WireReader(new FakeSource(withBody(length, id), () => 4096), limits, 64);
      const message = await reader.next();
      assert.equal(message?.type, type, `${type} of length ${length}`);
      assert.equal(await reader.next(), null);
    }
  });

  await t.step("the body of a refused message is never asked for", async () => {
    const source = new FakeSource(withBody(0xffff, 200), () => 1);
    await assert.rejects(new WireReader(source, { maxUnknownBytes: 100 }, 64).next(), /outside/);
    assert.equal(source.at, 5);
  });
});

Deno.test("fixed-length messages with the wrong length are refused", async (t) => {
  const cases: [string, number, number][] = [
    ["have of length 4", 4, MessageId.have],
    ["have of length 6", 6, MessageId.have],
    ["request of length 12", 12, MessageId.request],
    ["request of length 14", 14, MessageId.request],
    ["cancel of length 12", 12, MessageId.cancel],
    ["choke with a body", 2, MessageId.choke],
    ["unchoke with a body", 2, MessageId.unchoke],
    ["interested with a body", 5, MessageId.interested],
    ["not interested with a body", 2, MessageId.notInterested],
    ["port of length 2", 2, MessageId.port],
    ["port of length 5", 5, MessageId.port],
  ];
  for (const [name, length, id] of cases) {
    await t.step(name, async () => {
      await refusedLength(withBody(length, id), {}, new RegExp(`message ${id} has length`));
    });
  }
});

Deno.test("writeRequest batches requests into one buffer", async (t) => {
  const requests = [
    { index: 0, begin: 0, length: BLOCK_LENGTH },
    { index: 8192, begin: 507_904, length: 12_345 },
    { index: 0xffff_ffff, begin: 16_384, length: 1 },
  ];

  await t.step("at offsets of a subarray, matching encodeRequest", async () => {
    // the batch buffer starts 7 bytes into its ArrayBuffer: offsets must be relative to it
    const backing = new Uint8Array(7 + requests.length * REQUEST_MESSAGE_LENGTH + 5).fill(0xee);
    const batch = backing.subarray(7, 7 + requests.length * REQUEST_MESSAGE_LENGTH);
    requests.forEach((r, i) =>
      writeRequest(batch, i * REQUEST_MESSAGE_LENGTH, r.index, r.begin, r.length)
    );
    assert.deepEqual(batch, concat(requests.map((r) => encodeRequest(r.index, r.begin, r.length))));
    assert.deepEqual([...backing.subarray(0, 7)], Array(7).fill(0xee));
    assert.deepEqual([...backing.subarray(batch.length + 7)], Array(5).fill(0xee));
    const reader = new WireReader(new FakeSource(batch, () => 3));
    assert.deepEqual(await readAll(reader), requests.map((r) => ({ type: "request", ...r })));
  });

  await t.step("cancels too, by id", async () => {
    const batch = new Uint8Array(requests.length * REQUEST_MESSAGE_LENGTH);
    requests.forEach((r, i) =>
      writeRequest(batch, i * REQUEST_MESSAGE_LENGTH, r.index, r.begin, r.length, MessageId.cancel)
    );
    assert.deepEqual(batch, concat(requests.map((r) => encodeCancel(r.index, r.begin, r.length))));
    const reader = new WireReader(new FakeSource(batch));
    assert.deepEqual(await readAll(reader), requests.map((r) => ({ type: "cancel", ...r })));
  });
});

Deno.test("allocatePiece and writePieceHeader", async (t) => {
  await t.step("header layout, block space zeroed", () => {
    const bytes = allocatePiece(0x0102_0304, 0x0506_0708, 100);
    assert.equal(PIECE_HEADER_LENGTH, 13);
    assert.equal(bytes.length, 113);
    assert.deepEqual(
      [...bytes.subarray(0, 13)],
      [0, 0, 0, 109, 7, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.ok(bytes.subarray(13).every((b) => b === 0));
  });

  await t.step("a block filled in place decodes as a piece message", async () => {
    const block = bytesOf(BLOCK_LENGTH, 77);
    const bytes = allocatePiece(8193, 16_384, block.length);
    bytes.subarray(PIECE_HEADER_LENGTH).set(block);
    const reader = new WireReader(new FakeSource(bytes, () => 1000));
    assert.deepEqual(await readAll(reader), [{ type: "piece", index: 8193, begin: 16_384, block }]);
  });

  await t.step("writePieceHeader at an offset of a subarray", () => {
    const backing = new Uint8Array(40).fill(0xaa);
    const into = backing.subarray(3);
    writePieceHeader(into, 10, 2, 32_768, 16_384);
    assert.deepEqual(
      [...backing.subarray(13, 26)],
      [0, 0, 0x40, 0x09, 7, 0, 0, 0, 2, 0, 0, 0x80, 0],
    );
    assert.deepEqual([...backing.subarray(0, 13)], Array(13).fill(0xaa));
    assert.deepEqual([...backing.subarray(26)], Array(14).fill(0xaa));
  });
});

Deno.test("framePieceRun: a run read into the tail becomes piece messages in place", async (t) => {
  const cases: [string, number[]][] = [
    ["one block", [BLOCK_LENGTH]],
    ["three blocks, the last one short", [BLOCK_LENGTH, BLOCK_LENGTH, 1234]],
    ["a whole piece", Array(32).fill(BLOCK_LENGTH)],
  ];
  for (const [name, lengths] of cases) {
    await t.step(name, async () => {
      const data = bytesOf(lengths.reduce((sum, length) => sum + length, 0), lengths.length);
      const headers = lengths.length * PIECE_HEADER_LENGTH;
      const messages = new Uint8Array(headers + data.length);
      messages.set(data, headers); // as one read of the blocks would leave it
      framePieceRun(messages, 7, 32_768, lengths);
      const expected: Uint8Array[] = [];
      let at = 0;
      for (const length of lengths) {
        expected.push(encodePiece(7, 32_768 + at, data.subarray(at, at + length)));
        at += length;
      }
      assert.deepEqual(messages, concat(expected));
      const reader = new WireReader(new FakeSource(messages, () => 4096));
      const decoded = await readAll(reader);
      assert.equal(decoded.length, lengths.length);
    });
  }

  await t.step("messages of the wrong size are refused before anything moves", () => {
    const messages = new Uint8Array(13 + 100).fill(5);
    assert.throws(() => framePieceRun(messages, 0, 0, [99]), RangeError);
    assert.ok(messages.every((b) => b === 5));
  });
});

Deno.test("hasBufferedMessage tells a whole buffered message from a partial one", async () => {
  const requests = [0, 1, 2].map((k) => encodeRequest(3, k * BLOCK_LENGTH, BLOCK_LENGTH));
  // one read brings two requests and half of the third
  const bytes = concat(requests);
  const source = new FakeSource(bytes, () => 17 * 2 + 8);
  const reader = new WireReader(source);
  assert.equal(reader.hasBufferedMessage, false);
  assert.equal((await reader.next())?.type, "request");
  assert.equal(reader.hasBufferedMessage, true);
  assert.equal((await reader.next())?.type, "request");
  assert.equal(reader.hasBufferedMessage, false, "only part of the third is buffered");
  assert.equal(source.reads, 1);
  assert.equal((await reader.next())?.type, "request");
  assert.equal(reader.hasBufferedMessage, false);
});

Deno.test("nextBuffered never reads and consumes only whole messages", async () => {
  const have = encodeHave(5);
  const reader = new WireReader(new FakeSource(concat([have, have.subarray(0, 6)]), () => 15));
  assert.equal(reader.nextBuffered(), undefined, "nothing read yet");
  assert.deepEqual(await reader.next(), { type: "have", index: 5 });
  assert.equal(reader.nextBuffered(), undefined, "six bytes of the second have");
  assert.equal(reader.nextBuffered(), undefined, "still there, not consumed");
  await assert.rejects(reader.next(), /closed inside a message/);

  const oversized = new Uint8Array([0, 1, 0, 0, 7]); // a piece message longer than a block
  const strict = new WireReader(new FakeSource(concat([have, oversized]), () => 100));
  assert.deepEqual(await strict.next(), { type: "have", index: 5 });
  assert.throws(() => strict.nextBuffered(), ProtocolError, "refused from the header alone");
});

Deno.test("limits can be tightened once the torrent is known", async () => {
  const bitfield = encodeMessage({ type: "bitfield", bits: new Uint8Array(3) });
  const loose = new WireReader(new FakeSource(bitfield));
  assert.equal((await loose.next())?.type, "bitfield");
  const tight = new WireReader(new FakeSource(bitfield));
  tight.limit({ maxBitfieldBytes: 2 });
  await assert.rejects(tight.next(), ProtocolError);
});
