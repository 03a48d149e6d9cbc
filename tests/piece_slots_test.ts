/**
 * Unit tests of peer/piece_slots.ts: slots are handed out last-freed first (so untouched
 * slots stay untouched), never twice, an empty pool says so, and both threads' views of a
 * slot are the same memory, which is shared and zeroed. (That it starts on a page, as direct
 * writes need, piece_writer_test.ts shows.)
 */

import assert from "node:assert/strict";
import { PIECE_LENGTH } from "../lib/pieces.ts";
import { pageAlignedMemory, PieceSlots, slotViews } from "../peer/piece_slots.ts";

Deno.test("piece slots", async (t) => {
  await t.step("slot 0 first, then the last one given back", () => {
    const slots = new PieceSlots(3);
    assert.deepEqual([slots.take(), slots.take()], [0, 1]);
    slots.give(0);
    assert.equal(slots.take(), 0);
    assert.equal(slots.take(), 2);
    assert.equal(slots.freeCount, 0);
  });

  await t.step("an empty pool throws instead of sharing a slot", () => {
    const slots = new PieceSlots(1);
    slots.take();
    assert.throws(() => slots.take(), /no free piece slot/);
  });

  await t.step(
    "every view is one piece long, and another thread's views see the same bytes",
    () => {
      const slots = new PieceSlots(2);
      assert.deepEqual(slots.views.map((view) => view.length), [PIECE_LENGTH, PIECE_LENGTH]);
      slots.views[1][7] = 42;
      const theirs = slotViews(slots.memory);
      assert.equal(theirs[1][7], 42);
      assert.equal(theirs[0][7], 0);
    },
  );

  await t.step("the memory is shared, as long as asked, and zeroed", () => {
    const memory = pageAlignedMemory(3 * PIECE_LENGTH);
    assert.ok(memory instanceof SharedArrayBuffer);
    assert.equal(memory.byteLength, 3 * PIECE_LENGTH);
    assert.ok(new Uint8Array(memory).every((byte) => byte === 0));
    assert.equal(new PieceSlots(2).memory.byteLength, 2 * PIECE_LENGTH);
    // not whole 64 KiB pages: still exactly as long as asked
    assert.equal(pageAlignedMemory(100_000).byteLength, 100_000);
  });
});
