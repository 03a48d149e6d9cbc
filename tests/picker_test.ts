/**
 * Unit tests of peer/picker.ts: which piece is started (random first, then rarest first,
 * table-driven with a deterministic random), piece ownership, requests returned when a peer
 * leaves and pieces dropped when their last holder leaves, the bound on pieces in progress,
 * endgame duplicates and cancels, failed pieces, unwanted blocks, completion, and seeded
 * simulations checking the invariants over thousands of steps.
 */

import assert from "node:assert/strict";
import { Bitfield } from "../lib/bitfield.ts";
import {
  BLOCK_LENGTH,
  blockCount,
  BLOCKS_PER_PIECE,
  isValidBlock,
  PIECE_LENGTH,
  pieceCount,
  pieceSize,
} from "../lib/pieces.ts";
import { type BlockRequest, type PeerKey, Picker } from "../peer/picker.ts";
import { seededRandom } from "./harness.ts";

/** With reservoir sampling, 0 keeps replacing (the last tie wins), 0.99 never does. */
const LAST_TIE = () => 0;
const FIRST_TIE = () => 0.99;

function field(size: number, pieces: number[] | "all"): Bitfield {
  if (pieces === "all") return Bitfield.full(size);
  const bits = new Bitfield(size);
  for (const index of pieces) bits.add(index);
  return bits;
}

function makePicker(
  pieces: number,
  options: {
    have?: number[];
    randomFirst?: number;
    random?: () => number;
    fileLength?: number;
    maxStarted?: number;
  },
): Picker {
  const fileLength = options.fileLength ?? pieces * PIECE_LENGTH;
  return new Picker({
    fileLength,
    have: field(pieceCount(fileLength), options.have ?? []),
    randomFirst: options.randomFirst,
    random: options.random ?? FIRST_TIE,
    maxStarted: options.maxStarted,
  });
}

/** Delivers `requests` from `peer`, asserting each is accepted; the last outcome. */
function deliver(picker: Picker, peer: PeerKey, requests: BlockRequest[]) {
  let last;
  for (const request of requests) {
    last = picker.blockReceived(peer, request.index, request.begin);
    assert.ok(last.accepted, `block ${request.index}/${request.begin} from ${peer}`);
  }
  return last;
}

/** `peer` fetches one whole new piece; returns its index. */
function fetchPiece(picker: Picker, peer: PeerKey): number {
  const requests = picker.pick(peer, BLOCKS_PER_PIECE);
  assert.equal(requests.length, BLOCKS_PER_PIECE);
  const index = requests[0].index;
  assert.ok(requests.every((r) => r.index === index), "one piece at a time");
  assert.equal(deliver(picker, peer, requests)?.pieceComplete, true);
  picker.pieceVerified(index);
  return index;
}

/** The (index, block) pairs of some requests, as "i:b" strings. */
const blocks = (requests: BlockRequest[]) =>
  requests.map((r) => `${r.index}:${r.begin / BLOCK_LENGTH}`);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

interface ChoiceCase {
  name: string;
  peers: Record<string, number[] | "all">;
  have?: number[];
  randomFirst?: number;
  random: () => number;
  picker: string;
  expected: number;
}

// 8 pieces. S has all; D lacks 3 and 4, so 3 and 4 are the rarest (one peer each).
const SEEDER_AND_DOWNLOADER: Record<string, number[] | "all"> = { S: "all", D: [0, 1, 2, 5, 6, 7] };

