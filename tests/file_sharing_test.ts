/**
 * FileSharing against a scripted tracker: what restoring shares at login does when the tracker
 * goes away in the middle (a transient failure is not a reason to drop a share), and when a
 * file is not on this client (the share ends only if no other client of the user holds it).
 */

import assert from "node:assert/strict";
import { TrackerUnavailableError } from "../lib/errors.ts";
import { hashFile } from "../lib/hash.ts";
import { encodeInfo, infoHash } from "../lib/metainfo.ts";
import {
  MAX_SHARES_PER_RESTORE,
  Refusal,
  type ShareRecord,
  type ShareRestore,
} from "../lib/protocol.ts";
import { generateTicketKeys } from "../lib/ticket.ts";
import {
  type FileEvent,
  FileSharing,
  MAX_RESTORE_WARNINGS,
  type TrackerRequest,
} from "../peer/file_sharing.ts";
import { describeEvent } from "../peer/shell.ts";
import type { PendingShares } from "../peer/state_dir.ts";
import { TorrentRegistry } from "../peer/torrents.ts";
import { TempDir, writeRandomFile } from "./harness.ts";

/** A share of a real file, as `my_shares` describes it. */
async function shareRecordOf(path: string, group: string): Promise<ShareRecord> {
  const hashes = await hashFile(path);
  const name = path.split("/").at(-1)!;
  const info = encodeInfo({ name, length: hashes.length, pieceHashes: hashes.pieceHashes });
  const stat = await Deno.stat(path);
  return {
    group,
    name,
    size: hashes.length,
    sha1: hashes.sha1,
    info_hash: (await infoHash(info)).toHex(),
    info: info.toBase64(),
    path,
    mtime_ms: Math.trunc(stat.mtime!.getTime()),
  };
}

/** A FileSharing whose tracker answers with `answer`; records requests and events. */
async function sharing(
  answer: (type: string, params: Record<string, unknown>) => unknown,
  pendingShares?: PendingShares,
) {
  const requests: string[] = [];
  const events: FileEvent[] = [];
  const registry = new TorrentRegistry();
  const request = ((type: string, params: Record<string, unknown>) => {
    requests.push(type);
    try {
      return Promise.resolve(answer(type, params));
    } catch (error) {
      return Promise.reject(error);
    }
  }) as TrackerRequest;
  const files = new FileSharing({
    request,
    registry,
    peerId: new Uint8Array(20),
    listenPort: 1,
    ticketKey: (await generateTicketKeys()).publicKey,
    security: { mode: "plaintext" },
    onEvent: (event) => events.push(event),
    log: () => {},
    pendingShares,
  });
  return { files, requests, events, registry };
}

/** Pending shares in memory. */
function memoryPending(initial: ShareRecord[] = []): PendingShares & { shares: ShareRecord[] } {
  const shares = [...initial];
  return {
    shares,
    list: () => Promise.resolve([...shares]),
    add: (share) => {
      shares.push(share);
      return Promise.resolve();
    },
    remove: (group, name) => {
      const index = shares.findIndex((s) => s.group === group && s.name === name);
      if (index >= 0) shares.splice(index, 1);
      return Promise.resolve();
    },
  };
}

Deno.test("restore: the tracker going away mid-way drops no share and fails the restore", async () => {
  await using dir = await TempDir.create();
  await writeRandomFile(dir.join("a.bin"), 1000);
  await writeRandomFile(dir.join("b.bin"), 1000);
  const records = [
    await shareRecordOf(dir.join("a.bin"), "films"),
    await shareRecordOf(dir.join("b.bin"), "films"),
  ];
  const pending = memoryPending([await shareRecordOf(dir.join("b.bin"), "music")]);
  let shared = 0;
  const { files, requests, events, registry } = await sharing((type, params) => {
    if (type === "my_shares") return params.after_group === undefined ? records : [];
    if (type === "share_file") {
      // the first share goes through; then the link drops
      if (shared++ === 0) return { ...records[0], info_hash: records[0].info_hash };
      throw new TrackerUnavailableError("the connection to the tracker was lost");
    }
    throw new TrackerUnavailableError();
  }, pending);
  await assert.rejects(files.restore(), TrackerUnavailableError);
  assert.deepEqual(events, [], "no share_dropped for a tracker that is merely away");
  assert.ok(!requests.includes("stop_share"), `no share was ended: ${requests}`);
  assert.equal(pending.shares.length, 1, "the pending share is kept for the next login");
  await files.stop();
  assert.equal(registry.all().length, 0);
});

Deno.test("restore: a file gone for good is dropped, also from the pending shares", async () => {
  await using dir = await TempDir.create();
  await writeRandomFile(dir.join("kept.bin"), 1000);
  await writeRandomFile(dir.join("gone.bin"), 1000);
  const kept = await shareRecordOf(dir.join("kept.bin"), "films");
  const gone = await shareRecordOf(dir.join("gone.bin"), "films");
  await Deno.remove(dir.join("gone.bin"));
  const pending = memoryPending([gone]);
  const { files, requests, events } = await sharing((type, params) => {
    if (type === "my_shares") return params.after_group === undefined ? [kept] : [];
    if (type === "restore_shares") return { refused: [] };
    if (type === "stop_share") return null;
    throw new Error(`unexpected ${type}`);
  }, pending);
  assert.equal(await files.restore(), 1);
  assert.deepEqual(events.map((event) => [event.event, (event as { name: string }).name]), [
    ["share_dropped", "gone.bin"],
  ]);
  assert.deepEqual(pending.shares, []);
  assert.deepEqual(requests, ["my_shares", "my_shares", "restore_shares", "stop_share"]);
  await files.stop();
});

