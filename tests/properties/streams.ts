/**
 * Properties of the two stream decoders: the peer wire reader (lib/wire.ts) and the tracker
 * frame decoder (lib/frame.ts). Any chunking of a byte stream yields the same messages and
 * the same error; valid messages come back as sent; a declared length over a limit is
 * refused as soon as its header is in, before the buffer grows for it. Also the checks a
 * serving peer applies to the numbers in a request (lib/pieces.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError } from "../../lib/errors.ts";
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, readFrames } from "../../lib/frame.ts";
import {
  BLOCK_LENGTH,
  isServableRequest,
  isValidBlock,
  pieceCount,
  pieceSize,
} from "../../lib/pieces.ts";
import {
  type ByteSource,
  decodeDonthave,
  decodeHandshake,
  encodeDonthave,
  encodeHandshake,
  encodeMessage,
  extensionIdOf,
  HANDSHAKE_LENGTH,
  MessageId,
  type WireLimits,
  type WireMessage,
  WireReader,
} from "../../lib/wire.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { bencodeValue } from "./codecs.ts";
import {
  anyBytes,
  asyncOutcomeOf,
  chunking,
  chunksOf,
  mutatedBytes,
  type NamedProperty,
  type Outcome,
  outcomeOf,
  utf8,
} from "./inputs.ts";

// The peer wire

const u32 = fc.oneof(
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc.constantFrom(0, 1, BLOCK_LENGTH, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff),
);

/** Any message the encoders make (a piece carries 1 byte to a whole block). */
export const wireMessage: fc.Arbitrary<WireMessage> = fc.oneof(
  fc.constantFrom<WireMessage>(
    { type: "keep_alive" },
    { type: "choke" },
    { type: "unchoke" },
    { type: "interested" },
    { type: "not_interested" },
  ),
  fc.record({ type: fc.constant("have" as const), index: u32 }),
  fc.record({ type: fc.constant("bitfield" as const), bits: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({
    type: fc.constantFrom("request" as const, "cancel" as const),
    index: u32,
    begin: u32,
    length: u32,
  }),
  fc.record({
    type: fc.constant("piece" as const),
    index: u32,
    begin: u32,
    block: fc.oneof(
      { weight: 30, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
      {
        weight: 1,
        arbitrary: fc.nat(255).map((byte) => new Uint8Array(BLOCK_LENGTH).fill(byte)),
      },
    ),
  }),
  fc.record({ type: fc.constant("port" as const), port: fc.nat(65535) }),
  fc.record({
    type: fc.constant("extended" as const),
    extId: fc.nat(255),
    payload: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.record({
    type: fc.constant("unknown" as const),
    id: fc.integer({ min: 10, max: 255 }).filter((id) => id !== MessageId.extended),
  }),
);

/** Reader limits that still admit every message `wireMessage` makes, or the defaults. */
const roomyLimits: fc.Arbitrary<Partial<WireLimits>> = fc.oneof(
  fc.constant({}),
  fc.record({
    maxBitfieldBytes: fc.integer({ min: 40, max: 100 }),
    maxExtendedBytes: fc.integer({ min: 41, max: 100 }),
    maxUnknownBytes: fc.integer({ min: 0, max: 100 }),
  }),
);

const DEFAULT_WIRE_LIMITS: WireLimits = {
  maxBitfieldBytes: 1 << 20,
  maxExtendedBytes: 1 << 16,
  maxUnknownBytes: 1 << 16,
};

/**
 * The lengths (id byte included) BEP 3 and BEP 10 allow a message of `id`, within `limits`:
 * written from the specifications, not from the reader.
 */
function allowedLengths(id: number, limits: WireLimits): [number, number] {
  switch (id) {
    case MessageId.choke:
    case MessageId.unchoke:
    case MessageId.interested:
    case MessageId.notInterested:
      return [1, 1];
    case MessageId.have:
      return [5, 5];
    case MessageId.request:
    case MessageId.cancel:
      return [13, 13];
    case MessageId.port:
      return [3, 3];
    case MessageId.bitfield:
      return [1, 1 + limits.maxBitfieldBytes];
    case MessageId.piece:
      return [10, 9 + BLOCK_LENGTH];
    case MessageId.extended:
      return [2, 1 + limits.maxExtendedBytes];
    default:
      return [1, 1 + limits.maxUnknownBytes];
  }
}

const TYPE_OF_ID: Record<number, WireMessage["type"]> = {
  0: "choke",
  1: "unchoke",
  2: "interested",
  3: "not_interested",
  4: "have",
  5: "bitfield",
  6: "request",
  7: "piece",
  8: "cancel",
  9: "port",
  20: "extended",
};

/** Hands out chunks as they were cut (a chunk split only where `into` is smaller). */
class ChunkSource implements ByteSource {
  /** The largest buffer the reader gave us to fill: its allocation. */
  largestBuffer = 0;
  #chunks: Uint8Array[];
  constructor(chunks: Uint8Array[]) {
    this.#chunks = [...chunks];
  }
  read(into: Uint8Array): Promise<number | null> {
    this.largestBuffer = Math.max(this.largestBuffer, into.buffer.byteLength);
    const chunk = this.#chunks.shift();
    if (!chunk) return Promise.resolve(null);
    const count = Math.min(into.length, chunk.length);
    into.set(chunk.subarray(0, count));
    if (count < chunk.length) this.#chunks.unshift(chunk.subarray(count));
    return Promise.resolve(count);
  }
}

/** `head`, then zeros for ever: a peer that keeps sending. */
class EndlessSource implements ByteSource {
  largestBuffer = 0;
  delivered = 0;
  constructor(readonly head: Uint8Array) {}
  read(into: Uint8Array): Promise<number | null> {
    this.largestBuffer = Math.max(this.largestBuffer, into.buffer.byteLength);
    into.fill(0);
    const from = Math.min(this.delivered, this.head.length);
    const count = Math.min(into.length, this.head.length - from);
    into.set(this.head.subarray(from, from + count));
    this.delivered += into.length;
    return Promise.resolve(into.length);
  }
}

/** A message with its bytes copied out of the reader's buffer (valid only until `next`). */
function detached(message: WireMessage | null): WireMessage | null {
  if (message?.type === "bitfield") return { ...message, bits: message.bits.slice() };
  if (message?.type === "piece") return { ...message, block: message.block.slice() };
  if (message?.type === "extended") return { ...message, payload: message.payload.slice() };
  return message;
}

/** Everything a reader makes of `chunks`: the handshake, messages, then null or an error. */
async function readWire(
  chunks: Uint8Array[],
  withHandshake: boolean,
  limits: Partial<WireLimits>,
  initialBytes: number,
): Promise<{ outcomes: Outcome<unknown>[]; largestBuffer: number }> {
  const source = new ChunkSource(chunks);
  const reader = new WireReader(source, limits, initialBytes);
  const outcomes: Outcome<unknown>[] = [];
  if (withHandshake) {
    outcomes.push(await asyncOutcomeOf(() => reader.readHandshake(), [ProtocolError]));
    if (!outcomes[0].ok) return { outcomes, largestBuffer: source.largestBuffer };
  }
  for (;;) {
    const outcome = await asyncOutcomeOf(
      async () => detached(await reader.next()),
      [ProtocolError],
    );
    outcomes.push(outcome);
    if (!outcome.ok || outcome.value === null) break;
  }
  return { outcomes, largestBuffer: source.largestBuffer };
}

/** The most a reader may hold: its first buffer, or twice the largest read it must make. */
function wireBufferBound(limits: Partial<WireLimits>, initialBytes: number): number {
  const { maxBitfieldBytes, maxExtendedBytes, maxUnknownBytes } = {
    ...DEFAULT_WIRE_LIMITS,
    ...limits,
  };
  const largestMessage = Math.max(
    13,
    1 + maxBitfieldBytes,
    9 + BLOCK_LENGTH,
    1 + maxExtendedBytes,
    1 + maxUnknownBytes,
  );
  return Math.max(initialBytes, 2 * (4 + largestMessage), 2 * HANDSHAKE_LENGTH);
}

const twentyBytes = fc.uint8Array({ minLength: 20, maxLength: 20 });

// Tracker frames

/** A frame as it travels, with any declared length. */
function rawFrame(body: Uint8Array, declared = body.length): Uint8Array {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, Math.min(declared, 0xffff_ffff));
  frame.set(body, 4);
  return frame;
}

const jsonObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof(fc.string({ unit: "binary", maxLength: 8 }), fc.constantFrom("id", "type", "__proto__")),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 5 },
);

/** A frame the decoder must refuse, whatever its limit. */
type BadFrame =
  | { kind: "not_object"; text: string }
  | { kind: "not_utf8"; bytes: Uint8Array }
  | { kind: "not_json"; text: string }
  | { kind: "over_limit"; excess: number };

const badFrame: fc.Arbitrary<BadFrame> = fc.oneof(
  fc.record({
    kind: fc.constant("not_object" as const),
    text: fc.oneof(
      fc.constantFrom("[]", "1", "null", '"text"', "true", "[{}]"),
      fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v))
        .map((v) => JSON.stringify(v)),
    ),
  }),
  fc.record({
    kind: fc.constant("not_utf8" as const),
    // a JSON object but for bytes that are not UTF-8 inside its string
    bytes: fc.tuple(
      fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [
        0xf8,
        0x88,
        0x80,
        0x80,
      ]),
      fc.string({ unit: "grapheme-ascii", maxLength: 4 }).map((text) => text.replace(/["\\]/g, "")),
    ).map(([bad, text]) => concatBytes(utf8(`{"k":"${text}`), Uint8Array.from(bad), utf8('"}'))),
  }),
  fc.record({
    kind: fc.constant("not_json" as const),
    text: fc.string({ maxLength: 16 }).map((text) => `}${text}`),
  }),
  fc.record({
    kind: fc.constant("over_limit" as const),
    excess: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(2 ** 32)),
  }),
);

function badFrameBytes(frame: BadFrame, limit: number): Uint8Array {
  switch (frame.kind) {
    case "not_object":
    case "not_json":
      return rawFrame(utf8(frame.text));
    case "not_utf8":
      return rawFrame(frame.bytes);
    case "over_limit":
      return rawFrame(new Uint8Array(0), limit + frame.excess);
  }
}

/**
 * Everything readFrames makes of `chunks`: messages, then "end" or an error. They come
 * through a web stream, or (`"source"`) a chunk source as a tracker connection hands them.
 */
async function readAllFrames(
  chunks: Uint8Array[],
  limit: number,
  through: "stream" | "source" = "stream",
): Promise<Outcome<unknown>[]> {
  const outcomes: Outcome<unknown>[] = [];
  const left = [...chunks];
  const source = through === "stream"
    ? ReadableStream.from(chunks)
    : { readChunk: () => Promise.resolve(left.shift() ?? null) };
  const outcome = await asyncOutcomeOf(async () => {
    for await (const message of readFrames(source, limit)) {
      outcomes.push({ ok: true, value: message });
    }
    return "end";
  }, [ProtocolError]);
  outcomes.push(outcome);
  return outcomes;
}

/** The body a message travels as (JSON), and the value it parses back to. */
function asSent(message: Record<string, unknown>): { length: number; value: unknown } {
  const json = JSON.stringify(message);
  return { length: utf8(json).length, value: JSON.parse(json) };
}

const frameLimit = fc.oneof(
  fc.constant(MAX_FRAME_BYTES),
  fc.integer({ min: 0, max: 300 }),
  fc.constantFrom(0, 2, 16 * 1024),
);

/** Capacity the frame decoder keeps between frames at most once it has given a large one back. */
const KEPT_CAPACITY_BYTES = 64 * 1024;
/** The decoder's smallest buffer. */
const FIRST_CAPACITY_BYTES = 4096;

/** Properties of lib/wire.ts, lib/frame.ts and the request checks of lib/pieces.ts. */
export const streamProperties: NamedProperty[] = [
  {
    name: "wire.chunking",
    claim: "any chunking of a peer's bytes yields the messages sent, then the same end or error",
    testRuns: 500,
    build: () =>
      fc.asyncProperty(
        fc.option(fc.tuple(twentyBytes, twentyBytes), { nil: undefined }),
        fc.array(wireMessage, { maxLength: 10 }),
        fc.oneof(
          { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
          { weight: 1, arbitrary: anyBytes },
          { weight: 2, arbitrary: mutatedBytes(wireMessage.map(encodeMessage)) },
        ),
        roomyLimits,
        fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 256 }) }, {
          weight: 1,
          arbitrary: fc.constant(1 << 18),
        }),
        chunking,
        chunking,
        async (handshake, messages, tail, limits, initialBytes, chunkingA, chunkingB) => {
          const bytes = concatBytes(
            handshake ? encodeHandshake(...handshake) : new Uint8Array(0),
            ...messages.map(encodeMessage),
            tail,
          );
          const a = await readWire(chunksOf(bytes, chunkingA), !!handshake, limits, initialBytes);
          const b = await readWire(chunksOf(bytes, chunkingB), !!handshake, limits, initialBytes);
          assert.deepEqual(a.outcomes, b.outcomes, "two chunkings read differently");
          // (a generated message may have a null prototype; decoded ones are plain objects)
          const sent: Outcome<unknown>[] = messages.map((value) => ({
            ok: true,
            value: { ...value },
          }));
          if (handshake) {
            const [infoHash, peerId] = handshake;
            sent.unshift({ ok: true, value: { infoHash, peerId, supportsExtensions: true } });
          }
          assert.deepEqual(a.outcomes.slice(0, sent.length), sent, "not the messages sent");
          if (tail.length === 0) {
            assert.deepEqual(a.outcomes.slice(sent.length), [{ ok: true, value: null }]);
          }
          const bound = wireBufferBound(limits, initialBytes);
          assert.ok(Math.max(a.largestBuffer, b.largestBuffer) <= bound, "buffer over its bound");
        },
      ),
  },
  {
    name: "wire.declared_lengths",
    claim: "a message length outside its kind's bounds is refused from its 5-byte header alone",
    testRuns: 1000,
    build: () =>
      fc.asyncProperty(
        fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom(...Object.keys(TYPE_OF_ID).map(Number)) },
          { weight: 1, arbitrary: fc.nat(255) },
        ),
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc.record({
              bound: fc.constantFrom(0 as const, 1 as const),
              delta: fc.constantFrom(-1, 0, 1),
            }),
          },
          fc.integer({ min: 0, max: 140 }),
          fc.integer({ min: BLOCK_LENGTH, max: BLOCK_LENGTH + 12 }),
          fc.integer({ min: 2 ** 20, max: 0xffff_ffff }),
          fc.constantFrom(2 ** 31, 0xffff_ffff),
        ),
        fc.oneof(
          fc.constant(DEFAULT_WIRE_LIMITS),
          fc.record({
            maxBitfieldBytes: fc.nat(100),
            maxExtendedBytes: fc.integer({ min: 1, max: 100 }),
            maxUnknownBytes: fc.nat(100),
          }),
        ),
        fc.integer({ min: 5, max: 4096 }),
        async (id, declared, limits, initialBytes) => {
          const [min, max] = allowedLengths(id, limits);
          // either a length right at a bound (or one off), or any length
          const length = typeof declared === "number"
            ? declared
            : Math.max(0, [min, max][declared.bound] + declared.delta);
          const header = new Uint8Array(5);
          new DataView(header.buffer).setUint32(0, length);
          header[4] = id;
          const source = new EndlessSource(header);
          const reader = new WireReader(source, limits, initialBytes);
          const outcome = await asyncOutcomeOf(() => reader.next(), [ProtocolError]);
          if (length === 0) {
            assert.deepEqual(outcome, { ok: true, value: { type: "keep_alive" } });
          } else if (length >= min && length <= max) {
            assert.ok(outcome.ok, `length ${length} of message ${id} refused`);
            const type = (outcome.value as WireMessage).type;
            assert.equal(type, TYPE_OF_ID[id] ?? "unknown");
          } else {
            assert.ok(!outcome.ok, `length ${length} of message ${id} accepted`);
            assert.equal(
              source.largestBuffer,
              initialBytes,
              "the buffer grew for a refused length",
            );
          }
        },
      ),
  },
  {
    name: "wire.donthave",
    claim: "any lt_donthave payload gives a piece of the torrent or throws ProtocolError; " +
      "encoded ones round-trip with the remote's extension id",
    testRuns: 2000,
    build: () =>
      fc.property(
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 1, max: 1 << 21 }),
        u32,
        fc.oneof(anyBytes, fc.uint8Array({ minLength: 4, maxLength: 4 })),
        (extId, pieces, index, payload) => {
          const message = encodeDonthave(extId, index);
          assert.equal(message[4], MessageId.extended);
          assert.equal(message[5], extId);
          const sent = outcomeOf(() => decodeDonthave(message.subarray(6), pieces), [
            ProtocolError,
          ]);
          if (index < pieces) assert.deepEqual(sent, { ok: true, value: index });
          else assert.equal(sent.ok, false);
          const outcome = outcomeOf(() => decodeDonthave(payload, pieces), [ProtocolError]);
          if (outcome.ok) {
            assert.equal(payload.length, 4);
            assert.ok(Number.isInteger(outcome.value) && outcome.value < pieces);
          }
        },
      ),
  },
  {
    name: "wire.extension_ids",
    claim: "any extension handshake gives an id of one byte, 0 (off) or nothing; " +
      "the id it names comes back",
    testRuns: 1000,
    build: () =>
      fc.property(
        bencodeValue,
        fc.oneof(fc.integer({ min: 0, max: 255 }), bencodeValue),
        bencodeValue,
        (handshake, id, other) => {
          const any = extensionIdOf(handshake, "lt_donthave");
          assert.ok(any === undefined || (Number.isInteger(any) && any >= 0 && any < 256));
          const named = new Map([["m", new Map([["lt_donthave", id], ["x", other]])]]);
          const expected = typeof id === "number" && Number.isInteger(id) && id >= 0 && id < 256
            ? id
            : undefined;
          assert.equal(extensionIdOf(named, "lt_donthave"), expected);
        },
      ),
  },
  {
    name: "wire.handshake",
    claim: "any bytes decode as the handshake they encode or throw ProtocolError",
    testRuns: 2000,
    build: () =>
      fc.property(
        twentyBytes,
        twentyBytes,
        fc.oneof(
          anyBytes,
          fc.uint8Array({ minLength: HANDSHAKE_LENGTH, maxLength: HANDSHAKE_LENGTH }),
          mutatedBytes(fc.tuple(twentyBytes, twentyBytes).map(([a, b]) => encodeHandshake(a, b))),
        ),
        (infoHash, peerId, bytes) => {
          assert.deepEqual(decodeHandshake(encodeHandshake(infoHash, peerId)), {
            infoHash,
            peerId,
            supportsExtensions: true,
          });
          const outcome = outcomeOf(() => decodeHandshake(bytes), [ProtocolError]);
          if (!outcome.ok) return;
          assert.equal(bytes.length, HANDSHAKE_LENGTH);
          assert.deepEqual(
            bytes.subarray(0, 20),
            encodeHandshake(infoHash, peerId).subarray(0, 20),
          );
          assert.deepEqual(outcome.value.infoHash, bytes.subarray(28, 48));
        },
      ),
  },
  {
    name: "frame.chunking",
    claim:
      "any chunking of a tracker link, through a stream or a chunk source, yields the frames sent, then the same end or error",
    testRuns: 500,
    build: () =>
      fc.asyncProperty(
        fc.array(jsonObject, { maxLength: 6 }),
        fc.option(badFrame, { nil: undefined }),
        fc.option(fc.oneof(anyBytes, mutatedBytes(jsonObject.map((o) => encodeFrame(o)))), {
          nil: undefined,
        }),
        frameLimit,
        chunking,
        chunking,
        async (messages, bad, tail, limit, chunkingA, chunkingB) => {
          const bytes = concatBytes(
            ...messages.map((message) => encodeFrame(message)),
            bad ? badFrameBytes(bad, limit) : new Uint8Array(0),
            tail ?? new Uint8Array(0),
          );
          const a = await readAllFrames(chunksOf(bytes, chunkingA), limit);
          const b = await readAllFrames(chunksOf(bytes, chunkingB), limit, "source");
          assert.deepEqual(a, b, "two chunkings, one through a stream, read differently");
          // what must come out: each frame up to the first one over the limit, which fails
          let at = 0;
          for (const message of messages) {
            const { length, value } = asSent(message);
            if (length > limit) {
              assert.ok(!a[at].ok, `a ${length}-byte frame passed the ${limit}-byte limit`);
              return;
            }
            assert.deepEqual(a[at++], { ok: true, value });
          }
          if (bad) assert.ok(!a[at].ok, `a bad frame (${bad.kind}) was accepted`);
          else if (!tail) assert.deepEqual(a.slice(at), [{ ok: true, value: "end" }]);
        },
      ),
  },
  {
    name: "frame.memory",
    claim: "the decoder holds at most twice a frame plus a chunk, refuses an oversized " +
      "length from its header and gives a large buffer back",
    testRuns: 300,
    build: () =>
      fc.property(
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: jsonObject },
            {
              weight: 1,
              arbitrary: fc.integer({ min: 1000, max: 300_000 }).map((n) => ({
                pad: "x".repeat(n),
              })),
            },
          ),
          { maxLength: 5 },
        ),
        fc.option(fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(2 ** 32)), {
          nil: undefined,
        }),
        fc.oneof(fc.constant(MAX_FRAME_BYTES), fc.integer({ min: 0, max: 400_000 })),
        fc.integer({ min: 1, max: 100_000 }),
        (messages, oversizeBy, limit, chunkBytes) => {
          const frames = messages.map((message) => encodeFrame(message));
          const oversizeHeaderEnd = frames.reduce((sum, frame) => sum + frame.length, 4);
          if (oversizeBy !== undefined) {
            frames.push(rawFrame(new Uint8Array(0), limit + oversizeBy));
          }
          const bytes = concatBytes(...frames);
          // at most 2,000 pushes, however small the chunks
          const size = Math.max(chunkBytes, Math.ceil(bytes.length / 2000));
          const decoder = new FrameDecoder(limit);
          let pushed = 0;
          let largestChunk = 0;
          let taken = 0;
          for (let start = 0; start < bytes.length; start += size) {
            const chunk = bytes.subarray(start, start + size);
            decoder.push(chunk);
            pushed += chunk.length;
            largestChunk = Math.max(largestChunk, chunk.length);
            const outcome = outcomeOf(() => {
              while (decoder.next()) taken++;
            }, [ProtocolError]);
            const bound = Math.max(FIRST_CAPACITY_BYTES, 2 * (3 + limit + largestChunk));
            assert.ok(decoder.capacityBytes <= bound, `${decoder.capacityBytes} > ${bound}`);
            if (!outcome.ok) {
              // the first frame over the limit fails once its header is in, not later
              const firstTooLong = messages.findIndex((_, i) => frames[i].length - 4 > limit);
              const headerEnd = firstTooLong >= 0
                ? frames.slice(0, firstTooLong).reduce((sum, frame) => sum + frame.length, 4)
                : oversizeHeaderEnd;
              assert.ok(firstTooLong >= 0 || oversizeBy !== undefined, outcome.error);
              assert.ok(pushed >= headerEnd && pushed - chunk.length < headerEnd, "refused late");
              return;
            }
          }
          assert.ok(messages.every((_, i) => frames[i].length - 4 <= limit), "too long accepted");
          assert.equal(oversizeBy, undefined, "an oversized header was accepted");
          assert.equal(taken, messages.length);
          if (taken > 0) {
            assert.ok(decoder.capacityBytes <= KEPT_CAPACITY_BYTES, "kept a big buffer");
          }
        },
      ),
  },
  {
    name: "pieces.request_checks",
    claim: "the checks on a peer's request numbers never throw and pass only what fits a piece",
    build: () =>
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: 4 * 524_288 }),
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        ),
        u32,
        u32,
        u32,
        (fileLength, index, begin, length) => {
          const servable = isServableRequest(fileLength, index, begin, length);
          const block = isValidBlock(fileLength, index, begin, length);
          if (block) assert.ok(servable, "a valid block is not servable");
          if (!servable) return;
          assert.ok(index < pieceCount(fileLength));
          assert.ok(length > 0 && length <= BLOCK_LENGTH);
          assert.ok(begin + length <= pieceSize(fileLength, index));
        },
      ),
  },
];
