/**
 * What the properties of tests/properties.ts are made of: generators of hostile input
 * (mutations of valid bytes and text, bencode-shaped noise, any chunking of a stream) and
 * `outcomeOf`, which turns "a result or the module's documented error" into a value two runs
 * can compare, and turns any other error into a failure of the property.
 *
 * @module
 */

import fc from "fast-check";
import { concatBytes } from "../../lib/bytes.ts";

/** One edit of a byte string; positions are taken modulo its length. */
export type ByteEdit =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "truncate"; at: number }
  | { kind: "duplicate"; at: number; count: number };

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant("set" as const),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("duplicate" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
  }),
);

/** `bytes` with `edits` applied in order. */
export function applyEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const edit of edits) {
    const at = out.length === 0 ? 0 : edit.at % (out.length + 1);
    const inside = Math.min(at, Math.max(out.length - 1, 0));
    switch (edit.kind) {
      case "flip":
        if (out.length > 0) out[inside] ^= 1 << edit.bit;
        break;
      case "set":
        if (out.length > 0) out[inside] = edit.byte;
        break;
      case "insert":
        out = concatBytes(out.subarray(0, at), edit.bytes, out.subarray(at));
        break;
      case "delete":
        out = concatBytes(out.subarray(0, at), out.subarray(at + edit.count));
        break;
      case "truncate":
        out = out.slice(0, at);
        break;
      case "duplicate":
        out = concatBytes(out.subarray(0, at + edit.count), out.subarray(at));
        break;
    }
  }
  return out;
}

/** `valid` bytes with one to four edits: mostly well formed, wrong somewhere. */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(byteEdit, { minLength: 1, maxLength: 4 }))
    .map(([bytes, edits]) => applyEdits(bytes, edits));
}

/** `valid` text with one to four edits of its UTF-16 code units (so also lone surrogates). */
export function mutatedText(
  valid: fc.Arbitrary<string>,
  alphabet: fc.Arbitrary<string> = fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
): fc.Arbitrary<string> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), text: alphabet }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: alphabet }),
    fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({ kind: fc.constant("swap" as const), at: fc.nat() }),
  );
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => {
    for (const edit of edits) {
      const at = edit.at % (text.length + 1);
      if (edit.kind === "replace") text = text.slice(0, at) + edit.text + text.slice(at + 1);
      else if (edit.kind === "insert") text = text.slice(0, at) + edit.text + text.slice(at);
      else if (edit.kind === "delete") text = text.slice(0, at) + text.slice(at + edit.count);
      else if (at + 1 < text.length) {
        text = text.slice(0, at) + text[at + 1] + text[at] + text.slice(at + 2);
      }
    }
    return text;
  });
}

/** Any bytes, and bytes of the few values lengths and flags are made of (0, 1, 0x7f, 0x80, 0xff). */
export const anyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 512 }),
  fc.array(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), { maxLength: 64 }).map((a) =>
    Uint8Array.from(a)
  ),
);

/** Text a user, a file or a peer could send: any code units, ASCII-heavy. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "grapheme-ascii", maxLength: 80 }),
  fc.string({ unit: "binary-ascii", maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(
      "\ud800",
      "\udc00",
      "\u0000",
      "\u001b",
      "\u007f",
      "\u0085",
      "\u009f",
      "\u00a0",
      "\u061c",
      "\u200e",
      "\u200f",
      "\u202a",
      "\u202e",
      "\u2066",
      "\u2069",
      "\ufeff",
      "\r",
      "\t",
      "\n",
      " ",
      "'",
      '"',
      "\\",
      ":",
      "/",
      ".",
    ),
    maxLength: 20,
  }),
);

/**
 * Bytes shaped like bencoding (the tokens `i`, `e`, `l`, `d`, `:`, `-`, digits and short
 * length-prefixed strings) with now and then a stray byte: noise that gets past the first
 * byte of a decoder and into its nesting, numbers and lengths.
 */