Deno.test("restore: a share another client still holds is kept; warnings are bounded", async () => {
  await using dir = await TempDir.create();
  // none of these files is on this client; the tracker keeps the even ones (another client
  // of the user holds them) and ends the odd ones
  const total = MAX_RESTORE_WARNINGS + 5;
  const records: ShareRecord[] = [];
  for (let i = 0; i < total; i++) {
    const name = `f${String(i).padStart(2, "0")}.bin`;
    await writeRandomFile(dir.join(name), 100);
    records.push(await shareRecordOf(dir.join(name), "films"));
    await Deno.remove(dir.join(name));
  }
  const asked: Record<string, unknown>[] = [];
  const { files, events } = await sharing((type, params) => {
    if (type === "my_shares") return params.after_group === undefined ? records : [];
    if (type !== "stop_share") throw new Error(`unexpected ${type}`);
    asked.push(params);
    const kept = Number(String(params.name).slice(1, 3)) % 2 === 0;
    return { group: params.group, name: params.name, file_removed: !kept, kept };
  });
  assert.equal(await files.restore(), 0);
  assert.equal(asked.length, total);
  assert.ok(asked.every((params) => params.keep_if_held === true), "keep_if_held asked");
  const said = events.slice(0, MAX_RESTORE_WARNINGS) as { event: string; name: string }[];
  assert.deepEqual(
    said.map((event) => [event.event, event.name]),
    records.slice(0, MAX_RESTORE_WARNINGS).map((record, i) => [
      i % 2 === 0 ? "share_not_restored" : "share_dropped",
      record.name,
    ]),
  );
  // the last five (20..24): 20, 22 and 24 kept, 21 and 23 dropped
  assert.deepEqual(events.slice(MAX_RESTORE_WARNINGS), [
    { event: "more_shares_not_restored", count: 5, dropped: 2 },
  ]);
  assert.equal(
    describeEvent(events[0]),
    `warning: not serving "f00.bin" in group "films" on this client: ${
      dir.join("f00.bin")
    } is no longer there; another client of yours still shares it`,
  );
  assert.equal(
    describeEvent(events.at(-1)!),
    "warning: and 5 more shared files not served on this client (2 of them no longer shared)",
  );
  await files.stop();
});

Deno.test("restore: shares go to the tracker in bounded batches; refused ones with share_file", async () => {
  await using dir = await TempDir.create();
  await writeRandomFile(dir.join("a.bin"), 1000);
  const base = await shareRecordOf(dir.join("a.bin"), "films");
  // one unchanged file shared in many groups: none is hashed again
  const total = 2 * MAX_SHARES_PER_RESTORE + 7;
  const distinct = Array.from(
    { length: total },
    (_, i) => ({ ...base, group: `g${String(i).padStart(4, "0")}` }),
  );
  const batches: ShareRestore[][] = [];
  const shared: string[] = [];
  const { files, requests } = await sharing((type, params) => {
    if (type === "my_shares") return params.after_group === undefined ? distinct : [];
    if (type === "restore_shares") {
      const shares = params.shares as ShareRestore[];
      batches.push(shares);
      // the tracker no longer has the first share of each batch: share_file decides
      return {
        refused: [{
          group: shares[0].group,
          name: shares[0].name,
          code: "not_found",
          message: "gone",
        }],
      };
    }
    if (type === "share_file") {
      shared.push(String(params.group));
      return { ...base, group: params.group };
    }
    throw new Error(`unexpected ${type}`);
  });
  assert.equal(await files.restore(), total);
  assert.deepEqual(batches.map((batch) => batch.length), [
    MAX_SHARES_PER_RESTORE,
    MAX_SHARES_PER_RESTORE,
    7,
  ]);
  assert.deepEqual(batches[0][0], {
    group: "g0000",
    name: base.name,
    info_hash: base.info_hash,
    path: base.path,
    mtime_ms: base.mtime_ms,
  });
  assert.deepEqual(shared, batches.map((batch) => batch[0].group));
  assert.equal(requests.filter((type) => type === "restore_shares").length, 3);
  await files.stop();
});

Deno.test("restore: a tracker without restore_shares gets one share_file per share", async () => {
  await using dir = await TempDir.create();
  await writeRandomFile(dir.join("a.bin"), 1000);
  const base = await shareRecordOf(dir.join("a.bin"), "films");
  const records = Array.from(
    { length: MAX_SHARES_PER_RESTORE + 3 },
    (_, i) => ({ ...base, group: `g${String(i).padStart(4, "0")}` }),
  );
  const { files, requests } = await sharing((type, params) => {
    if (type === "my_shares") return params.after_group === undefined ? records : [];
    if (type === "restore_shares") {
      throw new Refusal("bad_request", `unknown request type "restore_shares"`);
    }
    if (type === "share_file") return { ...base, group: params.group };
    throw new Error(`unexpected ${type}`);
  });
  assert.equal(await files.restore(), records.length);
  // asked once; then every share, of this batch and the next, one at a time as before
  assert.equal(requests.filter((type) => type === "restore_shares").length, 1);
  assert.equal(requests.filter((type) => type === "share_file").length, records.length);
  await files.stop();
});