const CHOICE_CASES: ChoiceCase[] = [
  {
    name: "random phase ignores rarity: last tie",
    peers: { ...SEEDER_AND_DOWNLOADER },
    random: LAST_TIE,
    picker: "S",
    expected: 7,
  },
  {
    name: "random phase ignores rarity: first tie",
    peers: { ...SEEDER_AND_DOWNLOADER },
    random: FIRST_TIE,
    picker: "S",
    expected: 0,
  },
  {
    name: "random phase stays within the picking peer's pieces",
    peers: { S: "all", D: [1, 2, 5] },
    random: LAST_TIE,
    picker: "D",
    expected: 5,
  },
  {
    name: "random phase lasts while fewer than randomFirst pieces are verified",
    peers: { ...SEEDER_AND_DOWNLOADER },
    have: [0, 1, 2],
    random: LAST_TIE,
    picker: "S",
    expected: 7,
  },
  {
    name: "rarest first after randomFirst verified pieces: last rare tie",
    peers: { ...SEEDER_AND_DOWNLOADER },
    have: [0, 1, 2, 7],
    random: LAST_TIE,
    picker: "S",
    expected: 4,
  },
  {
    name: "rarest first after randomFirst verified pieces: first rare tie",
    peers: { ...SEEDER_AND_DOWNLOADER },
    have: [0, 1, 2, 7],
    random: FIRST_TIE,
    picker: "S",
    expected: 3,
  },
  {
    name: "randomFirst 0: rarest first from the start",
    peers: { ...SEEDER_AND_DOWNLOADER },
    randomFirst: 0,
    random: FIRST_TIE,
    picker: "S",
    expected: 3,
  },
  {
    name: "randomFirst 2 with 2 verified: rarest first",
    peers: { ...SEEDER_AND_DOWNLOADER },
    have: [0, 7],
    randomFirst: 2,
    random: LAST_TIE,
    picker: "S",
    expected: 4,
  },
  {
    name: "only seeders connected: ties in file order, whatever the random",
    peers: { S1: "all", S2: "all" },
    have: [0, 1, 2, 3],
    random: LAST_TIE,
    picker: "S1",
    expected: 4,
  },
  {
    name: "a downloader connected: ties at random",
    peers: { S: "all", D: [0, 1] },
    have: [0, 1, 2, 3],
    random: LAST_TIE,
    picker: "S",
    expected: 7,
  },
  {
    // D has 0 and 1, so 2-7 tie as the rarest; from a seeder, with a downloader around, the
    // draw is among all of them (downloaders ask the seeder for different pieces)
    name: "a downloader connected: from the seeder, ties at random among all, last",
    peers: { S: "all", D: [0, 1] },
    randomFirst: 0,
    random: LAST_TIE,
    picker: "S",
    expected: 7,
  },
  {
    name: "a downloader connected: from the seeder, ties at random among all, first",
    peers: { S: "all", D: [0, 1] },
    randomFirst: 0,
    random: FIRST_TIE,
    picker: "S",
    expected: 2,
  },
  {
    // from a downloader, ties stay near the front (the whole-file hash follows them in
    // memory): 1-7 tie, the draw is among 1, 2, 3 and 4
    name: "from a downloader: ties at random among the first four, last",
    peers: { S: "all", D: range(1, 8) },
    randomFirst: 0,
    random: LAST_TIE,
    picker: "D",
    expected: 4,
  },
  {
    name: "the rarest piece the picking peer lacks is not chosen",
    peers: { A: range(1, 8), B: "all", C: range(1, 8) },
    randomFirst: 0,
    random: FIRST_TIE,
    picker: "A",
    expected: 1,
  },
  {
    name: "rarest wins over file order",
    peers: { A: "all", B: range(0, 7), C: range(0, 6) },
    randomFirst: 0,
    random: FIRST_TIE,
    picker: "A",
    expected: 7,
  },
  {
    name: "verified pieces are not picked again",
    peers: { S: "all" },
    have: range(0, 7),
    random: LAST_TIE,
    picker: "S",
    expected: 7,
  },
];

Deno.test("which piece a peer starts", async (t) => {
  for (const c of CHOICE_CASES) {
    await t.step(c.name, () => {
      const picker = makePicker(8, c);
      for (const [peer, pieces] of Object.entries(c.peers)) picker.addPeer(peer, field(8, pieces));
      const requests = picker.pick(c.picker, 1);
      assert.deepEqual(requests, [{ index: c.expected, begin: 0, length: BLOCK_LENGTH }]);
    });
  }

  await t.step("a peer with nothing we need gets nothing", () => {
    const picker = makePicker(8, { have: [0, 1] });
    picker.addPeer("A", field(8, [0, 1]));
    picker.addPeer("B", field(8, []));
    assert.deepEqual(picker.pick("A", 10), []);
    assert.deepEqual(picker.pick("B", 10), []);
    assert.deepEqual(picker.pick("unknown", 10), []);
    assert.equal(picker.isInteresting("A"), false);
  });

  await t.step("max 0 asks nothing", () => {
    const picker = makePicker(8, {});
    picker.addPeer("A", field(8, "all"));
    assert.deepEqual(picker.pick("A", 0), []);
    assert.equal(picker.outstanding("A"), 0);
  });

  await t.step("peerHas makes a piece less rare", () => {
    const picker = makePicker(4, { randomFirst: 0, random: FIRST_TIE });
    picker.addPeer("A", field(4, "all"));
    picker.addPeer("B", field(4, [0, 1, 2]));
    // 3 is the rarest; once B has it too, all tie and the first (0) is taken
    picker.peerHas("B", 3);
    picker.peerHas("B", 3); // repeated news changes nothing
    picker.addPeer("C", field(4, [1, 2, 3]));
    assert.equal(picker.pick("A", 1)[0].index, 0);
  });
});

