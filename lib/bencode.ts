/**
 * Bencoding (BEP 3): integers, byte strings, lists and dictionaries. Byte strings decode to
 * `Uint8Array`; dictionaries to `Map`s keyed by the raw key decoded as UTF-8 (keys are ASCII
 * in every dictionary we read). Decoding is strict: the canonical form only (no leading
 * zeros, no "-0", keys sorted and unique, nothing after the value), so a value that decodes
 * re-encodes to the same bytes and the same info_hash.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** A bencoded value. */
export type BValue = number | Uint8Array | BValue[] | BDict;
/** A bencoded dictionary. */
export type BDict = Map<string, BValue>;

const MAX_DEPTH = 32;
const encoder = new TextEncoder();
// ignoreBOM: a key's leading U+FEFF is part of it; stripped, "\uFEFFname" read as "name",
// a second "name" hiding from the check that keys are unique, the decoded value no longer
// re-encoding to the bytes (and info_hash) received
const keyDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Encodes a value; a `string` is taken as its UTF-8 bytes. Dictionary keys are sorted. */
export function encode(value: BValue | string): Uint8Array {
  const parts: Uint8Array[] = [];
  encodeInto(value, parts);
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function encodeInto(value: BValue | string, parts: Uint8Array[]): void {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new RangeError(`cannot bencode ${value}`);
    parts.push(encoder.encode(`i${value}e`));
  } else if (typeof value === "string") {
    encodeInto(encoder.encode(value), parts);
  } else if (value instanceof Uint8Array) {
    parts.push(encoder.encode(`${value.length}:`), value);
  } else if (Array.isArray(value)) {
    parts.push(encoder.encode("l"));
    for (const item of value) encodeInto(item, parts);
    parts.push(encoder.encode("e"));
  } else {
    parts.push(encoder.encode("d"));
    const keys = [...value.keys()].map((key) => [key, encoder.encode(key)] as const)
      .sort(([, a], [, b]) => compareBytes(a, b));
    for (const [key, bytes] of keys) {
      encodeInto(bytes, parts);
      encodeInto(value.get(key)!, parts);
    }
    parts.push(encoder.encode("e"));
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Decodes exactly one value filling all of `bytes`; throws `ProtocolError` otherwise. */
export function decode(bytes: Uint8Array): BValue {
  const decoder = new Decoder(bytes);
  const value = decoder.value(0);
  if (decoder.at !== bytes.length) throw new ProtocolError("bencode: bytes after the value");
  return value;
}

class Decoder {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  value(depth: number): BValue {
    if (depth > MAX_DEPTH) throw new ProtocolError("bencode: nested too deeply");
    const byte = this.bytes[this.at];
    if (byte === 0x69) return this.integer(); // i
    if (byte === 0x6c) { // l
      this.at++;
      const list: BValue[] = [];
      while (this.peek() !== 0x65) list.push(this.value(depth + 1));
      this.at++;
      return list;
    }
    if (byte === 0x64) { // d
      this.at++;
      const dict: BDict = new Map();
      let previous: Uint8Array | undefined;
      while (this.peek() !== 0x65) {
        const keyBytes = this.string();
        if (previous && compareBytes(previous, keyBytes) >= 0) {
          throw new ProtocolError("bencode: dictionary keys unsorted or repeated");
        }
        previous = keyBytes;
        let key: string;
        try {
          key = keyDecoder.decode(keyBytes);
        } catch {
          throw new ProtocolError("bencode: dictionary key is not UTF-8");
        }
        dict.set(key, this.value(depth + 1));
      }
      this.at++;
      return dict;
    }
    if (byte >= 0x30 && byte <= 0x39) return this.string();
    throw new ProtocolError(
      byte === undefined ? "bencode: truncated" : `bencode: unexpected byte ${byte} at ${this.at}`,
    );
  }

  peek(): number {
    if (this.at >= this.bytes.length) throw new ProtocolError("bencode: truncated");
    return this.bytes[this.at];
  }

  /** Digits up to `terminator`, as a canonical integer. */
  digits(terminator: number, signed: boolean): number {
    const start = this.at;
    const end = this.bytes.indexOf(terminator, start);
    if (end < 0 || end - start > 17) throw new ProtocolError("bencode: bad or truncated number");
    const text = String.fromCharCode(...this.bytes.subarray(start, end));
    const pattern = signed ? /^(0|-?[1-9][0-9]*)$/ : /^(0|[1-9][0-9]*)$/;
    if (!pattern.test(text)) throw new ProtocolError(`bencode: malformed number "${text}"`);
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new ProtocolError("bencode: number too large");
    this.at = end + 1;
    return value;
  }

  integer(): number {
    this.at++; // i
    return this.digits(0x65, true);
  }

  string(): Uint8Array {
    const length = this.digits(0x3a, false);
    if (this.at + length > this.bytes.length) {
      throw new ProtocolError("bencode: string past the end");
    }
    const value = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return value;
  }
}
