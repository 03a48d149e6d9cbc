/**
 * How long a login takes to serve a user's shares again (issue 16: one `share_file` per share
 * restored about 30 shares a second). Seeds a store straight through its methods (the tracker
 * lets a member share 1,000 files per group, so the shares are spread over groups of 1,000),
 * starts a real tracker on it, logs a real client in and times the login, which ends once
 * every share is served again.
 *
 *   deno run -A scripts/bench_restore.ts [--shares N] [--store sqlite|postgres]
 *
 * PostgreSQL runs on a server of its own in a temp dir (tests/postgres_server.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeInfo, infoHashHex } from "../lib/metainfo.ts";
import { hashPassword } from "../tracker/auth.ts";
import { openStore } from "../tracker/open_store.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { PostgresServer } from "../tests/postgres_server.ts";
import { JsonShell, runInterruptible, TempDir, TrackerProcess } from "./processes.ts";

/** Shares per group: the most one member may share in a group. */
const SHARES_PER_GROUP = 1_000;
const FILE_BYTES = 1_000;

/** Gives `user` `count` shares of one real file in groups of `SHARES_PER_GROUP`. */
async function seed(store: TrackerStore, sharedPath: string, count: number): Promise<void> {
  await Deno.writeFile(sharedPath, new Uint8Array(FILE_BYTES).fill(1));
  const mtimeMs = Math.trunc((await Deno.stat(sharedPath)).mtime!.getTime());
  await store.createUser("alice", await hashPassword("pw-alice"));
  const pieceHashes = new Uint8Array(20);
  const view = new DataView(pieceHashes.buffer);
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const group = `g${String(Math.floor(i / SHARES_PER_GROUP)).padStart(4, "0")}`;
    if (i % SHARES_PER_GROUP === 0) {
      await Promise.all(pending.splice(0));
      await store.createGroup(group, "alice");
    }
    const name = `f${String(i).padStart(6, "0")}.bin`;
    view.setUint32(0, i);
    const info = encodeInfo({ name, length: FILE_BYTES, pieceHashes });
    pending.push(store.shareFile(
      {
        group,
        name,
        infoHash: await infoHashHex(info),
        size: FILE_BYTES,
        sha1: "ab".repeat(20),
        info,
      },
      { user: "alice", path: sharedPath, mtimeMs },
    ));
    // a few writes in flight on PostgreSQL, not 100,000
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      shares: { type: "string", default: "1000" },
      store: { type: "string", default: "sqlite" },
    },
  });
  const count = Number(values.shares);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`bad --shares ${values.shares}`);
  if (values.store !== "sqlite" && values.store !== "postgres") {
    throw new Error(`--store is sqlite or postgres, not ${values.store}`);
  }
  await using dir = await TempDir.create();
  await using server = values.store === "postgres" ? await PostgresServer.start() : undefined;
  if (server) await server.createDatabase("restore");
  const db = server ? server.url("restore") : dir.join("tracker.db");
  let started = performance.now();
  const store = await openStore(db);
  try {
    await seed(store, dir.join("shared.bin"), count);
  } finally {
    await store.close();
  }
  const seeded = (performance.now() - started) / 1000;
  await using tracker = await TrackerProcess.start(db);
  await using shell = JsonShell.start(tracker.port, { waitLimitMs: 3_600_000 });
  started = performance.now();
  const login = await shell.ok("login alice pw-alice") as { shares_restored: number };
  const seconds = (performance.now() - started) / 1000;
  if (login.shares_restored !== count) {
    throw new Error(`${login.shares_restored} shares restored of ${count}`);
  }
  console.log(JSON.stringify({
    store: values.store,
    shares: count,
    seed_s: Number(seeded.toFixed(1)),
    login_s: Number(seconds.toFixed(2)),
    shares_per_s: Math.round(count / seconds),
  }));
}

if (import.meta.main) await runInterruptible("bench_restore", main);
