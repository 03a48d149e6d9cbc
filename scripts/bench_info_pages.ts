/**
 * What one `get_info` page costs the store, for the first, middle and last whole page of a 1 TiB file's
 * info dictionary (40 MiB, 80 pages of 512 KiB): a store that reads the dictionary from its
 * start for every page pays more the further the page is. Seeds a synthetic dictionary
 * straight into a fresh store and times `infoPage` (median of several reads).
 *
 *   deno run -A scripts/bench_info_pages.ts [--store sqlite|postgres] [--reads N]
 *     [--hashes distinct|same]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { INFO_PAGE_BYTES } from "../lib/info_pages.ts";
import { encodeInfo, infoHashHex } from "../lib/metainfo.ts";
import { MAX_FILE_BYTES, PIECE_HASH_LENGTH, pieceCount } from "../lib/pieces.ts";
import { openStore } from "../tracker/open_store.ts";
import { PostgresServer } from "../tests/postgres_server.ts";
import { runInterruptible, TempDir } from "./processes.ts";

/**
 * The info dictionary of a 1 TiB file: 2,097,152 piece hashes that differ from each other, or
 * (`same`) all alike, as a sparse file of zeros has them, which compresses well.
 */
function infoOfOneTiB(name: string, same: boolean): Uint8Array {
  const pieceHashes = new Uint8Array(pieceCount(MAX_FILE_BYTES) * PIECE_HASH_LENGTH);
  const words = new Uint32Array(pieceHashes.buffer);
  for (let i = 0; i < words.length; i++) {
    words[i] = same ? i % 5 : Math.imul(i, 2_654_435_761) ^ (i >>> 7);
  }
  return encodeInfo({ name, length: MAX_FILE_BYTES, pieceHashes });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      store: { type: "string", default: "sqlite" },
      reads: { type: "string", default: "9" },
      hashes: { type: "string", default: "distinct" },
    },
  });
  const reads = Number(values.reads);
  if (values.store !== "sqlite" && values.store !== "postgres") {
    throw new Error(`--store is sqlite or postgres, not ${values.store}`);
  }
  await using dir = await TempDir.create();
  await using server = values.store === "postgres" ? await PostgresServer.start() : undefined;
  if (server) await server.createDatabase("pages");
  const store = await openStore(server ? server.url("pages") : dir.join("tracker.db"));
  try {
    await store.createUser("alice", "h");
    await store.createGroup("films", "alice");
    const name = "one-tebibyte.iso";
    const info = infoOfOneTiB(name, values.hashes === "same");
    const infoHash = await infoHashHex(info);
    await store.shareFile(
      { group: "films", name, infoHash, size: MAX_FILE_BYTES, sha1: "ab".repeat(20), info },
      { user: "alice", path: "/data/one-tebibyte.iso", mtimeMs: 1 },
    );
    const lastOffset = Math.floor((info.length - 1) / INFO_PAGE_BYTES) * INFO_PAGE_BYTES;
    const timings: Record<string, number> = {};
    // whole pages: the first, the middle one and the last whole one (the very last is short)
    const lastWhole = lastOffset - INFO_PAGE_BYTES;
    const middle = Math.floor(lastWhole / INFO_PAGE_BYTES / 2) * INFO_PAGE_BYTES;
    const offsets = [["first", 0], ["middle", middle], ["last_whole", lastWhole]] as const;
    for (const [label, offset] of offsets) {
      const length = Math.min(INFO_PAGE_BYTES, info.length - offset);
      const times: number[] = [];
      for (let i = 0; i < reads; i++) {
        const started = performance.now();
        const page = await store.infoPage("films", infoHash, offset, length);
        times.push(performance.now() - started);
        if (
          page?.length !== length || page[0] !== info[offset] ||
          page.at(-1) !== info[offset + length - 1]
        ) {
          throw new Error(`the ${label} page came back wrong`);
        }
      }
      timings[`${label}_page_ms`] = Number(median(times).toFixed(2));
    }
    console.log(JSON.stringify({
      store: values.store,
      hashes: values.hashes,
      info_bytes: info.length,
      pages: lastOffset / INFO_PAGE_BYTES + 1,
      ...timings,
    }));
  } finally {
    await store.close();
  }
}

if (import.meta.main) await runInterruptible("bench_info_pages", main);