Deno.test("random first, then rarest first, piece after piece", async (t) => {
  const cases: { name: string; b: number[]; random: () => number; order: number[] }[] = [
    {
      name: "first ties: 0, 1 at random, then rare 4, 5",
      b: [0, 1, 2, 3],
      random: FIRST_TIE,
      order: [0, 1, 4, 5, 2, 3],
    },
    {
      name: "last ties: 5, 4 at random, then rare 1, 0",
      b: [2, 3, 4, 5],
      random: LAST_TIE,
      order: [5, 4, 1, 0, 3, 2],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const picker = makePicker(6, { randomFirst: 2, random: c.random });
      picker.addPeer("A", field(6, "all"));
      picker.addPeer("B", field(6, c.b));
      const order = range(0, 6).map(() => fetchPiece(picker, "A"));
      assert.deepEqual(order, c.order);
      assert.equal(picker.isComplete, true);
    });
  }

  await t.step("with a seeded random the first pieces spread, later ones are the rarest", () => {
    const firsts = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const picker = makePicker(16, { randomFirst: 4, random: seededRandom(seed) });
      picker.addPeer("S", field(16, "all"));
      picker.addPeer("D", field(16, range(0, 14))); // 14 and 15 are the rarest
      firsts.add(fetchPiece(picker, "S"));
      for (let i = 1; i < 4; i++) fetchPiece(picker, "S");
      // four verified: the next two pieces are the rare ones (unless taken already)
      const next = fetchPiece(picker, "S");
      const verified = new Set(range(0, 16).filter((i) => i !== next));
      assert.ok(
        next === 14 || next === 15 || (verified.has(14) && verified.has(15)),
        `seed ${seed}: picked ${next} in the rarest phase`,
      );
    }
    assert.ok(firsts.size >= 8, `only ${[...firsts]} were picked first over 40 seeds`);
  });
});

Deno.test("a started piece belongs to the peer that started it", async (t) => {
  // 3 pieces, two seeders, file order (only seeders, rarest first from the start)
  const setup = () => {
    const picker = makePicker(3, { randomFirst: 0, random: LAST_TIE });
    picker.addPeer("A", field(3, "all"));
    picker.addPeer("B", field(3, "all"));
    return picker;
  };

  await t.step("its next blocks go to the owner, others start other pieces", () => {
    const picker = setup();
    assert.deepEqual(blocks(picker.pick("A", 4)), ["0:0", "0:1", "0:2", "0:3"]);
    assert.deepEqual(blocks(picker.pick("B", 4)), ["1:0", "1:1", "1:2", "1:3"]);
    // A continues its own piece before starting piece 2
    assert.deepEqual(blocks(picker.pick("A", 4)), ["0:4", "0:5", "0:6", "0:7"]);
    // B finishes piece 1, then starts piece 2; never touches A's piece while it has new ones
    const b = picker.pick("B", 40);
    assert.deepEqual(blocks(b), [
      ...range(4, 32).map((i) => `1:${i}`),
      ...range(0, 12).map((i) => `2:${i}`),
    ]);
    // nothing new left for B: it helps with A's piece, blocks nobody asked for yet
    const help = picker.pick("B", 44);
    assert.deepEqual(blocks(help), [
      ...range(12, 32).map((i) => `2:${i}`),
      ...range(8, 32).map((i) => `0:${i}`),
    ]);
    assert.equal(picker.outstanding("A"), 8);
    assert.equal(picker.outstanding("B"), 32 + 32 + 24);
  });

  await t.step("when the owner leaves, the piece goes first to the next peer", () => {
    const picker = setup();
    picker.pick("A", 4);
    picker.removePeer("A");
    assert.deepEqual(blocks(picker.pick("B", 6)), ["0:0", "0:1", "0:2", "0:3", "0:4", "0:5"]);
  });

  await t.step("when the owner chokes us, the piece goes first to the next peer", () => {
    const picker = setup();
    deliver(picker, "A", picker.pick("A", 4).slice(0, 2));
    picker.releaseRequests("A");
    assert.equal(picker.outstanding("A"), 0);
    // blocks 0 and 1 are in; 2 and 3 were released with A's requests
    assert.deepEqual(blocks(picker.pick("B", 3)), ["0:2", "0:3", "0:4"]);
    // and A, unchoked again, now starts another piece rather than taking B's
    assert.deepEqual(blocks(picker.pick("A", 1)), ["1:0"]);
  });
});

