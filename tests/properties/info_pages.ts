/**
 * Properties of the paged info dictionary (lib/info_pages.ts, peer/info_transfer.ts): the
 * length a client expects is exactly what `encodeInfo` writes; a dictionary sent page by page
 * comes back whole; pages out of order, short, long, or with a byte changed, and lengths past
 * the ceiling, are refused (`ProtocolError`, or `UserError` from the client), never accepted
 * and never a `RangeError`; and a tracker's description the client fetches by is checked
 * before anything is allocated for it.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError, UserError } from "../../lib/errors.ts";
import {
  checkInfoLength,
  INFO_PAGE_BYTES,
  infoPage,
  infoPageLength,
  infoPageOffsets,
  InfoReceiver,
} from "../../lib/info_pages.ts";
import { encodedInfoLength, encodeInfo, infoHashHex, MAX_INFO_BYTES } from "../../lib/metainfo.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, pieceCount } from "../../lib/pieces.ts";
import { fetchInfo } from "../../peer/info_transfer.ts";
import type { TrackerRequest } from "../../peer/file_sharing.ts";
import { acceptedFileName } from "./codecs.ts";
import { asyncOutcomeOf, type NamedProperty, outcomeOf } from "./inputs.ts";

/** Bytes standing for a dictionary: one to four pages and a bit, with edges. */
const dictionaryBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.integer({ min: 1, max: 4 * INFO_PAGE_BYTES + 3 }),
  fc.constantFrom(
    1,
    INFO_PAGE_BYTES - 1,
    INFO_PAGE_BYTES,
    INFO_PAGE_BYTES + 1,
    2 * INFO_PAGE_BYTES,
  ),
).chain((length) =>
  fc.nat(255).map((seed) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff))
);

/** One way a sender may get a page wrong. */
type PageFault =
  | { kind: "skip"; page: number }
  | { kind: "repeat"; page: number }
  | { kind: "truncate"; page: number; by: number }
  | { kind: "extend"; page: number; by: number }
  | { kind: "flip"; page: number; at: number };

const pageFault: fc.Arbitrary<PageFault> = fc.oneof(
  fc.record({ kind: fc.constant("skip" as const), page: fc.nat(8) }),
  fc.record({ kind: fc.constant("repeat" as const), page: fc.nat(8) }),
  fc.record({
    kind: fc.constant("truncate" as const),
    page: fc.nat(8),
    by: fc.integer({ min: 1, max: 9 }),
  }),
  fc.record({
    kind: fc.constant("extend" as const),
    page: fc.nat(8),
    by: fc.integer({ min: 1, max: 9 }),
  }),
  fc.record({ kind: fc.constant("flip" as const), page: fc.nat(8), at: fc.nat() }),
);

/** The pages of `bytes` as a faulty sender sends them: [offset it claims, bytes]. */
function faultyPages(bytes: Uint8Array, fault: PageFault): [number, Uint8Array][] {
  const pages: [number, Uint8Array][] = [...infoPageOffsets(bytes.length)].map((
    offset,
  ) => [offset, infoPage(bytes, offset).slice()]);
  const at = fault.page % pages.length;
  switch (fault.kind) {
    case "skip":
      pages.splice(at, 1);
      break;
    case "repeat":
      pages.splice(at, 0, pages[at]);
      break;
    case "truncate":
      pages[at][1] = pages[at][1].subarray(0, Math.max(0, pages[at][1].length - fault.by));
      break;
    case "extend":
      pages[at][1] = new Uint8Array([...pages[at][1], ...new Uint8Array(fault.by)]);
      break;
    case "flip":
      pages[at][1][fault.at % pages[at][1].length] ^= 0x01;
      break;
  }
  return pages;
}

/** A fake tracker answering `get_info` with `pages` in turn, whatever offset is asked. */
function trackerSending(pages: string[]): TrackerRequest {
  return (() => Promise.resolve({ data: pages.shift() ?? "" })) as unknown as TrackerRequest;
}