export const bencodeNoise: fc.Arbitrary<Uint8Array> = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("i", "e", "l", "d", ":", "-", "0") },
    { weight: 3, arbitrary: fc.integer({ min: -1000, max: 100_000 }).map(String) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "9007199254740991",
        "9007199254740992",
        "2147483648",
        "00",
        "-0",
        "01",
      ),
    },
    {
      weight: 3,
      arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 6 }).map((text) =>
        `${text.length}:${text}`
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "length",
        "name",
        "piece length",
        "pieces",
        "private",
        "p",
        "ticket",
      ).map((key) => `${key.length}:${key}`),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 255 }).map((byte) => String.fromCharCode(byte)),
    },
  ),
  { maxLength: 48 },
).map((tokens) => Uint8Array.from(tokens.join(""), (char) => char.charCodeAt(0) & 0xff));

/**
 * How a stream is cut into chunks: whole, one byte at a time, or at cut points given as
 * numbers taken modulo its length (so a chunking shrinks without knowing the stream).
 */
export type Chunking = { kind: "whole" } | { kind: "bytes" } | { kind: "cuts"; cuts: number[] };

/** Any chunking: whole, byte by byte, or up to 32 cuts anywhere. */
export const chunking: fc.Arbitrary<Chunking> = fc.oneof(
  fc.constant<Chunking>({ kind: "whole" }),
  fc.constant<Chunking>({ kind: "bytes" }),
  fc.record({ kind: fc.constant("cuts" as const), cuts: fc.array(fc.nat(), { maxLength: 32 }) }),
);

/** `bytes` cut as `chunking` says, into copies none of which is empty. */
export function chunksOf(bytes: Uint8Array, chunking: Chunking): Uint8Array[] {
  let cuts: number[];
  if (chunking.kind === "whole") cuts = [];
  else if (chunking.kind === "bytes") cuts = Array.from({ length: bytes.length }, (_, i) => i);
  else cuts = chunking.cuts.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > start) chunks.push(bytes.slice(start, cut));
    start = Math.max(start, cut);
  }
  return chunks;
}

/** The UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** What running a parser came to: its value, or the message of its documented error. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** An error of a kind the code under test does not document: the property fails with it. */
export class UndocumentedError extends Error {
  override name = "UndocumentedError";
}

/**
 * Runs `parse`; its value or documented error (an instance of one of `allowed`) becomes an
 * `Outcome`, anything else (TypeError, RangeError, a stack overflow) fails the property
 * naming what was thrown.
 */
export function outcomeOf<T>(
  parse: () => T,
  allowed: readonly (abstract new (...args: never[]) => Error)[],
): Outcome<T> {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    return refused(error, allowed);
  }
}

/** `outcomeOf` for a parser that returns a promise. */
export async function asyncOutcomeOf<T>(
  parse: () => Promise<T>,
  allowed: readonly (abstract new (...args: never[]) => Error)[],
): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await parse() };
  } catch (error) {
    return refused(error, allowed);
  }
}

function refused(
  error: unknown,
  allowed: readonly (abstract new (...args: never[]) => Error)[],
): Outcome<never> {
  if (allowed.some((kind) => error instanceof kind)) {
    return { ok: false, error: `${(error as Error).name}: ${(error as Error).message}` };
  }
  const shown = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  throw new UndocumentedError(
    `threw ${shown} where only ${allowed.map((kind) => kind.name).join(" or ")} may be thrown`,
    { cause: error },
  );
}

/**
 * A property of a decoder or parser, named for `--only`: `deno test` runs it a few hundred
 * times with a fixed seed, `deno task fuzz` millions of times.
 */
export interface NamedProperty {
  /** `module.what`, e.g. `bencode.round_trip`. */
  name: string;
  /** What holds, in one line. */
  claim: string;
  /** Makes the property; slow setup (keys, certificates) happens here, once per run. */
  build(): fc.IRawProperty<unknown[]> | Promise<fc.IRawProperty<unknown[]>>;
  /** Cases in `deno test`: default 500, fewer for slow properties, more for cheap ones. */
  testRuns?: number;
}