Deno.test("removePeer returns its requests to the pool", async (t) => {
  await t.step("another peer gets every block the leaver had", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, "all"));
    const a = picker.pick("A", 32);
    assert.ok(a.every((r) => r.index === 0));
    deliver(picker, "A", a.slice(0, 5));
    assert.deepEqual(blocks(picker.pick("B", 10)), range(0, 10).map((i) => `1:${i}`));
    assert.equal(picker.isEndgame, false);

    picker.removePeer("A");
    assert.equal(picker.outstanding("A"), 0);
    // a late block from the leaver is no longer wanted
    assert.equal(picker.blockReceived("A", 0, 5 * BLOCK_LENGTH).accepted, false);

    const b = picker.pick("B", 100);
    assert.deepEqual(
      blocks(b).sort(),
      [
        ...range(5, 32).map((i) => `0:${i}`),
        ...range(10, 32).map((i) => `1:${i}`),
      ].sort(),
    );
    assert.equal(new Set(blocks(b)).size, b.length, "no block twice");
  });

  await t.step("the leaver's pieces no longer count as available", () => {
    const picker = makePicker(3, {});
    picker.addPeer("A", field(3, [0, 1]));
    picker.addPeer("B", field(3, [1]));
    assert.equal(picker.unavailablePieces(), 1);
    picker.removePeer("A");
    assert.equal(picker.unavailablePieces(), 2);
    picker.removePeer("A"); // twice: nothing changes
    assert.equal(picker.unavailablePieces(), 2);
    assert.deepEqual(picker.pick("A", 10), []);
  });

  await t.step("an unfinished piece nobody connected has is dropped, blocks and all", () => {
    const picker = makePicker(3, { randomFirst: 0 });
    picker.addPeer("A", field(3, [0, 1]));
    picker.addPeer("B", field(3, [1, 2]));
    const a = picker.pick("A", 64); // pieces 0 and 1
    deliver(picker, "A", a.filter((r) => r.index === 0).slice(0, 3));
    deliver(picker, "A", a.filter((r) => r.index === 1).slice(0, 3));
    assert.deepEqual(picker.removePeer("A"), [0], "B still has piece 1");
    assert.deepEqual(picker.removePeer("A"), [], "twice: nothing more");
    // a new holder of piece 0 starts it afresh; piece 1 keeps its three blocks
    picker.addPeer("C", field(3, [0]));
    assert.equal(picker.pick("C", 100).length, 32);
    assert.equal(picker.pick("B", 100).filter((r) => r.index === 1).length, 29);
  });

  await t.step("a complete piece waiting for its check is never dropped", () => {
    const picker = makePicker(1, {});
    picker.addPeer("A", field(1, "all"));
    assert.equal(deliver(picker, "A", picker.pick("A", 32))?.pieceComplete, true);
    assert.deepEqual(picker.removePeer("A"), []);
    assert.deepEqual(picker.contributors(0), ["A"]);
    picker.pieceVerified(0);
    assert.equal(picker.isComplete, true);
  });

  await t.step("adding a peer again replaces its old state", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.pick("A", 32);
    picker.addPeer("A", field(2, [1]));
    assert.equal(picker.outstanding("A"), 0);
    assert.equal(picker.unavailablePieces(), 1);
    picker.addPeer("B", field(2, [0]));
    // piece 0's blocks are free again: B gets all of them
    assert.equal(picker.pick("B", 100).length, 32);
  });
});

Deno.test("peerLost: a peer takes a piece back (BEP 54 lt_donthave)", async (t) => {
  await t.step("its requests for the piece go to another peer that has it", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, "all"));
    const a = picker.pick("A", 32);
    assert.ok(a.every((r) => r.index === 0));
    deliver(picker, "A", a.slice(0, 4));
    assert.deepEqual(picker.peerLost("A", 0), [], "B still has it");
    assert.equal(picker.outstanding("A"), 0);
    const b = picker.pick("B", 100);
    assert.deepEqual(
      blocks(b.filter((r) => r.index === 0)).sort(),
      range(4, 32).map((i) => `0:${i}`).sort(),
    );
    // A is not asked for it again, and a late block from A is not wanted
    assert.ok(picker.pick("A", 100).every((r) => r.index === 1));
    assert.equal(picker.blockReceived("A", 0, 5 * BLOCK_LENGTH).accepted, false);
  });

  await t.step("a started piece with nothing in and no other holder is dropped", () => {
    const picker = makePicker(3, { randomFirst: 0, maxStarted: 1 });
    picker.addPeer("S", field(3, "all"));
    assert.ok(picker.pick("S", 32).every((r) => r.index === 0));
    assert.deepEqual(picker.pick("S", 32), [], "maxStarted 1: piece 0 holds the place");
    assert.deepEqual(picker.peerLost("S", 0), [0]);
    assert.equal(picker.unavailablePieces(), 1);
    // the place is free: the next piece starts at once
    assert.ok(picker.pick("S", 32).every((r) => r.index === 1));
    // shown again, piece 0 starts afresh
    picker.peerHas("S", 0);
    assert.equal(picker.unavailablePieces(), 0);
  });

  await t.step("a piece with blocks in is kept for when it is offered again", () => {
    const picker = makePicker(1, { randomFirst: 0 });
    picker.addPeer("S", field(1, "all"));
    deliver(picker, "S", picker.pick("S", 32).slice(0, 3));
    assert.deepEqual(picker.peerLost("S", 0), []);
    assert.equal(picker.isInteresting("S"), false, "S offers nothing we lack");
    picker.peerHas("S", 0);
    assert.equal(picker.isInteresting("S"), true);
    assert.equal(picker.pick("S", 100).length, 29, "the three blocks in are kept");
  });

  await t.step("a piece the peer never had, a peer unknown, or twice: nothing changes", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, [1]));
    assert.deepEqual(picker.peerLost("A", 0), []);
    assert.deepEqual(picker.peerLost("nobody", 1), []);
    assert.equal(picker.unavailablePieces(), 1);
    assert.deepEqual(picker.peerLost("A", 1), []);
    assert.deepEqual(picker.peerLost("A", 1), []);
    assert.equal(picker.unavailablePieces(), 2);
    assert.equal(picker.isInteresting("A"), false);
  });
});