export const infoPageProperties: NamedProperty[] = [
  {
    name: "metainfo.encoded_length",
    claim: "encodedInfoLength(name, length) is the length of encodeInfo's output",
    build: () =>
      fc.property(
        acceptedFileName,
        fc.oneof(
          fc.integer({ min: 0, max: 3 * 524_288 }),
          fc.integer({ min: 0, max: 4 * 1024 ** 3 }),
        ),
        (name, length) => {
          const bytes = encodeInfo({
            name,
            length,
            pieceHashes: new Uint8Array(pieceCount(length) * PIECE_HASH_LENGTH),
          });
          assert.equal(
            encodedInfoLength(new TextEncoder().encode(name).length, length),
            bytes.length,
          );
        },
      ),
    testRuns: 100,
  },
  {
    name: "info_pages.round_trip",
    claim: "a dictionary sent page by page in order comes back whole and verified",
    build: () =>
      fc.asyncProperty(dictionaryBytes, async (bytes) => {
        const receiver = new InfoReceiver(await infoHashHex(bytes), bytes.length);
        for (const offset of infoPageOffsets(bytes.length)) {
          assert.equal(receiver.received, offset);
          receiver.add(offset, infoPage(bytes, offset));
        }
        assert.deepEqual(await receiver.finish(), bytes);
      }),
    testRuns: 40,
  },
  {
    name: "info_pages.faults_refused",
    claim: "a page skipped, repeated, short, long or changed is refused, never accepted",
    build: () =>
      fc.asyncProperty(dictionaryBytes, pageFault, async (bytes, fault) => {
        const receiver = new InfoReceiver(await infoHashHex(bytes), bytes.length);
        const outcome = await asyncOutcomeOf(async () => {
          for (const [offset, page] of faultyPages(bytes, fault)) receiver.add(offset, page);
          return await receiver.finish();
        }, [ProtocolError]);
        assert.equal(outcome.ok, false, `${JSON.stringify(fault)} was accepted`);
      }),
    testRuns: 60,
  },
  {
    name: "info_pages.lengths",
    claim: "a length or offset outside a dictionary's pages is refused before any allocation",
    build: () =>
      fc.property(
        fc.oneof(
          fc.integer(),
          fc.double(),
          fc.constantFrom(0, -1, MAX_INFO_BYTES, MAX_INFO_BYTES + 1, 2 ** 53, NaN, Infinity),
        ),
        fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, INFO_PAGE_BYTES, -INFO_PAGE_BYTES)),
        (length, offset) => {
          const valid = Number.isSafeInteger(length) && length > 0 && length <= MAX_INFO_BYTES;
          assert.equal(outcomeOf(() => checkInfoLength(length), [ProtocolError]).ok, valid);
          const page = outcomeOf(() => infoPageLength(length, offset), [ProtocolError]);
          if (page.ok) {
            assert.ok(valid && offset % INFO_PAGE_BYTES === 0 && offset >= 0 && offset < length);
            assert.equal(page.value, Math.min(INFO_PAGE_BYTES, length - offset));
          }
        },
      ),
  },
  {
    name: "info_transfer.hostile_tracker",
    claim: "fetchInfo takes only the dictionary of the file's own name, size and info_hash",
    build: () =>
      fc.asyncProperty(
        dictionaryBytes,
        fc.oneof(
          fc.constant(undefined),
          fc.integer(),
          fc.constantFrom(MAX_INFO_BYTES + 1, 2 ** 40),
        ),
        pageFault,
        fc.boolean(),
        async (bytes, claimedLength, fault, faulty) => {
          // a real dictionary: the pieces of a file whose dictionary spans these many bytes
          const size = Math.floor(bytes.length / PIECE_HASH_LENGTH) * 524_288;
          const info = encodeInfo({
            name: "f.iso",
            length: size,
            pieceHashes: bytes.subarray(0, pieceCount(size) * PIECE_HASH_LENGTH),
          });
          const hash = await infoHashHex(info);
          const pages = (faulty ? faultyPages(info, fault) : [...infoPageOffsets(info.length)].map((
            offset,
          ) => [offset, infoPage(info, offset)] as [number, Uint8Array])).map(([, page]) =>
            page.toBase64()
          );
          const outcome = await asyncOutcomeOf(
            () =>
              fetchInfo(trackerSending(pages), {
                group: "g",
                name: "f.iso",
                size,
                info_hash: hash,
                info_length: claimedLength ?? info.length,
              }),
            [UserError],
          );
          if (outcome.ok) {
            assert.deepEqual(outcome.value, info);
            assert.ok(claimedLength === undefined || claimedLength === info.length);
          } else {
            assert.ok(
              faulty || claimedLength !== info.length || size > MAX_FILE_BYTES,
              outcome.error,
            );
          }
        },
      ),
    testRuns: 40,
  },
];
