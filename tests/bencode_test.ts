/**
 * Unit tests of lib/bencode.ts: round trips of every value type, the strict (canonical-only)
 * decoder's refusals, and key order by raw bytes when encoding.
 */

import assert from "node:assert/strict";
import { type BDict, type BValue, decode, encode } from "../lib/bencode.ts";
import { ProtocolError } from "../lib/errors.ts";

const text = new TextEncoder();
const ascii = (s: string) => text.encode(s);
const str = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Bytes from a string in which every char is one byte (0..255), for non-UTF-8 input. */
function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function rejects(bytes: Uint8Array, message?: RegExp): void {
  assert.throws(() => decode(bytes), (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${error}`);
    if (message) assert.match(error.message, message);
    return true;
  }, `decode("${str(bytes)}") should throw`);
}

Deno.test("bencode round trips", async (t) => {
  const cases: { name: string; value: BValue; encoded: string }[] = [
    { name: "zero", value: 0, encoded: "i0e" },
    { name: "positive integer", value: 42, encoded: "i42e" },
    { name: "negative integer", value: -42, encoded: "i-42e" },
    { name: "largest safe integer", value: Number.MAX_SAFE_INTEGER, encoded: "i9007199254740991e" },
    {
      name: "smallest safe integer",
      value: Number.MIN_SAFE_INTEGER,
      encoded: "i-9007199254740991e",
    },
    { name: "empty string", value: new Uint8Array(0), encoded: "0:" },
    { name: "string", value: ascii("spam"), encoded: "4:spam" },
    { name: "string holding digits and colons", value: ascii("1:2e"), encoded: "4:1:2e" },
    { name: "empty list", value: [], encoded: "le" },
    { name: "list", value: [ascii("spam"), 7, []], encoded: "l4:spami7elee" },
    { name: "empty dict", value: new Map(), encoded: "de" },
    {
      name: "dict",
      value: new Map<string, BValue>([["cow", ascii("moo")], ["spam", ascii("eggs")]]),
      encoded: "d3:cow3:moo4:spam4:eggse",
    },
    {
      name: "nested",
      value: new Map<string, BValue>([
        ["a", [new Map<string, BValue>([["x", -1]]), [ascii("y")]]],
        ["b", new Map<string, BValue>([["c", new Map()]])],
      ]),
      encoded: "d1:ald1:xi-1eel1:yee1:bd1:cdeee",
    },
  ];
  for (const { name, value, encoded } of cases) {
    await t.step(name, () => {
      assert.equal(str(encode(value)), encoded);
      assert.deepEqual(decode(ascii(encoded)), value);
      assert.deepEqual(encode(decode(ascii(encoded))), ascii(encoded));
    });
  }

  await t.step("binary string with every byte value", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const encoded = encode(all);
    assert.deepEqual(encoded.subarray(0, 4), ascii("256:"));
    assert.deepEqual(encoded.subarray(4), all);
    assert.deepEqual(decode(encoded), all);
  });

  await t.step("a JavaScript string encodes as its UTF-8 bytes", () => {
    assert.equal(str(encode("spam")), "4:spam");
    assert.deepEqual(encode("é"), latin1("2:\xc3\xa9"));
  });

  await t.step("UTF-8 dictionary keys decode to strings", () => {
    const encoded = latin1("d2:\xc3\xa9i1ee");
    assert.deepEqual(decode(encoded), new Map([["é", 1]]));
    assert.deepEqual(encode(decode(encoded) as BDict), encoded);
  });

  await t.step("a key's leading byte order mark is part of it", () => {
    // found by the property bencode.round_trip: a UTF-8 decoder strips a leading U+FEFF by
    // default, so "\uFEFFname" decoded as "name", the value after it replacing the real
    // "name" and the dictionary re-encoding to other bytes
    const encoded = latin1("d4:name1:x7:\xef\xbb\xbfname8:evil.exee");
    const decoded = decode(encoded) as BDict;
    assert.deepEqual([...decoded.keys()], ["name", "\ufeffname"]);
    assert.deepEqual(decoded.get("name"), ascii("x"));
    assert.deepEqual(encode(decoded), encoded);
    assert.deepEqual(decode(encode(new Map([["\ufeff", 0]]))), new Map([["\ufeff", 0]]));
  });
});

Deno.test("bencode encode", async (t) => {
  await t.step("sorts dictionary keys by raw bytes, not by insertion or UTF-16 order", () => {
    // "\uffff" is EF BF BF in UTF-8 and "\u{10000}" is F0 90 80 80: by bytes "\uffff" comes
    // first, although as UTF-16 ("\uffff" vs "\ud800\udc00") it sorts last.
    const dict: BDict = new Map<string, BValue>([
      ["\u{10000}", 1],
      ["b", 2],
      ["\uffff", 3],
      ["ab", 4],
      ["a", 5],
      ["Z", 6],
      ["", 7],
    ]);
    const expected = new Uint8Array([
      ...ascii("d0:i7e1:Zi6e1:ai5e2:abi4e1:bi2e"),
      ...latin1("3:\xef\xbf\xbfi3e4:\xf0\x90\x80\x80i1ee"),
    ]);
    assert.deepEqual(encode(dict), expected);
    // and what it wrote is canonical: the strict decoder takes it back
    assert.deepEqual(decode(expected), dict);
  });

  await t.step("sorts keys of nested dictionaries too", () => {
    const inner: BDict = new Map<string, BValue>([["z", 1], ["y", 2]]);
    assert.equal(str(encode([inner])), "ld1:yi2e1:zi1eee");
  });

  await t.step("refuses numbers that are not safe integers", () => {
    for (const bad of [1.5, Number.MAX_SAFE_INTEGER + 1, NaN, Infinity, -Infinity]) {
      assert.throws(() => encode(bad), RangeError, String(bad));
    }
  });
});

Deno.test("bencode decode rejects malformed input", async (t) => {
  const cases: { name: string; input: Uint8Array; message?: RegExp }[] = [
    { name: "empty input", input: ascii(""), message: /truncated/ },
    { name: "integer with a leading zero", input: ascii("i03e"), message: /malformed number/ },
    { name: "integer 00", input: ascii("i00e"), message: /malformed number/ },
    { name: "negative zero", input: ascii("i-0e"), message: /malformed number/ },
    { name: "negative with a leading zero", input: ascii("i-03e"), message: /malformed/ },
    { name: "i-e", input: ascii("i-e"), message: /malformed number/ },
    { name: "ie", input: ascii("ie"), message: /malformed number/ },
    { name: "plus sign", input: ascii("i+1e"), message: /malformed number/ },
    { name: "spaces in an integer", input: ascii("i 1e"), message: /malformed number/ },
    { name: "decimal point", input: ascii("i1.5e"), message: /malformed number/ },
    { name: "integer without its end", input: ascii("i12"), message: /truncated number/ },
    { name: "integer past 2^53", input: ascii("i9007199254740993e"), message: /too large/ },
    { name: "integer with too many digits", input: ascii(`i${"9".repeat(30)}e`) },
    { name: "string length with a leading zero", input: ascii("01:a"), message: /malformed/ },
    { name: "negative string length", input: ascii("-1:a"), message: /unexpected byte/ },
    { name: "string length without a colon", input: ascii("4"), message: /truncated/ },
    { name: "string length past the end", input: ascii("5:spam"), message: /past the end/ },
    { name: "huge string length", input: ascii("99999999:x"), message: /past the end/ },
    { name: "truncated list", input: ascii("l4:spam"), message: /truncated/ },
    { name: "list with only its start", input: ascii("l"), message: /truncated/ },
    { name: "truncated nested list", input: ascii("lli1ee"), message: /truncated/ },
    { name: "truncated dict", input: ascii("d3:cow3:moo"), message: /truncated/ },
    { name: "dict with only its start", input: ascii("d"), message: /truncated/ },
    { name: "dict key without a value", input: ascii("d3:cowe"), message: /unexpected byte/ },
    { name: "dict key truncated", input: ascii("d3:co"), message: /past the end/ },
    { name: "dict value truncated", input: ascii("d3:cow3:mo"), message: /past the end/ },
    { name: "integer dict key", input: ascii("di1ei2ee") },
    { name: "list dict key", input: ascii("dle1:ae") },
    {
      name: "unsorted dict keys",
      input: ascii("d4:spam4:eggs3:cow3:mooe"),
      message: /unsorted or repeated/,
    },
    { name: "repeated dict key", input: ascii("d1:ai1e1:ai2ee"), message: /unsorted or repeated/ },
    {
      name: "longer key before its prefix",
      input: ascii("d2:abi1e1:ai2ee"),
      message: /unsorted or repeated/,
    },
    {
      name: "keys unsorted by raw bytes",
      input: latin1("d1:\xffi1e1:ai2ee"),
      message: /unsorted or repeated|UTF-8/,
    },
    {
      name: "unsorted keys in a nested dict",
      input: ascii("d1:ad1:bi1e1:ai2eee"),
      message: /unsorted or repeated/,
    },
    { name: "non-UTF-8 dict key", input: latin1("d1:\xffi1ee"), message: /not UTF-8/ },
    { name: "overlong UTF-8 dict key", input: latin1("d2:\xc0\xafi1ee"), message: /not UTF-8/ },
    { name: "lone surrogate dict key", input: latin1("d3:\xed\xa0\x80i1ee"), message: /not UTF-8/ },
    { name: "bytes after an integer", input: ascii("i1ei2e"), message: /bytes after/ },
    { name: "bytes after a string", input: ascii("4:spamx"), message: /bytes after/ },
    { name: "bytes after a list", input: ascii("lee"), message: /bytes after/ },
    { name: "bytes after a dict", input: ascii("de\n"), message: /bytes after/ },
    { name: "stray end byte", input: ascii("e"), message: /unexpected byte 101/ },
    { name: "garbage letter", input: ascii("x"), message: /unexpected byte 120 at 0/ },
    { name: "garbage inside a list", input: ascii("li1exe"), message: /unexpected byte 120 at 4/ },
    { name: "NUL byte", input: new Uint8Array([0]), message: /unexpected byte 0/ },
    { name: "high byte", input: new Uint8Array([0xff, 0xfe]), message: /unexpected byte 255/ },
    { name: "JSON", input: ascii('{"a":1}'), message: /unexpected byte/ },
  ];
  for (const { name, input, message } of cases) {
    await t.step(name, () => rejects(input, message));
  }

  await t.step("seeded garbage never escapes as anything but ProtocolError", () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const alphabet = ascii("ilde0123456789:-x");
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(random() * 12);
      const bytes = Uint8Array.from(
        { length },
        () => alphabet[Math.floor(random() * alphabet.length)],
      );
      try {
        const value = decode(bytes);
        // whatever does decode is canonical: it re-encodes to the very same bytes
        assert.deepEqual(encode(value), bytes, `"${str(bytes)}" decoded but is not canonical`);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, `"${str(bytes)}" threw ${error}`);
      }
    }
  });
});

Deno.test("bencode nesting limit", async (t) => {
  const lists = (depth: number) => ascii("l".repeat(depth) + "e".repeat(depth));
  const dicts = (depth: number) => ascii("d1:a".repeat(depth) + "i0e" + "e".repeat(depth));

  await t.step("33 nested lists (depth 0..32) decode", () => {
    const value = decode(lists(33));
    let depth = 0;
    let at = value;
    while (Array.isArray(at) && at.length === 1) {
      at = at[0];
      depth++;
    }
    assert.equal(depth, 32);
  });

  await t.step("34 nested lists are refused", () => rejects(lists(34), /nested too deeply/));

  await t.step("32 nested dicts around an integer decode, 33 are refused", () => {
    assert.ok(decode(dicts(32)) instanceof Map);
    rejects(dicts(33), /nested too deeply/);
  });

  await t.step("very deep input fails cleanly, not with a stack overflow", () => {
    rejects(lists(100_000), /nested too deeply/);
  });
});
