import assert from "node:assert/strict";
import { Bitfield } from "../lib/bitfield.ts";
import { ProtocolError } from "../lib/errors.ts";

Deno.test("bitfield: the wire layout, high bit first", () => {
  const field = new Bitfield(10);
  assert.equal(field.bytes.length, 2);
  assert.ok(field.add(0));
  assert.ok(field.add(9));
  assert.ok(!field.add(9), "adding twice reports no change");
  assert.deepEqual([...field.bytes], [0b1000_0000, 0b0100_0000]);
  assert.equal(field.count, 2);
  assert.ok(field.has(9) && !field.has(8));
  field.delete(0);
  field.delete(0);
  assert.equal(field.count, 1);
  assert.throws(() => field.add(10), RangeError);
  assert.throws(() => field.add(-1), RangeError);
});

Deno.test("bitfield: full, complete, and read from the wire", () => {
  const full = Bitfield.full(9);
  assert.ok(full.isComplete);
  assert.deepEqual([...full.bytes], [0xff, 0x80]);
  const copy = Bitfield.fromWire(9, full.bytes);
  assert.equal(copy.count, 9);
  copy.delete(3);
  assert.ok(full.has(3), "fromWire copies");
  assert.ok(new Bitfield(0).isComplete);
});

Deno.test("bitfield: a wrong length or a spare bit set is a protocol error", () => {
  assert.throws(() => Bitfield.fromWire(9, new Uint8Array(1)), ProtocolError);
  assert.throws(() => Bitfield.fromWire(9, new Uint8Array(3)), ProtocolError);
  assert.throws(() => Bitfield.fromWire(9, new Uint8Array([0xff, 0xc0])), ProtocolError);
  assert.equal(Bitfield.fromWire(16, new Uint8Array([0xff, 0xff])).count, 16);
});
