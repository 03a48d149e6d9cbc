/**
 * Listings come in pages (issue 13): `list_groups` and `list_files` answer at most 500
 * entries after the one asked, so no reply outgrows a frame however many groups and files
 * there are; the client's shell shows them page by page as they come; a tracker that
 * pages out of order or without end is refused.
 */

import assert from "node:assert/strict";
import { encodeInfo } from "../lib/metainfo.ts";
import { allPages, MAX_PAGES } from "../peer/pages.ts";
import { rawMember } from "./raw_tls.ts";
import { JsonShell, runScript, TempDir, TrackerProcess } from "./harness.ts";

const PAGE = 500;

const member = rawMember;

Deno.test("list_groups and list_files answer in pages of 500 (or fewer if asked), and the shell shows every page", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  // 501 groups: each user may own 100
  const owners: Awaited<ReturnType<typeof member>>[] = [];
  for (let i = 0; i < 6; i++) owners.push(await member(tracker.port, `owner${i}`));
  const groups: string[] = [];
  for (let i = 0; i < 501; i++) {
    const group = `g${String(i).padStart(3, "0")}`;
    await owners[Math.floor(i / 100)].ok({ type: "create_group", group });
    groups.push(group);
  }
  // 501 files in the first group
  const names: string[] = [];
  for (let i = 0; i < 501; i++) {
    const name = `f${String(i).padStart(3, "0")}.bin`;
    await owners[0].ok({
      type: "share_file",
      group: "g000",
      name,
      size: 1000,
      sha1: "ab".repeat(20),
      info: encodeInfo({ name, length: 1000, pieceHashes: new Uint8Array(20).fill(i % 256) })
        .toBase64(),
      path: `/shared/${name}`,
      mtime_ms: 0,
    });
    names.push(name);
  }

  const first = await owners[0].ok({ type: "list_groups" }) as { group: string }[];
  assert.deepEqual(first.map((g) => g.group), groups.slice(0, PAGE));
  const second = await owners[0].ok({ type: "list_groups", after: first.at(-1)!.group }) as {
    group: string;
  }[];
  assert.deepEqual(second.map((g) => g.group), groups.slice(PAGE));
  assert.deepEqual(await owners[0].ok({ type: "list_groups", after: groups.at(-1) }), []);

  const files = await owners[0].ok({ type: "list_files", group: "g000" }) as { name: string }[];
  assert.deepEqual(files.map((f) => f.name), names.slice(0, PAGE));
  const rest = await owners[0].ok({ type: "list_files", group: "g000", after: files.at(-1)!.name });
  assert.deepEqual((rest as { name: string }[]).map((f) => f.name), names.slice(PAGE));

  // a client may ask for smaller pages (never larger), each kept apart from the others
  const limited = async (type: "list_groups" | "list_files", extra: Record<string, unknown>) =>
    (await owners[0].ok({ type, ...extra }) as { group?: string; name?: string }[])
      .map((entry) => entry.group ?? entry.name);
  assert.deepEqual(await limited("list_groups", { limit: 3 }), groups.slice(0, 3));
  assert.deepEqual(await limited("list_groups", { limit: 3, after: "g001" }), [
    "g002",
    "g003",
    "g004",
  ]);
  assert.deepEqual(await limited("list_groups", { limit: 501 }), groups.slice(0, PAGE));
  assert.deepEqual(await limited("list_groups", {}), groups.slice(0, PAGE));
  // any `after` text pages from where it sorts; one longer than any name is refused
  assert.deepEqual(await limited("list_groups", { after: "g001\n3" }), groups.slice(2, PAGE + 2));
  assert.deepEqual(await limited("list_files", { group: "g000", limit: 1 }), names.slice(0, 1));
  assert.deepEqual(
    await limited("list_files", { group: "g000", limit: 2, after: names[498] }),
    names.slice(499),
  );
  assert.deepEqual(await limited("list_files", { group: "g000" }), names.slice(0, PAGE));
  for (const limit of [0, -1, 1.5, 2 ** 60]) {
    const refused = await owners[0].link.request({ type: "list_groups", limit });
    assert.equal(refused.ok, false, `limit ${limit}`);
    assert.equal((refused.error as { code: string }).code, "bad_request");
    assert.match((refused.error as { message: string }).message, /limit must be a whole number/);
  }
  const long = await owners[0].link.request({ type: "list_groups", after: "g".repeat(257) });
  assert.equal((long.error as { code: string }).code, "bad_request");
  assert.match((long.error as { message: string }).message, /after is longer than 256/);
  assert.deepEqual(await limited("list_groups", { after: "g".repeat(256) }), []);
  const wrongType = await owners[0].link.request({ type: "list_files", group: "g000", limit: "9" });
  assert.equal((wrongType.error as { code: string }).code, "bad_request");

  // a member that is not one is told so, cheaply (upload_file asks this, not the listing)
  const stranger = await member(tracker.port, "stranger");
  assert.deepEqual(await owners[0].ok({ type: "check_member", group: "g000" }), {
    group: "g000",
    owner: "owner0",
  });
  const refused = await stranger.link.request({ type: "check_member", group: "g000" });
  assert.equal(refused.ok, false);
  assert.equal((refused.error as { code: string }).code, "forbidden");

  // a member who shares nothing (owner0's own client would drop shares whose paths it lacks)
  await owners[1].ok({ type: "join_group", group: "g000" });
  await owners[0].ok({ type: "accept_request", group: "g000", user: "owner1" });
  await using shell = JsonShell.start(tracker.port);
  await shell.ok("login owner1 pw-owner1");
  const listed = await shell.ok("list_groups");
  assert.deepEqual((listed as { group: string }[]).map((g) => g.group), groups);
  const shown = await shell.ok("list_files g000");
  assert.deepEqual((shown as { name: string }[]).map((f) => f.name), names);
  // page by page: a line of the first 500 that says more follow, then the last one
  const lines = shell.stdout.all.map((line) => JSON.parse(line)).filter((line) =>
    line.command === "list_files"
  );
  assert.deepEqual(lines.map((line) => [line.data.length, line.more]), [[500, true], [
    1,
    undefined,
  ]]);
  // and in text: one header, then every row, page after page
  const { stdout } = await runScript(tracker.port, ["login owner1 pw-owner1", "list_files g000"]);
  assert.equal(stdout.filter((line) => line.startsWith("NAME")).length, 1);
  assert.deepEqual(
    stdout.filter((line) => line.startsWith("f")).map((line) => line.split(" ")[0]),
    names,
  );

  for (const owner of [...owners, stranger]) owner.link.close();
});

Deno.test("a paged listing out of order, or without end, is refused", async () => {
  // the same page again and again: keys do not grow
  const repeating = (after: string | undefined) => Promise.resolve(after ? ["b"] : ["a", "b"]);
  await assert.rejects(
    allPages(repeating, (key) => key, "list of groups"),
    /the tracker sent its list of groups out of order/,
  );
  // always one more page
  let served = 0;
  const endless = () => Promise.resolve([`k${String(served++).padStart(8, "0")}`]);
  await assert.rejects(
    allPages(endless, (key) => key, "list of groups"),
    new RegExp(`runs past ${MAX_PAGES} pages`),
  );
  assert.equal(served, MAX_PAGES + 1);
  // pages until an empty one
  const pages = [["a", "b"], ["c"], []];
  assert.deepEqual(
    await allPages(() => Promise.resolve(pages.shift()!), (key) => key, "x"),
    ["a", "b", "c"],
  );
});