Deno.test("maxStarted bounds the pieces in progress", async (t) => {
  await t.step("no new piece starts while full; blocks of started ones still go out", () => {
    const picker = makePicker(8, { randomFirst: 0, maxStarted: 2 });
    picker.addPeer("A", field(8, "all"));
    picker.addPeer("B", field(8, "all"));
    assert.equal(picker.isFull, false);
    assert.deepEqual(blocks(picker.pick("A", 40)), [
      ...range(0, 32).map((i) => `0:${i}`),
      ...range(0, 8).map((i) => `1:${i}`),
    ]);
    assert.equal(picker.isFull, true);
    // B may not start piece 2, but helps with the rest of piece 1
    assert.deepEqual(blocks(picker.pick("B", 100)), range(8, 32).map((i) => `1:${i}`));
    assert.deepEqual(picker.pick("B", 100), []);
  });

  await t.step("a verified or failed piece makes room for the next", () => {
    const picker = makePicker(8, { randomFirst: 0, maxStarted: 2 });
    picker.addPeer("A", field(8, "all"));
    const first = picker.pick("A", 64);
    deliver(picker, "A", first.filter((r) => r.index === 0));
    assert.equal(picker.isFull, true, "complete but not yet checked: still held");
    assert.deepEqual(picker.pick("A", 10), []);
    picker.pieceVerified(0);
    assert.deepEqual(blocks(picker.pick("A", 1)), ["2:0"]);
    deliver(picker, "A", first.filter((r) => r.index === 1));
    picker.pieceFailed(1);
    assert.equal(picker.isFull, false);
    // the rest of piece 2, then piece 1 again from its first block
    assert.deepEqual(blocks(picker.pick("A", 33)), [
      ...range(1, 32).map((i) => `2:${i}`),
      "1:0",
      "1:1",
    ]);
    assert.equal(picker.isFull, true);
  });
});

Deno.test("endgame", async (t) => {
  const setup = () => {
    const picker = makePicker(1, {});
    for (const peer of ["A", "B", "C"]) picker.addPeer(peer, field(1, "all"));
    return picker;
  };

  await t.step("duplicates requests across peers, never twice to one peer", () => {
    const picker = setup();
    assert.equal(picker.isEndgame, false);
    const a = picker.pick("A", 32);
    assert.equal(a.length, 32);
    assert.equal(picker.isEndgame, true);
    assert.deepEqual(picker.pick("A", 10), [], "A already asked for everything");
    const b = picker.pick("B", 100);
    assert.deepEqual(b, a, "B is asked for the same 32 blocks");
    assert.deepEqual(picker.pick("B", 100), []);
    const c = picker.pick("C", 3);
    assert.deepEqual(blocks(c), ["0:0", "0:1", "0:2"]);
    assert.deepEqual([picker.outstanding("A"), picker.outstanding("B"), picker.outstanding("C")], [
      32,
      32,
      3,
    ]);
  });

  await t.step("a block's arrival returns cancels for the other peers", () => {
    const picker = setup();
    picker.pick("A", 32);
    picker.pick("B", 32);
    picker.pick("C", 2);
    const first = picker.blockReceived("B", 0, 0);
    assert.equal(first.accepted, true);
    assert.deepEqual(new Set(first.cancels), new Set(["A", "C"]));
    assert.deepEqual([picker.outstanding("A"), picker.outstanding("B"), picker.outstanding("C")], [
      31,
      31,
      1,
    ]);
    // the cancelled copies arriving anyway are dropped
    assert.deepEqual(picker.blockReceived("A", 0, 0), {
      accepted: false,
      pieceComplete: false,
      cancels: [],
    });
    assert.equal(picker.blockReceived("C", 0, 0).accepted, false);
    // C's second block was asked of all three
    assert.deepEqual(
      new Set(picker.blockReceived("C", 0, BLOCK_LENGTH).cancels),
      new Set(["A", "B"]),
    );
    const third = picker.blockReceived("A", 0, 2 * BLOCK_LENGTH);
    assert.deepEqual(third.cancels, ["B"]);
    // the peers that sent blocks are the contributors
    assert.deepEqual(new Set(picker.contributors(0)), new Set(["A", "B", "C"]));
  });

  await t.step("does not begin while some block is still unrequested", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, []));
    assert.deepEqual(blocks(picker.pick("A", 32)), range(0, 32).map((i) => `0:${i}`));
    picker.peerHas("B", 0);
    assert.equal(picker.isEndgame, false); // piece 1 not started
    assert.deepEqual(picker.pick("B", 10), [], "no duplicates before endgame");
    picker.pick("A", 32); // piece 1 too
    assert.equal(picker.isEndgame, true);
    assert.equal(picker.pick("B", 100).length, 32, "only piece 0, which B has");
  });

  await t.step("duplicates go first to the piece closest to completion", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, "all"));
    const a = picker.pick("A", 64);
    deliver(picker, "A", a.filter((r) => r.index === 1).slice(0, 30));
    assert.deepEqual(blocks(picker.pick("B", 3)), ["1:30", "1:31", "0:0"]);
  });

  await t.step("a peer that lacks a piece gets no duplicates of it", () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, [1]));
    picker.pick("A", 64);
    const b = picker.pick("B", 100);
    assert.equal(b.length, 32);
    assert.ok(b.every((r) => r.index === 1));
  });
});

