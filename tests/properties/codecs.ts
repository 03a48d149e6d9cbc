/**
 * Properties of the bencode codec (lib/bencode.ts) and of the torrent info dictionary read
 * from it (lib/metainfo.ts): what any bytes decode to, round trips, and the nesting and
 * length limits refused before any work.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type BValue, decode, encode } from "../../lib/bencode.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { ProtocolError } from "../../lib/errors.ts";
import { encodeInfo, parseInfo, type TorrentInfo } from "../../lib/metainfo.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, PIECE_LENGTH, pieceCount } from "../../lib/pieces.ts";
import { fileNameProblem } from "../../lib/protocol.ts";
import {
  anyBytes,
  bencodeNoise,
  mutatedBytes,
  type NamedProperty,
  outcomeOf,
  utf8,
} from "./inputs.ts";

/** The nesting the decoder documents: a value may sit at most this deep. */
const MAX_DEPTH = 32;

const INFO_KEYS = ["length", "name", "piece length", "pieces", "private"];

const dictionaryKey = fc.oneof(
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.constantFrom(...INFO_KEYS, "p", "ticket", "\ufeff", "\ufeffname"),
);

/** Any bencodable value, at most 6 deep. */
export const bencodeValue: fc.Arbitrary<BValue> = fc.letrec<{ value: BValue }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 6, depthSize: "small" },
    fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.maxSafeInteger()),
    fc.uint8Array({ maxLength: 24 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(dictionaryKey, tie("value")), { maxLength: 4 })
      .map((entries) => new Map(entries)),
  ),
})).value;

/** A name fileNameProblem accepts, as users type them (well-formed Unicode). */
export const acceptedFileName: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 }),
  fc.integer({ min: 1, max: 119 }).map((count) => "é".repeat(count)),
).filter((name) => fileNameProblem(name) === undefined);

/** Bytes of `length` from a seed: piece hashes without generating megabytes of randomness. */
function patternBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (seed + i * 131) & 0xff;
  return bytes;
}

/** A dictionary written by hand: keys in any order, repeated or not (canonical by luck only). */
const looseDictionary: fc.Arbitrary<Uint8Array> = fc.array(
  fc.tuple(fc.constantFrom("", "a", "b", "aa", "ab", "length", "name"), bencodeValue),
  { maxLength: 4 },
).map((entries) =>
  concatBytes(
    utf8("d"),
    ...entries.flatMap(([key, value]) => [encode(key), encode(value)]),
    utf8("e"),
  )
);

/** A valid single-file info dictionary of up to 2 GiB (4,096 pieces). */
export const torrentInfo: fc.Arbitrary<TorrentInfo> = fc.record({
  name: acceptedFileName,
  length: fc.oneof(
    fc.integer({ min: 0, max: 3 * PIECE_LENGTH }),
    fc.constantFrom(0, 1, PIECE_LENGTH - 1, PIECE_LENGTH, PIECE_LENGTH + 1),
    fc.integer({ min: 0, max: 2 ** 31 }),
  ),
  seed: fc.nat(255),
}).map(({ name, length, seed }) => ({
  name,
  length,
  pieceHashes: patternBytes(pieceCount(length) * PIECE_HASH_LENGTH, seed),
}));

/** A dictionary with the info keys (some), values of any type, and now and then another key. */
const infoShapedDictionary: fc.Arbitrary<BValue> = fc.array(
  fc.tuple(
    fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...INFO_KEYS) }, {
      weight: 1,
      arbitrary: dictionaryKey,
    }),
    fc.oneof(
      fc.constantFrom<BValue>(
        PIECE_LENGTH,
        0,
        1,
        -1,
        2,
        utf8("a.iso"),
        utf8(".."),
        new Uint8Array(20),
      ),
      bencodeValue,
    ),
  ),
  { maxLength: 6 },
).map((entries) => new Map(entries));

