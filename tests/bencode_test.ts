import assert from "node:assert/strict";
import { type BValue, decode, encode } from "../lib/bencode.ts";
import { ProtocolError } from "../lib/errors.ts";

const text = (value: string) => new TextEncoder().encode(value);
const show = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("bencode: encodes every type canonically", () => {
  assert.equal(show(encode(0)), "i0e");
  assert.equal(show(encode(-42)), "i-42e");
  assert.equal(show(encode(2 ** 40)), "i1099511627776e");
  assert.equal(show(encode("spam")), "4:spam");
  assert.equal(show(encode(new Uint8Array())), "0:");
  assert.equal(show(encode([1, text("a"), [2]])), "li1e1:ali2eee");
  // keys sorted by raw bytes whatever the insertion order
  const dict = new Map<string, BValue>([["zeta", 1], ["alpha", text("x")], ["Beta", []]]);
  assert.equal(show(encode(dict)), "d4:Betale5:alpha1:x4:zetai1ee");
  assert.throws(() => encode(1.5), RangeError);
});

Deno.test("bencode: round trips", () => {
  const values: BValue[] = [
    0,
    -1,
    Number.MAX_SAFE_INTEGER,
    text(""),
    text("ünï"),
    new Uint8Array([0, 255, 10]),
    [],
    [[[]]],
    new Map(),
    new Map<string, BValue>([["a", [1, text("b"), new Map([["c", 3]])]]]),
  ];
  for (const value of values) {
    const bytes = encode(value);
    assert.deepEqual(decode(bytes), value);
    assert.deepEqual(encode(decode(bytes)), bytes, "decode then encode gives the same bytes");
  }
});

Deno.test("bencode: malformed input is a ProtocolError, never a crash", async (t) => {
  const cases: [string, string | Uint8Array][] = [
    ["empty", ""],
    ["leading zero", "i03e"],
    ["negative zero", "i-0e"],
    ["bare minus", "i-e"],
    ["empty integer", "ie"],
    ["unterminated integer", "i12"],
    ["letters in integer", "i1x2e"],
    ["beyond safe integers", "i99999999999999999999e"],
    ["string past the end", "5:abc"],
    ["string length with leading zero", "03:abc"],
    ["missing colon", "3abc"],
    ["unterminated list", "li1e"],
    ["unterminated dict", "d1:ai1e"],
    ["dict key not a string", "di1ei2ee"],
    ["unsorted keys", "d1:bi1e1:ai2ee"],
    ["duplicate keys", "d1:ai1e1:ai2ee"],
    ["trailing bytes", "i1ei2e"],
    ["unknown type byte", "x"],
    ["dict value missing", "d1:ae"],
    ["non-UTF-8 key", new Uint8Array([100, 49, 58, 0xff, 105, 49, 101, 101])],
    ["too deep", "l".repeat(100) + "e".repeat(100)],
  ];
  for (const [name, input] of cases) {
    await t.step(name, () => {
      const bytes = typeof input === "string" ? text(input) : input;
      assert.throws(() => decode(bytes), ProtocolError);
    });
  }
});

Deno.test("bencode: random bytes never throw anything but ProtocolError", () => {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = text("ilde0123456789:-abc");
  for (let round = 0; round < 2000; round++) {
    const bytes = Uint8Array.from(
      { length: Math.floor(random() * 20) },
      () => alphabet[Math.floor(random() * alphabet.length)],
    );
    try {
      decode(bytes);
    } catch (error) {
      assert.ok(error instanceof ProtocolError, `${show(bytes)}: ${error}`);
    }
  }
});