Deno.test("pieceFailed makes a piece requestable again, from anyone", () => {
  const picker = makePicker(1, {});
  picker.addPeer("A", field(1, "all"));
  picker.addPeer("B", field(1, "all"));
  const a = picker.pick("A", 32);
  const outcomes = a.map((r) => picker.blockReceived("A", r.index, r.begin));
  assert.ok(outcomes.every((o) => o.accepted && o.cancels.length === 0));
  assert.deepEqual(outcomes.map((o) => o.pieceComplete), [...Array(31).fill(false), true]);
  assert.deepEqual(picker.contributors(0), ["A"]);
  assert.equal(picker.outstanding("A"), 0);
  // complete but not yet verified: nothing to ask for
  assert.deepEqual(picker.pick("B", 32), []);

  picker.pieceFailed(0);
  assert.equal(picker.isComplete, false);
  assert.deepEqual(picker.contributors(0), []);
  // B, not the piece's first owner, gets all of it
  const b = picker.pick("B", 100);
  assert.deepEqual(b, a);
  deliver(picker, "B", b);
  assert.deepEqual(picker.contributors(0), ["B"]);
  picker.pieceVerified(0);
  assert.equal(picker.isComplete, true);
});

Deno.test("unwanted and duplicate blocks are not accepted", async (t) => {
  const setup = () => {
    const picker = makePicker(2, { randomFirst: 0 });
    picker.addPeer("A", field(2, "all"));
    picker.addPeer("B", field(2, "all"));
    picker.pick("A", 2); // piece 0, blocks 0 and 1
    return picker;
  };
  const cases: [string, (picker: Picker) => [PeerKey, number, number]][] = [
    ["a piece nobody asked for", () => ["A", 1, 0]],
    ["a block of the piece not asked for", () => ["A", 0, 2 * BLOCK_LENGTH]],
    ["a block asked of another peer", () => ["B", 0, 0]],
    ["from an unknown peer", () => ["Z", 0, 0]],
    ["an unaligned begin", () => ["A", 0, 100]],
    ["a begin past the piece", () => ["A", 0, PIECE_LENGTH]],
    ["a negative begin", () => ["A", 0, -BLOCK_LENGTH]],
    ["a piece index out of range", () => ["A", 5, 0]],
    ["the same block twice", (picker) => {
      assert.equal(picker.blockReceived("A", 0, 0).accepted, true);
      return ["A", 0, 0];
    }],
    ["a block after the peer was choked", (picker) => {
      picker.releaseRequests("A");
      return ["A", 0, 0];
    }],
    ["a block of a verified piece", (picker) => {
      deliver(picker, "A", picker.pick("A", 30));
      picker.blockReceived("A", 0, 0);
      picker.blockReceived("A", 0, BLOCK_LENGTH);
      picker.pieceVerified(0);
      return ["A", 0, 0];
    }],
  ];
  for (const [name, arrange] of cases) {
    await t.step(name, () => {
      const picker = setup();
      const [peer, index, begin] = arrange(picker);
      const outstanding = picker.outstanding("A");
      assert.deepEqual(picker.blockReceived(peer, index, begin), {
        accepted: false,
        pieceComplete: false,
        cancels: [],
      });
      assert.equal(picker.outstanding("A"), outstanding, "nothing changed");
    });
  }
});

Deno.test("completion", async (t) => {
  await t.step("isComplete only after every piece is verified; last blocks are short", () => {
    const fileLength = 2 * PIECE_LENGTH + 20_000;
    const picker = makePicker(3, { fileLength, randomFirst: 0 });
    picker.addPeer("A", field(3, "all"));
    const requests = picker.pick("A", 1000);
    assert.equal(requests.length, 32 + 32 + 2);
    for (const r of requests) assert.ok(isValidBlock(fileLength, r.index, r.begin, r.length));
    assert.deepEqual(requests.filter((r) => r.index === 2), [
      { index: 2, begin: 0, length: BLOCK_LENGTH },
      { index: 2, begin: BLOCK_LENGTH, length: 20_000 - BLOCK_LENGTH },
    ]);
    deliver(picker, "A", requests);
    for (const index of [2, 0, 1]) {
      assert.equal(picker.isComplete, false);
      picker.pieceVerified(index);
    }
    assert.equal(picker.isComplete, true);
    picker.pieceVerified(1); // again: harmless
    assert.equal(picker.isComplete, true);
    assert.deepEqual(picker.pick("A", 10), []);
    assert.equal(picker.isInteresting("A"), false);
  });

  await t.step("a resumed download asks only for what it lacks, and copies `have`", () => {
    const have = field(4, [0, 2]);
    const picker = new Picker({ fileLength: 4 * PIECE_LENGTH, have, randomFirst: 0 });
    have.add(1); // the caller's bitfield is not the picker's
    picker.addPeer("A", field(4, "all"));
    assert.deepEqual([...new Set(picker.pick("A", 1000).map((r) => r.index))].sort(), [1, 3]);
  });

  await t.step("an empty file is complete from the start", () => {
    const picker = new Picker({ fileLength: 0, have: new Bitfield(0) });
    picker.addPeer("A", new Bitfield(0));
    assert.equal(picker.isComplete, true);
    assert.deepEqual(picker.pick("A", 10), []);
  });

  await t.step("isInteresting follows peers' news and our verified pieces", () => {
    const picker = makePicker(3, {});
    picker.addPeer("A", field(3, [0]));
    assert.equal(picker.isInteresting("A"), true);
    deliver(picker, "A", picker.pick("A", 32));
    picker.pieceVerified(0);
    assert.equal(picker.isInteresting("A"), false);
    picker.peerHas("A", 0); // already known
    assert.equal(picker.isInteresting("A"), false);
    picker.peerHas("A", 2);
    assert.equal(picker.isInteresting("A"), true);
    assert.equal(picker.isInteresting("nobody"), false);
  });
});