/** For each field of an info dictionary, values its check must get right. */
const SUSPECT_INFO_VALUES: Record<string, BValue[]> = {
  "length": [
    -1,
    -PIECE_LENGTH,
    0,
    1,
    MAX_FILE_BYTES,
    MAX_FILE_BYTES + 1,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    utf8("5"),
  ],
  "name": [
    "",
    ".",
    "..",
    "a/b",
    "a\\b",
    "\u202egnp.exe",
    "\x1b[31m",
    ".x.swarmshare-part",
    "n".repeat(238),
    "n".repeat(239),
    "\ufeffa.iso",
  ].map((name): BValue => utf8(name)).concat([
    Uint8Array.of(0xff),
    Uint8Array.of(0xed, 0xa0, 0x80),
    7,
  ]),
  "piece length": [0, 1, PIECE_LENGTH / 2, PIECE_LENGTH * 2, -PIECE_LENGTH, utf8("524288")],
  "pieces": [new Uint8Array(0), new Uint8Array(19), new Uint8Array(21), 0],
  "private": [-1, 0, 1, 2, utf8("1"), []],
};

/**
 * A valid info dictionary with one or two fields changed, removed or added: near misses.
 * With `consistent`, `pieces` is then made to fit whatever `length` says, so the case gets
 * past that check to the others.
 */
const nearlyValidInfo: fc.Arbitrary<Uint8Array> = fc.tuple(
  torrentInfo,
  fc.array(
    fc.constantFrom(...INFO_KEYS, "name.utf-8", "files").chain((key) =>
      fc.tuple(
        fc.constant(key),
        fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom(...SUSPECT_INFO_VALUES[key] ?? [1]) },
          { weight: 1, arbitrary: bencodeValue },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
      )
    ),
    { minLength: 1, maxLength: 2 },
  ),
  fc.boolean(),
).map(([info, edits, consistent]) => {
  const dictionary = decode(encodeInfo(info)) as Map<string, BValue>;
  for (const [key, value] of edits) {
    if (value === undefined) dictionary.delete(key);
    else dictionary.set(key, value);
  }
  const length = dictionary.get("length");
  // pieces to fit up to 16 GiB (640 KiB): the 1 TiB case (40 MiB) has a test of its own
  if (consistent && typeof length === "number" && length <= 16 * 1024 ** 3 + PIECE_LENGTH) {
    dictionary.set("pieces", new Uint8Array(Math.max(0, pieceCount(length)) * PIECE_HASH_LENGTH));
  }
  return encode(dictionary);
});

/** `depth` containers (lists, or dictionaries holding key "k"), maybe a leaf inside. */
function nesting(depth: number, dictionaries: boolean[], leaf: boolean): {
  bytes: Uint8Array;
  deepest: number;
} {
  const isDictionary = (i: number) =>
    dictionaries.length > 0 && dictionaries[i % dictionaries.length];
  const open = Array.from({ length: depth }, (_, i) => isDictionary(i) ? "d1:k" : "l").join("");
  // a dictionary's key needs a value: the innermost one always gets the leaf
  const withLeaf = leaf || isDictionary(depth - 1);
  return {
    bytes: utf8(`${open}${withLeaf ? "i7e" : ""}${"e".repeat(depth)}`),
    deepest: withLeaf ? depth : depth - 1,
  };
}

