/**
 * A user's shares come back page by page (`my_shares` after the last one got): twenty shares
 * of 1 GiB files once made a reply over the 1 MiB frame limit, and that user could not be
 * restored at login any more.
 */

import assert from "node:assert/strict";
import { encodeFrame } from "../lib/frame.ts";
import type { ShareRecord } from "../lib/protocol.ts";
import { handleRequest } from "../tracker/handlers.ts";
import type { HandlerContext } from "../tracker/context.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { storeKinds } from "./store_backends.ts";

/** An info dictionary's size for a file of `gib` GiB: 20 bytes per 512 KiB piece. */
function infoOf(gib: number): Uint8Array {
  return new Uint8Array(gib * 2048 * 20 + 100).fill(7);
}

for (const kind of storeKinds()) {
  Deno.test({
    name: `my_shares on ${kind.name}: pages under the frame limit, in order, none lost`,
    ignore: kind.unavailable !== undefined,
    fn: async () => {
      await using backend = await kind.start();
      await pages(await backend.open("pages"));
    },
  });
}

async function pages(store: TrackerStore): Promise<void> {
  try {
    await store.createUser("alice", "hash");
    for (const group of ["films", "music"]) {
      await store.createGroup(group, "alice");
      for (let i = 0; i < 15; i++) {
        const name = `big-${String(i).padStart(2, "0")}.iso`;
        const infoHash = crypto.randomUUID().replaceAll("-", "").slice(0, 40).padEnd(40, "0");
        await store.shareFile({
          group,
          name,
          infoHash,
          size: 2 ** 30,
          sha1: "0".repeat(40),
          info: infoOf(1),
        }, { user: "alice", path: `/home/alice/${name}`, mtimeMs: 1 });
      }
    }
    const context = { store, connection: { id: 1, user: "alice" } } as unknown as HandlerContext;
    const seen: string[] = [];
    let after: { after_group?: string; after_name?: string } = {};
    let pages = 0;
    while (true) {
      const page = await handleRequest(
        context,
        { type: "my_shares", ...after } as never,
      ) as ShareRecord[];
      if (page.length === 0) break;
      pages++;
      const frame = encodeFrame({ id: 1, ok: true, data: page });
      assert.ok(frame.length < 1 << 20, `a page of ${frame.length} bytes`);
      seen.push(...page.map((share) => `${share.group}/${share.name}`));
      const last = page.at(-1)!;
      after = { after_group: last.group, after_name: last.name };
    }
    assert.ok(pages > 1, "30 shares of 1 GiB files do not fit one page");
    assert.equal(seen.length, 30);
    assert.deepEqual(seen, [...seen].sort(), "in (group, name) order");
    assert.equal(new Set(seen).size, 30, "none twice");
  } finally {
    await store.close();
  }
}