Deno.test("contributors", () => {
  const picker = makePicker(2, { randomFirst: 0 });
  picker.addPeer("A", field(2, "all"));
  picker.addPeer("B", field(2, "all"));
  assert.deepEqual(picker.contributors(0), []);
  const a = picker.pick("A", 20); // piece 0, blocks 0..19
  const b = picker.pick("B", 32 + 12); // piece 1, then helps with piece 0's blocks 20..31
  deliver(picker, "A", a.slice(0, 3));
  assert.deepEqual(picker.contributors(0), ["A"]);
  deliver(picker, "B", b.filter((r) => r.index === 0).slice(0, 1));
  assert.deepEqual(picker.contributors(0), ["A", "B"]);
  deliver(picker, "A", a.slice(3, 4));
  assert.deepEqual(picker.contributors(0), ["A", "B"], "each peer once");
  assert.deepEqual(picker.contributors(1), []);
  deliver(picker, "B", b.filter((r) => r.index === 1));
  assert.deepEqual(picker.contributors(1), ["B"]);
  picker.pieceVerified(1);
  assert.deepEqual(picker.contributors(1), []);
  assert.deepEqual(picker.contributors(99), []);
});

Deno.test("seeded simulation keeps every invariant to completion", async (t) => {
  let failures = 0;
  let droppedOnLoss = 0;
  for (let seed = 1; seed <= 16; seed++) {
    await t.step(`seed ${seed}`, () => {
      const outcome = simulate(seed);
      failures += outcome.failures;
      droppedOnLoss += outcome.droppedOnLoss;
    });
  }
  assert.ok(failures >= 10, `only ${failures} failed pieces: pieceFailed is barely exercised`);
  assert.ok(droppedOnLoss >= 5, `only ${droppedOnLoss} pieces dropped on lt_donthave`);
});

Deno.test("seeded simulation with maxStarted 3 keeps the bound and completes", async (t) => {
  for (let seed = 17; seed <= 24; seed++) {
    await t.step(`seed ${seed}`, () => {
      simulate(seed, 3);
    });
  }
});

/**
 * Random peers join, leave, choke, announce pieces and take them back (BEP 54), request and
 * deliver blocks (some pieces fail their hash), while a model checks: every request is for a piece the peer has, a block
 * we lack, never one already asked of that peer; every delivery of a live request is
 * accepted; cancels name exactly the other peers asked; outstanding counts and endgame agree;
 * and the download completes.
 */