/** Properties of lib/bencode.ts and lib/metainfo.ts. */
export const codecProperties: NamedProperty[] = [
  {
    name: "bencode.decode_any",
    claim: "any bytes decode to a value that re-encodes to exactly them, or throw ProtocolError",
    testRuns: 1000,
    build: () =>
      fc.property(
        fc.oneof(anyBytes, bencodeNoise, looseDictionary, mutatedBytes(bencodeValue.map(encode))),
        (bytes) => {
          const outcome = outcomeOf(() => decode(bytes), [ProtocolError]);
          if (outcome.ok) assert.deepEqual(encode(outcome.value), bytes, "not canonical");
        },
      ),
  },
  {
    name: "bencode.round_trip",
    claim: "decode(encode(v)) is v for every bencodable value",
    build: () =>
      fc.property(bencodeValue, (value) => {
        assert.deepEqual(decode(encode(value)), value);
      }),
  },
  {
    name: "bencode.nesting",
    claim: `values nested up to ${MAX_DEPTH} deep decode; deeper ones (even 20,000) are refused`,
    testRuns: 300,
    build: () =>
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 20_000 })),
        fc.array(fc.boolean(), { maxLength: 8 }),
        fc.boolean(),
        (depth, dictionaries, leaf) => {
          const { bytes, deepest } = nesting(depth, dictionaries, leaf);
          const outcome = outcomeOf(() => decode(bytes), [ProtocolError]);
          if (deepest <= MAX_DEPTH) {
            assert.ok(outcome.ok, `depth ${deepest} refused: ${!outcome.ok && outcome.error}`);
          } else {
            assert.ok(!outcome.ok && /nested too deeply/.test(outcome.error), "deep value decoded");
          }
        },
      ),
  },
  {
    name: "bencode.declared_lengths",
    claim: "a string length or number past what is there (up to 2^53) is refused, never allocated",
    build: () =>
      fc.property(
        fc.oneof(
          fc.integer({ min: 1, max: 2 ** 31 }),
          fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 10 ** 17, 10 ** 20),
        ),
        fc.uint8Array({ maxLength: 16 }),
        fc.constantFrom("", "l", "d", "li1e", "d1:a"),
        fc.constantFrom(":", "e"),
        (declared, rest, before, terminator) => {
          fc.pre(declared > rest.length);
          const number = BigInt(declared).toString();
          const head = terminator === ":" ? `${number}:` : `i${number}e`;
          const bytes = new Uint8Array([...utf8(before + head), ...rest]);
          const outcome = outcomeOf(() => decode(bytes), [ProtocolError]);
          if (terminator === ":") assert.ok(!outcome.ok, "a string past the end decoded");
          else if (!Number.isSafeInteger(declared)) assert.ok(!outcome.ok, "unsafe integer");
        },
      ),
  },
  {
    name: "metainfo.parse_any",
    claim: "any bytes give a TorrentInfo with a safe name that encodes back to them, or " +
      "throw ProtocolError",
    testRuns: 4000,
    build: () =>
      fc.property(
        fc.oneof(
          anyBytes,
          bencodeNoise,
          mutatedBytes(torrentInfo.map(encodeInfo)),
          infoShapedDictionary.map(encode),
          nearlyValidInfo,
        ),
        (bytes) => {
          const outcome = outcomeOf(() => parseInfo(bytes), [ProtocolError]);
          if (!outcome.ok) return;
          const info = outcome.value;
          // what BEP 3, BEP 27 and our piece length allow
          const dictionary = decode(bytes) as Map<string, BValue>;
          for (const key of dictionary.keys()) assert.ok(INFO_KEYS.includes(key), `key "${key}"`);
          assert.equal(dictionary.get("piece length"), PIECE_LENGTH);
          assert.ok([undefined, 0, 1].includes(dictionary.get("private") as number));
          assert.equal(fileNameProblem(info.name), undefined);
          assert.ok(info.length >= 0 && info.length <= MAX_FILE_BYTES, "length out of bounds");
          assert.equal(info.pieceHashes.length, pieceCount(info.length) * PIECE_HASH_LENGTH);
          assert.deepEqual(parseInfo(encodeInfo(info)), info);
          // canonical: what it reads is what encodeInfo writes (but a missing or 0 private)
          if (dictionary.get("private") === 1) assert.deepEqual(encodeInfo(info), bytes);
        },
      ),
  },
  {
    name: "metainfo.round_trip",
    claim: "parseInfo(encodeInfo(info)) is info, and re-encodes to the same bytes",
    build: () =>
      fc.property(torrentInfo, (info) => {
        const bytes = encodeInfo(info);
        const parsed = parseInfo(bytes);
        assert.deepEqual(parsed, info);
        assert.deepEqual(encodeInfo(parsed), bytes);
      }),
  },
];
