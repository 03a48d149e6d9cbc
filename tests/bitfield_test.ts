/**
 * Unit tests of lib/bitfield.ts: the wire layout, fromWire's refusals, and the set
 * operations with their running count.
 */

import assert from "node:assert/strict";
import { Bitfield } from "../lib/bitfield.ts";
import { ProtocolError } from "../lib/errors.ts";

const members = (field: Bitfield) =>
  Array.from({ length: field.size }, (_, i) => i).filter((i) => field.has(i));

Deno.test("Bitfield.fromWire", async (t) => {
  const accepted: [size: number, payload: number[], pieces: number[]][] = [
    [0, [], []],
    [1, [0x80], [0]],
    [1, [0x00], []],
    [8, [0xff], [0, 1, 2, 3, 4, 5, 6, 7]],
    [8, [0x81], [0, 7]],
    [9, [0x00, 0x80], [8]],
    [10, [0x40, 0x40], [1, 9]],
    [16, [0x01, 0x01], [7, 15]],
    [17, [0xff, 0xff, 0x80], Array.from({ length: 17 }, (_, i) => i)],
  ];
  for (const [size, payload, pieces] of accepted) {
    await t.step(`accepts ${size} pieces as [${payload}]`, () => {
      const field = Bitfield.fromWire(size, new Uint8Array(payload));
      assert.equal(field.size, size);
      assert.deepEqual(members(field), pieces);
      assert.equal(field.count, pieces.length);
      assert.equal(field.isComplete, pieces.length === size);
      assert.deepEqual([...field.bytes], payload);
    });
  }

  const refused: [name: string, size: number, payload: number[], message: RegExp][] = [
    ["a byte for no pieces", 0, [0], /1 bytes for 0 pieces/],
    ["no bytes for one piece", 1, [], /0 bytes for 1 pieces/],
    ["one byte short", 9, [0xff], /1 bytes for 9 pieces/],
    ["one byte long", 8, [0xff, 0x00], /2 bytes for 8 pieces/],
    ["many bytes long", 10, [0, 0, 0, 0], /4 bytes for 10 pieces/],
    ["the lowest spare bit", 10, [0, 0x01], /past the last piece/],
    ["the first spare bit", 10, [0, 0x20], /past the last piece/],
    ["every spare bit", 10, [0xff, 0x3f], /past the last piece/],
    ["a spare bit of a one-piece field", 1, [0xc0], /past the last piece/],
    ["all bits of a 7-piece field", 7, [0xff], /past the last piece/],
    ["a spare bit of 17 pieces", 17, [0xff, 0xff, 0x81], /past the last piece/],
  ];
  for (const [name, size, payload, message] of refused) {
    await t.step(`refuses ${name}`, () => {
      assert.throws(
        () => Bitfield.fromWire(size, new Uint8Array(payload)),
        (error: unknown) => error instanceof ProtocolError && message.test(error.message),
      );
    });
  }

  await t.step("copies the payload (a wire buffer is reused)", () => {
    const payload = new Uint8Array([0x80]);
    const field = Bitfield.fromWire(3, payload);
    payload[0] = 0xe0;
    assert.deepEqual(members(field), [0]);
    field.add(1);
    assert.equal(payload[0], 0xe0);
  });
});

Deno.test("Bitfield set operations", async (t) => {
  await t.step("a new field is empty, sized to whole bytes", () => {
    for (const [size, bytes] of [[0, 0], [1, 1], [8, 1], [9, 2], [1000, 125]]) {
      const field = new Bitfield(size);
      assert.equal(field.bytes.length, bytes);
      assert.equal(field.count, 0);
      assert.equal(field.isComplete, size === 0);
    }
  });

  await t.step("add, has, delete keep the count and the wire layout", () => {
    const field = new Bitfield(10);
    assert.equal(field.add(0), true);
    assert.deepEqual([...field.bytes], [0x80, 0]);
    assert.equal(field.add(9), true);
    assert.deepEqual([...field.bytes], [0x80, 0x40]);
    assert.equal(field.add(7), true);
    assert.deepEqual([...field.bytes], [0x81, 0x40]);
    assert.equal(field.count, 3);
    assert.equal(field.add(7), false, "adding again reports it was there");
    assert.equal(field.count, 3);
    assert.deepEqual(members(field), [0, 7, 9]);
    assert.equal(field.has(8), false);

    field.delete(7);
    assert.equal(field.has(7), false);
    assert.equal(field.count, 2);
    field.delete(7); // absent: nothing changes
    field.delete(3);
    assert.equal(field.count, 2);
    assert.deepEqual([...field.bytes], [0x80, 0x40]);
    // a field read back from its bytes agrees
    assert.deepEqual(members(Bitfield.fromWire(10, field.bytes)), [0, 9]);
  });

  await t.step("add refuses indexes outside the field", () => {
    const field = new Bitfield(10);
    for (const bad of [-1, 10, 11, 16]) {
      assert.throws(() => field.add(bad), RangeError, String(bad));
    }
    assert.equal(field.count, 0);
    assert.deepEqual([...field.bytes], [0, 0]);
  });

  await t.step("isComplete once every piece is in, and not after a delete", () => {
    const field = new Bitfield(11);
    for (let i = 10; i >= 0; i--) {
      assert.equal(field.isComplete, false);
      field.add(i);
    }
    assert.equal(field.isComplete, true);
    assert.equal(field.count, 11);
    field.delete(5);
    assert.equal(field.isComplete, false);
    assert.equal(field.count, 10);
  });

  await t.step("the constructor counts the pieces in given bytes", () => {
    const field = new Bitfield(12, new Uint8Array([0xf0, 0x30]));
    assert.equal(field.count, 6);
    assert.deepEqual(members(field), [0, 1, 2, 3, 10, 11]);
  });

  await t.step("full()", () => {
    const cases: [size: number, bytes: number[]][] = [
      [0, []],
      [1, [0x80]],
      [7, [0xfe]],
      [8, [0xff]],
      [10, [0xff, 0xc0]],
      [17, [0xff, 0xff, 0x80]],
    ];
    for (const [size, bytes] of cases) {
      const field = Bitfield.full(size);
      assert.deepEqual([...field.bytes], bytes, `full(${size})`);
      assert.equal(field.count, size);
      assert.equal(field.isComplete, true);
      // spare bits stay clear, so the bytes pass a peer's strict check
      assert.equal(Bitfield.fromWire(size, field.bytes).count, size);
    }
  });
});