function simulate(
  seed: number,
  maxStarted?: number,
): { failures: number; droppedOnLoss: number } {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const fileLength = 12 * PIECE_LENGTH + 20_000 + seed;
  const count = pieceCount(fileLength);
  const picker = new Picker({
    fileLength,
    have: new Bitfield(count),
    randomFirst: 2,
    random: seededRandom(seed * 7919),
    maxStarted,
  });
  const peerPieces = new Map<string, Set<number>>();
  /** Live requests per peer, as "index:begin". */
  const live = new Map<string, Set<string>>();
  const received = new Map<number, Set<number>>();
  const verified = new Set<number>();
  /** Pieces the seed told us it no longer has, until it announces them again. */
  const hidden = new Set<number>();
  let failures = 0;
  let lost = 0;
  let droppedOnLoss = 0;

  const join = (peer: string, pieces: number[]) => {
    peerPieces.set(peer, new Set(pieces));
    live.set(peer, new Set());
    picker.addPeer(peer, field(count, pieces));
  };
  /** Endgame, the slow way: every block of every unverified piece is in or asked for. */
  const isEndgame = () => {
    const asked = new Set<string>();
    for (const keys of live.values()) for (const key of keys) asked.add(key);
    return range(0, count).every((index) =>
      verified.has(index) ||
      range(0, blockCount(pieceSize(fileLength, index))).every((block) =>
        received.get(index)?.has(block * BLOCK_LENGTH) ||
        asked.has(`${index}:${block * BLOCK_LENGTH}`)
      )
    );
  };
  join("seed", range(0, count));
  for (let i = 0; i < 4; i++) join(`p${i}`, range(0, count).filter(() => random() < 0.5));

  for (let step = 0; step < 50_000 && !picker.isComplete; step++) {
    const peers = [...peerPieces.keys()];
    const peer = peers[int(peers.length)];
    const action = random();
    if (action < 0.35) {
      for (const r of picker.pick(peer, 1 + int(12))) {
        assert.ok(peerPieces.get(peer)!.has(r.index), `${peer} lacks piece ${r.index}`);
        assert.ok(!verified.has(r.index), `piece ${r.index} is verified already`);
        assert.ok(isValidBlock(fileLength, r.index, r.begin, r.length), "a whole block");
        assert.ok(!received.get(r.index)?.has(r.begin), "a block already in");
        const key = `${r.index}:${r.begin}`;
        assert.ok(!live.get(peer)!.has(key), `${key} asked twice of ${peer}`);
        live.get(peer)!.add(key);
      }
    } else if (action < 0.8) {
      const requests = [...live.get(peer)!];
      if (requests.length === 0) continue;
      const key = requests[int(requests.length)];
      const [index, begin] = key.split(":").map(Number);
      const askedOf = [...live.entries()].filter(([, keys]) => keys.has(key)).map(([p]) => p);
      const outcome = picker.blockReceived(peer, index, begin);
      assert.ok(outcome.accepted, `live request ${key} from ${peer} refused`);
      assert.deepEqual(new Set(outcome.cancels), new Set(askedOf.filter((p) => p !== peer)));
      for (const p of askedOf) live.get(p)!.delete(key);
      const got = received.get(index) ?? new Set<number>();
      received.set(index, got.add(begin));
      const complete = got.size === blockCount(pieceSize(fileLength, index));
      assert.equal(outcome.pieceComplete, complete);
      assert.ok(picker.contributors(index).includes(peer));
      if (complete) {
        received.delete(index);
        if (random() < 0.2) {
          failures++;
          picker.pieceFailed(index);
        } else {
          picker.pieceVerified(index);
          verified.add(index);
        }
      }
    } else if (action < 0.85 && peer !== "seed") {
      // the seed stays: only a piece it hides for now may lose its last holder
      const dropped = picker.removePeer(peer);
      peerPieces.delete(peer);
      live.delete(peer);
      for (const index of dropped) {
        assert.ok(hidden.has(index), `piece ${index} dropped while the seed has it`);
        assert.ok(![...peerPieces.values()].some((pieces) => pieces.has(index)));
        received.delete(index); // its blocks go with it
      }
      join(`${peer}'`, range(0, count).filter(() => random() < 0.5));
    } else if (action < 0.9) {
      picker.releaseRequests(peer);
      live.get(peer)!.clear();
    } else if (action < 0.95) {
      // lt_donthave: even the seed hides pieces for a while (a capped sharer does)
      const held = [...peerPieces.get(peer)!];
      if (held.length === 0) continue;
      const index = held[int(held.length)];
      const dropped = picker.peerLost(peer, index);
      lost++;
      peerPieces.get(peer)!.delete(index);
      if (peer === "seed") hidden.add(index);
      for (const key of live.get(peer)!) {
        if (Number(key.split(":")[0]) === index) live.get(peer)!.delete(key);
      }
      const holders = [...peerPieces.values()].filter((pieces) => pieces.has(index)).length;
      if (dropped.length > 0) {
        droppedOnLoss++;
        assert.deepEqual(dropped, [index]);
        assert.equal(holders, 0, `piece ${index} dropped while a peer has it`);
        assert.ok(!received.has(index), `piece ${index} dropped with blocks in`);
        assert.ok(
          ![...live.values()].some((keys) => [...keys].some((k) => k.startsWith(`${index}:`))),
        );
      }
    } else if (peer === "seed" && hidden.size > 0) {
      // the seed shows a hidden piece again
      const index = [...hidden][int(hidden.size)];
      hidden.delete(index);
      peerPieces.get(peer)!.add(index);
      picker.peerHas(peer, index);
    } else {
      const index = int(count);
      peerPieces.get(peer)!.add(index);
      picker.peerHas(peer, index);
    }
    for (const [p, keys] of live) assert.equal(picker.outstanding(p), keys.size, p);
    if (step % 16 === 0) assert.equal(picker.isEndgame, isEndgame(), `endgame at step ${step}`);
    if (maxStarted !== undefined) {
      const started = new Set(received.keys());
      for (const keys of live.values()) {
        for (const key of keys) started.add(Number(key.split(":")[0]));
      }
      assert.ok(started.size <= maxStarted, `${started.size} pieces in progress`);
    }
  }
  assert.equal(picker.isComplete, true, `seed ${seed}: not complete`);
  assert.ok(lost >= 30, `only ${lost} pieces lost: peerLost is barely exercised`);
  assert.equal(verified.size, count);
  return { failures, droppedOnLoss };
}
