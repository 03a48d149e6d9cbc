/**
 * Files up to 1 TiB (issue 16): an info dictionary too large for one frame goes to the tracker
 * in `put_info` pages and comes back in `get_info` pages, checked against its info_hash. The
 * 1 TiB case with a synthetic dictionary of 2,097,152 piece hashes (40 MiB) through a real
 * tracker; what a client or tracker gets wrong is refused for that request alone.
 */

import assert from "node:assert/strict";
import { INFO_PAGE_BYTES, infoPage, infoPageOffsets } from "../lib/info_pages.ts";
import {
  encodedInfoLength,
  encodeInfo,
  infoHashHex,
  MAX_INFO_BYTES,
  parseInfo,
} from "../lib/metainfo.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, pieceCount } from "../lib/pieces.ts";
import type { TrackerRequest } from "../peer/file_sharing.ts";
import { fetchInfo } from "../peer/info_transfer.ts";
import { InfoUploads } from "../tracker/info_uploads.ts";
import { rawMember } from "./raw_tls.ts";
import { TempDir, TrackerProcess } from "./harness.ts";

/** A raw link logged in as a new user `user`, with the refusals and file_sharing's view. */
async function member(port: number, user: string) {
  const { ok, link } = await rawMember(port, user);
  /** The refusal's code and message. */
  const refused = async (message: Record<string, unknown>) => {
    const reply = await link.request(message);
    assert.equal(reply.ok, false, `${message.type} was answered: ${JSON.stringify(reply.data)}`);
    return reply.error as { code: string; message: string };
  };
  /** The client's view of the link, as file_sharing.ts requests. */
  const request =
    ((type: string, params: Record<string, unknown>) =>
      ok({ type, ...params })) as unknown as TrackerRequest;
  return { ok, refused, request, link };
}

/** The info dictionary of a 1 TiB file: 2,097,152 piece hashes that differ from each other. */
function infoOfOneTiB(name: string): Uint8Array {
  const pieceHashes = new Uint8Array(pieceCount(MAX_FILE_BYTES) * PIECE_HASH_LENGTH);
  const words = new Uint32Array(pieceHashes.buffer);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 2_654_435_761) ^ (i >>> 7);
  return encodeInfo({ name, length: MAX_FILE_BYTES, pieceHashes });
}

