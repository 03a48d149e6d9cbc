import assert from "node:assert/strict";
import { Bitfield } from "../lib/bitfield.ts";
import { BLOCK_LENGTH, PIECE_LENGTH } from "../lib/pieces.ts";
import { type BlockRequest, Picker } from "../peer/picker.ts";

function seeded(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

function bits(size: number, present: number[]): Bitfield {
  const field = new Bitfield(size);
  for (const index of present) field.add(index);
  return field;
}

function picker(pieces: number, options: { have?: number[]; randomFirst?: number } = {}) {
  return new Picker({
    fileLength: pieces * PIECE_LENGTH,
    have: bits(pieces, options.have ?? []),
    randomFirst: options.randomFirst ?? 0,
    random: seeded(1),
  });
}

const piecesOf = (requests: BlockRequest[]) => [...new Set(requests.map((r) => r.index))];

/** Delivers every block of `requests` from `peer`, verifying completed pieces. */
function deliver(p: Picker, peer: string, requests: BlockRequest[]): number[] {
  const completed: number[] = [];
  for (const request of requests) {
    const outcome = p.blockReceived(peer, request.index, request.begin);
    if (outcome.pieceComplete) {
      p.pieceVerified(request.index);
      completed.push(request.index);
    }
  }
  return completed;
}

Deno.test("picker: rarest first across connected peers", () => {
  const p = picker(4);
  p.addPeer("a", bits(4, [0, 1, 2, 3]));
  p.addPeer("b", bits(4, [0, 1, 3]));
  p.addPeer("c", bits(4, [0, 3]));
  // availability: 0→3, 1→2, 2→1, 3→3; a piece at a time, rarest first
  assert.deepEqual(piecesOf(p.pick("a", 32)), [2]);
  assert.deepEqual(piecesOf(p.pick("a", 32)), [1]);
  const next = piecesOf(p.pick("a", 32));
  assert.ok(next[0] === 0 || next[0] === 3);
});

Deno.test("picker: random pieces first, then rarest first", () => {
  const counts = new Map<number, number>();
  for (let seed = 1; seed <= 40; seed++) {
    const p = new Picker({
      fileLength: 8 * PIECE_LENGTH,
      have: new Bitfield(8),
      randomFirst: 4,
      random: seeded(seed),
    });
    p.addPeer("a", Bitfield.full(8));
    p.addPeer("b", bits(8, [0, 1, 2, 3, 4, 5, 6])); // piece 7 is the rarest
    const [first] = piecesOf(p.pick("a", 32));
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  assert.ok(counts.size >= 4, `first picks spread over pieces: ${[...counts.keys()]}`);

  const p = picker(8, { have: [0, 1, 2, 3], randomFirst: 4 });
  p.addPeer("a", Bitfield.full(8));
  p.addPeer("b", bits(8, [4, 5, 6]));
  assert.deepEqual(piecesOf(p.pick("a", 32)), [7], "with 4 pieces in, rarest first");
});

Deno.test("picker: never asks a peer for a piece it lacks; nothing from an empty peer", () => {
  const p = picker(3);
  p.addPeer("a", bits(3, [1]));
  p.addPeer("empty", new Bitfield(3));
  const requests = p.pick("a", 100);
  assert.deepEqual(piecesOf(requests), [1]);
  assert.equal(requests.length, 32);
  assert.deepEqual(p.pick("empty", 10), []);
  assert.ok(!p.isInteresting("empty"));
  p.peerHas("empty", 2);
  assert.ok(p.isInteresting("empty"));
  assert.deepEqual(piecesOf(p.pick("empty", 10)), [2]);
});

Deno.test("picker: blocks cover a piece exactly, the last one short", () => {
  const p = new Picker({ fileLength: PIECE_LENGTH + 20_000, have: new Bitfield(2) });
  p.addPeer("a", Bitfield.full(2));
  const requests = p.pick("a", 1000);
  const second = requests.filter((r) => r.index === 1);
  assert.deepEqual(second, [
    { index: 1, begin: 0, length: BLOCK_LENGTH },
    { index: 1, begin: BLOCK_LENGTH, length: 20_000 - BLOCK_LENGTH },
  ]);
  assert.equal(requests.length, 34);
  assert.deepEqual(deliver(p, "a", requests).sort(), [0, 1]);
  assert.ok(p.isComplete);
});

Deno.test("picker: a started piece stays with its owner while others have new work", () => {
  const p = picker(2);
  p.addPeer("a", Bitfield.full(2));
  p.addPeer("b", Bitfield.full(2));
  const fromA = p.pick("a", 8); // piece X, 8 of its 32 blocks
  const fromB = p.pick("b", 8);
  assert.notDeepEqual(piecesOf(fromA), piecesOf(fromB), "b starts the other piece");
  // nothing new left: b helps with a's piece rather than idling
  const more = p.pick("b", 64);
  assert.ok(more.some((r) => r.index === fromA[0].index));
  assert.equal(new Set(more.map((r) => `${r.index}/${r.begin}`)).size, more.length);
});

Deno.test("picker: a peer that leaves gives its requests back", () => {
  const p = picker(1);
  p.addPeer("a", Bitfield.full(1));
  p.addPeer("b", Bitfield.full(1));
  const fromA = p.pick("a", 32);
  assert.equal(fromA.length, 32);
  assert.equal(p.outstanding("a"), 32);
  p.removePeer("a");
  const fromB = p.pick("b", 32);
  assert.deepEqual(fromB, fromA, "b gets exactly the blocks a had");
  assert.equal(p.blockReceived("a", 0, 0).accepted, false, "a late block from a is dropped");
});

Deno.test("picker: endgame asks a second peer, never the same one twice, then cancels", () => {
  const p = picker(1);
  p.addPeer("a", Bitfield.full(1));
  p.addPeer("b", Bitfield.full(1));
  const fromA = p.pick("a", 32);
  assert.ok(p.isEndgame);
  assert.deepEqual(p.pick("a", 32), [], "no duplicate to the same peer");
  const fromB = p.pick("b", 32);
  assert.deepEqual(fromB, fromA, "b duplicates the outstanding blocks");
  const outcome = p.blockReceived("b", 0, 0);
  assert.deepEqual(outcome, { accepted: true, pieceComplete: false, cancels: ["a"] });
  assert.equal(p.blockReceived("a", 0, 0).accepted, false, "the duplicate is not taken twice");
  assert.equal(p.outstanding("a"), 31);
});

Deno.test("picker: a failed piece is fetched again; contributors are known", () => {
  const p = picker(1);
  p.addPeer("a", Bitfield.full(1));
  p.addPeer("b", Bitfield.full(1));
  const requests = p.pick("a", 32);
  let complete = false;
  for (const request of requests) {
    complete = p.blockReceived("a", request.index, request.begin).pieceComplete;
  }
  assert.ok(complete);
  assert.deepEqual(p.contributors(0), ["a"]);
  p.pieceFailed(0);
  assert.ok(!p.isComplete);
  assert.equal(p.pick("b", 32).length, 32, "every block wanted again");
});

Deno.test("picker: blocks nobody asked for are not accepted", () => {
  const p = picker(2);
  p.addPeer("a", Bitfield.full(2));
  assert.equal(p.blockReceived("a", 0, 0).accepted, false);
  const [first] = p.pick("a", 1);
  assert.equal(p.blockReceived("b", first.index, first.begin).accepted, false, "from another peer");
  assert.equal(p.blockReceived("a", first.index, first.begin).accepted, true);
  assert.equal(p.blockReceived("a", first.index, first.begin).accepted, false, "twice");
});

Deno.test("picker: resumed pieces are not fetched; unavailable pieces are counted", () => {
  const p = picker(4, { have: [0, 2] });
  p.addPeer("a", bits(4, [0, 1, 2]));
  assert.equal(p.unavailablePieces(), 1, "piece 3 has no holder");
  assert.deepEqual(piecesOf(p.pick("a", 100)), [1]);
  p.removePeer("a");
  assert.equal(p.unavailablePieces(), 2);
});

Deno.test("picker: a whole download converges with several peers", () => {
  const pieces = 20;
  const p = new Picker({
    fileLength: pieces * PIECE_LENGTH - 5,
    have: new Bitfield(pieces),
    random: seeded(3),
  });
  const peers = ["a", "b", "c"];
  peers.forEach((peer, i) =>
    p.addPeer(peer, bits(pieces, [...Array(pieces).keys()].filter((x) => x % 3 !== i)))
  );
  for (let round = 0; round < 200 && !p.isComplete; round++) {
    for (const peer of peers) deliver(p, peer, p.pick(peer, 16));
  }
  assert.ok(p.isComplete);
});