Deno.test("a 1 TiB file's info dictionary is shared and fetched in pages through a real tracker", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const alice = await member(tracker.port, "alice");
  const bob = await member(tracker.port, "bob");
  const mallory = await member(tracker.port, "mallory");
  try {
    await alice.ok({ type: "create_group", group: "films" });
    await bob.ok({ type: "join_group", group: "films" });
    await alice.ok({ type: "accept_request", group: "films", user: "bob" });

    const name = "one-tebibyte.iso";
    const info = infoOfOneTiB(name);
    assert.equal(pieceCount(MAX_FILE_BYTES), 2_097_152);
    assert.equal(info.length, encodedInfoLength(name.length, MAX_FILE_BYTES));
    assert.ok(info.length > 40 * 1024 * 1024 && info.length <= MAX_INFO_BYTES);
    const hash = await infoHashHex(info);
    const share = {
      type: "share_file",
      group: "films",
      name,
      size: MAX_FILE_BYTES,
      sha1: "ab".repeat(20),
      path: `/shared/${name}`,
      mtime_ms: 0,
    };

    // too large to travel whole: one frame is 1 MiB (a larger one closes the link)
    assert.ok(info.toBase64().length > 50 * 1024 * 1024);

    // pages out of order are refused, and hold nothing
    const page = (offset: number) => ({
      type: "put_info",
      info_hash: hash,
      length: info.length,
      offset,
      data: infoPage(info, offset).toBase64(),
    });
    assert.match((await alice.refused(page(INFO_PAGE_BYTES))).message, /not started here/);
    await alice.ok(page(0));
    assert.match((await alice.refused(page(2 * INFO_PAGE_BYTES))).message, /expected the one at/);
    // and share_file with nothing whole sent is refused too
    assert.match(
      (await alice.refused({ ...share, info_hash: hash })).message,
      /not sent in put_info pages/,
    );

    // in order, all 81 pages: shared
    let pages = 0;
    for (const offset of infoPageOffsets(info.length)) {
      const { received } = await alice.ok(page(offset)) as { received: number };
      assert.equal(received, Math.min(info.length, offset + INFO_PAGE_BYTES));
      pages++;
    }
    assert.equal(pages, Math.ceil(info.length / INFO_PAGE_BYTES));
    const shared = await alice.ok({ ...share, info_hash: hash }) as { info_hash: string };
    assert.equal(shared.info_hash, hash);

    // (alice's checks come first: her link would go idle while bob fetches)
    // alice's share as login restores it: no dictionary inline either
    const [record] = await alice.ok({ type: "my_shares" }) as {
      info?: string;
      info_length: number;
    }[];
    assert.equal(record.info, undefined);
    assert.equal(record.info_length, info.length);

    // a dictionary whose bytes are not its info_hash is refused at share_file
    const forged = info.slice();
    forged[forged.length - 100] ^= 1;
    for (const offset of infoPageOffsets(forged.length)) {
      await alice.ok({ ...page(offset), data: infoPage(forged, offset).toBase64() });
    }
    assert.match(
      (await alice.refused({ ...share, name: "forged.iso", info_hash: hash })).message,
      /does not match its info_hash/,
    );
    // a dictionary longer than any may be
    assert.equal(
      (await alice.refused({ ...page(0), length: MAX_INFO_BYTES + 1 })).code,
      "bad_request",
    );
    // bob locates it: no dictionary inline, its length instead; he fetches it page by page
    const location = await bob.ok({ type: "locate_file", group: "films", name }) as {
      info?: string;
      info_length: number;
      info_hash: string;
      size: number;
      group: string;
      name: string;
    };
    assert.equal(location.info, undefined);
    assert.equal(location.info_length, info.length);
    const fetched = await fetchInfo(bob.request, location);
    assert.deepEqual(fetched.subarray(0, 4096), info.subarray(0, 4096));
    assert.equal(await infoHashHex(fetched), hash);
    const parsed = parseInfo(fetched);
    assert.equal(parsed.length, MAX_FILE_BYTES);
    assert.equal(parsed.pieceHashes.length, 2_097_152 * PIECE_HASH_LENGTH);

    // a page at an offset that does not start one, past the end, or asked by a stranger
    const ask = (offset: number) => ({
      type: "get_info",
      group: "films",
      info_hash: hash,
      offset,
    });
    assert.equal((await bob.refused(ask(100))).code, "bad_request");
    assert.equal((await bob.refused(ask(info.length + INFO_PAGE_BYTES))).code, "bad_request");
    assert.equal((await mallory.refused(ask(0))).code, "forbidden");
    // the link goes on after every refusal
    await bob.ok({ type: "ping" });
  } finally {
    for (const user of [alice, bob, mallory]) user.link.close();
  }
});

Deno.test("the tracker holds info dictionaries being shared within one budget", async () => {
  const uploads = new InfoUploads(3 * INFO_PAGE_BYTES);
  const bytes = new Uint8Array(2 * INFO_PAGE_BYTES).fill(1);
  const hash = await infoHashHex(bytes);
  assert.equal(uploads.put(1, hash, bytes.length, 0, infoPage(bytes, 0)), INFO_PAGE_BYTES);
  assert.equal(uploads.bytes, bytes.length);
  // a second connection's would pass the budget: busy, nothing held for it
  assert.throws(() => uploads.put(2, hash, bytes.length, 0, infoPage(bytes, 0)), /try again/);
  assert.equal(uploads.bytes, bytes.length);
  // a page of the wrong length drops the connection's dictionary
  assert.throws(() => uploads.put(1, hash, bytes.length, INFO_PAGE_BYTES, new Uint8Array(5)));
  assert.equal(uploads.bytes, 0);
  uploads.put(2, hash, bytes.length, 0, infoPage(bytes, 0));
  uploads.put(2, hash, bytes.length, INFO_PAGE_BYTES, infoPage(bytes, INFO_PAGE_BYTES));
  assert.deepEqual(await uploads.take(2, hash), bytes);
  assert.equal(uploads.bytes, 0);
  // a connection that closes lets go of its dictionary
  uploads.put(3, hash, bytes.length, 0, infoPage(bytes, 0));
  uploads.drop(3);
  assert.equal(uploads.bytes, 0);
});
